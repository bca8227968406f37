"""One active-learning round in jobflow: a committee of two tiny MACE models explores, frames in
the trust window are relabelled by the labeller (CHGNet here), added to the training split, and
the committee is retrained."""

from __future__ import annotations

import numpy as np
import pytest
from jobflow import Flow, run_locally

from ctaflow.analysis.blobs import unpack_file
from ctaflow.campaign.schema import CampaignSettings
from ctaflow.campaign.stages_mlff import ActiveLearningStageSettings, MLFFStageSettings
from ctaflow.engines import get_engine
from ctaflow.engines.params import MDControls, MDSegment
from ctaflow.engines.specs import MLIPEngineSpec
from ctaflow.makers.active_learning import active_learning_job, committee_seeds
from ctaflow.makers.mlff import train_mace_job
from ctaflow.makers.training_data import dataset_job
from ctaflow.structures import demo_structure


@pytest.mark.slow
def test_one_round_relabels_selected_frames_and_retrains(stores, tmp_path):
    from ase.io import read
    from chgnet.model import CHGNet
    from pymatgen.core import Structure

    jobs, _ = stores
    cell = demo_structure()
    cell.scale_lattice(4.54**3)
    cell.make_supercell([2, 2, 2])
    spec = MLIPEngineSpec()
    labeller = get_engine(spec)
    md = labeller.md_maker(
        MDSegment("label", "nvt", 900, 900, 0.1), 99, 0, MDControls(sample_every=3)
    ).make(cell)
    data = dataset_job([md.output], labeller.label, [0.7, 0.15, 0.15], 0, 0.01)
    hyper = MLFFStageSettings(max_num_epochs=3, batch_size=5).hyperparameters()
    fit = train_mace_job(data.output, hyper, 1, None, committee_seeds(hyper["seed"], 2))
    al = ActiveLearningStageSettings(
        committee_size=2,
        explore_temperature_k=900,
        explore_steps=20,
        explore_sample_every=5,
        trust_lower_ev_per_a=0.0,  # every frame is a candidate: the cap decides
        trust_upper_ev_per_a=1000.0,
        max_selected=3,
        max_iterations=1,
    )
    loop = active_learning_job(data.output, fit.output, al, labeller, hyper)
    run_locally(
        Flow([md, data, fit, loop]),
        store=jobs,
        log=False,
        ensure_success=True,
        raise_immediately=True,
        create_folders=True,
        root_dir=tmp_path / "jobs",
    )
    first = jobs.get_output(fit.uuid, load=True)
    assert [m["seed"] for m in first["committee"]] == [1001]
    assert first["committee"][0]["model_sha256"] != first["model_sha256"]  # another model
    result = jobs.get_output(loop.uuid, load=True)  # the last exploration's output
    result = result.model_dump() if hasattr(result, "model_dump") else result
    it0, it1 = result["iterations"]
    assert it0["n_frames"] == 4 and it0["n_selected"] == 3  # 20 steps / 5, capped at 3
    assert sum(f["selected"] for f in it0["frames"]) == 3
    # lower bound 0: every frame stays a candidate, so the loop stops unconverged and says so
    assert it1["n_selected"] == 0 and result["stop_reason"] == (
        "reached max_iterations = 1; not converged: explore 900 K 100 %"
    )
    assert it1["n_train"] == it0["n_train"] + 3 and result["n_added_frames"] == 3
    # members of a committee disagree somewhere: the deviation is a positive number
    assert all(f["deviation_ev_per_a"] > 0 for f in it0["frames"])
    # the final model is the retrained member 0, not the first one, warm-started from it: its
    # first epoch already starts near where the first training ended
    assert result["model_sha256"] != first["model_sha256"]
    retrained = next(
        jobs.get_output(d["uuid"], load=True)
        for d in jobs.query({"name": "al retrain 1"}, properties=["uuid"])
    )
    retrained = retrained.model_dump() if hasattr(retrained, "model_dump") else retrained
    assert retrained["initial_model_sha256"] == first["model_sha256"]
    # the two members retrain side by side: the job claims two cores from the local runner
    assert jobs.query_one({"name": "al retrain 1"}, ["metadata"])["metadata"]["cores"] == 2
    assert retrained["model_sha256"] == result["model_sha256"]
    assert retrained["epochs_log"][0]["loss"] < first["epochs_log"][0]["loss"]

    # the grown training split: old frames + the 3 relabelled ones, labels = CHGNet's own
    grown = next(
        jobs.get_output(d["uuid"], load=True)
        for d in jobs.query({"name": "al dataset 1"}, properties=["uuid"])
    )
    grown = grown.model_dump() if hasattr(grown, "model_dump") else grown
    base = jobs.get_output(data.uuid, load=True)
    assert grown["n_frames"]["train"] == base["n_frames"]["train"] + 3
    assert grown["n_frames"]["test"] == base["n_frames"]["test"]  # test split fixed
    assert grown["sources"]["active learning 1"] == 3
    path = tmp_path / "train.extxyz"
    path.write_bytes(unpack_file(grown["files"]["train"]))
    added = [a for a in read(path, index=":") if a.info["source"] == "active learning 1"]
    assert len(added) == 3
    model = CHGNet.load()
    for atoms in added:
        structure = Structure(
            atoms.cell[:], atoms.get_chemical_symbols(), atoms.positions, coords_are_cartesian=True
        )
        pred = model.predict_structure(structure)
        assert atoms.info["REF_energy"] == pytest.approx(float(pred["e"]) * len(atoms), abs=2e-3)
        assert np.abs(atoms.arrays["REF_forces"] - pred["f"]).max() < 2e-3


def test_active_learning_needs_the_mlff_stage():
    with pytest.raises(ValueError, match="enable stages.mlff"):
        CampaignSettings.model_validate(
            {
                "name": "x",
                "stages": {
                    "training_data": {"engine": "labeller"},
                    "active_learning": {"committee_size": 2},
                },
            }
        )
    with pytest.raises(ValueError, match="must be below"):
        ActiveLearningStageSettings(trust_lower_ev_per_a=0.3, trust_upper_ev_per_a=0.2)
