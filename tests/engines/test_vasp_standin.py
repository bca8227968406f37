"""atomate2's real VASP makers, run by custodian with the stand-in as the VASP executable.

Each test writes real atomate2 input sets (POTCAR.spec, no POTCARs), lets custodian start
``python -m ctaflow.engines.vasp_standin`` and parses the outputs into a TaskDoc in a fresh
JobStore; the numbers are checked against CHGNet called directly through ASE.
"""

from __future__ import annotations

import os
import shlex
import sys

import numpy as np
import pytest
from ase import units
from ase.filters import FrechetCellFilter
from ase.optimize import BFGS
from jobflow import run_locally
from pymatgen.core import Structure
from pymatgen.core.trajectory import Trajectory

from ctaflow import __version__
from ctaflow.engines.vasp_standin.inputs import SpeciesBlock
from ctaflow.engines.vasp_standin.md import molecular_dynamics
from ctaflow.engines.vasp_standin.settings import MDSettings
from tests.conftest import REPO
from tests.engines.test_vasp_standin_units import nacl

STANDIN_VERSION = f"{__version__}+standin.chgnet-0.3.0"


@pytest.fixture(scope="module")
def chgnet():
    """CHGNet 0.3.0 in this process (one torch thread, as the stand-in uses)."""
    import torch

    from ctaflow.engines.calculators import chgnet_calculator

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield lambda: chgnet_calculator("0.3.0", "cpu")
    torch.set_num_threads(threads)


@pytest.fixture
def standin(monkeypatch) -> dict:
    """atomate2 ``run_vasp_kwargs`` that make custodian start the stand-in."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    for var in ("CTAFLOW_STANDIN_MODEL", "CTAFLOW_STANDIN_SEED"):
        monkeypatch.delenv(var, raising=False)
    return {
        "vasp_cmd": f"{shlex.quote(sys.executable)} -m ctaflow.engines.vasp_standin",
        "custodian_kwargs": {"polling_time_step": 1},
    }


def run_job(stores, job) -> dict:
    """Run one atomate2 job locally; its TaskDoc as stored (bulky data loaded)."""
    jobs, _ = stores
    run_locally(job, store=jobs, create_folders=True, ensure_success=True, log=False)
    return jobs.get_output(job.uuid, load=True)


def energy_forces_stress(structure: Structure, calc) -> tuple[float, np.ndarray, np.ndarray]:
    atoms = structure.to_ase_atoms()
    atoms.calc = calc
    stress_kbar = atoms.get_stress(voigt=False) * -10 / units.GPa  # VASP sign and unit
    return float(atoms.get_potential_energy()), atoms.get_forces(), stress_kbar


def assert_from_standin(doc: dict) -> None:
    """(d) The task document says where the numbers come from."""
    assert doc["vasp_version"] == STANDIN_VERSION
    calc = doc["calcs_reversed"][0]
    assert calc["vasp_version"] == STANDIN_VERSION
    assert calc["input"]["potcar_type"] == ["NONE", "NONE"]  # no pseudopotential was used
    assert doc["state"] == "successful"


def test_static_maker_matches_chgnet(stores, standin, chgnet):
    from atomate2.vasp.jobs.core import StaticMaker

    structure = nacl(0.98 * 5.64)  # compressed 2 %: the cell pushes outwards
    structure.translate_sites([0], [0.012, 0.0, 0.0])  # one Na off its site: non-zero forces
    maker = StaticMaker(run_vasp_kwargs=standin, write_input_set_kwargs={"potcar_spec": True})
    doc = run_job(stores, maker.make(structure))

    energy, forces, stress = energy_forces_stress(structure, chgnet())
    assert doc["task_type"] == "Static"
    assert abs(doc["output"]["energy"] - energy) / len(structure) < 1e-4  # (a), eV/atom
    step = doc["calcs_reversed"][0]["output"]["ionic_steps"][0]
    assert np.abs(np.array(step["forces"]) - forces).max() < 1e-3  # eV/Å
    assert np.abs(forces).max() > 0.05  # the displaced ion feels a real force
    assert np.abs(np.array(step["stress"]) - stress).max() < 0.05  # kbar
    assert np.trace(step["stress"]) / 3 > 0  # compressed cell: positive pressure (VASP sign)
    assert_from_standin(doc)


def test_relax_maker_reaches_the_chgnet_minimum(stores, standin, chgnet):
    from atomate2.vasp.jobs.core import RelaxMaker

    structure = nacl()
    structure.translate_sites([0], [0.015, 0.0, 0.0])
    maker = RelaxMaker(run_vasp_kwargs=standin, write_input_set_kwargs={"potcar_spec": True})
    doc = run_job(stores, maker.make(structure))

    calc = doc["calcs_reversed"][0]
    incar = calc["input"]["incar"]
    assert (incar["IBRION"], incar["ISIF"]) == (2, 3)
    fmax = -incar["EDIFFG"]
    assert fmax > 0
    energies = np.array([s["e_0_energy"] for s in calc["output"]["ionic_steps"]])
    assert len(energies) > 2 and energies[-1] < energies[0]
    assert np.all(np.diff(energies) < 1e-6)  # (b) energy falls along the ionic steps
    final_forces = np.array(calc["output"]["ionic_steps"][-1]["forces"])
    assert np.linalg.norm(final_forces, axis=1).max() < fmax  # (b) converged on forces

    # the same relaxation directly in ASE: BFGS + FrechetCellFilter, same fmax and step budget
    atoms = structure.to_ase_atoms()
    atoms.calc = chgnet()
    BFGS(FrechetCellFilter(atoms), logfile=None).run(fmax=fmax, steps=incar["NSW"] - 1)
    direct = float(atoms.get_potential_energy())
    assert abs(doc["output"]["energy"] - direct) / len(structure) < 1e-3  # (b), eV/atom
    relaxed = Structure.from_dict(doc["structure"])
    assert np.allclose(relaxed.lattice.abc, atoms.cell.cellpar()[:3], atol=2e-3)
    assert relaxed.lattice.a > 5.64  # CHGNet (PBE-trained) expands rock salt, as PBE does
    assert doc["task_type"] == "Structure Optimization"
    assert_from_standin(doc)


def test_md_maker_runs_nsw_steps_at_tebeg(stores, standin):
    from atomate2.vasp.jobs.md import MDMaker
    from atomate2.vasp.sets.core import MDSetGenerator

    nsw, tebeg = 60, 300.0
    generator = MDSetGenerator(ensemble="nvt", nsteps=nsw, time_step=2, start_temp=tebeg)
    maker = MDMaker(input_set_generator=generator, write_input_set_kwargs={"potcar_spec": True})
    maker.run_vasp_kwargs.update(standin)  # keep atomate2's MD handler list
    doc = run_job(stores, maker.make(nacl()))

    calc = doc["calcs_reversed"][0]
    assert (calc["input"]["incar"]["MDALGO"], calc["input"]["incar"]["SMASS"]) == (2, 0)
    traj = Trajectory.from_dict(doc["vasp_objects"]["trajectory"])
    assert len(traj) == nsw == calc["input"]["parameters"]["NSW"]  # (c) exactly NSW steps
    temperatures = np.array([frame["temperature"] for frame in traj.frame_properties])
    assert temperatures[0] == pytest.approx(tebeg, abs=0.01)  # velocities drawn at TEBEG
    # (c) After 40 fs the Nosé-Hoover thermostat (40-step period) holds the mean near TEBEG.
    # 8 atoms have 21 degrees of freedom: the instantaneous T fluctuates by ~sqrt(2/21) ≈ 30 %,
    # and 40 correlated steps (about one thermostat period) average only part of that away,
    # hence ±35 %. Without a thermostat a perfect crystal started at TEBEG equilibrates
    # towards TEBEG/2; a unit error in POTIM or the thermostat target falls far outside.
    mean_t = temperatures[20:].mean()
    assert 0.65 * tebeg < mean_t < 1.35 * tebeg
    energies = np.array([frame["energy"] for frame in traj.frame_properties])
    assert np.ptp(energies) > 0.01  # the ions moved: potential energy changes along the run
    assert doc["task_type"] == "Molecular Dynamics"
    assert_from_standin(doc)


def test_md_is_reproducible_for_a_seed(chgnet):
    """Langevin MD (random forces) gives identical trajectories for the same seed."""
    species = (SpeciesBlock("Na", 4, "Na_pv"), SpeciesBlock("Cl", 4, "Cl"))

    def positions(seed: int) -> np.ndarray:
        settings = MDSettings(
            thermostat="langevin",
            timestep_fs=2.0,
            start_temperature_k=600.0,
            end_temperature_k=600.0,
            seed=seed,
            langevin_gamma_per_ps=(10.0, 10.0),
        )
        atoms = nacl().to_ase_atoms()
        atoms.calc = chgnet()
        steps = molecular_dynamics(atoms, settings, 4, species).steps
        return np.array([s.structure.cart_coords for s in steps])

    first, again, other = positions(7), positions(7), positions(8)
    assert np.array_equal(first, again)
    assert not np.allclose(first[1:], other[1:], atol=1e-4)


def test_nose_hoover_follows_the_tebeg_teend_ramp(chgnet):
    """TEBEG = 100 K → TEEND = 1000 K over 80 fs (SMASS = 0: 40-step thermostat period).

    Guards the stand-in's retargeting of ASE's Nosé–Hoover thermostat: without the ramp the
    crystal would stay near 100 K; with it the last 20 steps (targets 775–1000 K) run hot.
    """
    settings = MDSettings(
        thermostat="nose-hoover",
        timestep_fs=1.0,
        start_temperature_k=100.0,
        end_temperature_k=1000.0,
        seed=1,
        nose_period_fs=40.0,
    )
    atoms = nacl(5.69).to_ase_atoms()  # near CHGNet's equilibrium lattice parameter
    atoms.calc = chgnet()
    species = (SpeciesBlock("Na", 4, "Na_pv"), SpeciesBlock("Cl", 4, "Cl"))
    steps = molecular_dynamics(atoms, settings, 80, species).steps
    temperatures = np.array([s.temperature_k for s in steps])
    assert temperatures[0] == pytest.approx(100.0)
    assert temperatures[:20].mean() < 300.0
    assert temperatures[-20:].mean() > 600.0
