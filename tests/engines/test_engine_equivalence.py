"""The VASP path (atomate2 RelaxMaker + custodian + the stand-in) and the embedded MLIP engine give
the same relaxed energy when the same MLIP is underneath (issue: engines, done-means 1 and 2)."""

from __future__ import annotations

import pytest
from jobflow import run_locally

from ctaflow.campaign.schema import MLIPEngineSpec, RelaxStageSettings, VaspStandinEngineSpec
from ctaflow.engines import get_engine
from ctaflow.makers.relax import RelaxStageMaker
from ctaflow.structures import demo_structure


def _relax(stores, engine, settings):
    jobs, _ = stores
    flow = RelaxStageMaker(engine=engine, settings=settings).make(demo_structure())
    run_locally(flow, store=jobs, log=False, ensure_success=True)
    return jobs.get_output(flow.output.uuid, load=True), jobs.get_output(flow.jobs[0].uuid)


def test_vasp_standin_and_mlip_relax_to_the_same_energy(stores):
    settings = RelaxStageSettings(fmax_ev_per_a=0.01, max_steps=200)
    standin = get_engine(VaspStandinEngineSpec(ionic_criterion="force"))
    via_vasp, task_doc = _relax(stores, standin, settings)
    via_mlip, _ = _relax(stores, get_engine(MLIPEngineSpec()), settings)
    per_atom = abs(via_vasp["energy_per_atom_ev"] - via_mlip["energy_per_atom_ev"])
    assert per_atom < 1e-3  # eV/atom
    assert via_vasp["energy_ev"] < via_vasp["initial_energy_ev"]
    assert via_vasp["max_force_ev_per_a"] < 0.01  # |EDIFFG| = fmax
    assert via_vasp["volume_a3"] == pytest.approx(via_mlip["volume_a3"], rel=2e-3)
    # the task document came through atomate2's VASP parser and says it is not DFT
    assert task_doc["@class"] == "TaskDoc" and task_doc["task_type"] == "Structure Optimization"
    assert "standin" in str(task_doc["calcs_reversed"][0]["vasp_version"])
    assert via_vasp["engine"]["engine"] == "vasp-standin:chgnet:0.3.0"
    assert "not a DFT result" in via_vasp["engine"]["note"]


def test_vasp_md_segment_gives_the_same_md_document_as_the_mlip_engine(stores, tmp_path):
    """An NVT segment through atomate2's MDMaker + custodian + stand-in becomes an MDResult with a
    chunked trajectory, like the MLIP engine's; its temperature stays near TEBEG."""
    from ctaflow.analysis.chunks import join_chunks
    from ctaflow.makers.md import MDControls, MDSegment

    s = demo_structure()
    s.scale_lattice(4.54**3)
    s.make_supercell([2, 2, 1])  # 20 atoms
    engine = get_engine(VaspStandinEngineSpec())
    maker = engine.md_maker(
        MDSegment("hot", "nvt", 600, 600, 0.04), 40, 3, MDControls(sample_every=2)
    )
    flow = maker.make(s)
    jobs, _ = stores
    run_locally(
        flow, store=jobs, log=False, ensure_success=True, create_folders=True, root_dir=tmp_path
    )
    out = jobs.get_output(flow.output.uuid, load=True)
    frames = join_chunks(out["trajectory"])
    assert (
        out["n_frames"] == 20
        and out["n_steps"] == 40
        and frames["positions_a"].shape == (20, 20, 3)
    )
    assert out["thermostat"] == "VASP MDALGO=2"
    # 20 atoms, 40 fs of Nosé-Hoover from a 600 K Maxwell-Boltzmann start
    assert abs(out["mean_temperature_k"] - 600) < 0.3 * 600
    assert out["final_structure"]["sites"][0]["properties"]["site_class"] == "framework"
    assert out["engine"]["engine"] == "vasp-standin:chgnet:0.3.0"
    # the INCAR carried the seed and the study's cutoff
    incar = jobs.get_output(flow.jobs[0].uuid)["calcs_reversed"][0]["input"]["incar"]
    assert incar["RANDOM_SEED"] == [3, 0, 0] and incar["ENCUT"] == 520 and incar["NSW"] == 40
