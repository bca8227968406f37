"""Tiny jobs for the cluster tests; each run appends its name to the ledger file named by
CTAFLOW_TEST_LEDGER, so tests count how often a job really ran."""

from __future__ import annotations

import os
import time
from pathlib import Path

from jobflow import Flow, job

from ctaflow.flows.uids import deterministic_uids


def _ledger(name: str) -> None:
    with Path(os.environ["CTAFLOW_TEST_LEDGER"]).open("a") as handle:
        handle.write(name + "\n")


@job
def step(value: float, name: str, sleep_s: float = 0.0) -> float:
    _ledger(name)
    time.sleep(sleep_s)
    return value + 1


@job
def flaky(value: float, marker: str) -> float:
    """Raises while ``marker`` exists (a failure the user fixes, then reruns)."""
    _ledger("flaky")
    if Path(marker).exists():
        raise RuntimeError(f"flaky job: {Path(marker).name} is present")
    return value * 10


@job
def dies(value: float, marker: str) -> float:
    """Ends its process with exit status 3 while ``marker`` exists: FireWorks never hears back
    (as after a walltime kill or a node failure), so the run is lost."""
    _ledger("dies")
    if Path(marker).exists():
        os._exit(3)
    return value


def with_stage(new_job, stage: str):
    new_job.update_metadata({"stage": stage, "campaign": "toy"})
    if new_job.name == "step":  # the firework is named after the ledger name
        new_job.name = new_job.function_args[1]
    return new_job


def failing_flow(flaky_marker: Path, dies_marker: Path) -> Flow:
    """start -> flaky -> after;  dies;  independent  (stages named after the jobs)."""
    with deterministic_uids("cluster-failures"):
        start = with_stage(step(1, "start"), "prepare")
        bad = with_stage(flaky(start.output, str(flaky_marker)), "compute")
        after = with_stage(step(bad.output, "after"), "analyse")
        lost = with_stage(dies(5, str(dies_marker)), "compute")
        independent = with_stage(step(100, "independent"), "prepare")
        return Flow([start, bad, after, lost, independent], name="failures")


def many_jobs(n: int, sleep_s: float = 0.2) -> Flow:
    with deterministic_uids(f"many-{n}"):
        jobs = [with_stage(step(i, f"job{i:02d}", sleep_s), "many") for i in range(n)]
        return Flow(jobs, name="many")
