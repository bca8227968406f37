"""How much memory (and time) an MD run will need, and how much memory this machine has free.

For a size guard in ``ctaflow validate``: an MD cell too large for the machine should be refused
before a run spends hours building up to it. The estimates are **measurements, not a model**:
ctaflow's own benchmark (rows 2 and 3 of ``python -m benchmarks`` at commit 5bd19b9, 2026-11-29,
kept as ``benchmarks/results-5bd19b9.json``; ``benchmarks/RESULTS.md`` is rewritten by every run:
on 2026-12-05 the same VM took 2.2-2.7x less time per step up to 1,000 atoms, 17 % more for
CHGNet at 3,000, with peak memory within 8 %) ran Langevin MD of Na3OCl supercells in one
process per case, single-threaded (torch and BLAS threads = 1) on an AMD EPYC under Linux with
torch 2.13 (CPU), and recorded the process's peak resident memory (VmHWM) and the time per MD step:

* ``chgnet``: CHGNet 0.3.0 (chgnet 0.4.2);
* ``mace`` / ``mace-float32``: a MACE model of the demo's size (16 channels, max_L 0,
  r_max 5 Å, 2 interactions; mace-torch 0.3.16) in float64 (as the demo trains and runs it) and
  cast to float32.

Between measured sizes the estimate interpolates (linearly for memory, log-log for time); above
the largest it extrapolates the last interval (memory and neighbour graphs grow linearly in
atoms at fixed density); below the smallest it keeps the smallest case's memory (the loaded
model dominates). Other densities, cutoffs, larger MACE models, GPUs or more threads cost
differently: treat the numbers as the scale of the need, and keep a margin.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

#: peak resident memory (MB) of one MD process against atoms (benchmarks/results-5bd19b9.json)
PEAK_RSS_MB: dict[str, tuple[tuple[int, float], ...]] = {
    "chgnet": ((100, 934.5), (300, 1865.0), (1000, 5097.5), (3000, 14006.1)),
    "mace": ((100, 713.5), (300, 829.5), (1000, 1160.9), (3000, 1963.6)),
    "mace-float32": ((100, 671.9), (300, 732.8), (1000, 956.4)),
}
#: seconds per MD step, one thread, against atoms (benchmarks/results-5bd19b9.json)
SECONDS_PER_STEP: dict[str, tuple[tuple[int, float], ...]] = {
    "chgnet": ((100, 0.31531), (300, 0.82951), (1000, 3.2199), (3000, 37.491)),
    "mace": ((100, 0.082847), (300, 0.23989), (1000, 0.86652), (3000, 2.7990)),
    "mace-float32": ((100, 0.053641), (300, 0.10363), (1000, 0.42062)),
}


def estimate_md_memory_mb(n_atoms: int, model: str) -> float:
    """Peak memory (MB) of one MD process of ``n_atoms`` atoms with ``model`` ("chgnet",
    "mace", "mace-float32"), from the benchmark measurements (see the module docstring)."""
    points = _points(PEAK_RSS_MB, model, n_atoms)
    if n_atoms <= points[0][0]:
        return points[0][1]
    (n0, m0), (n1, m1) = _interval(points, n_atoms)
    return m0 + (m1 - m0) * (n_atoms - n0) / (n1 - n0)


def estimate_md_seconds_per_step(n_atoms: int, model: str) -> float:
    """Seconds per MD step on one CPU thread (power law between and beyond the measured
    sizes, whose local exponent is 1.0–1.4: see benchmarks/RESULTS.md row 3)."""
    points = _points(SECONDS_PER_STEP, model, n_atoms)
    (n0, t0), (n1, t1) = _interval(points, n_atoms)
    exponent = math.log(t1 / t0) / math.log(n1 / n0)
    return t0 * (n_atoms / n0) ** exponent


def estimate_md_hours(n_atoms: int, n_steps: int, model: str) -> float:
    """Wall time (h) of ``n_steps`` MD steps on one CPU thread."""
    return n_steps * estimate_md_seconds_per_step(n_atoms, model) / 3600.0


def available_memory_mb() -> float | None:
    """Memory this process could still use (MB): the smaller of the kernel's ``MemAvailable``
    and what the process's cgroup limit leaves (batch schedulers such as SLURM limit jobs that
    way); None where neither can be read (not Linux)."""
    candidates = [_meminfo_available_mb(), _cgroup_room_mb()]
    known = [c for c in candidates if c is not None]
    return min(known) if known else None


def _points(table: dict, model: str, n_atoms: int) -> tuple[tuple[int, float], ...]:
    if n_atoms < 1:
        raise ValueError(f"n_atoms must be positive, not {n_atoms}")
    try:
        return table[model]
    except KeyError:
        raise ValueError(
            f"no benchmark measurement for model '{model}'; measured: {', '.join(table)}"
        ) from None


def _interval(points, n_atoms: int):
    """The measured interval holding ``n_atoms`` (the first or last one outside the range)."""
    for low, high in itertools.pairwise(points):
        if n_atoms <= high[0]:
            return low, high
    return points[-2], points[-1]


def _meminfo_available_mb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_room_mb() -> float | None:
    """Limit minus usage of this process's memory cgroup (v2 or v1); None if unlimited."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    root = Path("/sys/fs/cgroup")
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # cgroup v2
            folder, limit_file, usage_file = root / path.lstrip("/"), "memory.max", "memory.current"
        elif "memory" in controllers.split(","):  # cgroup v1
            folder = root / "memory" / path.lstrip("/")
            limit_file, usage_file = "memory.limit_in_bytes", "memory.usage_in_bytes"
        else:
            continue
        try:
            limit = (folder / limit_file).read_text().strip()
            usage = int((folder / usage_file).read_text())
        except (OSError, ValueError):
            continue
        if limit == "max" or int(limit) >= 2**60:
            continue
        return max(0.0, (int(limit) - usage) / 2**20)
    return None
