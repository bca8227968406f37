"""README.md's "Your own material, end to end", run as a reader would run it.

The blocks marked ``<!-- walkthrough:... -->`` in README.md are taken as they stand: the campaign
files are written from them, every command line is run through the ``ctaflow`` console script in
a fresh folder, and the outcomes are checked against facts the test knows independently (the
structure it wrote, the symmetry of the hop, the fields it asked for, the files the manifest
names). A README whose walkthrough disappears, or no longer runs, fails here.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml
from pymatgen.core import Lattice, Structure
from pymatgen.io.cif import CifWriter

from tests.conftest import CTAFLOW, REPO, subprocess_env

README = REPO / "README.md"
BLOCK = re.compile(
    r"<!-- walkthrough:(?P<kind>\w+)(?: (?P<name>\S+))? -->\n```\w+\n(?P<body>.*?)```", re.S
)
SUBCOMMANDS = {
    "validate",
    "run",
    "status",
    "build",
    "report",
    "query",
    "export",
    "compare",
    "verify",
}

# Rock-salt NaCl: Fm-3m (No. 225), Na on 4a (0, 0, 0), Cl on 4b (1/2, 1/2, 1/2). Lattice
# parameter as recorded in the Crystallography Open Database, entry 1000041 (S. C. Abrahams and
# J. L. Bernstein, Acta Cryst. 18, 926-932 (1965), doi:10.1107/S0365110X65002244): a = 5.62 Å.
NACL_A = 5.62


def nacl() -> Structure:
    """The 8-atom conventional cell of rock-salt NaCl (see NACL_A)."""
    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(NACL_A), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )


def walkthrough() -> list[tuple[str, str | None, str]]:
    """The marked blocks of README.md, in order: (kind, name, body)."""
    blocks = [(m["kind"], m["name"], m["body"]) for m in BLOCK.finditer(README.read_text())]
    kinds = {(kind, name) for kind, name, _ in blocks}
    assert ("file", "mine.yaml") in kinds, "README.md lost its walkthrough campaign block"
    assert ("commands", None) in kinds, "README.md lost its walkthrough commands"
    assert ("python", None) in kinds, "README.md lost the walkthrough's structure snippet"
    return blocks


def command_lines(blocks) -> list[str]:
    """Every command of the commands blocks, comments dropped."""
    lines = []
    for kind, _, body in blocks:
        if kind != "commands":
            continue
        for line in body.splitlines():
            line = line.split("  #")[0].strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def run_line(line: str, cwd: Path) -> subprocess.CompletedProcess:
    """One README command line through the ctaflow console script (no shell involved)."""
    program, *args = shlex.split(line)
    assert program == "ctaflow", f"README walkthrough line is not a ctaflow command: {line}"
    env = {**subprocess_env(), "COLUMNS": "200"}  # tables as on a wide terminal
    proc = subprocess.run(
        [CTAFLOW, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=1200
    )
    assert proc.returncode == 0, f"{line}\n{proc.stdout}\n{proc.stderr}"
    return proc


def the(outputs: dict[str, str], subcommand: str, *words: str) -> str:
    """Output of the one ``ctaflow subcommand`` line whose arguments contain all ``words``."""
    (found,) = [
        out
        for line, out in outputs.items()
        if shlex.split(line)[1] == subcommand and all(w in line for w in words)
    ]
    return found


def test_the_walkthrough_snippet_writes_the_documented_structure(tmp_path):
    """The README's pymatgen snippet gives the structure this test writes (space group, cell)."""
    (snippet,) = [body for kind, _, body in walkthrough() if kind == "python"]
    exec(compile(snippet, "README.md walkthrough", "exec"), {})  # writes my.cif here (tmp_path)
    written = Structure.from_file(tmp_path / "my.cif")
    ours = nacl()
    assert written.composition == ours.composition
    assert written.lattice.abc == pytest.approx(ours.lattice.abc, abs=1e-6)
    assert written.get_space_group_info()[1] == 225


@pytest.mark.slow
def test_readme_walkthrough_runs_from_a_cif(tmp_path):
    blocks = walkthrough()
    structure = nacl()
    CifWriter(structure).write_file(tmp_path / "my.cif")
    for kind, name, body in blocks:
        if kind == "file":
            (tmp_path / name).write_text(body)
    lines = command_lines(blocks)
    assert {shlex.split(line)[1] for line in lines} >= SUBCOMMANDS

    outputs = {}
    for line in lines:
        outputs[line] = run_line(line, tmp_path).stdout
    workdir = tmp_path / "my-run"

    # validate: the file's structure, and the NEB supercell its settings ask for: faces at least
    # 8 Å apart from an a = 5.62 Å cubic cell means 2 x 2 x 2 conventional cells, 64 atoms
    validated = yaml.safe_load(the(outputs, "validate").rsplit("valid:", 1)[0])
    assert validated["structure"]["n_atoms"] == len(structure) == 8
    assert validated["structure"]["label"] == "user-supplied structure file"
    neb_cells = validated["resources"]["stages"]["neb"]["cells"]
    assert neb_cells["neb supercell"]["n_atoms"] == 64
    assert ", 0 failed" in the(outputs, "run", "mine.yaml")

    # status: the stages of the campaign, in pipeline order, the NEB with one verdict
    status = the(outputs, "status")
    rows = [line for line in status.splitlines() if line.startswith("│")]
    assert [r.split("│")[1].strip() for r in rows] == ["structure", "relax", "neb"]
    assert "1 result: 1 valid" in rows[2]

    # query --fields: exactly the columns asked for, in that order
    relax_line = next(line for line in outputs if "--stage relax" in line)
    fields = shlex.split(relax_line)[shlex.split(relax_line).index("--fields") + 1].split(",")
    table = list(csv.DictReader(io.StringIO(outputs[relax_line])))
    assert table and all(list(row) == fields for row in table)
    for row in table:
        assert row["formula"] == "NaCl" and row["converged"] == "True"
        assert float(row["energy_ev"]) < float(row["initial_energy_ev"])  # relaxed is lower
        assert float(row["energy_per_atom_ev"]) * 8 == pytest.approx(float(row["energy_ev"]))
        # CHGNet is trained on PBE, which expands alkali halides: the cell grows from experiment
        assert float(row["initial_volume_a3"]) == pytest.approx(NACL_A**3, rel=1e-6)
        assert float(row["volume_a3"]) > float(row["initial_volume_a3"])
    relaxed = table[0]

    # the barrier: one Na vacancy hop between two symmetry-equivalent sites
    barrier_line = next(line for line in outputs if "--derived barriers" in line)
    asked = shlex.split(barrier_line)[shlex.split(barrier_line).index("--fields") + 1].split(",")
    (band,) = json.loads(outputs[barrier_line])
    assert list(band) == asked
    assert (band["species"], band["mechanism"]) == ("Na", "vacancy")
    assert band["status"] == "valid" and band["reasons"] == []
    assert band["forward_barrier_ev"] > 0
    assert abs(band["reaction_energy_ev"]) < 0.01  # equivalent end points: no reaction energy

    # report: the sections of the stages that ran, the same number as the query
    markdown = (workdir / "report" / "report.md").read_text()
    assert "## Relaxations" in markdown and "## Migration barriers" in markdown
    assert "Not computed in this campaign" in markdown
    assert (workdir / "report" / "index.html").is_file()
    report = json.loads((workdir / "report" / "report.json").read_text())
    assert report["relaxations"][0]["energy_per_atom_ev"] == pytest.approx(
        float(relaxed["energy_per_atom_ev"]), abs=1e-6
    )

    # export: every file the manifest names exists; the relaxed structure is the queried one
    out = workdir / "export" / "structures"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["files"]
    for entry in manifest["files"]:
        assert (out / entry["file"]).is_file() and (out / entry["details"]["poscar"]).is_file()
    (summary,) = [e for e in manifest["files"] if e["job_name"] == "relax summary"]
    exported = Structure.from_file(out / summary["file"])
    assert exported.volume == pytest.approx(float(relaxed["volume_a3"]), rel=1e-5)
    assert {e["stage"] for e in manifest["files"]} == {"structure", "relax", "neb"}

    assert "no problems found" in the(outputs, "verify")

    # compare: the same structure relaxed with another engine, side by side
    compared = json.loads(the(outputs, "compare"))
    a, b = "my-run", "my-run-chgnet020"
    by_field = {(row["field"], row["what"]): row for row in compared}
    for field in ("energy_per_atom_ev", "volume_a3"):
        row = by_field[field, "NaCl"]
        assert row[f"{a} found"] and row[f"{b} found"]
        assert row["difference"] == pytest.approx(row[b] - row[a])
    assert by_field["volume_a3", "NaCl"][a] == pytest.approx(float(relaxed["volume_a3"]))
    # the other side relaxed only: the barrier is on one side, without a difference
    barrier = by_field["forward_barrier_ev", "Na vacancy hop 0"]
    assert barrier[a] == pytest.approx(band["forward_barrier_ev"])
    assert not barrier[f"{b} found"] and barrier[b] is None and barrier["difference"] is None
