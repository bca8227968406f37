"""Row 7: ctaflow's local runner with worker processes vs jobflow's ``run_locally``.

The flow: ``jobs`` independent CPU-bound jobs (a fixed amount of pure-Python integer arithmetic,
:data:`ITERATIONS` steps, about 2 s of CPU each on the benchmark machine) and one job gathering
their results. Both sides run the same flow (same uuids) into a fresh embedded store in a work
directory of their own, from this process; pairs alternate which side runs first. The speed-up is
the mean over pairs of (run_locally wall time) / (run_flow wall time), with its standard error.
The runner's time includes starting its worker processes (each imports jobflow); that fixed cost
is measured apart, as the extra wall time of the runner on the same flow with no work in the jobs.
The jobs live in this module (importable), so that the workers can load them.

The speed-up of CPU-bound jobs needs free cores. Linux shares the CPU fairly between sessions
(autogroup), so while other sessions keep cores busy, a second process of this session gets no
more CPU than one (measured: "cores used" stays near its run_locally value). A second row runs
the same flow with jobs that sleep ``sleep_s`` instead of computing: its speed-up is the runner's
own limit (scheduling, worker start, store writes), whatever the machine's load.

Run alone: ``python -m benchmarks.parallel_runner [--pairs 3] [--jobs 8] [--workers 2]``.
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse
import resource
import tempfile
import time
from pathlib import Path

from jobflow import Flow, job

from benchmarks.report import Row, markdown_table

#: iterations of a CPU-bound job: 2.0 s of CPU on the benchmark machine (0.087 s per million)
ITERATIONS = 23_000_000


@job
def burn(seed: int, iterations: int, sleep_s: float = 0.0) -> int:
    """A linear congruential walk: pure-Python CPU work whose result depends on every step;
    then ``sleep_s`` seconds of sleep (no CPU)."""
    x = seed
    for i in range(iterations):
        x = (x * 1103515245 + 12345 + i) % 2147483648
    time.sleep(sleep_s)
    return x


@job
def gather(values: list[int]) -> int:
    return sum(values) % 2147483648


def fan_out(jobs: int, iterations: int, sleep_s: float = 0.0) -> Flow:
    """``jobs`` independent burns and their gather, with the same uuids every time."""
    from ctaflow.flows.uids import deterministic_uids

    with deterministic_uids(f"bench-fan-out-{jobs}-{iterations}-{sleep_s}"):
        burns = [burn(seed, iterations, sleep_s) for seed in range(jobs)]
        total = gather([b.output for b in burns])
        flow = Flow([*burns, total], output=total.output)
    flow.update_metadata({"stage": "bench", "campaign": "bench"})
    return flow


def _cpu_s() -> float:
    """CPU seconds of this process and of its children that have ended (the workers)."""
    me, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def _time_run_locally(flow: Flow, folder: Path) -> dict:
    from jobflow import run_locally

    from ctaflow.store import job_store

    store = job_store(None, folder)
    start, cpu = time.perf_counter(), _cpu_s()
    run_locally(flow, store=store, log=False, root_dir=folder, ensure_success=True)
    wall = time.perf_counter() - start
    return {"wall_s": wall, "cpu_s": _cpu_s() - cpu, "result": store.get_output(flow.output.uuid)}


def _time_run_flow(flow: Flow, folder: Path, workers: int) -> dict:
    """Also the time average of the number of jobs running (from the progress events)."""
    from ctaflow.execution.local import run_flow
    from ctaflow.store import job_store, state_store

    store, states = job_store(None, folder), state_store(None, folder)
    busy = {"last": time.perf_counter(), "n": 0, "integral": 0.0}

    def progress(event, job, report) -> None:
        now = time.perf_counter()
        busy["integral"] += busy["n"] * (now - busy["last"])
        busy["last"], busy["n"] = now, len(report.running)

    start, cpu = time.perf_counter(), _cpu_s()
    report = run_flow(flow, store, states, folder, progress=progress, workers=workers)
    wall = time.perf_counter() - start
    if not report.ok:
        raise RuntimeError(f"run_flow failed: {report.failed}")
    return {
        "wall_s": wall,
        "cpu_s": _cpu_s() - cpu,
        "mean_running": busy["integral"] / wall,
        "result": store.get_output(flow.output.uuid),
    }


def _pair(
    jobs: int, iterations: int, workers: int, runner_first: bool, sleep_s: float = 0.0
) -> tuple[dict, dict]:
    """(run_locally, run_flow) measurements on fresh stores; their results must agree."""
    with tempfile.TemporaryDirectory(prefix="ctaflow-bench-runner-") as tmp:
        sides = [
            lambda: _time_run_locally(fan_out(jobs, iterations, sleep_s), Path(tmp, "jobflow")),
            lambda: _time_run_flow(
                fan_out(jobs, iterations, sleep_s), Path(tmp, "ctaflow"), workers
            ),
        ]
        if runner_first:
            runner, local = sides[1](), sides[0]()
        else:
            local, runner = sides[0](), sides[1]()
    if local["result"] != runner["result"]:
        raise RuntimeError(f"different results: run_locally {local}, run_flow {runner}")
    return local, runner


def _pairs(pairs: int, **kwargs) -> list[tuple[dict, dict]]:
    return [_pair(runner_first=k % 2 == 1, **kwargs) for k in range(pairs)]


def _speed_up(measured: list[tuple[dict, dict]]) -> tuple[float, float | None, str]:
    """Mean ratio of wall times, its standard error, and the numbers behind it as text."""
    from benchmarks.md_cost import standard_error

    ratios = [local["wall_s"] / runner["wall_s"] for local, runner in measured]
    used = "; ".join(
        f"{a['wall_s']:.1f} s / {b['wall_s']:.1f} s, cores used {a['cpu_s'] / a['wall_s']:.2f}"
        f" / {b['cpu_s'] / b['wall_s']:.2f}"
        for a, b in measured
    )
    running = sum(b["mean_running"] for _, b in measured) / len(measured)
    text = (
        f"{len(measured)} alternating pairs, run_locally / run_flow (wall time, cores used = "
        f"CPU time / wall time, workers included): {used}; jobs running at once in run_flow, "
        f"time average: {running:.2f}"
    )
    return sum(ratios) / len(ratios), standard_error(ratios), text


def _raw(measured: list[tuple[dict, dict]]) -> list:
    keep = ("wall_s", "cpu_s", "mean_running")
    return [[{k: side[k] for k in keep if k in side} for side in pair] for pair in measured]


def rows(
    pairs: int = 3,
    jobs: int = 8,
    workers: int = 2,
    iterations: int = ITERATIONS,
    sleep_s: float = 2.0,
) -> list[Row]:
    """Speed-ups (mean ± standard error over ``pairs``) on CPU-bound and on sleeping jobs."""
    load_before = os.getloadavg()[0]
    zero_local, zero_runner = _pair(jobs, 0, workers, runner_first=False)
    fixed_s = zero_runner["wall_s"] - zero_local["wall_s"]
    cpu = _pairs(pairs, jobs=jobs, iterations=iterations, workers=workers)
    cpu_per_job = sum(local["cpu_s"] for local, _ in cpu) / pairs / jobs  # gather: ~0
    slept = _pairs(pairs, jobs=jobs, iterations=0, workers=workers, sleep_s=sleep_s)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    machine = (
        f"run_flow's fixed cost (worker start, same flow without work): {fixed_s:+.1f} s; "
        f"{cores} usable cores, load average {load_before:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after"
    )
    data = {"no_work_s": [zero_local["wall_s"], zero_runner["wall_s"]], "jobs": jobs}
    data.update(workers=workers, cores=cores, iterations=iterations, sleep_s=sleep_s)
    mean, se, text = _speed_up(cpu)
    cpu_row = Row(
        "7",
        f"local runner, {workers} worker processes vs jobflow run_locally: speed-up on "
        "CPU-bound jobs",
        mean,
        "×",
        (">=", 1.8),
        f"{jobs} independent jobs of {iterations / 1e6:g} M pure-Python steps "
        f"({cpu_per_job:.1f} s CPU each, measured in run_locally) + a gather job, embedded "
        f"store; {text}; {machine}. Bounded by the CPU other sessions leave (see the module "
        "docstring); the goal is the issue's for the demo campaign",
        {**data, "pairs": _raw(cpu)},
        se,
    )
    mean, se, text = _speed_up(slept)
    sleep_row = Row(
        "7",
        f"local runner, {workers} worker processes vs jobflow run_locally: speed-up on "
        "sleeping jobs (the runner's own limit)",
        mean,
        "×",
        None,
        f"the same flow, each job sleeping {sleep_s:g} s instead of computing (needs no free "
        f"core); {text}; {machine}",
        {**data, "pairs": _raw(slept)},
        se,
    )
    return [cpu_row, sleep_row]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.parallel_runner")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=ITERATIONS)
    parser.add_argument("--sleep", type=float, default=2.0, help="seconds per sleeping job")
    args = parser.parse_args(argv)
    table = rows(args.pairs, args.jobs, args.workers, args.iterations, args.sleep)
    print(markdown_table(table))
    return 0


if __name__ == "__main__":
    import sys

    from benchmarks.parallel_runner import main as _main  # jobs from the importable module

    sys.exit(_main(sys.argv[1:]))
