"""The VASP path (atomate2 RelaxMaker + custodian + the stand-in) and the embedded MLIP engine give
the same relaxed energy when the same MLIP is underneath (issue: engines, done-means 1 and 2)."""

from __future__ import annotations

import pytest
from jobflow import run_locally

from ctaflow.campaign.stages import RelaxStageSettings
from ctaflow.engines import get_engine
from ctaflow.engines.specs import MLIPEngineSpec, VaspStandinEngineSpec
from ctaflow.makers.relax import RelaxStageMaker
from ctaflow.structures import demo_structure
from tests.conftest import stored_output


def _relax(stores, engine, settings):
    jobs, _ = stores
    flow = RelaxStageMaker(engine=engine, settings=settings).make(demo_structure())
    run_locally(flow, store=jobs, log=False, ensure_success=True)
    return stored_output(jobs, flow.output.uuid), jobs.get_output(flow.jobs[0].uuid)


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
    from ctaflow.engines.params import MDControls, MDSegment

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
    out = stored_output(jobs, flow.output.uuid)
    frames = join_chunks(out["trajectory"])
    assert (
        out["n_frames"] == 20
        and out["n_steps"] == 40
        and frames["positions_a"].shape == (20, 20, 3)
    )
    assert out["thermostat"] == "VASP MDALGO=2"
    # the structure at rest started at 2 × TEBEG (velocities written to the POSCAR in Å/fs;
    # VASP counts 3N − 3 degrees of freedom), checked against its target, and the final
    # structure carries velocities to a next segment
    assert frames["temperatures_k"][0] == pytest.approx(1200 * 60 / 57, abs=0.01)
    assert out["target_check"]["target_temperature_k"] == 600
    assert "velocities" in out["final_structure"]["sites"][0]["properties"]
    # 20 atoms, 40 fs of Nosé-Hoover from a 600 K Maxwell-Boltzmann start
    assert abs(out["mean_temperature_k"] - 600) < 0.3 * 600
    assert out["final_structure"]["sites"][0]["properties"]["site_class"] == "framework"
    assert out["engine"]["engine"] == "vasp-standin:chgnet:0.3.0"
    # the INCAR carried the seed and the study's cutoff (jobs: start velocities, VASP, result)
    incar = jobs.get_output(flow.jobs[1].uuid)["calcs_reversed"][0]["input"]["incar"]
    assert incar["RANDOM_SEED"] == [3, 0, 0] and incar["ENCUT"] == 520 and incar["NSW"] == 40


def test_relabelling_through_vasp_or_mlip_gives_the_same_dataset_frame(stores, tmp_path):
    """Active learning relabels a frame with the labeller's static maker; the VASP path (stand-in)
    and the MLIP path give the same energy, forces and stress (GPa, ASE sign) in the dataset."""
    from ase.io import read

    from ctaflow.analysis.blobs import pack_file, unpack_file
    from ctaflow.analysis.dataset import LabelledFrame, to_extxyz
    from ctaflow.analysis.mlff import DatasetResult
    from ctaflow.engines.calculators import chgnet_calculator
    from ctaflow.makers.active_learning import extend_dataset_job

    s = demo_structure()
    s.scale_lattice((0.97 * 4.54) ** 3)  # compressed (CHGNet a = 4.535 Å): pushes outwards
    s.translate_sites([0], [0.03, 0.0, 0.0])  # one ion off its site: a real force
    atoms = s.to_ase_atoms()
    atoms.calc = chgnet_calculator("0.3.0", "cpu")
    ref_e, ref_f, ref_s = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
    assert ref_s[:3].mean() < 0  # ASE sign: compressed cell -> negative stress

    seed = LabelledFrame(
        species=[site.specie.symbol for site in s],
        positions_a=s.cart_coords.tolist(),
        cell_a=s.lattice.matrix.tolist(),
        energy_ev=0.0,
        forces_ev_per_a=[[0.0, 0.0, 0.0]] * len(s),
        composition="Na3ClO",
        source="md 900 K",
        labeller="x",
    )
    parts = pack_file(to_extxyz([seed]).encode(), "train.extxyz")
    dataset = DatasetResult(
        n_frames={"train": 1, "valid": 0, "test": 0},
        n_frames_by_composition={"Na3ClO": 1},
        n_duplicates_removed=0,
        labeller="x",
        sources={"md 900 K": 1},
        split_seed=0,
        files={"train": parts, "valid": parts, "test": parts},
    )
    jobs, _ = stores
    for k, spec in enumerate((VaspStandinEngineSpec(), MLIPEngineSpec())):
        engine = get_engine(spec)
        label = engine.static_maker().make(s)
        grown = extend_dataset_job(dataset, [engine.static_outputs(label)], 0)
        run_locally(
            [label, grown],
            store=jobs,
            log=False,
            ensure_success=True,
            create_folders=True,
            root_dir=tmp_path / str(k),
        )
        out = jobs.get_output(grown.uuid, load=True)
        out = out.model_dump() if hasattr(out, "model_dump") else out
        assert out["n_frames"]["train"] == 2 and out["sources"]["active learning 1"] == 1
        path = tmp_path / f"train{k}.extxyz"
        path.write_bytes(unpack_file(out["files"]["train"]))
        frame = read(path, index=-1)
        assert frame.info["REF_energy"] == pytest.approx(ref_e, abs=2e-3), spec.kind
        assert abs(frame.arrays["REF_forces"] - ref_f).max() < 2e-3
        assert abs(frame.arrays["REF_forces"]).max() > 0.05
        assert abs(frame.info["REF_stress"] - ref_s).max() < 1e-4  # eV/Å³, same sign as ASE


def test_relaxation_frames_through_vasp_or_mlip_match_the_labeller(stores, tmp_path):
    """Training data includes the labeller's relaxation steps: both engines' ionic steps become
    frames whose first one is the labeller's own energy, forces and stress (ASE sign) of the
    starting structure, and whose energy falls along the relaxation."""
    from ctaflow.analysis.dataset import frames_from_ionic_steps
    from ctaflow.engines.calculators import chgnet_calculator

    s = demo_structure()
    s.scale_lattice((0.97 * 4.54) ** 3)
    s.translate_sites([0], [0.03, 0.0, 0.0])
    atoms = s.to_ase_atoms()
    atoms.calc = chgnet_calculator("0.3.0", "cpu")
    ref_e, ref_f, ref_s = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
    settings = RelaxStageSettings(fmax_ev_per_a=0.05, max_steps=30, relax_cell=True)
    jobs, _ = stores
    for k, spec in enumerate((VaspStandinEngineSpec(), MLIPEngineSpec())):
        engine = get_engine(spec)
        relax = engine.relax_maker(settings).make(s)
        run_locally(
            relax,
            store=jobs,
            log=False,
            ensure_success=True,
            create_folders=True,
            root_dir=tmp_path / str(k),
        )
        doc = jobs.get_output(relax.uuid, load=True)
        doc = doc if isinstance(doc, dict) else doc.model_dump()
        steps = (
            doc["calcs_reversed"][0]["output"]["ionic_steps"]
            if doc.get("calcs_reversed")
            else doc["output"]["ionic_steps"]
        )
        frames = frames_from_ionic_steps(steps, source="relaxation", labeller=engine.label)
        assert len(frames) == len(steps) > 2, spec.kind
        first = frames[0]
        assert first.composition == "Na3ClO" and first.source == "relaxation"
        assert first.energy_ev == pytest.approx(ref_e, abs=2e-3)
        assert abs(first.forces_ev_per_a[0][0] - ref_f[0][0]) < 2e-3
        stress = first.stress_gpa  # GPa, ASE sign (negative: compressed)
        assert stress[0][0] == pytest.approx(ref_s[0] * 160.21766, abs=0.02)
        assert frames[-1].energy_ev < first.energy_ev
