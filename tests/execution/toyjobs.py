"""Small deterministic jobs for runner tests; each run appends its name to a ledger file so
tests can count how often a job really executed."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from jobflow import Flow, Response, job

from ctaflow.flows.uids import deterministic_uids


def _ledger(name: str) -> None:
    ledger = Path(os.environ["CTAFLOW_TEST_LEDGER"])
    with ledger.open("a") as handle:
        handle.write(name + "\n")


@job
def add(a: float, b: float, name: str = "add", sleep_s: float = 0.0) -> float:
    _ledger(name)
    time.sleep(sleep_s)
    return a + b


def named_add(a, b, name: str, sleep_s: float = 0.0):
    """An ``add`` job whose job name is ``name`` too."""
    new = add(a, b, name=name, sleep_s=sleep_s)
    new.name = name
    return new


@job
def fail_if(value: float, limit: float) -> float:
    _ledger("fail_if")
    if value > limit:
        raise ValueError(f"value {value} above {limit}")
    return value


@job
def grow(value: float) -> Response:
    """A dynamic job: replaces itself by two additions."""
    _ledger("grow")
    first = named_add(value, 10, "grow-a")
    second = named_add(first.output, 100, "grow-b")
    return Response(replace=Flow([first, second], output=second.output))


def chain(seed: str = "toy", sleep_s: float = 0.0) -> Flow:
    """((1 + 2) + 3) -> dynamic +10 +100 ; result 116."""
    with deterministic_uids(seed):
        j1 = named_add(1, 2, "j1")
        j2 = named_add(j1.output, 3, "j2", sleep_s=sleep_s)
        j3 = grow(j2.output)
        j4 = named_add(j3.output, 0, "j4")
        flow = Flow([j1, j2, j3, j4], output=j4.output)
    flow.update_metadata({"stage": "toy", "campaign": "toy"})
    return flow


if __name__ == "__main__":  # used by the kill test: run the chain in a child process
    import signal

    from ctaflow.execution.local import run_flow

    # a child of a background shell inherits SIGINT as ignored; the test wants Ctrl-C semantics
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from ctaflow.store import job_store, state_store

    workdir = Path(sys.argv[1])
    run_flow(
        chain(sleep_s=float(sys.argv[2])),
        job_store(None, workdir),
        state_store(None, workdir),
        workdir,
    )
