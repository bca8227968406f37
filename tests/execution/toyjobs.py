"""Small deterministic jobs for runner tests; each run appends its name to a ledger file so
tests can count how often a job really executed."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
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


@job
def rendezvous(name: str, other: str, folder: str, timeout_s: float = 120.0) -> str:
    """Marks its start, then waits for ``other`` to start: it can only succeed when both jobs
    run at the same time."""
    _ledger(name)
    Path(folder, name).touch()
    deadline = time.monotonic() + timeout_s
    while not Path(folder, other).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{other} did not start while {name} was running")
        time.sleep(0.05)
    return name


@job(data=["squares"])
def square_table(n: int) -> dict:
    """An output with an array saved in the job store's ``data`` store."""
    _ledger("table")
    return {"n": n, "squares": np.arange(n, dtype=float) ** 2}


@job
def gather(values: list) -> float:
    _ledger("gather")
    return float(sum(np.sum(v) for v in values))


@job
def detour_and_addition(value: float) -> Response:
    """A dynamic job with a detour (+1) and an addition (+2)."""
    _ledger("diverge")
    detour = named_add(value, 1, "detour-add")
    addition = named_add(value, 2, "addition-add")
    return Response(output=value, detour=Flow([detour]), addition=Flow([addition]))


@job
def shout(text: str) -> str:
    """Prints ``text`` to standard output and error."""
    print(f"stdout: {text}", flush=True)
    print(f"stderr: {text}", file=sys.stderr, flush=True)
    return text


@job
def stopper(value: float) -> Response:
    _ledger("stopper")
    return Response(output=value, stop_children=True)


@job
def die(value: float) -> float:
    """Kills the process running it, as the out-of-memory killer would."""
    _ledger("die")
    os.kill(os.getpid(), signal.SIGKILL)
    return value


def fanout(seed: str = "fan", n: int = 4) -> Flow:
    """Independent additions, a data-store output, a replace and a detour/addition, gathered:
    every kind of job the runner handles."""
    with deterministic_uids(seed):
        leaves = [named_add(i, 10 * i, f"leaf{i}") for i in range(n)]
        table = square_table(n)
        table.name = "table"
        grown = grow(leaves[0].output)
        diverged = detour_and_addition(leaves[1].output)
        extra = [grown.output, diverged.output, table.output["n"], table.output["squares"]]
        total = gather([leaf.output for leaf in leaves] + extra)
        total.name = "gather"
        flow = Flow([*leaves, table, grown, diverged, total], output=total.output)
    flow.update_metadata({"stage": "toy", "campaign": "toy"})
    return flow


def fanout_total(n: int = 4) -> float:
    """The hand sum of :func:`fanout`'s result."""
    leaves = [11 * i for i in range(n)]
    grown = leaves[0] + 10 + 100
    return sum(leaves) + grown + leaves[1] + n + sum(i * i for i in range(n))


def pair(sleep_s: float = 0.0) -> Flow:
    """Two independent sleeping additions and their sum (1 + 2) + (3 + 4) = 10."""
    with deterministic_uids("pair"):
        a = named_add(1, 2, "p1", sleep_s=sleep_s)
        b = named_add(3, 4, "p2", sleep_s=sleep_s)
        total = named_add(a.output, b.output, "ptotal")
        flow = Flow([a, b, total], output=total.output)
    flow.update_metadata({"stage": "toy", "campaign": "toy"})
    return flow


if __name__ == "__main__":  # used by the kill tests: WORKDIR SLEEP_S [WORKERS [chain|pair]]
    import signal

    from ctaflow.execution.local import run_flow

    # a child of a background shell inherits SIGINT as ignored; the test wants Ctrl-C semantics
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from ctaflow.store import job_store, state_store

    workdir = Path(sys.argv[1])
    workers = int(sys.argv[3]) if len(sys.argv) > 3 else None
    build = pair if len(sys.argv) > 4 and sys.argv[4] == "pair" else chain
    run_flow(
        build(sleep_s=float(sys.argv[2])),
        job_store(None, workdir),
        state_store(None, workdir),
        workdir,
        workers=workers,
    )


@job
def countdown(n: int, name: str, sleep_s: float = 0.0) -> Response | int:
    """A dynamic chain: ``name{n}`` replaces itself by ``name{n-1}`` down to ``name0``."""
    _ledger(f"{name}{n}")
    time.sleep(sleep_s)
    if n == 0:
        return 0
    follow = countdown(n - 1, name, sleep_s)
    follow.name = f"{name}{n - 1}"
    return Response(replace=follow)


@job
def burn(seconds: float, in_child: bool = False) -> float:
    """Use ``seconds`` of CPU, in this process or in a child process it waits for; returns the
    CPU seconds this process used for it (a child's are not counted here)."""
    import subprocess

    start = time.process_time()
    if in_child:
        code = (
            f"import time\nt = time.process_time()\nwhile time.process_time() - t < {seconds}: pass"
        )
        subprocess.run([sys.executable, "-c", code], check=True)
    else:
        while time.process_time() - start < seconds:
            pass
    return time.process_time() - start


@job
def span(name: str, sleep_s: float) -> float:
    """Write ``name:start``, sleep, write ``name:end`` (the ledger shows what overlapped);
    returns ``sleep_s``."""
    _ledger(f"{name}:start")
    time.sleep(sleep_s)
    _ledger(f"{name}:end")
    return sleep_s
