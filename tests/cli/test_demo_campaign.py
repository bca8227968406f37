"""The demo campaign end to end, shrunk: campaigns/demo.yaml with its run lengths, epochs and step
limits cut (SHRINK below) so that every stage runs in a few minutes on 2 cores. Its numbers are
not physics; what is checked is that every stage ran on the engine the campaign names, that every
result in the report either passes its checks or carries the reasons it does not, and that the
report, the derived collections and the query output agree. ``make demo`` runs the full campaign.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.cli.test_cli import ctaflow
from tests.conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("demo")]

#: per stage, the settings that make the demo small (everything else is campaigns/demo.yaml's)
SHRINK = {
    "relax": {"minimum": {"rattles": 1, "max_cycles": 1}},
    "training_data": {"md_ps": 0.06, "sample_every": 2},
    "mlff": {"max_num_epochs": 2, "sanity_md_steps": 20},
    "active_learning": {"explore_steps": 20, "max_selected": 6, "retrain_epochs": 1},
    "md": {
        "equilibrate_ps": 0.1,
        "equilibrate_extensions": 0,
        "cool_ps": 0.04,
        "production_ps": 0.2,
        "max_production_ps": 0.2,
        "temperatures_k": [900, 1100],
    },
    "transport": {"n_samples": 100, "n_walkers": 8},
    # the demo runs vacancy hops only; the concerted bands (flagged in this cell) are added
    # back here so that their checks run end to end
    "neb": {
        "max_steps": 30,
        "minimum": {"rattles": 1, "max_cycles": 1},
        "mechanisms": ["vacancy", "concerted"],
        "grow_cell_for_concerted": False,
    },
    "amorphous": {
        "melt_ps": 0.1,
        "hold_ps": 0.02,
        "quench_rate_k_per_ps": 54000,
        "max_steps": 50,
        "minimum": {"rattles": 1, "max_cycles": 1},
    },
    "interfaces": {"anneal_fs": 20, "max_steps": 30, "minimum": {"rattles": 1, "max_cycles": 1}},
}
STATUSES = {"valid", "flagged", "excluded", "used"}


@pytest.fixture(scope="session")  # session: other modules' tests may run between these
def demo(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("demo")
    campaign = yaml.safe_load((REPO / "campaigns" / "demo.yaml").read_text())
    for stage, settings in SHRINK.items():
        assert stage in campaign["stages"], f"the demo campaign has no {stage} stage"
        campaign["stages"][stage].update(settings)
    (root / "demo.yaml").write_text(yaml.safe_dump(campaign, sort_keys=False))
    workdir = root / "run"
    ctaflow("run", str(root / "demo.yaml"), "-w", str(workdir))
    ctaflow("build", "-w", str(workdir))
    ctaflow("report", "-w", str(workdir))
    return workdir, json.loads((workdir / "report" / "report.json").read_text())


def _passes_or_says_why(rows: list[dict], passing: set[str]) -> None:
    for row in rows:
        assert row["status"] in STATUSES, row
        if row["status"] not in passing:
            assert row["reasons"], row


def test_every_stage_ran_on_the_engine_the_campaign_names(demo):
    _, report = demo
    assert report["structures"][0]["experimental_structure"] is False
    assert report["provenance"][0]["software"]["atomate2"].startswith("0.1.")
    (relax,) = report["relaxations"]
    assert relax["engine"] == "mlip:CHGNet-0.3.0" and relax["energy_per_atom_ev"] < 0
    # the trained model: a row per composition of the series and the defective md cell, each
    # on >= 10 test frames (the split keeps them), labelled by CHGNet
    mlff = report["mlff"]
    assert {"Na3ClO", "Li3ClO"} <= {row["composition"] for row in mlff}
    assert all(row["n_test_frames"] >= 10 for row in mlff)
    assert all(row["labeller"] == "mlip:CHGNet-0.3.0" for row in mlff)
    # one active-learning round: explore every condition of use, relabel, retrain
    first, second = report["active_learning"]
    assert (first["iteration"], second["iteration"]) == (0, 1)
    assert first["n_selected"] <= SHRINK["active_learning"]["max_selected"]
    assert second["n_train"] == first["n_train"] + first["n_selected"]
    # md runs on the model the loop ended with; the melt-quench on the universal MLIP
    final = second["model_name"]
    assert {row["engine_name"] for row in report["md"]} == {final}
    # ... with its committee: every transport point carries the σ_F of its production MD
    points = [row for row in report["transport"] if "status" in row]
    assert points and all(row["deviation_max_ev_per_a"] > 0 for row in points)
    assert {row["engine"] for row in report["formation_energies"]} == {"mlip:CHGNet-0.3.0"}
    # barriers with the universal MLIP: Na and Li, vacancy and concerted, in the 2x2x2 cell
    bands = {(row["species"], row["mechanism"]) for row in report["barriers"]}
    assert bands == {(s, m) for s in ("Na", "Li") for m in ("vacancy", "concerted")}
    assert all(row["n_atoms"] == 39 for row in report["barriers"])
    # interfaces: crystal and, when a glass of the campaign's own composition passed its checks
    # (rare after a 0.1 ps melt), glass against Na and Li; without one those jobs are stopped
    glass = next(r for r in report["formation_energies"] if r["li_fraction"] == 0)["n_samples"]
    phases = ("crystalline", "amorphous") if glass else ("crystalline",)
    faces = {(row["phase"], row["metal"]) for row in report["interfaces"]}
    assert faces == {(p, m) for p in phases for m in ("Na", "Li")}


def test_every_result_passes_its_checks_or_says_why(demo):
    _, report = demo
    _passes_or_says_why(report["barriers"], {"valid"})
    _passes_or_says_why(report["formation_energies"], {"valid"})
    _passes_or_says_why(report["transport"], {"used", "valid"})
    _passes_or_says_why(report["interfaces"], {"valid"})
    for row in report["interfaces"]:  # γ with its uncertainty from the annealed bulk reference
        assert row["gamma_uncertainty_j_per_m2"] >= 0
    # the concerted chain is longer than half the 2x2x2 cell: flagged (or excluded) with the
    # width it needs, never a plain number
    for row in report["barriers"]:
        if row["mechanism"] == "concerted":
            assert row["status"] != "valid"
            assert any("at least" in r and "wide" in r for r in _reasons(row))
    for row in report["formation_energies"]:
        assert row["n_requested"] == 3 and row["n_samples"] + row["n_failed"] == 3
        if row["n_samples"] == 0:
            assert row["delta_e_amorphous_minus_crystalline_mev_per_atom"] is None
    # sub-picosecond runs: no temperature passes the regime checks, so no activation energy
    assert all(row["status"] == "excluded" for row in report["transport"] if "status" in row)


def _reasons(row: dict) -> list[str]:
    reasons = row["reasons"]
    return reasons.split("; ") if isinstance(reasons, str) else list(reasons)


def test_the_report_the_derived_collections_and_the_query_agree(demo):
    workdir, report = demo
    page = (workdir / "report" / "index.html").read_text()
    assert page.count("src='data:image/png;base64,") == len(report["figures"]) >= 5
    rows = json.loads(
        ctaflow("query", "-w", str(workdir), "--derived", "barriers", "--format", "json").stdout
    )
    by_band = {(r["species"], r["mechanism"]): r for r in rows}
    for row in report["barriers"]:
        stored = by_band[row["species"], row["mechanism"]]
        assert stored["status"] == row["status"]
        assert stored["forward_barrier_ev"] == row["forward_barrier_ev"]
        assert _reasons(stored) == _reasons(row)
