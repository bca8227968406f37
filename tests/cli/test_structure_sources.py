"""New structure sources through the command line: validate, run and report, and their errors
(one message, exit status 1, nothing written)."""

from __future__ import annotations

import json
import socket
import subprocess

import pytest

from tests.conftest import CTAFLOW, subprocess_env
from tests.structures.mp_recording import FAKE_KEY, serve

MP_CAMPAIGN = """\
name: nacl-mp
structure: {source: mp, material_id: mp-22862}
stages:
  relax: {enabled: false}
"""


def ctaflow(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([CTAFLOW, *args], capture_output=True, text=True, env=env, timeout=900)


def mp_env(endpoint: str, key: str | None = FAKE_KEY) -> dict[str, str]:
    env = subprocess_env()
    env.pop("MP_API_KEY", None)
    env["MP_API_ENDPOINT"] = endpoint
    if key is not None:
        env["MP_API_KEY"] = key
    return env


@pytest.mark.slow
def test_mp_campaign_validates_runs_and_reports_its_provenance(tmp_path):
    pytest.importorskip("mp_api.client")
    campaign = tmp_path / "c.yaml"
    campaign.write_text(MP_CAMPAIGN)
    work = tmp_path / "w"
    with serve() as (endpoint, seen):
        env = mp_env(endpoint)
        checked = ctaflow("validate", str(campaign), env=env)
        ran = ctaflow("run", str(campaign), "-w", str(work), env=env)
    assert checked.returncode == 0, checked.stderr
    for line in (
        "  formula: NaCl",
        "  n_atoms: 2",
        "  source: materials project",
        "  material_id: mp-22862",
        "  database_version: constructed-fixture",
        f"  endpoint: {endpoint}",
        "  experimental_structure: false",
        "  dft_relaxed: true",
    ):
        assert line in checked.stdout.splitlines()
    assert ran.returncode == 0, ran.stderr
    assert "1 jobs run" in ran.stdout
    # each load asked the recorded server for exactly this id
    queries = [q for q in seen if q.startswith("/materials/summary/")]
    assert len(queries) == 2 and all("material_ids=mp-22862" in q for q in queries)
    reported = ctaflow("report", "-w", str(work), env=env)
    assert reported.returncode == 0, reported.stderr
    markdown = (work / "report" / "report.md").read_text()
    assert (
        "- NaCl (Fm-3m (225), 2 atoms): **DFT-relaxed Materials Project structure (not "
        "necessarily the experimental structure)**. Materials Project mp-22862 (NaCl, Fm-3m "
        "(225)), database version constructed-fixture: the final structure of the Materials "
        "Project's DFT relaxation, not necessarily the experimental structure" in markdown
    )
    report = json.loads((work / "report" / "report.json").read_text())
    (prov,) = report["provenance"]
    assert prov["structure_provenance"]["material_id"] == "mp-22862"
    assert prov["structure_provenance"]["database_version"] == "constructed-fixture"
    (row,) = report["structures"]
    assert (row["source"], row["experimental_structure"]) == ("materials project", False)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (
            None,
            "structure source 'mp' needs a Materials Project API key in the environment "
            "variable MP_API_KEY, which is not set",
        ),
        (
            FAKE_KEY,
            "could not reach the Materials Project API at http://127.0.0.1:{port}/ to fetch "
            "mp-22862 (ConnectionError); this source needs network access",
        ),
    ],
)
def test_mp_errors_are_one_message_and_write_nothing(tmp_path, key, message):
    pytest.importorskip("mp_api.client")
    campaign = tmp_path / "c.yaml"
    campaign.write_text(MP_CAMPAIGN)
    port = closed_port()  # nothing listens there: like a machine without network
    proc = ctaflow(
        "run",
        str(campaign),
        "-w",
        str(tmp_path / "w"),
        env=mp_env(f"http://127.0.0.1:{port}/", key),
    )
    assert proc.returncode == 1
    assert message.format(port=port) in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (tmp_path / "w").exists()


SEARCH_CAMPAIGN = """\
name: nacl-search
structure:
  source: search
  composition: NaCl
  space_groups: [221, 225]
  formula_units: [1, 4]
  n_candidates: 3
  steps: 40
  coordination: [{centre: Na, ligand: Cl, n: 6, cutoff_a: 3.2}]
stages:
  relax: {enabled: false}
"""


@pytest.mark.slow
def test_search_campaign_runs_and_reports_the_generated_structure(tmp_path):
    campaign = tmp_path / "c.yaml"
    campaign.write_text(SEARCH_CAMPAIGN)
    work = tmp_path / "w"
    env = subprocess_env()
    ran = ctaflow("run", str(campaign), "-w", str(work), env=env)
    assert ran.returncode == 0, ran.stderr
    assert "1 jobs run" in ran.stdout
    reported = ctaflow("report", "-w", str(work), env=env)
    assert reported.returncode == 0, reported.stderr
    markdown = (work / "report" / "report.md").read_text()
    assert (
        "- NaCl (Fm-3m (225), 8 atoms): **generated model, not the experimental structure**. "
        "best-ranked of 3 NaCl candidates from ctaflow's structure search: pyxtal random "
        "crystals in space groups [221, 225] with Z in [1, 4] (seed 0)" in markdown
    )
    report = json.loads((work / "report" / "report.json").read_text())
    (prov,) = report["provenance"]
    structure_prov = prov["structure_provenance"]
    assert structure_prov["generated"] is True
    assert structure_prov["campaign_source"]["n_candidates"] == 3
    assert len(structure_prov["ranking"]) == 3
    (row,) = report["structures"]
    assert (row["source"], row["experimental_structure"]) == ("ctaflow structure search", False)


def test_a_failing_search_is_one_message_and_writes_nothing(tmp_path):
    campaign = tmp_path / "c.yaml"
    campaign.write_text(SEARCH_CAMPAIGN.replace("composition: NaCl", "composition: NaCl2"))
    proc = ctaflow("run", str(campaign), "-w", str(tmp_path / "w"), env=subprocess_env())
    assert proc.returncode == 1
    assert (
        "error: composition NaCl2 is not charge balanced with common oxidation states; check "
        "the formula" in proc.stderr
    )
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (tmp_path / "w").exists()
