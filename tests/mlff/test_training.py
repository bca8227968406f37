"""MACE training in the flow: the model learns the labeller's forces, is stored in the data store,
loads again by reference in a later process, and a corrupt model file is refused clearly."""

from __future__ import annotations

import numpy as np
import pytest
from jobflow import Flow, run_locally

from ctaflow.analysis.chunks import join_chunks
from ctaflow.campaign.stages_mlff import MLFFStageSettings
from ctaflow.engines import get_engine
from ctaflow.engines.params import MDControls, MDSegment
from ctaflow.engines.specs import MaceEngineSpec, MLIPEngineSpec
from ctaflow.errors import EngineError
from ctaflow.makers.mlff import materialise_model, train_mace_job
from ctaflow.makers.training_data import dataset_job
from ctaflow.structures import demo_structure


@pytest.mark.slow
def test_tiny_mace_learns_forces_and_runs_md_from_the_store(stores, tmp_path):
    jobs, _ = stores
    cell = demo_structure()
    cell.scale_lattice(4.54**3)
    cell.make_supercell([2, 2, 2])
    labeller = get_engine(MLIPEngineSpec())
    md = labeller.md_maker(
        MDSegment("label", "nvt", 900, 900, 0.15), 150, 0, MDControls(sample_every=3)
    )
    md_job = md.make(cell)
    data = dataset_job([md_job.output], labeller.label, [0.7, 0.15, 0.15], 0, 0.01)
    hyper = MLFFStageSettings(max_num_epochs=8, batch_size=5).hyperparameters()
    fit = train_mace_job(data.output, hyper, 1, {"temperature_k": 300.0, "n_steps": 40})
    run_locally(
        Flow([md_job, data, fit]),
        store=jobs,
        log=False,
        ensure_success=True,
        create_folders=True,
        root_dir=tmp_path / "jobs",
    )
    result = jobs.get_output(fit.uuid, load=True)
    reference = join_chunks(jobs.get_output(md_job.uuid, load=True)["trajectory"])
    rms_force = 1000 * np.sqrt(np.mean(reference["forces_ev_per_a"] ** 2))  # meV/Å
    # a model that learned nothing (zero forces) has RMSE = rms_force; this one must do better
    assert result["rmse_force_mev_per_a"] < 0.6 * rms_force
    assert result["n_train"] + result["n_valid"] + result["n_test"] == 51
    assert len(result["epochs_log"]) == 8  # progress reached the log
    assert result["per_composition"][0]["composition"] == "Na3ClO"
    check = result["md_sanity"]  # the short MD with the trained model, judged as stated
    assert check["n_steps"] == 40 and check["n_atoms"] == 40 and check["temperature_k"] == 300
    assert check["stable"] == (
        check["first_overlap_step"] is None and 150 <= check["mean_temperature_k"] <= 600
    )
    # the model file is in the data store, not in the job document
    import json

    fit_doc = jobs.docs_store.query_one({"uuid": fit.uuid})
    assert "blob_uuid" in json.dumps(fit_doc["output"]["model"], default=str)

    # the stored model file loads again (as a later process would) and drives MD
    path = materialise_model(result["model"], tmp_path / "cache")
    # ... and reloads in new processes with bit-identical float64 predictions
    import subprocess
    import sys

    from pymatgen.io.ase import AseAtomsAdaptor

    from ctaflow.engines.calculators import mace_calculator

    atoms = AseAtomsAdaptor.get_atoms(cell)
    atoms.rattle(0.05, seed=4)  # off the symmetric sites (forces there are round-off); .traj
    # keeps float64 positions (extxyz text would round them)
    atoms.write(tmp_path / "probe.traj")
    atoms.calc = mace_calculator(str(path), threads=1)
    here = np.append(atoms.get_forces().ravel(), atoms.get_potential_energy())
    script = (
        "import numpy as np, sys; from ase.io import read; "
        "from ctaflow.engines.calculators import mace_calculator; "
        "a = read(sys.argv[1]); a.calc = mace_calculator(sys.argv[2], threads=1); "
        "np.save(sys.argv[3], np.append(a.get_forces().ravel(), a.get_potential_energy()))"
    )
    runs = []
    for k in range(2):  # two fresh processes: bit-identical predictions
        out = tmp_path / f"there{k}.npy"
        subprocess.run(
            [sys.executable, "-c", script, str(tmp_path / "probe.traj"), str(path), str(out)],
            check=True,
            timeout=300,
        )
        runs.append(np.load(out))
    assert np.array_equal(runs[0], runs[1])
    # this long-lived test process (CHGNet and MD ran in it) agrees to round-off
    assert np.max(np.abs(runs[0] - here)) < 1e-9
    mace = get_engine(MaceEngineSpec(model_path=path))
    mace.check_available()
    seg = mace.md_maker(
        MDSegment("check", "nvt", 300, 300, 0.01), 10, 0, MDControls(sample_every=5)
    )
    check = seg.make(cell)
    run_locally(check, store=jobs, log=False, ensure_success=True)
    assert jobs.get_output(check.uuid, load=True)["n_frames"] == 3


def test_corrupt_model_is_refused_with_a_fix(tmp_path):
    bad = tmp_path / "broken.model"
    bad.write_bytes(b"not a model")
    with pytest.raises(EngineError, match="cannot be loaded .*retrain it or point model_path"):
        get_engine(MaceEngineSpec(model_path=bad)).check_available()
    with pytest.raises(EngineError, match="not found"):
        get_engine(MaceEngineSpec(model_path=tmp_path / "none.model")).check_available()
