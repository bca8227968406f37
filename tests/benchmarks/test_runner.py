"""The benchmark runner's bookkeeping, with fake measurements (no timing is asserted)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks.demo_stages import job_intervals, trained_model
from benchmarks.md_cost import fit_exponent, memory_estimate_mb, ratio_with_error, standard_error
from benchmarks.report import Row, fmt
from benchmarks.runner import run


def test_exponent_fit_recovers_power_law():
    sizes = np.array([100, 300, 1000, 3000])
    slope, se = fit_exponent(sizes, 2e-4 * sizes**1.5)
    assert slope == pytest.approx(1.5, abs=1e-9) and se == pytest.approx(0.0, abs=1e-9)
    assert fit_exponent(sizes, 0.3 * sizes)[0] == pytest.approx(1.0, abs=1e-9)
    assert fit_exponent(sizes[:2], sizes[:2])[1] is None  # two points: no error bar


def test_exponent_error_by_hand():
    # log sizes 0, 1, 2; log costs 0, 1, 3: slope 1.5, intercept -1/6, residuals 1/6, -1/3,
    # 1/6 (sum of squares 1/6), Sxx = 2, one degree of freedom: se = sqrt(1/6 / 1 / 2)
    slope, se = fit_exponent(np.exp([0, 1, 2]), np.exp([0, 1, 3]))
    assert slope == pytest.approx(1.5)
    assert se == pytest.approx(np.sqrt(1 / 12))


def test_error_bars_by_hand():
    assert standard_error([1.0, 2.0, 3.0]) == pytest.approx(1 / np.sqrt(3))
    assert standard_error([4.2]) is None
    # 10 ± 0.3 over 2 ± 0.04: relative errors 3 % and 2 % add in quadrature
    ratio, se = ratio_with_error(10.0, 0.3, 2.0, 0.04)
    assert ratio == 5.0 and se == pytest.approx(5 * np.hypot(0.03, 0.02))
    assert ratio_with_error(10.0, None, 2.0, 0.04) == (5.0, None)
    assert ratio_with_error(10.0, 0.3, 2.0, None) == pytest.approx((5.0, 0.15))  # exact b
    row = Row("2", "speed-up", 2.8412, "× faster", (">=", 5.0), uncertainty=0.0532)
    assert row.measured_text() == "2.841 ± 0.053 × faster"
    assert Row("3", "exponent", 1.18, uncertainty=0.21).measured_text() == "1.18 ± 0.21"


def test_memory_estimate_linear_above_the_loaded_model():
    # CHGNet's measured peaks: 1790 MB at 300 atoms, 5016 MB at 1000, 387 MB after loading;
    # (5016 - 1790) / 700 MB per atom above the model, from 1000 to 3000 atoms
    cases = [
        {"atoms": 100, "peak_rss_mb": 875.0, "rss_after_load_mb": 387.0},
        {"atoms": 1000, "peak_rss_mb": 5016.0, "rss_after_load_mb": 387.0},
        {"atoms": 300, "peak_rss_mb": 1790.0, "rss_after_load_mb": 387.0},
    ]
    assert memory_estimate_mb(cases, 3000) == pytest.approx(5016 + 3226 / 700 * 2000)
    assert memory_estimate_mb(cases[:1], 200) == pytest.approx(387 + 2 * 488)


def test_trained_model_of_a_demo_workdir(tmp_path):
    (tmp_path / "report").mkdir()
    models = tmp_path / "models"
    models.mkdir()
    first, final = "ab" * 32, "cd" * 32
    for sha in (first, final):
        (models / f"{sha[:16]}-ctaflow_mace.model").write_bytes(b"x")
    report = {
        "mlff": [{"model_sha256": first}],
        "active_learning": [{"model_sha256": first}, {"model_sha256": final}],
    }
    (tmp_path / "report" / "report.json").write_text(json.dumps(report))
    assert trained_model(tmp_path) == models / f"{final[:16]}-ctaflow_mace.model"
    del report["active_learning"]  # no active learning: the mlff stage's model
    (tmp_path / "report" / "report.json").write_text(json.dumps(report))
    assert trained_model(tmp_path) == models / f"{first[:16]}-ctaflow_mace.model"
    (models / f"{first[:16]}-ctaflow_mace.model").unlink()
    assert trained_model(tmp_path) is None  # checksum named, file gone
    assert trained_model(tmp_path / "nowhere") is None


def test_row_goal_verdicts():
    assert Row("1", "overhead", 1.03, "×", ("<=", 1.05)).ok is True
    assert Row("1", "overhead", 1.20, "×", ("<=", 1.05)).ok is False
    assert Row("2", "speed-up", 4.9, "× faster", (">=", 5.0)).ok is False
    assert Row("5", "largest document", 7.9, "MB", ("<", 16.0)).ok is True
    assert Row("3", "exponent", 1.1).ok is None
    assert Row("6", "stages", None, details="pass --demo-workdir").ok is None
    assert [fmt(x) for x in (1.0349, 0.42134, 12.34, 1234.5, 0.0012345)] == [
        "1.03",
        "0.421",
        "12.3",
        "1234",
        "0.00123",
    ]


def test_runner_writes_table_and_json(tmp_path):
    def passing():
        return [Row("1", "overhead", 1.02, "×", ("<=", 1.05), "plain 0.4 s/step", {"steps": 20})]

    def missing():
        return [Row("2", "speed-up, 100 atoms", 3.0, "× faster", (">=", 5.0))]

    def broken():
        raise RuntimeError("worker died")

    def not_given():
        return [Row("6", "demo stages", None, details="pass --demo-workdir")]

    todo = [
        ("1", "overhead", passing),
        ("2", "speed-up", missing),
        ("4", "stand-in", broken),
        ("6", "demo", not_given),
    ]
    rows, info, ok = run(todo, {"mode": "quick"}, tmp_path)

    assert not ok  # one measurement raised
    assert [r.section for r in rows] == ["1", "2", "4", "6"]
    text = (tmp_path / "RESULTS.md").read_text()
    assert "| # | measurement | goal | measured | meets goal | details |" in text
    assert "| 1 | overhead | ≤ 1.05 × | 1.02 × | yes | plain 0.4 s/step |" in text
    assert "| 2 | speed-up, 100 atoms | ≥ 5 × faster | 3.00 × faster | **no** |" in text
    assert "stand-in: measurement failed" in text and "RuntimeError: worker died" in text
    assert "not measured (pass --demo-workdir)" in text
    assert "(quick mode)" in text and info["python"] in text

    data = json.loads((tmp_path / "results.json").read_text())
    assert [r["ok"] for r in data["rows"]] == [True, False, None, None]
    assert data["rows"][0]["data"]["steps"] == 20
    assert data["rows"][0]["goal"] == {"op": "<=", "value": 1.05}
    machine = data["machine"]
    assert machine["mode"] == "quick"
    for key in ("cpu", "cores", "ram_gb", "python", "date_utc"):
        assert machine[key]
    assert {"torch", "chgnet", "mace-torch"} <= set(machine["versions"])


def test_demo_log_intervals_pair_restarts_and_indices():
    log = "\n".join(
        [
            "2026-11-28 21:19:56,449 jobflow.core.job INFO Starting job - relax "
            "(11876e10-eb9b-530d-ab25-be358e7bdcd3)",
            "2026-11-28 21:19:57,000 py.warnings WARNING something else",
            "2026-11-28 21:20:00,000 jobflow.core.job INFO Starting job - relax "
            "(11876e10-eb9b-530d-ab25-be358e7bdcd3)",  # resumed after an interruption
            "2026-11-28 21:20:02,500 jobflow.core.job INFO Finished job - relax "
            "(11876e10-eb9b-530d-ab25-be358e7bdcd3)",
            "2026-11-28 21:20:03,000 jobflow.core.job INFO Starting job - store inputs "
            "(ca240666-f8c8-55cc-9ff6-4c8f51cd0af6, 2)",
            "2026-11-28 21:20:04,000 jobflow.core.job INFO Finished job - store inputs "
            "(ca240666-f8c8-55cc-9ff6-4c8f51cd0af6, 2)",
            "2026-11-28 21:20:05,000 jobflow.core.job INFO Starting job - md "
            "(6a3ae846-feec-4764-ba07-3e03ee53eb47)",  # never finished
        ]
    )
    jobs = job_intervals(log)
    assert [(j["name"], j["index"]) for j in jobs] == [("relax", 1), ("store inputs", 2)]
    assert [(j["end"] - j["start"]).total_seconds() for j in jobs] == [2.5, 1.0]


def test_overhead_pair_follows_one_trajectory():
    """Row 1 compares the same work: plain ASE, seeded as ctaflow's MD job is seeded, ends on the
    job's final positions (a Lennard-Jones calculator: no model to load)."""
    from benchmarks.md_cost import _in_subprocess

    case = {"atoms": 100, "steps": 20, "calculator": "lj", "pairs": 2}
    out = _in_subprocess(["--overhead", json.dumps(case)], timeout=600)

    assert len(out["runs"]) == 2
    assert out["final_position_difference_a"] < 1e-9
    # the mean extra time is the mean of the pairs' differences
    diffs = [r["ctaflow_s"] - r["plain_s"] for r in out["runs"]]
    assert out["extra_s"] == pytest.approx(np.mean(diffs))
    assert out["extra_s_se"] == pytest.approx(np.std(diffs, ddof=1) / np.sqrt(2))
