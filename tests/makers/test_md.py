"""MD with the embedded MLIP: reproducible, thermostatted, NPT on oblique cells, chunked frames."""

from __future__ import annotations

import numpy as np
import pytest
from jobflow import run_locally
from pymatgen.core import Lattice, Structure

from ctaflow.analysis.chunks import join_chunks
from ctaflow.analysis.md import md_statistics
from ctaflow.engines import get_engine
from ctaflow.engines.params import MDControls, MDSegment, steps_for
from ctaflow.engines.specs import MLIPEngineSpec
from ctaflow.makers.md import MDProtocolMaker
from ctaflow.structures import demo_structure


@pytest.fixture(scope="module")
def engine():
    return get_engine(MLIPEngineSpec())


@pytest.fixture(scope="module")
def cell40() -> Structure:
    """The demo antiperovskite near its CHGNet lattice parameter, 2×2×2 (40 atoms)."""
    s = demo_structure()
    s.scale_lattice(4.54**3)
    s.make_supercell([2, 2, 2])
    return s


def _run(stores, maker, structure):
    jobs, _ = stores
    md_job = maker.make(structure)
    run_locally(md_job, store=jobs, log=False, ensure_success=True)
    return jobs.get_output(md_job.uuid, load=True)


def _md(engine, ensemble, t0, t1, steps, seed, every=5, **controls):
    segment = MDSegment("test", ensemble, t0, t1, duration_ps=steps / 1000.0)
    return engine.md_maker(segment, steps, seed, MDControls(sample_every=every, **controls))


def test_same_seed_same_trajectory_other_seed_differs(stores, engine, cell40):
    a = join_chunks(_run(stores, _md(engine, "nvt", 600, 600, 30, seed=3), cell40)["trajectory"])
    b = join_chunks(_run(stores, _md(engine, "nvt", 600, 600, 30, seed=3), cell40)["trajectory"])
    c = join_chunks(_run(stores, _md(engine, "nvt", 600, 600, 30, seed=4), cell40)["trajectory"])
    assert np.array_equal(a["positions_a"], b["positions_a"])
    assert not np.allclose(a["positions_a"][-1], c["positions_a"][-1])


def test_atomate2_langevin_alone_is_not_reproducible(cell40):
    """The defect worked around above: same mb_velocity_seed, different trajectories."""
    from atomate2.forcefields.md import ForceFieldMDMaker

    from ctaflow.engines.calculators import CHGNET_FACTORY

    module, func = CHGNET_FACTORY.rsplit(".", 1)
    finals = []
    for _ in range(2):
        maker = ForceFieldMDMaker(
            force_field_name={"@module": module, "@callable": func},
            calculator_kwargs={"threads": 1},
            ensemble="nvt",
            temperature=600,
            n_steps=10,
            time_step=1.0,
            mb_velocity_seed=3,
        )
        finals.append(maker.run_ase(cell40).final_mol_or_struct.cart_coords)
    assert not np.allclose(finals[0], finals[1])


def test_a_structure_at_rest_gets_velocities_at_twice_the_target_one_that_moves_keeps_its():
    from ase import units

    from ctaflow.engines.md_start import start_velocities, with_start_velocities

    s = demo_structure()
    s.make_supercell([2, 2, 2])
    v = start_velocities(s, 600.0, seed=3)
    atoms = s.to_ase_atoms()
    atoms.set_velocities(v)
    assert atoms.get_temperature() == pytest.approx(1200.0, rel=1e-12)  # exactly 2T
    assert np.allclose(atoms.get_momenta().sum(axis=0), 0.0, atol=1e-12)  # no drift
    assert np.array_equal(v, start_velocities(s, 600.0, seed=3))  # seeded
    assert not np.allclose(v, start_velocities(s, 600.0, seed=4))
    moving = with_start_velocities(s, 600.0, seed=3)
    assert np.array_equal(moving.site_properties["velocities"], v)
    assert with_start_velocities(moving, 300.0, seed=9) is moving  # continues as it is
    assert np.abs(v).max() < 0.1 / units.fs  # ASE units: well below 0.1 Å/fs


def test_langevin_holds_the_target_temperature(stores, engine, cell40):
    out = _run(stores, _md(engine, "nvt", 600, 600, 200, seed=1, every=5), cell40)
    frames = join_chunks(out["trajectory"])
    assert frames["temperatures_k"][0] == pytest.approx(1200.0)  # started at 2T from rest
    check = out["target_check"]  # the segment's own verdict, from the same frames
    assert check["mean_temperature_k"] == pytest.approx(out["mean_temperature_k"])
    assert check["target_temperature_k"] == 600 and check["target_pressure_gpa"] is None
    later = frames["temperatures_k"][frames["times_fs"] >= 100]  # after ~1/friction = 100 fs
    # 40 atoms: instantaneous T fluctuates by sqrt(2/3N) = 13 %; the mean of 21 frames is closer
    assert abs(later.mean() - 600) < 0.2 * 600
    assert out["n_frames"] == 41 and out["duration_ps"] == pytest.approx(0.2)
    # frames live in the data store; the job's own document holds only references
    import json

    jobs, _ = stores
    doc = jobs.docs_store.query_one({"output.segment": "test", "output.n_frames": 41})
    assert "blob_uuid" in json.dumps(doc["output"]["trajectory"], default=str)
    assert len(json.dumps(doc, default=str)) < 50_000
    assert out["final_structure"]["sites"][0]["properties"]["site_class"] == "framework"
    assert "velocities" in out["final_structure"]["sites"][0]["properties"]


def test_npt_protocol_on_an_oblique_cell_cools_and_moves_the_cell(stores, engine, cell40):
    m = cell40.lattice.matrix
    oblique = Lattice([m[0], m[1], m[1] + m[2]])  # same crystal, non-orthogonal cell vectors
    s = Structure(
        oblique,
        cell40.species,
        cell40.cart_coords,
        coords_are_cartesian=True,
        site_properties=cell40.site_properties,
        to_unit_cell=True,
    )
    assert s.lattice.alpha == pytest.approx(45)
    protocol = MDProtocolMaker(
        engine=engine,
        segments=[
            MDSegment("hot", "npt", 900, 900, 0.04),
            MDSegment("cool", "npt", 900, 300, 0.04),
        ],
        controls=MDControls(sample_every=5, thermostat_damping_fs=20, barostat_damping_fs=200),
        seed=2,
    )
    flow = protocol.make(s)
    jobs, _ = stores
    run_locally(flow, store=jobs, log=False, ensure_success=True)
    hot, cool = (jobs.get_output(j.uuid, load=True) for j in flow.jobs)
    assert cool["temperature_end_k"] == 300 and hot["temperature_start_k"] == 900
    assert cool["thermostat"] == "RampedMTKNPT"
    temps = join_chunks(cool["trajectory"])["temperatures_k"]
    # the thermostat follows the 900 -> 300 K ramp (atomate2 alone ignores it under MTK NPT):
    # the same segment held at 900 K from the same state ends far hotter
    held = engine.md_maker(
        MDSegment("held", "npt", 900, 900, 0.04),
        40,
        3,  # the cooling segment's seed (protocol seed + 1)
        MDControls(sample_every=5, thermostat_damping_fs=20, barostat_damping_fs=200),
    )
    held_out = _run(stores, held, Structure.from_dict(hot["final_structure"]))
    held_temps = join_chunks(held_out["trajectory"])["temperatures_k"]
    assert np.allclose(held_temps[0], temps[0])  # same start
    assert temps[-3:].mean() < held_temps[-3:].mean() - 100
    cells = join_chunks(cool["trajectory"])["cells_a"]
    assert not np.allclose(cells[0], cells[-1])  # the barostat moved the full (oblique) cell
    assert abs(cool["final_volume_a3"] / s.volume - 1) < 0.1
    # the second segment continued from the first one's last frame
    first = join_chunks(hot["trajectory"])["positions_a"][-1]
    second = join_chunks(cool["trajectory"])["positions_a"][0]
    assert np.allclose(first, second, atol=1e-6)


def test_md_statistics_by_hand():
    cells = np.repeat((np.eye(3) * 10.0)[None], 2, axis=0)  # 1000 Å^3
    stress = np.zeros((2, 3, 3))
    stress[:, [0, 1, 2], [0, 1, 2]] = -1.5  # compressive 1.5 GPa on every axis -> P = +1.5 GPa
    stats = md_statistics(
        {"cells_a": cells, "temperatures_k": np.array([290.0, 310.0]), "stresses_gpa": stress},
        total_mass_amu=602.214,
    )
    assert stats["mean_temperature_k"] == 300 and stats["std_temperature_k"] == 10
    assert stats["mean_pressure_gpa"] == pytest.approx(1.5)
    # 602.214 amu / 1000 Å^3 = 0.602214 amu/Å^3 × 1.66054 = 1.0000 g/cm^3
    assert stats["mean_density_g_per_cm3"] == pytest.approx(1.0, abs=1e-4)


def test_steps_for_rounds_up_to_whole_samples():
    assert steps_for(0.2, 1.0, 10) == 200
    assert steps_for(0.0123, 1.0, 10) == 20
    assert steps_for(100, 2.0, 50) == 50000


def test_total_energy_slope_by_hand():
    # potential falls by 0.4 eV over 2 ps while T stays constant: slope -0.2 eV/ps / 2 atoms
    arrays = {
        "cells_a": np.repeat((np.eye(3) * 10.0)[None], 3, axis=0),
        "temperatures_k": np.array([300.0, 300.0, 300.0]),
        "positions_a": np.zeros((3, 2, 3)),
        "energies_ev": np.array([-1.0, -1.2, -1.4]),
        "times_fs": np.array([0.0, 1000.0, 2000.0]),
    }
    stats = md_statistics(arrays, total_mass_amu=10.0)
    assert stats["total_energy_slope_ev_per_atom_per_ps"] == pytest.approx(-0.1)
