"""The NEB stage on the embedded MLIP engine: a vacancy hop in the 2x2x2 Na3OCl demo supercell
(the host relaxed as a supercell, end points and host minimum-checked), end to end into the
embedded store, against a plain-ASE climbing-image NEB on the same end points."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from jobflow import Flow

from ctaflow.campaign.stages import NEBStageSettings, RelaxStageSettings
from ctaflow.engines import get_engine
from ctaflow.engines.specs import MLIPEngineSpec
from ctaflow.makers.neb import NEBStageMaker, neb_supercell
from ctaflow.makers.relax import RelaxStageMaker
from ctaflow.structures import demo_structure
from ctaflow.structures.sites import classify_sites

FMAX = 0.05


@pytest.fixture(scope="module")
def neb_run(tmp_path_factory):
    from ctaflow.execution.local import run_flow
    from ctaflow.store import job_store, state_store

    workdir = tmp_path_factory.mktemp("neb")
    store = job_store(None, workdir)
    host, _ = classify_sites(demo_structure(), "Na")
    settings = NEBStageSettings(
        mechanisms=["vacancy"], fmax_ev_per_a=FMAX, max_steps=300, endpoint_fmax_ev_per_a=0.02
    )
    engine = get_engine(MLIPEngineSpec())
    relax_settings = RelaxStageSettings(fmax_ev_per_a=0.02)
    relax = RelaxStageMaker(engine, relax_settings).make(host)
    neb = NEBStageMaker(engine, settings, "Na", relax_settings).make(relax.output.structure)
    flow = Flow([relax, neb], output=neb.output)
    with contextlib.chdir(workdir):  # module fixture: runs before the per-test chdir
        report = run_flow(flow, store, state_store(None, workdir), workdir)
    assert report.ok, report.failed
    (result,) = (d["output"] for d in store.query({"output.@class": "BarrierResult"}, load=True))
    return store, flow, result


@pytest.mark.slow
def test_vacancy_hop_is_a_valid_barrier_between_checked_minima(neb_run):
    _, _, r = neb_run
    prof = r["profile"]
    assert r["status"] == "valid", r["reasons"]
    assert r["barrier_ev"] == r["forward_barrier_ev"] > 0.02  # a real barrier, not a flat band
    # the end points relax from different seeded rattles into equivalent minima
    assert r["forward_barrier_ev"] == pytest.approx(r["backward_barrier_ev"], abs=0.01)
    assert r["reaction_energy_ev"] == pytest.approx(0.0, abs=0.01)
    assert 0 < prof["highest_image"] < prof["n_images"] + 1  # interior
    assert prof["max_force_highest_image_ev_per_a"] <= FMAX
    assert r["start_minimum"]["is_minimum"] and r["end_minimum"]["is_minimum"]
    host = r["host"]
    assert host["n_atoms"] == 40 and host["minimum"]["is_minimum"]
    assert host["minimum"]["energy_drop_ev"] >= 0.0  # the kept host is the lowest found
    # images from the path length: a0/sqrt(2) ≈ 3.2 Å at 1.5 per Å -> 5 (odd)
    assert prof["n_images"] == 5


@pytest.mark.slow
def test_hop_length_is_the_minimum_image_distance_the_ion_travels(neb_run):
    from pymatgen.core import Structure

    _, _, r = neb_run
    (moving,) = r["moving_indices"]
    first, last = (Structure.from_dict(r["images"][n]) for n in (0, -1))
    travel = first[moving].distance(last[moving])  # pymatgen: minimum image
    assert r["hop_length_a"] < r["settings"]["max_hop_length_a"]
    assert r["hop_length_a"] == pytest.approx(r["displacement_a"][0], abs=1e-6)
    assert travel == pytest.approx(r["hop_length_a"], abs=0.3)  # end points relaxed apart


@pytest.mark.slow
def test_the_barrier_equals_a_plain_ase_neb_on_the_same_end_points(neb_run):
    """Independent check (#22): ASE's own climbing-image NEB (improved tangent, IDPP with mic,
    FIRE), the same CHGNet and the same relaxed end points and fmax, within 20 meV."""
    from pymatgen.core import Structure

    from ctaflow.engines.calculators import chgnet_calculator
    from tests.analysis.ase_reference import ase_reference_barrier

    _, _, r = neb_run
    start, end = (Structure.from_dict(r["images"][n]) for n in (0, -1))
    reference = ase_reference_barrier(
        start,
        end,
        r["profile"]["n_images"],
        chgnet_calculator(),
        fmax_ev_per_a=FMAX,
        steps=300,
        spring_ev_per_a2=r["settings"]["spring_ev_per_a2"],
    )
    assert reference.converged
    assert r["barrier_ev"] == pytest.approx(reference.forward_barrier_ev, abs=0.02)


@pytest.mark.slow
def test_image_energies_are_the_engines_energies(neb_run):
    from pymatgen.core import Structure
    from pymatgen.io.ase import AseAtomsAdaptor

    from ctaflow.engines.calculators import chgnet_calculator

    _, _, r = neb_run
    top = r["profile"]["highest_image"]
    atoms = AseAtomsAdaptor.get_atoms(Structure.from_dict(r["images"][top]))
    atoms.calc = chgnet_calculator()
    assert atoms.get_potential_energy() == pytest.approx(r["profile"]["energies_ev"][top], abs=1e-3)


def test_the_neb_cell_grows_until_the_concerted_chain_fits():
    """In the 2x2x2 cell the straight two-ion chain spans 71 % of the width; the NEB supercell
    grows to 3x3x3 (its chain spans 47 %); without concerted bands it stays 2x2x2."""
    host, _ = classify_sites(demo_structure(), "Na")
    s = {**NEBStageSettings().model_dump(mode="json"), "species": "Na"}
    grown = neb_supercell.original(host, s)
    assert len(grown) == 27 * 5
    assert grown.properties["neb_cell"]["grown_for_concerted_from_a"] == 8.0
    assert grown.properties["neb_cell"]["min_width_a"] == pytest.approx(2 * 4.84 * np.sqrt(2))
    plain = neb_supercell.original(host, {**s, "mechanisms": ["vacancy"]})
    assert (
        len(plain) == 8 * 5 and plain.properties["neb_cell"]["grown_for_concerted_from_a"] is None
    )


@pytest.mark.slow
def test_the_same_stage_runs_on_the_vasp_path_through_the_standin(stores, tmp_path):
    """Relaxations and the band through atomate2's VASP makers, custodian and the stand-in; the
    MLIP inside the stand-in is the same CHGNet, so the barrier matches the MLIP engine's."""
    from jobflow import run_locally

    from ctaflow.engines.specs import VaspStandinEngineSpec
    from ctaflow.structures.supercell import make_supercell

    jobs, _ = stores
    host, _ = classify_sites(demo_structure(), "Na")
    host.scale_lattice(4.535**3)  # near the CHGNet lattice parameter (4.5354 Å)
    settings = NEBStageSettings(
        mechanisms=["vacancy"], images=1, fmax_ev_per_a=0.1, max_steps=80, endpoint_max_steps=80
    )
    engine = get_engine(VaspStandinEngineSpec(ionic_criterion="force"))
    host_relax = RelaxStageSettings(fmax_ev_per_a=0.1, max_steps=40, relax_cell=False)
    flow = NEBStageMaker(engine, settings, "Na", host_relax).make(host)
    run_locally(flow, store=jobs, log=False, ensure_success=True, create_folders=True)
    table = jobs.get_output(flow.output.uuid, load=True)
    (row,) = table["rows"]
    assert (row["species"], row["mechanism"], row["n_images"]) == ("Na", "vacancy", 1)
    assert row["n_atoms"] == len(make_supercell(host, 8.0)) - 1
    assert table["engine"]["kind"] == "vasp-standin"
    # the VASP engines do not check minima by default: no barrier is claimed between unchecked
    # end points, but the band itself is there
    assert row["status"] == "excluded" and row["barrier_ev"] is None
    assert "the start point was not checked to be a minimum" in row["reasons"]
    (doc,) = jobs.query({"output.@class": "BarrierResult"}, load=True)
    prof = doc["output"]["profile"]
    assert prof["forward_barrier_ev"] > 0.02
    assert prof["forward_barrier_ev"] == pytest.approx(prof["backward_barrier_ev"], abs=0.01)
    assert doc["output"]["end_from_symmetry"]
