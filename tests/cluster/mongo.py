"""The MongoDB wire-protocol stand-in for tests: a ``secantusd-py`` server on a free port.

secantusdb (PyPI, beta, test-only extra) speaks enough of the protocol for pymongo, maggma's
MongoStore/GridFSStore and FireWorks' LaunchPad. It is a stand-in for a real ``mongod`` in tests,
never a user-facing default. It cannot create an index on ``_id``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.cluster.slurm import ClusterError, _terminate, free_port


@dataclass
class MongoStandIn:
    host: str
    port: int
    pid: int
    log: Path

    @property
    def uri(self) -> str:
        return f"mongodb://{self.host}:{self.port}"

    def client(self):
        from pymongo import MongoClient

        return MongoClient(self.host, self.port, serverSelectionTimeoutMS=5000)

    def stop(self) -> None:
        _terminate(self.pid)


def start(storage: Path, timeout_s: float = 30) -> MongoStandIn:
    """Start ``secantusd-py`` with its data in ``storage``; wait until it answers a ping."""
    exe = shutil.which("secantusd-py") or str(Path(sys.executable).with_name("secantusd-py"))
    if not Path(exe).is_file():
        raise ClusterError(
            "secantusd-py not found: install the test extra (pip install -e '.[test]'), "
            "which pins secantusdb"
        )
    storage.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = storage.with_suffix(".log")
    with open(log, "w") as handle:
        proc = subprocess.Popen(
            [
                exe,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--storage-path",
                str(storage),
                "--cache-size",
                "256M",
                "--log-level",
                "WARNING",
            ],
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = MongoStandIn("127.0.0.1", port, proc.pid, log)
    deadline = time.monotonic() + timeout_s
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    while True:
        if proc.poll() is not None:
            raise ClusterError(f"secantusd-py exited with {proc.returncode}: {log.read_text()}")
        try:
            with MongoClient("127.0.0.1", port, serverSelectionTimeoutMS=300) as client:
                client.admin.command("ping")
            return server
        except PyMongoError:
            if time.monotonic() > deadline:
                server.stop()
                raise ClusterError(f"secantusd-py did not answer in {timeout_s} s: {log}") from None
            time.sleep(0.1)
