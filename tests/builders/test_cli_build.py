"""``ctaflow build``: every builder, a summary table, one-line errors."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from ctaflow.cli import app
from ctaflow.errors import CtaflowError
from ctaflow.query import open_derived
from tests.builders.conftest import ENGINE_B, derived_docs


def _table(text: str) -> dict[str, list[str]]:
    """Rows of the summary table: builder → tasks, groups, rebuilt, written, removed."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if cells and cells[0].startswith("derived_"):
            rows[cells[0]] = cells[1:6]
    return rows


def test_ctaflow_build_runs_every_builder_with_a_summary(filled):
    runner = CliRunner()
    first = runner.invoke(app, ["build", "--workdir", str(filled)])
    assert first.exit_code == 0, first.output
    # tasks, groups, rebuilt, written, removed
    assert _table(first.stdout) == {
        "derived_relax": ["1", "1", "1", "1", "0"],
        "derived_mlff": ["1", "1", "1", "2", "0"],
        "derived_transport": ["5", "2", "2", "6", "0"],
        "derived_formation_…": ["0", "0", "0", "0", "0"],  # no melt-quench in this store
        "derived_barriers": ["0", "0", "0", "0", "0"],  # no NEB in this store
        "derived_interfaces": ["0", "0", "0", "0", "0"],  # no interfaces either
    }
    assert len(derived_docs(filled, "transport")) == 6
    second = runner.invoke(app, ["build", "-w", str(filled), "--builder", "transport"])
    assert second.exit_code == 0
    assert _table(second.stdout) == {"derived_transport": ["5", "2", "0", "0", "0"]}


def test_ctaflow_build_errors_are_one_line(filled, tmp_path):
    runner = CliRunner()
    proc = runner.invoke(app, ["build", "-w", str(filled), "-b", "exchange"])
    assert proc.exit_code == 1
    assert (
        "unknown builder exchange; choose from relax, mlff, transport, formation_energies, "
        "barriers, interfaces" in proc.stderr
    )
    proc = runner.invoke(app, ["build", "-w", str(tmp_path / "nowhere")])
    assert proc.exit_code == 1 and "no ctaflow store" in proc.stderr
    assert not (tmp_path / "nowhere").exists()


def test_derived_collections_are_read_back_with_open_derived(filled):
    assert CliRunner().invoke(app, ["build", "-w", str(filled), "-b", "relax"]).exit_code == 0
    relax = open_derived(filled, "relax")
    assert relax.query_one({"formula": "NaCl"})["energy_per_atom_ev"] == pytest.approx(-3.5)
    assert open_derived(filled, "transport").count() == 0  # not built yet
    with pytest.raises(CtaflowError, match="no derived collection 'neb'"):
        open_derived(filled, "neb")


def test_ctaflow_query_reads_a_derived_collection(filled):
    import json

    runner = CliRunner()
    assert runner.invoke(app, ["build", "-w", str(filled)]).exit_code == 0
    args = ["query", "-w", str(filled), "--derived", "transport", "--engine", ENGINE_B]
    proc = runner.invoke(app, [*args, "--format", "json"])
    assert proc.exit_code == 0, proc.output
    rows = json.loads(proc.stdout)
    assert {r["engine"] for r in rows} == {ENGINE_B}
    docs = {d["derived_id"]: d for d in derived_docs(filled, "transport", engine=ENGINE_B)}
    assert len(rows) == len(docs) == 3
    for r in rows:  # scalar fields only; the per-temperature points stay in the document
        assert "points" not in r and "species" in r
        assert r.get("activation_energy_ev") == docs[r["derived_id"]]["activation_energy_ev"]
    proc = runner.invoke(app, ["query", "-w", str(filled), "--derived", "relax", "--stage", "x"])
    assert proc.exit_code == 1 and "--stage does not apply to --derived" in proc.stderr
