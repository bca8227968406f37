"""The result commands on small stores built in the test: query keeps lists and verdicts,
status shows stages in pipeline order with times, verdicts and interrupted jobs, export writes
readable files with a manifest, compare puts two sides next to each other, --version."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from jobflow import Flow
from pymatgen.core import Structure
from typer.testing import CliRunner

import ctaflow
from ctaflow.analysis.md import MDResult
from ctaflow.cli import app
from ctaflow.jobs import result_job
from tests.builders.conftest import mlff_stage, relax_stage, run
from tests.makers.test_transport_stage import walk_md

runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_console():
    """Tables as on a 200-column terminal (the test runner's output is not a terminal)."""
    from ctaflow.cli.common import out

    out.width = 200
    yield
    out._width = None


def invoke(*args: str) -> str:
    result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def put_derived(workdir, name: str, docs: list[dict]) -> None:
    """Derived documents written as a builder would (only the fields the tests read)."""
    from ctaflow.store import derived_store, job_store

    job_store(None, workdir).connect()  # the work directory's store exists
    store = derived_store(None, workdir, name)
    store.connect()
    base = {"state": "successful", "campaign": "demo", "campaign_fingerprint": "fp"}
    store.update([{**base, **doc} for doc in docs], key="derived_id")


BARRIERS = [
    {
        "derived_id": "b1",
        "engine": "mlip:A",
        "species": "Na",
        "mechanism": "vacancy",
        "hop_label": 0,
        "forward_barrier_ev": 0.30,
        "status": "valid",
        "reasons": [],
        "notes": [],
    },
    {
        "derived_id": "b2",
        "engine": "mlip:A",
        "species": "Na",
        "mechanism": "concerted",
        "hop_label": 0,
        "forward_barrier_ev": None,
        "status": "excluded",
        "reasons": ["the end point is not a minimum", "no saddle inside"],
        "notes": ["an image lies 0.08 eV below the end points"],
    },
]


# --------------------------------------------------------------------------- query
def test_query_derived_keeps_notes_reasons_and_status(workdir):
    put_derived(workdir, "barriers", BARRIERS)
    rows = json.loads(invoke("query", "-w", workdir, "--derived", "barriers", "--format", "json"))
    excluded = next(r for r in rows if r["mechanism"] == "concerted")
    assert excluded["status"] == "excluded"
    assert excluded["reasons"] == ["the end point is not a minimum", "no saddle inside"]
    assert excluded["notes"] == ["an image lies 0.08 eV below the end points"]
    assert list(excluded)[:2] == ["status", "reasons"]  # the verdict first
    assert "builder" not in excluded and "state" not in excluded  # bookkeeping left out
    text = invoke("query", "-w", workdir, "--derived", "barriers", "--format", "csv")
    table = list(csv.DictReader(io.StringIO(text)))
    assert table[1]["reasons"] == "the end point is not a minimum; no saddle inside"
    assert table[1]["forward_barrier_ev"] == ""  # missing, not 0
    chosen = json.loads(
        invoke(
            "query", "-w", workdir, "--derived", "barriers", "--format", "json",
            "--fields", "mechanism,forward_barrier_ev,status",
        )
    )  # fmt: skip
    assert chosen == [
        {"mechanism": "vacancy", "forward_barrier_ev": 0.30, "status": "valid"},
        {"mechanism": "concerted", "forward_barrier_ev": None, "status": "excluded"},
    ]


def test_query_stage_gives_one_row_per_result_not_the_task_documents(workdir):
    run(relax_stage(), workdir)
    from ctaflow.store import job_store

    jobs = job_store(None, workdir)
    jobs.connect()
    task = {"@class": "ForceFieldTaskDocument", "forcefield_name": "x", "nsites": 2}
    jobs.docs_store.update(
        {"uuid": "t1", "index": 1, "name": "relax", "metadata": {"stage": "relax"}, "output": task},
        key=["uuid", "index"],
    )
    summary = jobs.query_one({"metadata.stage": "relax", "output.@class": "RelaxResult"})
    rattled = {**summary, "uuid": "r1", "name": "rattled copy"}
    rattled["output"] = {**summary["output"], "minimum_trial": True}  # not a stage result
    rattled.pop("_id", None)
    jobs.docs_store.update(rattled, key=["uuid", "index"])
    rows = json.loads(invoke("query", "-w", workdir, "--stage", "relax", "--format", "json"))
    (row,) = rows
    assert row["name"] == "relax summary" and row["energy_ev"] == -7.0
    assert row["lattice_abc_a"] == pytest.approx([4.2, 4.2, 4.2])  # a list of numbers, kept
    everything = invoke(
        "query", "-w", workdir, "--stage", "relax", "--all-outputs", "--format", "json"
    )
    assert len(json.loads(everything)) == 3
    nested = invoke(
        "query", "-w", workdir, "--stage", "relax", "--format", "json",
        "--fields", "formula,structure.lattice.a,metadata.settings_hash",
    )  # fmt: skip
    assert json.loads(nested) == [
        {"formula": "NaCl", "structure.lattice.a": 4.2, "metadata.settings_hash": "relax-1"}
    ]


def test_version():
    assert invoke("--version").strip() == f"ctaflow {ctaflow.__version__}"


# --------------------------------------------------------------------------- status
def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_status_in_pipeline_order_with_times_verdicts_and_interrupted_jobs(stores, workdir):
    from ctaflow.run_status import read_statuses

    jobs, states = stores
    (workdir / ".ctaflow.lock").write_text(str(os.getpid()))  # the runner: alive
    dead = _dead_pid()

    def state(uuid, stage, value, start, end, pid=None, cpu_s=None):
        return {
            "cpu_s": cpu_s,
            "uuid": uuid,
            "index": 1,
            "name": uuid,
            "stage": stage,
            "state": value,
            "pid": pid or os.getpid(),
            "started_at": f"2026-01-01T10:{start}:00+00:00",
            "updated_at": f"2026-01-01T10:{end}:00+00:00",
        }

    states.update(
        [  # written out of order on purpose: the table follows the pipeline
            state("n1", "neb", "COMPLETED", "20", "25", cpu_s=250.0),
            state("n2", "neb", "COMPLETED", "21", "29", cpu_s=420.5),
            state("n3", "neb", "RUNNING", "28", "28", pid=dead),  # its worker is gone
            state("r1", "relax", "COMPLETED", "00", "03"),
            state("s1", "structure", "COMPLETED", "00", "00"),
            state("a1", "amorphous", "RUNNING", "30", "30"),  # this process: running
        ],
        key=["uuid", "index"],
    )
    bands = [("n1", "valid"), ("n2", "excluded")]
    jobs.docs_store.update(
        [
            {
                "uuid": u,
                "index": 1,
                "metadata": {"stage": "neb"},
                "output": {"@class": "BarrierResult", "status": s},
            }
            for u, s in bands
        ]
        + [  # a result without a status of its own: the statuses of its samples
            {
                "uuid": "a2",
                "index": 1,
                "metadata": {"stage": "amorphous"},
                "output": {
                    "@class": "AmorphousCompositionResult",
                    "samples": [{"status": "ok"}, {"status": "unstable"}],
                },
            }
        ],
        key=["uuid", "index"],
    )
    lines = read_statuses(workdir)
    assert [line.stage for line in lines] == ["structure", "relax", "amorphous", "neb"]
    neb = lines[-1]
    assert dict(neb.jobs) == {"COMPLETED": 2, "INTERRUPTED": 1}
    assert neb.took_s == 9 * 60  # first start 10:20, last end 10:29
    assert neb.cpu_s == 670.5 and lines[1].cpu_s is None  # two jobs' CPU; relax: none recorded
    assert neb.results_text() == "2 results: 1 valid, 0 flagged, 1 excluded"
    assert dict(lines[2].jobs) == {"RUNNING": 1}
    assert lines[2].results_text() == "1 result; samples: 1 unstable, 1 valid"
    text = invoke("status", "-w", workdir)
    assert text.index("structure") < text.index("relax") < text.index("neb")
    assert "9 min 00 s" in text and "11 min 10 s" in text and "INTERRUPTED" in text

    (workdir / ".ctaflow.lock").write_text(str(dead))  # the runner died: nothing runs
    lines = read_statuses(workdir)
    assert dict(lines[2].jobs) == {"INTERRUPTED": 1}


# --------------------------------------------------------------------------- export
@result_job(MDResult)
def md_segment() -> MDResult:
    return walk_md(1e-5, n_frames=12, seed=3)


def test_export_structures_trajectories_and_models(workdir, tmp_path):
    segment = md_segment()
    segment.name = "production"
    flow = Flow([segment])
    flow.update_metadata({"campaign": "demo", "stage": "md", "composition": "Li2O"})
    run(flow, workdir)
    run(relax_stage(), workdir)
    run(mlff_stage(), workdir)

    out = tmp_path / "structures"
    invoke("export", "-w", workdir, "--what", "structures", "--stage", "relax", "--out", out)
    (entry,) = json.loads((out / "manifest.json").read_text())["files"]
    assert entry["stage"] == "relax" and entry["source"] == "structure"
    relaxed = Structure.from_file(out / entry["file"])
    assert relaxed.lattice.abc == pytest.approx((4.2, 4.2, 4.2))  # the relax_summary's final cell
    assert (
        Structure.from_file(out / entry["details"]["poscar"]).composition.reduced_formula == "NaCl"
    )

    out = tmp_path / "trajectories"
    invoke("export", "-w", workdir, "--what", "trajectories", "--out", out)
    (entry,) = json.loads((out / "manifest.json").read_text())["files"]
    from ase.io import read

    frames = read(out / entry["file"], ":")
    expected = walk_md(1e-5, n_frames=12, seed=3)
    assert len(frames) == entry["details"]["n_frames"] == 12
    from ctaflow.analysis.chunks import join_chunks

    positions = join_chunks(expected.trajectory)["positions_a"]
    assert np.allclose(frames[-1].positions, positions[-1])
    assert frames[-1].get_chemical_formula() == "Li32O16"
    assert frames[5].info["time_fs"] == pytest.approx(50.0)

    out = tmp_path / "models"
    invoke("export", "-w", workdir, "--what", "models", "--out", out)
    (entry,) = json.loads((out / "manifest.json").read_text())["files"]
    data = bytes(range(256)) * 8  # the model file of mlff_stage
    sha = hashlib.sha256(data).hexdigest()
    assert entry["file"] == f"mace-demo-{sha[:8]}.model"
    assert (out / entry["file"]).read_bytes() == data
    assert entry["details"]["final"] is True and entry["details"]["name"] == f"MACE demo {sha[:8]}"


# --------------------------------------------------------------------------- compare
def test_compare_two_work_directories_side_by_side_with_status(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    put_derived(first, "barriers", BARRIERS)
    flagged = {**BARRIERS[0], "forward_barrier_ev": 0.25, "status": "flagged"}
    put_derived(second, "barriers", [{**flagged, "reasons": ["two maxima"]}])
    put_derived(
        second, "relax", [{"derived_id": "r", "formula": "NaCl", "energy_per_atom_ev": -3.5}]
    )
    rows = json.loads(invoke("compare", first, second, "--no-build", "--format", "json"))
    by = {(r["field"], r["what"]): r for r in rows}
    vacancy = by["forward_barrier_ev", "Na vacancy hop 0"]
    assert (vacancy["first"], vacancy["second"]) == (0.30, 0.25)
    assert (vacancy["first status"], vacancy["second status"]) == ("valid", "flagged")
    assert vacancy["second reasons"] == ["two maxima"]
    assert vacancy["difference"] == pytest.approx(-0.05)
    concerted = by["forward_barrier_ev", "Na concerted hop 0"]
    assert concerted["first status"] == "excluded" and concerted["first"] is None
    assert concerted["second found"] is False and concerted["difference"] is None
    relax = by["energy_per_atom_ev", "NaCl"]
    assert relax["first found"] is False and relax["second"] == -3.5
    table = invoke("compare", first, second, "--no-build")
    assert "0.25 ⚠ flagged" in table and "barrier forward (eV)" in table


def test_compare_two_engines_of_one_store(workdir):
    other = {**BARRIERS[0], "derived_id": "b3", "engine": "mlip:B", "forward_barrier_ev": 0.4}
    put_derived(workdir, "barriers", [BARRIERS[0], other])
    rows = json.loads(
        invoke(
            "compare", workdir, "--engine", "mlip:A", "--engine", "mlip:B", "--no-build",
            "--format", "json",
        )
    )  # fmt: skip
    (row,) = rows
    assert (row["mlip:A"], row["mlip:B"]) == (0.30, 0.4)
    assert row["difference"] == pytest.approx(0.1)
