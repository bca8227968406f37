"""The command line end to end: validate, run, resume after kill, query from a new process,
status, report, and user errors without tracebacks or store writes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import CTAFLOW, REPO, subprocess_env

DEMO = REPO / "campaigns" / "demo.yaml"


def ctaflow(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [CTAFLOW, *args], capture_output=True, text=True, env=subprocess_env(), timeout=2400
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"ctaflow {args} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def _relax_result(workdir: Path) -> dict:
    rows = json.loads(
        ctaflow("query", "-w", str(workdir), "--stage", "relax", "--format", "json").stdout
    )
    (summary,) = [r for r in rows if r["name"] == "relax summary"]
    return summary


def test_validate_prints_effective_settings():
    proc = ctaflow("validate", str(DEMO))
    assert "fingerprint:" in proc.stdout
    assert "class: ForceFieldRelaxMaker" in proc.stdout
    assert "fmax: 0.02" in proc.stdout  # the campaign value reached the atomate2 maker
    assert "experimental_structure: false" in proc.stdout


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\nstages: {relax: {fmax: 1}}\n", "stages.relax.fmax: unknown key 'fmax'"),
        ("name: x\nengines: {labeller: {kind: abacus}}\n", "unknown kind 'abacus'"),
        ("name: x\nstructure: {source: file, path: gone.cif}\n", "gone.cif' does not exist"),
        (
            "name: x\nengines: {labeller: {kind: vasp}}\n",
            "VASP inputs need POTCAR files for Cl, Na_pv, O (PBE_54): PMG_VASP_PSP_DIR is not set",
        ),
    ],
)
def test_bad_campaign_is_one_message_and_writes_nothing(tmp_path, text, message):
    campaign = tmp_path / "bad.yaml"
    campaign.write_text(text)
    proc = ctaflow("run", str(campaign), "-w", str(tmp_path / "w"), check=False)
    assert proc.returncode == 1
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (tmp_path / "w").exists()


def test_bad_structure_is_rejected_before_the_store(tmp_path):
    (tmp_path / "bad.vasp").write_text(
        "x\n1.0\n5 0 0\n0 5 0\n0 0 5\nNa Cl\n1 2\ndirect\n0 0 0\n0.5 0.5 0.5\n0.51 0.5 0.5\n"
    )
    campaign = tmp_path / "c.yaml"
    campaign.write_text("name: x\nstructure: {source: file, path: bad.vasp}\n")
    proc = ctaflow("run", str(campaign), "-w", str(tmp_path / "w"), check=False)
    assert proc.returncode == 1
    assert "are 0.05 Å apart" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "w").exists()


def test_query_of_a_directory_without_store(tmp_path):
    proc = ctaflow("query", "-w", str(tmp_path / "none"), check=False)
    assert proc.returncode == 1 and "no ctaflow store" in proc.stderr


RELAX_ONLY = """\
name: small
structure: {source: demo}
engines:
  labeller: {kind: mlip}
stages:
  relax: {fmax_ev_per_a: 0.02}
"""


@pytest.mark.slow
def test_run_resumes_after_sigkill_and_is_queryable(tmp_path):
    campaign = tmp_path / "small.yaml"
    campaign.write_text(RELAX_ONLY)
    reference = tmp_path / "reference"
    ctaflow("run", str(campaign), "-w", str(reference))
    expected = _relax_result(reference)
    assert expected["converged"] is True
    assert expected["energy_ev"] < expected["initial_energy_ev"]

    # rerun in place: everything reused, nothing recomputed
    again = ctaflow("run", str(campaign), "-w", str(reference))
    # structure, relax, its summary and the minimum check (which replaced itself by its search)
    assert "0 jobs run, 4 reused" in again.stdout

    # kill a run while the relaxation is running, then resume
    killed = tmp_path / "killed"
    child = subprocess.Popen(
        [CTAFLOW, "run", str(campaign), "-w", str(killed)],
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while not _relax_started(killed):
        assert child.poll() is None and time.time() < deadline
        time.sleep(0.1)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    status = ctaflow("status", "-w", str(killed)).stdout
    assert "INTERRUPTED" in status  # the runner and its workers are gone
    resumed = ctaflow("run", str(campaign), "-w", str(killed))
    # what finished before the kill (it depends on when, with two workers) is reused
    assert re.search(r"[1-9]\d* jobs run, \d+ reused from the store, 0 failed", resumed.stdout)
    result = _relax_result(killed)
    assert result["energy_ev"] == pytest.approx(expected["energy_ev"], abs=1e-5)
    assert result["volume_a3"] == pytest.approx(expected["volume_a3"], rel=1e-6)
    csv_out = ctaflow("query", "-w", str(killed), "--format", "csv", "--stage", "structure").stdout
    assert csv_out.splitlines()[0].startswith("stage,name,composition")
    assert "Pm-3m (221)" in csv_out


@pytest.mark.slow
def test_demo_campaign_end_to_end_with_report(tmp_path):
    workdir = tmp_path / "demo"
    ctaflow("run", str(DEMO), "-w", str(workdir))
    ctaflow("report", "-w", str(workdir))
    report = json.loads((workdir / "report" / "report.json").read_text())
    relax = _relax_result(workdir)
    assert report["relaxations"][0]["energy_per_atom_ev"] == pytest.approx(
        relax["energy_per_atom_ev"], abs=1e-6
    )
    assert report["structures"][0]["experimental_structure"] is False
    assert report["provenance"][0]["software"]["atomate2"].startswith("0.1.")
    segments = {row["segment"] for row in report["md"]}
    assert segments == {
        "equilibrate",
        "cool to 500 K",
        "production 500 K",
        "cool to 600 K",
        "production 600 K",
    }
    assert all(row["n_atoms"] == 40 for row in report["md"])
    assert all(row["engine"].startswith("mace:") for row in report["md"])  # the trained model
    compositions = {row["composition"] for row in report["mlff"]}
    assert compositions == {"Na3ClO", "Na3Li3(ClO)2", "Li3ClO"}  # the Na->Li series
    assert all(row["labeller"] == "mlip:CHGNet-0.3.0" for row in report["mlff"])
    assert all(0 < row["rmse_force_mev_per_a"] < 1000 for row in report["mlff"])
    # one active-learning round (issue 6): explore, relabel what lies in the window, retrain
    first, second = report["active_learning"]
    assert (first["iteration"], second["iteration"]) == (0, 1)
    assert first["committee_size"] == 2 and first["labeller"] == "mlip:CHGNet-0.3.0"
    assert first["n_frames"] == second["n_frames"] == 18  # 3 compositions x 60 / 10 steps
    assert first["n_selected"] == min(10, first["n_candidate"])
    assert second["n_train"] == first["n_train"] + first["n_selected"]
    assert second["n_selected"] == 0
    assert second["final_md_check"].startswith(("stable over 100 steps", "unstable ("))
    assert second["stop_reason"] == "reached max_iterations = 1" or second[
        "stop_reason"
    ].startswith("converged")
    # later stages run on the model the loop ended with (its file is named by its checksum)
    final_model = f"mace:{second['model_sha256'][:16]}-ctaflow_mace.model"
    from ctaflow.query import store_settings_of
    from ctaflow.store import job_store

    store = job_store(store_settings_of(workdir), workdir, create=False)
    store.connect()
    used = {
        doc["output"]["engine"]["engine"]
        for doc in store.query(
            {"metadata.stage": {"$in": ["md", "amorphous"]}, "output.@class": "MDResult"},
            properties=["output.engine"],
        )
    }
    assert used == {final_model}
    transport = [row for row in report["transport"] if row["site_class"] is None]
    assert sorted(row["temperature_k"] for row in transport) == [500, 600]
    assert all(row["diffusivity_std_cm2_per_s"] > 0 for row in transport)
    assert transport[0]["activation_energy_ev"] is not None
    bands = {(row["species"], row["mechanism"]): row for row in report["barriers"]}
    assert set(bands) == {(s, m) for s in ("Na", "Li") for m in ("vacancy", "concerted")}
    assert all(
        row["engine"] == "mlip:CHGNet-0.3.0" and row["n_images"] == 3 for row in bands.values()
    )
    vacancy = bands["Na", "vacancy"]  # a symmetric hop between symmetry-equivalent end points
    # the same hop in the relaxed Li host is shorter (Li3OCl has the smaller cell)
    assert bands["Li", "vacancy"]["hop_length_a"] < vacancy["hop_length_a"] - 0.1
    assert vacancy["forward_barrier_ev"] == pytest.approx(vacancy["backward_barrier_ev"], abs=0.01)
    # interfaces (issue 10): crystalline Na3OCl(001) against Na and Li metal, universal MLIP
    interfaces = {(row["phase"], row["metal"]): row for row in report["interfaces"]}
    assert set(interfaces) == {("crystalline", "Na"), ("crystalline", "Li")}
    for row in interfaces.values():
        assert row["engine"] == "mlip:CHGNet-0.3.0" and row["n_interfaces"] == 2
        assert row["strain_pct"] <= 7.0
        assert row["gamma_j_per_m2"] < row["gamma_as_built_j_per_m2"]  # anneal + relax lowers it
    # amorphous (issue 8): 2 melt-quench samples + crystalline reference per composition, on
    # the trained MACE; whatever the checks decide, every sample is accounted for
    formation = report["formation_energies"]
    assert [row["li_fraction"] for row in formation] == [0.0, 0.5, 1.0]
    for row in formation:
        assert row["engine"].startswith("mace:") and row["n_atoms"] == 40
        assert row["n_requested"] == 2 and row["n_samples"] + row["n_failed"] == 2
        assert len(row["samples"]) == 2 and row["crystal_energy_per_atom_ev"] < 0
        if row["n_samples"]:
            assert row["delta_e_amorphous_minus_crystalline_mev_per_atom"] is not None
    page = (workdir / "report" / "index.html").read_text()
    # parity, active learning, MSD, Arrhenius, NEB, ΔE and interface γ embedded
    assert page.count("src='data:image/png;base64,") == 7
    assert {f["file"] for f in report["figures"]} == {
        "parity_0.png",
        "active_learning.png",
        "msd.png",
        "arrhenius.png",
        "neb.png",
        "delta_e.png",
        "interfaces.png",
    }
    ctaflow("build", "-w", str(workdir))  # derived collections agree with the report
    from ctaflow.query import open_derived

    derived = open_derived(workdir, "barriers")
    doc = derived.query_one({"species": "Na", "mechanism": "vacancy"})
    assert doc["forward_barrier_ev"] == pytest.approx(vacancy["forward_barrier_ev"], abs=1e-9)
    # sub-picosecond runs of a defect-free crystal: the report must say no hops were seen
    assert all(any("have not left their sites" in n for n in row["notes"]) for row in transport)


def _relax_started(workdir: Path) -> bool:
    from ctaflow.errors import StoreError
    from ctaflow.store import state_store

    if not (workdir / "store" / "monty.storage.cfg").exists():
        return False
    states = state_store(None, workdir)
    try:
        states.connect()
    except StoreError:  # the run has created the file but not yet its table
        return False
    return states.count({"stage": "relax", "state": "RUNNING"}) > 0
