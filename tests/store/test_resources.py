"""The size guard's estimates reproduce the benchmark measurements they come from."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ctaflow.resources import (
    PEAK_RSS_MB,
    SECONDS_PER_STEP,
    available_memory_mb,
    estimate_md_hours,
    estimate_md_memory_mb,
    estimate_md_seconds_per_step,
)
from tests.conftest import REPO


def test_tables_agree_with_the_benchmark_record():
    rows = json.loads((REPO / "benchmarks" / "results-5bd19b9.json").read_text())["rows"]
    measured: dict[tuple[str, int], tuple[float, float]] = {}
    for row in rows:
        for key, case in row.get("data", {}).items():
            if isinstance(case, dict) and "peak_rss_mb" in case and "s_per_step" in case:
                model = {"chgnet": "chgnet", "mace": "mace", "mace32": "mace-float32"}[key]
                measured[model, case["atoms"]] = (case["peak_rss_mb"], case["s_per_step"])
        if "points" in row.get("data", {}):  # row 3: the 3000-atom cases
            model = "chgnet" if row["data"]["points"][0][1] > 0.2 else "mace"
            n, seconds = row["data"]["points"][-1]
            measured[model, n] = (row["data"]["peak_rss_mb"][str(n)], seconds)
    table = {
        (model, n): (rss, dict(SECONDS_PER_STEP[model])[n])
        for model, points in PEAK_RSS_MB.items()
        for n, rss in points
    }
    assert table.keys() == measured.keys()
    for key, (rss, seconds) in table.items():
        assert rss == pytest.approx(measured[key][0], abs=0.06)
        assert seconds == pytest.approx(measured[key][1], rel=1e-4)


def test_memory_by_hand():
    assert estimate_md_memory_mb(1000, "chgnet") == 5097.5  # measured
    assert estimate_md_memory_mb(650, "chgnet") == pytest.approx((1865.0 + 5097.5) / 2)
    slope = (14006.1 - 5097.5) / 2000  # 4.45 MB per atom above 1000 atoms
    assert estimate_md_memory_mb(5000, "chgnet") == pytest.approx(14006.1 + 2000 * slope)
    assert estimate_md_memory_mb(40, "mace") == 713.5  # below the smallest: the model load
    assert estimate_md_memory_mb(2000, "mace") < estimate_md_memory_mb(2000, "chgnet") / 4
    with pytest.raises(ValueError, match="no benchmark measurement for model 'sevennet'"):
        estimate_md_memory_mb(100, "sevennet")


def test_time_by_hand():
    assert estimate_md_seconds_per_step(300, "mace") == pytest.approx(0.23989)
    between = math.sqrt(1000 * 3000)  # log-log midpoint: the geometric mean of the times
    assert estimate_md_seconds_per_step(between, "chgnet") == pytest.approx(
        math.sqrt(3.2199 * 37.491)
    )
    assert estimate_md_hours(1000, 3600, "chgnet") == pytest.approx(3.2199)


def test_available_memory_is_a_positive_number_on_linux():
    meminfo = Path("/proc/meminfo")
    if not meminfo.is_file():
        pytest.skip("not Linux")
    free = available_memory_mb()
    assert free > 0
    meminfo = meminfo.read_text()
    kb = int(
        next(line for line in meminfo.splitlines() if line.startswith("MemAvailable")).split()[1]
    )
    assert free <= kb / 1024 * 1.05  # never more than the kernel reports (it moves a little)
