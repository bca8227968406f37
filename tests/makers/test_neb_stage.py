"""The NEB stage on the embedded MLIP engine: a symmetric vacancy hop and a concerted move in
the 2x2x2 Na3OCl demo supercell (39 atoms), end to end into the embedded store."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from jobflow import Flow, run_locally

from ctaflow.campaign.stages import NEBStageSettings, RelaxStageSettings
from ctaflow.engines import get_engine
from ctaflow.engines.specs import MLIPEngineSpec
from ctaflow.makers.neb import NEBStageMaker
from ctaflow.makers.relax import RelaxStageMaker
from ctaflow.structures import demo_structure
from ctaflow.structures.sites import classify_sites

FMAX = 0.05


@pytest.fixture(scope="module")
def neb_run(tmp_path_factory):
    from ctaflow.store import job_store

    workdir = tmp_path_factory.mktemp("neb")
    store = job_store(None, workdir)
    store.connect()
    host, _ = classify_sites(demo_structure(), "Na")
    settings = NEBStageSettings(
        images=3, fmax_ev_per_a=FMAX, max_steps=300, endpoint_fmax_ev_per_a=0.02
    )
    engine = get_engine(MLIPEngineSpec())
    # as in a campaign: the host is relaxed first (the prototype's Shannon-radius lattice is not a
    # CHGNet minimum; at a = 4.84 Å the band drifts)
    relax = RelaxStageMaker(engine, RelaxStageSettings(fmax_ev_per_a=0.02)).make(host)
    neb = NEBStageMaker(engine, settings, "Na", RelaxStageSettings()).make(relax.output.structure)
    flow = Flow([relax, neb], output=neb.output)
    with contextlib.chdir(workdir):  # module fixture: runs before the per-test chdir
        run_locally(flow, store=store, log=False, ensure_success=True, create_folders=True)
    results = {
        d["output"]["mechanism"]: d["output"]
        for d in store.query({"output.@class": "BarrierResult"}, load=True)
    }
    return store, flow, results


@pytest.mark.slow
def test_symmetric_vacancy_hop_has_a_symmetric_converged_profile(neb_run):
    _, _, results = neb_run
    r = results["vacancy"]
    prof = r["profile"]
    assert r["forward_barrier_ev"] > 0.02  # a real barrier, not a flat band
    # the end points relax from different seeded rattles into equivalent minima
    assert r["forward_barrier_ev"] == pytest.approx(r["backward_barrier_ev"], abs=0.01)
    assert r["reaction_energy_ev"] == pytest.approx(0.0, abs=0.01)
    assert prof["highest_image"] == 2  # the saddle is half way
    assert r["ends_are_lowest"] and r["end_from_symmetry"]
    assert prof["climbing_image"] and prof["max_force_highest_image_ev_per_a"] <= FMAX
    assert r["converged"] and r["endpoints_converged"]
    assert r["moving_indices"] and len(r["moving_indices"]) == 1


@pytest.mark.slow
def test_image_energies_are_the_engines_energies(neb_run):
    from pymatgen.core import Structure
    from pymatgen.io.ase import AseAtomsAdaptor

    from ctaflow.engines.calculators import chgnet_calculator

    _, _, results = neb_run
    r = results["vacancy"]
    top = Structure.from_dict(r["images"][2])
    atoms = AseAtomsAdaptor.get_atoms(top)
    atoms.calc = chgnet_calculator()
    assert atoms.get_potential_energy() == pytest.approx(r["profile"]["energies_ev"][2], abs=1e-3)


@pytest.mark.slow
def test_concerted_band_moves_two_ions_and_is_stored(neb_run):
    store, flow, results = neb_run
    r = results["concerted"]
    assert len(r["moving_indices"]) == 2
    from pymatgen.core import Structure

    first, last = (Structure.from_dict(r["images"][n]) for n in (0, -1))
    travel = np.array([first[n].distance(last[n]) for n in range(len(first))])  # minimum image
    assert sorted(np.flatnonzero(travel > 1.0)) == sorted(r["moving_indices"])
    assert r["forward_barrier_ev"] == pytest.approx(r["backward_barrier_ev"], abs=0.01)
    table = store.get_output(flow.output.uuid, load=True)
    assert [(row["species"], row["mechanism"]) for row in table["rows"]] == [
        ("Na", "vacancy"),
        ("Na", "concerted"),
    ]
    assert all(row["n_images"] == 3 for row in table["rows"])


@pytest.mark.slow
def test_the_same_stage_runs_on_the_vasp_path_through_the_standin(stores, tmp_path):
    """Relaxations and the band through atomate2's VASP makers, custodian and the stand-in; the
    MLIP inside the stand-in is the same CHGNet, so the barrier matches the MLIP engine's."""
    from ctaflow.engines.specs import VaspStandinEngineSpec
    from ctaflow.structures.supercell import make_supercell

    jobs, _ = stores
    host, _ = classify_sites(demo_structure(), "Na")
    host.scale_lattice(4.535**3)  # near the CHGNet lattice parameter (4.5354 Å)
    settings = NEBStageSettings(
        mechanisms=["vacancy"], images=1, fmax_ev_per_a=0.1, max_steps=80, endpoint_max_steps=80
    )
    engine = get_engine(VaspStandinEngineSpec(ionic_criterion="force"))
    flow = NEBStageMaker(engine, settings, "Na", RelaxStageSettings()).make(host)
    run_locally(flow, store=jobs, log=False, ensure_success=True, create_folders=True)
    table = jobs.get_output(flow.output.uuid, load=True)
    (row,) = table["rows"]
    assert (row["species"], row["mechanism"], row["n_images"]) == ("Na", "vacancy", 1)
    assert row["n_atoms"] == len(make_supercell(host, 8.0)) - 1
    assert table["engine"]["kind"] == "vasp-standin"
    assert row["forward_barrier_ev"] > 0.02
    assert row["forward_barrier_ev"] == pytest.approx(row["backward_barrier_ev"], abs=0.01)
    (doc,) = jobs.query({"output.@class": "BarrierResult"}, load=True)
    assert doc["output"]["end_from_symmetry"]
