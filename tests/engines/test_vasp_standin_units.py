"""The VASP stand-in without custodian: writers, INCAR interpretation, refusals, reproducibility."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.io.vasp import Incar, Kpoints, Oszicar, Outcar, Poscar, Vasprun, Xdatcar

from ctaflow.engines.vasp_standin import StandinError, model_from_env
from ctaflow.engines.vasp_standin.cli import main
from ctaflow.engines.vasp_standin.inputs import read_inputs
from ctaflow.engines.vasp_standin.results import IonicStep, RunResult
from ctaflow.engines.vasp_standin.run import RunContext, write_outputs
from ctaflow.engines.vasp_standin.settings import Mode, run_settings
from tests.conftest import subprocess_env

NACL_A = 5.64  # experimental rocksalt NaCl lattice parameter, Å


FCC = [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]


def nacl(a: float = NACL_A) -> Structure:
    """Conventional rocksalt NaCl cell, 8 atoms (Na first, as pymatgen's input sets sort)."""
    cl = [[(x + 0.5) % 1, y, z] for x, y, z in FCC]
    return Structure(Lattice.cubic(a), ["Na"] * 4 + ["Cl"] * 4, FCC + cl)


def write_inputs(directory, incar: dict, structure: Structure | None = None, kpoints=True):
    """INCAR, POSCAR, POTCAR.spec (and a Γ 2×2×2 KPOINTS) as atomate2 writes them."""
    structure = structure or nacl()
    Incar(incar).write_file(directory / "INCAR")
    Poscar(structure).write_file(directory / "POSCAR")
    (directory / "POTCAR.spec").write_text("Na_pv\nCl\n")
    if kpoints:
        Kpoints.gamma_automatic((2, 2, 2)).write_file(directory / "KPOINTS")
    return directory


def settings_for(tmp_path, incar: dict, model: str = "chgnet:0.3.0"):
    write_inputs(tmp_path, incar)
    inputs = read_inputs(tmp_path)
    return run_settings(inputs, model_from_env({"CTAFLOW_STANDIN_MODEL": model}), environ={})


# ---------------------------------------------------------------------------------- writers


def known_steps(md: bool = False) -> list[IonicStep]:
    """Three hand-made ionic steps (a shrinking, distorting NaCl cell) with distinct numbers."""
    steps = []
    for i, (a, energy) in enumerate([(5.64, -29.1234567891), (5.62, -29.25), (5.6012345, -29.3)]):
        structure = nacl(a)
        structure.translate_sites([0], [0.01 * (i + 1), 0.0, -0.003 * i])
        forces = np.arange(24, dtype=float).reshape(8, 3) * 1e-3 * (i + 1) - 0.0115 * (i + 1)
        stress = np.array([[12.5, 0.1, -0.2], [0.1, 11.25, 0.3], [-0.2, 0.3, 10.0]]) / (i + 1)
        kinetic = 0.27 - 0.01 * i if md else None
        steps.append(
            IonicStep(
                structure=structure,
                energy_ev=energy,
                forces_ev_per_a=forces,
                stress_kbar=stress,
                kinetic_energy_ev=kinetic,
                temperature_k=300.0 - 11.1 * i if md else None,
                velocities_a_per_fs=np.full((8, 3), 1e-3 * (i + 1)) if md else None,
            )
        )
    return steps


def write_known_run(tmp_path, incar: dict, md: bool = False):
    write_inputs(tmp_path, incar)
    inputs = read_inputs(tmp_path)
    model = model_from_env({})
    ctx = RunContext(
        inputs=inputs,
        model=model,
        settings=run_settings(inputs, model, environ={}),
        result=RunResult(steps=known_steps(md), converged=True),
        program_version="9.8.7",
        started=datetime(2026, 1, 2, 3, 4, 5),
        elapsed_seconds=1.5,
        user_seconds=1.0,
        system_seconds=0.25,
        max_memory_kb=1234.0,
    )
    write_outputs(tmp_path, ctx)
    return ctx


def test_vasprun_gives_back_exactly_the_ionic_steps(tmp_path):
    ctx = write_known_run(tmp_path, {"IBRION": 2, "ISIF": 3, "NSW": 5, "EDIFFG": -0.05})
    steps = ctx.result.steps
    run = Vasprun(tmp_path / "vasprun.xml", parse_potcar_file=False)
    assert len(run.ionic_steps) == 3
    for parsed, step in zip(run.ionic_steps, steps, strict=True):
        for key in ("e_fr_energy", "e_wo_entrp", "e_0_energy"):
            assert parsed[key] == step.energy_ev
        assert parsed["electronic_steps"][-1]["e_0_energy"] == step.energy_ev
        assert np.array_equal(parsed["forces"], step.forces_ev_per_a)
        assert np.array_equal(parsed["stress"], step.stress_kbar)
        assert np.array_equal(parsed["structure"].lattice.matrix, step.structure.lattice.matrix)
        assert np.array_equal(parsed["structure"].frac_coords, step.structure.frac_coords)
        assert parsed["structure"].species == step.structure.species
    assert run.final_energy == steps[-1].energy_ev
    assert np.array_equal(run.final_structure.frac_coords, steps[-1].structure.frac_coords)
    assert run.converged_ionic  # 3 ionic steps < NSW = 5, as VASP stopping on EDIFFG
    assert run.parameters["NSW"] == 5 and run.parameters["ISIF"] == 3
    assert run.parameters["EDIFFG"] == -0.05
    # provenance: a stand-in, never a VASP version
    assert run.generator["program"].lower() == "ctaflow-vasp-standin"  # pymatgen capitalises
    assert run.vasp_version == "9.8.7+standin.chgnet-0.3.0"
    assert [s.split()[:2] for s in run.potcar_symbols] == [["NONE", "Na_pv"], ["NONE", "Cl"]]
    # Γ-centred 2×2×2 grid, not reduced: 8 points of weight 1/8
    assert len(run.actual_kpoints) == 8 and np.allclose(run.actual_kpoints_weights, 1 / 8)


def test_outcar_oszicar_xdatcar_contcar_agree_with_the_steps(tmp_path):
    steps = write_known_run(tmp_path, {"IBRION": 2, "ISIF": 3, "NSW": 5}).result.steps
    outcar = Outcar(tmp_path / "OUTCAR")
    assert outcar.final_energy == pytest.approx(steps[-1].energy_ev, abs=1e-8)
    assert outcar.data["nbands"] == 2 and outcar.data["nplwv"] == [[0]]
    drift = np.array(outcar.drift)
    assert drift.shape == (3, 3)
    assert np.allclose(drift, [s.forces_ev_per_a.sum(axis=0) for s in steps], atol=1e-6)
    assert outcar.run_stats["Elapsed time (sec)"] == 1.5
    oszicar = Oszicar(tmp_path / "OSZICAR")
    assert [s["E0"] for s in oszicar.ionic_steps] == pytest.approx(
        [s.energy_ev for s in steps], abs=1e-7
    )
    assert oszicar.ionic_steps[1]["dE"] == pytest.approx(-29.25 + 29.1234567891, abs=1e-6)
    frames = Xdatcar(tmp_path / "XDATCAR").structures
    assert len(frames) == 3
    for frame, step in zip(frames, steps, strict=True):  # variable cell: one cell per frame
        assert np.allclose(frame.lattice.matrix, step.structure.lattice.matrix, atol=1e-6)
        assert np.allclose(frame.frac_coords, step.structure.frac_coords, atol=1e-8)
    contcar = Poscar.from_file(tmp_path / "CONTCAR").structure
    assert np.allclose(contcar.frac_coords, steps[-1].structure.frac_coords, atol=1e-12)


def test_md_outputs_carry_temperature_and_kinetic_energy(tmp_path):
    incar = {"IBRION": 0, "NSW": 3, "POTIM": 2, "MDALGO": 2, "SMASS": 0, "TEBEG": 300}
    steps = write_known_run(tmp_path, incar, md=True).result.steps
    temperatures = [s["T"] for s in Oszicar(tmp_path / "OSZICAR").ionic_steps]
    assert temperatures == pytest.approx([300.0, 288.9, 277.8], abs=0.006)
    run = Vasprun(tmp_path / "vasprun.xml", parse_potcar_file=False)
    assert run.md_n_steps == 3 == run.parameters["NSW"]  # emmet: MD complete iff steps == NSW
    last = run.ionic_steps[-1]
    assert last["kinetic"] == steps[-1].kinetic_energy_ev
    assert last["total"] == pytest.approx(steps[-1].energy_ev + steps[-1].kinetic_energy_ev)
    velocities = Poscar.from_file(tmp_path / "CONTCAR").velocities
    assert np.allclose(velocities, 3e-3)  # Å/fs, as VASP writes them


# --------------------------------------------------------------------------- INCAR → settings


def test_incar_tags_choose_the_run(tmp_path):
    assert settings_for(tmp_path, {"NSW": 0, "IBRION": 2}).mode is Mode.STATIC
    relax = settings_for(tmp_path, {"IBRION": 2, "ISIF": 3, "NSW": 99, "EDIFFG": -0.02})
    assert relax.mode is Mode.RELAX and relax.max_ionic_steps == 99
    r = relax.relax
    assert (r.optimizer, r.move_positions, r.move_shape, r.move_volume) == (
        "BFGS",
        True,
        True,
        True,
    )
    assert r.fmax_ev_per_a == 0.02 and r.energy_tolerance_ev is None
    shape_only = settings_for(tmp_path, {"IBRION": 3, "ISIF": 4, "NSW": 9, "EDIFFG": 1e-3}).relax
    assert (shape_only.optimizer, shape_only.move_shape, shape_only.move_volume) == (
        "FIRE",
        True,
        False,
    )
    assert shape_only.energy_tolerance_ev == 1e-3 and shape_only.fmax_ev_per_a is None
    volume_only = settings_for(tmp_path, {"IBRION": 1, "ISIF": 7, "NSW": 9}).relax
    assert not volume_only.move_positions and not volume_only.move_shape
    assert volume_only.energy_tolerance_ev == pytest.approx(1e-3)  # VASP: EDIFFG = 10 EDIFF
    # NSW > 0 without IBRION is MD in VASP
    assert settings_for(tmp_path, {"NSW": 5, "SMASS": -3, "TEBEG": 10}).md.thermostat == "nve"


def test_md_tags_map_to_thermostats(tmp_path):
    base = {"IBRION": 0, "NSW": 10, "POTIM": 2.0, "TEBEG": 300, "TEEND": 600}
    nh = settings_for(tmp_path, base | {"MDALGO": 2, "SMASS": 0}).md
    assert nh.thermostat == "nose-hoover" and nh.nose_period_fs == 80.0  # 40 steps of 2 fs
    assert [nh.temperature_at(i, 10) for i in (0, 9)] == [300.0, 600.0]
    assert nh.temperature_at(3, 10) == pytest.approx(400.0)
    langevin = settings_for(tmp_path, base | {"MDALGO": 3, "LANGEVIN_GAMMA": [5, 20]}).md
    assert langevin.thermostat == "langevin" and langevin.langevin_gamma_per_ps == (5.0, 20.0)
    npt = base | {"MDALGO": 3, "ISIF": 3, "LANGEVIN_GAMMA": [10, 10], "LANGEVIN_GAMMA_L": 1}
    npt_md = settings_for(tmp_path, npt | {"PSTRESS": 5}).md
    assert npt_md.thermostat == "langevin-npt" and npt_md.pressure_kbar == 5.0
    assert settings_for(tmp_path, base | {"MDALGO": 1, "ANDERSEN_PROB": 0.0}).md.thermostat == "nve"


@pytest.mark.parametrize(
    ("incar", "words"),
    [
        ({"LHFCALC": True, "NSW": 0}, "LHFCALC"),
        ({"IMAGES": 3, "IBRION": 3, "NSW": 10}, "NEB needs a force criterion"),
        ({"IBRION": 6, "NSW": 1}, "IBRION = 6"),
        ({"ICHARG": 11, "NSW": 0}, "ICHARG"),
        ({"METAGGA": "R2scan", "NSW": 0}, "METAGGA"),
        ({"NELECT": 41, "NSW": 0}, "NELECT"),
        ({"IBRION": 0, "NSW": 5, "ISIF": 3, "MDALGO": 2, "SMASS": 0}, "MDALGO = 3"),
        ({"IBRION": 0, "NSW": 5, "MDALGO": 5}, "MDALGO = 5"),
        ({"IBRION": 0, "NSW": 5, "MDALGO": 3}, "LANGEVIN_GAMMA"),
        ({"IBRION": 0, "NSW": 5, "MDALGO": 2, "SMASS": 1.5}, "SMASS"),
    ],
)
def test_physics_changing_tags_are_refused(tmp_path, incar, words):
    with pytest.raises(StandinError, match=words):
        settings_for(tmp_path, incar)


def test_meta_gga_needs_a_meta_gga_model(tmp_path):
    settings = settings_for(tmp_path, {"METAGGA": "R2scan", "NSW": 0}, model="chgnet:r2scan")
    assert settings.mode is Mode.STATIC


@pytest.mark.parametrize("value", ["mace:0.3", "chgnet:9.9", "chgnet", "chgnet:"])
def test_unknown_models_are_refused(value):
    with pytest.raises(StandinError, match="chgnet:0.3.0"):  # the message lists known models
        model_from_env({"CTAFLOW_STANDIN_MODEL": value})
    assert model_from_env({}).label == "chgnet:0.3.0"


# ------------------------------------------------------------------------------- bad inputs


def _run_main(capsys, monkeypatch, directory, **env):
    for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(key, os.environ.get(key, "1"))  # main() sets them; undo afterwards
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code = main([str(directory)])
    captured = capsys.readouterr()
    return code, captured.err.strip().splitlines()


def test_missing_poscar_exits_nonzero_with_one_line(tmp_path, capsys, monkeypatch):
    Incar({"NSW": 0}).write_file(tmp_path / "INCAR")
    code, err = _run_main(capsys, monkeypatch, tmp_path)
    assert code == 1 and len(err) == 1
    assert err[0].startswith("ctaflow-vasp-standin: error: no POSCAR")
    assert not (tmp_path / "vasprun.xml").exists()


def test_unknown_model_exits_nonzero_with_one_line(tmp_path, capsys, monkeypatch):
    write_inputs(tmp_path, {"NSW": 0})
    code, err = _run_main(capsys, monkeypatch, tmp_path, CTAFLOW_STANDIN_MODEL="mace:mp-0")
    assert code == 1 and len(err) == 1 and "unknown model" in err[0] and "mace:mp-0" in err[0]
    assert not (tmp_path / "OUTCAR").exists()


def test_unsupported_tag_exits_nonzero_from_the_command(tmp_path):
    """The real executable, as custodian starts it: exit status 1, one line on stderr."""
    write_inputs(tmp_path, {"NSW": 0, "LHFCALC": True, "HFSCREEN": 0.2})
    proc = subprocess.run(
        [sys.executable, "-m", "ctaflow.engines.vasp_standin"],
        cwd=tmp_path,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "ctaflow-vasp-standin: error: unsupported INCAR setting: LHFCALC = True (hybrid functional)"
    ]
    assert not (tmp_path / "vasprun.xml").exists()
