"""Helpers for the FireWorks cluster tests: LaunchPad and store files for the MongoDB stand-in,
the SLURM queue adapter from launchpad/my_qadapter_slurm.yaml, waiting and timings."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import yaml

from tests.conftest import CTAFLOW, REPO, subprocess_env

RLAUNCH = str(Path(sys.executable).with_name("rlaunch"))


def write_launchpad(path: Path, server, database: str) -> Path:
    """my_launchpad.yaml for the stand-in (the template with its CHANGE ME values filled in)."""
    spec = yaml.safe_load((REPO / "launchpad" / "my_launchpad.yaml").read_text())
    spec.update(host=server.host, port=server.port, name=f"{database}_fw")
    path.write_text(yaml.safe_dump(spec))
    return path


def write_job_store(path: Path, server, database: str) -> Path:
    """jobflow.yaml (MongoStore + GridFS data store) for the stand-in, from the template."""
    spec = yaml.safe_load((REPO / "launchpad" / "jobflow.yaml").read_text())
    stores = [spec["JOB_STORE"]["docs_store"], spec["JOB_STORE"]["additional_stores"]["data"]]
    for store in stores:
        store.update(host=server.host, port=server.port, database=database)
        store.pop("username")
        store.pop("password")
    path.write_text(yaml.safe_dump(spec))
    return path


def slurm_adapter(launchpad_file: Path, **overrides):
    """The SLURM CommonAdapter of launchpad/my_qadapter_slurm.yaml for the one-node cluster."""
    from fireworks.user_objects.queue_adapters.common_adapter import CommonAdapter

    adapter = CommonAdapter.from_file(str(REPO / "launchpad" / "my_qadapter_slurm.yaml"))
    for key in ("account", "mem"):  # no accounts, no memory limits on the test node
        adapter.pop(key)
    adapter.update(
        queue="debug",
        cpus_per_task=1,
        walltime="00:10:00",
        rocket_launch=f"{RLAUNCH} -l {launchpad_file} singleshot",
        pre_rocket="export OMP_NUM_THREADS=1",
        **overrides,
    )
    return adapter


def wait_for(predicate, timeout_s: float, what: str, step_s: float = 0.25):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(step_s)


def states(launchpad, fw_ids) -> dict[int, str]:
    return {
        d["fw_id"]: d["state"]
        for d in launchpad.fireworks.find(
            {"fw_id": {"$in": list(fw_ids)}}, {"fw_id": 1, "state": 1}
        )
    }


def launch_timings(launchpad, fw_ids) -> list[dict]:
    """Per launch: SLURM job id and seconds from submission (RESERVED) to RUNNING / COMPLETED."""
    rows = []
    for launch in launchpad.launches.find({"fw_id": {"$in": list(fw_ids)}}):
        times = {h["state"]: _time(h["created_on"]) for h in launch["state_history"]}
        reserved = times.get("RESERVED")
        rows.append(
            {
                "fw_id": launch["fw_id"],
                "slurm_job_id": next(
                    (h["reservation_id"] for h in launch["state_history"] if "reservation_id" in h),
                    None,
                ),
                "state": launch["state"],
                "queue_s": (times["RUNNING"] - reserved).total_seconds() if reserved else None,
                "total_s": (times[launch["state"]] - reserved).total_seconds()
                if reserved and launch["state"] in times
                else None,
            }
        )
    return rows


def _time(value) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def ctaflow(*args, cwd):
    """Run the ctaflow CLI in ``cwd``; its stdout (fails the test on a non-zero exit)."""
    proc = subprocess.run(
        [CTAFLOW, *args],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        cwd=cwd,
        timeout=600,
    )
    assert proc.returncode == 0, f"ctaflow {args}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout
