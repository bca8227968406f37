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
