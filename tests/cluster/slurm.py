"""A one-node SLURM cluster on this machine for tests (Debian's Slurm 22.05, no systemd/cgroups).

Everything lives in one private folder: munge key, socket and pid, slurm.conf, state and spool
directories, logs. Daemons are started directly and stopped by PID; ``SLURM_CONF`` points the
clients (``sbatch``, ``squeue``, ``scontrol``, FireWorks' ``CommonAdapter``) to the config.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
EXECUTABLES = ("slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "munged")
POLICY_RC = Path("/usr/sbin/policy-rc.d")


class ClusterError(RuntimeError):
    """The local cluster could not be installed or started (the message says why)."""


def _missing() -> list[str]:
    return [exe for exe in EXECUTABLES if shutil.which(exe) is None]


def ensure_installed(timeout_s: float = 600) -> float:
    """Install Debian's Slurm and munge packages if absent; the seconds it took (0 if present).

    A ``policy-rc.d`` exiting 101 keeps the packages from starting their own daemons.
    """
    if not _missing():
        return 0.0
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ClusterError(
            f"SLURM executables {_missing()} are missing and cannot be installed here "
            "(needs root and apt-get): apt-get install " + " ".join(PACKAGES)
        )
    start = time.monotonic()
    created_policy = not POLICY_RC.exists()
    if created_policy:
        POLICY_RC.write_text("#!/bin/sh\nexit 101\n")
        POLICY_RC.chmod(0o755)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [
        "apt-get",
        "-o",
        "DPkg::Lock::Timeout=300",
        "install",
        "-y",
        "--no-install-recommends",
        *PACKAGES,
    ]
    try:
        proc = subprocess.run(install, env=env, capture_output=True, text=True, timeout=timeout_s)
        if proc.returncode != 0:  # stale package lists: update once and retry
            subprocess.run(
                ["apt-get", "-o", "DPkg::Lock::Timeout=300", "update"],
                env=env,
                capture_output=True,
                timeout=timeout_s,
            )
            proc = subprocess.run(
                install, env=env, capture_output=True, text=True, timeout=timeout_s
            )
    finally:
        if created_policy:
            POLICY_RC.unlink(missing_ok=True)
    if proc.returncode != 0 or _missing():
        raise ClusterError(
            f"installing {' '.join(PACKAGES)} failed (exit {proc.returncode}); still missing "
            f"{_missing()}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        )
    return time.monotonic() - start


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


SLURM_CONF = """\
ClusterName=ctaflowtest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={root}/munge/munge.socket
CredType=cred/munge
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
MpiDefault=none
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=2
MinJobAge=300
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


@dataclass
class LocalSlurm:
    """A running one-node cluster: its folder, config file and daemon PIDs."""

    root: Path
    conf: Path
    pids: dict[str, int] = field(default_factory=dict)
    partition: str = "debug"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *args: str) -> str:
        proc = subprocess.run(list(args), env=self.env, capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise ClusterError(f"{' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    def stop(self) -> None:
        """Stop the daemons by PID (slurmd first), waiting for each to exit."""
        for name in ("slurmd", "slurmctld", "munged"):
            pid = self.pids.pop(name, None)
            if pid is not None:
                _terminate(pid)


def start(root: Path, timeout_s: float = 60) -> LocalSlurm:
    """Start munged, slurmctld and slurmd in ``root``.

    munged wants its socket folder (and the folders above it) searchable by everyone and
    writable by nobody but its owner: ``root`` and ``root/munge`` are made 0755, the key 0400.
    """
    root.mkdir(parents=True, exist_ok=True)
    munge = root / "munge"
    for sub in (root, munge, root / "state", root / "spool"):
        sub.mkdir(exist_ok=True)
        sub.chmod(0o755)
    key = munge / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    host = socket.gethostname().split(".")[0]
    conf = root / "slurm.conf"
    conf.write_text(
        SLURM_CONF.format(
            host=host,
            root=root,
            ctld_port=free_port(),
            d_port=free_port(),
            cpus=os.cpu_count() or 1,
        )
    )
    cluster = LocalSlurm(root=root, conf=conf)
    try:
        _run_daemon(
            [
                "munged",
                f"--socket={munge / 'munge.socket'}",
                f"--key-file={key}",
                f"--pid-file={munge / 'munged.pid'}",
                f"--log-file={munge / 'munged.log'}",
                f"--seed-file={munge / 'munged.seed'}",
            ],
            cluster.env,
        )
        cluster.pids["munged"] = _read_pid(munge / "munged.pid", timeout_s)
        _run_daemon(["slurmctld"], cluster.env)
        cluster.pids["slurmctld"] = _read_pid(root / "slurmctld.pid", timeout_s)
        _run_daemon(["slurmd"], cluster.env)
        cluster.pids["slurmd"] = _read_pid(root / "slurmd.pid", timeout_s)
        deadline = time.monotonic() + timeout_s
        while True:
            state = subprocess.run(
                ["sinfo", "-h", "-N", "-o", "%t"],
                env=cluster.env,
                capture_output=True,
                text=True,
                timeout=30,
            ).stdout.strip()
            if state in {"idle", "mix", "alloc"}:
                break
            if time.monotonic() > deadline:
                raise ClusterError(f"node state '{state}' after {timeout_s} s; see {root}/*.log")
            time.sleep(0.2)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _run_daemon(cmd: list[str], env: dict[str, str]) -> None:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise ClusterError(f"{cmd[0]} did not start: {proc.stderr.strip() or proc.stdout}")


def _read_pid(path: Path, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text().strip():
            return int(path.read_text().split()[0])
        time.sleep(0.05)
    raise ClusterError(f"no pid file {path} after {timeout_s} s")


def _terminate(pid: int, timeout_s: float = 20) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our own child: reaped
                return
        except ChildProcessError:  # not our child (a daemon): poll it
            pass
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
