"""``python -m benchmarks [--quick] [--demo-workdir DIR]``: every measurement in one run, one table.

Sections (issue #13), each measured side by side in this run on this machine:

1. orchestration overhead: an MD of 2,000 steps (50 in quick mode) on 135 atoms through
   ctaflow (engine ``md_maker``, local runner, embedded store) vs plain ASE with the same
   calculator and seeds: the trained MACE in float32 (one pair), and a Lennard-Jones calculator
   (3 alternating pairs) for the absolute extra time and the ratio it implies (goal ≤ 1.05×);
2. the demo's trained MACE (found in ``--demo-workdir``; else an untrained model of its size,
   equally fast) vs CHGNet, time per MD step at 100 / 300 / 1,000 atoms (quick: 100 / 1,000),
   float64 and float32, after 3 warm-up steps, three timed blocks each (two in quick mode) for
   the error bars (goal ≥ 5× faster), peak memory;
3. cost growth: exponent of s/step vs atoms (3,000 atoms only in full mode, when the memory
   expected fits);
4. the VASP stand-in path vs the MLIP called directly, per ionic step;
5. store: chunked 1,000-frame, 400-atom trajectory written and read (MB/s), largest document
   (< 16 MB), query latency over 10,000 task documents (1,000 in quick mode);
6. a finished demo campaign's wall time per stage, read from ``--demo-workdir``;
7. the local runner with 2 worker processes vs jobflow's ``run_locally`` on a fan-out of
   CPU-bound toy jobs (8 jobs of ~2 s, 3 pairs; quick: 4 jobs of ~1 s, 2 pairs), and of jobs
   that sleep as long (the runner's own limit when other sessions hold the cores): speed-ups;
8. CHGNet forces + stress through ctaflow (one backward pass) vs chgnet's own evaluation, per
   call at 40 and 135 atoms.

Writes ``RESULTS.md`` and ``results.json`` next to this file (``--out`` to change). A measurement
that fails becomes a row saying so and makes the exit status 1; a missed goal does not.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.report import Row, machine_info, markdown_table, write_results

HERE = Path(__file__).resolve().parent

#: settings per mode: MD step counts of row 1, sizes of row 2, extra sizes of row 3, timed
#: seconds per block and blocks per model/size case, task documents of row 5, row 7's flow
MODES = {
    "quick": {
        "md_steps": [50],
        "sizes": [100, 1000],
        "extra": [],
        "budget_s": 0.5,
        "repeats": 2,
        "docs": 1000,
        "runner": {"pairs": 2, "jobs": 4, "iterations": 11_500_000, "sleep_s": 1.0},
    },
    "full": {
        "md_steps": [2000],
        "sizes": [100, 300, 1000],
        "extra": [3000],
        "budget_s": 1.5,
        "repeats": 3,
        "docs": 10_000,
        "runner": {"pairs": 3, "jobs": 8},
    },
}

Measurement = tuple[str, str, Callable[[], list[Row]]]


def measurements(mode: str, demo_workdir: str | None, mace_model: str | None) -> list[Measurement]:
    """(section, title, function returning rows) for every section, in table order."""
    from benchmarks import (
        chgnet_eval,
        demo_stages,
        md_cost,
        parallel_runner,
        standin_overhead,
        store_choice,
    )

    m = MODES[mode]
    if mace_model is None and demo_workdir is not None:
        mace_model = demo_stages.trained_model(demo_workdir)
    return [
        (
            "1",
            "orchestration overhead",
            lambda: md_cost.overhead_rows(m["md_steps"], mace_model),
        ),
        (
            "2,3",
            "MACE vs CHGNet, cost growth",
            lambda: md_cost.model_rows(
                m["sizes"], m["budget_s"], mace_model, m["extra"], m["repeats"]
            ),
        ),
        ("4", "VASP stand-in overhead", standin_overhead.rows),
        ("5", "store", lambda: store_choice.rows(m["docs"])),
        ("6", "demo campaign", lambda: demo_stages.rows(demo_workdir)),
        ("7", "parallel local runner", lambda: parallel_runner.rows(**m["runner"])),
        ("8", "CHGNet evaluation", lambda: chgnet_eval.rows(repeats=m["repeats"])),
    ]


def run(
    todo: list[Measurement], info_extra: dict | None = None, out_dir: Path | None = HERE
) -> tuple[list[Row], dict, bool]:
    """Run the measurements in order; print progress to stderr; write the result files.

    Returns (rows, machine info, whether every measurement ran).
    """
    rows: list[Row] = []
    ok = True
    start = time.perf_counter()
    for section, title, fn in todo:
        print(f"[{time.perf_counter() - start:6.0f} s] {section}. {title} ...", file=sys.stderr)
        t0 = time.perf_counter()
        try:
            new = fn()
        except Exception as exc:  # one failed measurement must not lose the others
            ok = False
            new = [Row(section, f"{title}: measurement failed", None, details=_error(exc))]
        for r in new:
            r.data.setdefault("section_s", time.perf_counter() - t0)
        rows += new
    info = {**machine_info(), **(info_extra or {}), "wall_s": time.perf_counter() - start}
    if out_dir is not None:
        write_results(rows, info, out_dir)
    return rows, info, ok


def _error(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="smaller run (under 3 minutes)")
    parser.add_argument(
        "--demo-workdir", default=None, help="work directory of a finished demo campaign (row 6)"
    )
    parser.add_argument(
        "--mace-model",
        default=None,
        help="MACE .model file (default: the demo work directory's trained model, else an "
        "untrained model of the demo's size)",
    )
    parser.add_argument(
        "--only", nargs="*", default=None, help="sections to run, e.g. --only 1 5 (default: all)"
    )
    parser.add_argument("--out", type=Path, default=HERE, help="folder for RESULTS.md/results.json")
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full"
    todo = measurements(mode, args.demo_workdir, args.mace_model)
    if args.only:
        todo = [m for m in todo if set(m[0].split(",")) & set(args.only)]
    command = "python -m benchmarks" + (" " + " ".join(argv) if argv else "")
    rows, info, ok = run(todo, {"mode": mode, "command": command}, args.out)
    print(markdown_table(rows))
    print(f"\n{mode} run, {info['wall_s']:.0f} s; written {args.out / 'RESULTS.md'}")
    return 0 if ok else 1
