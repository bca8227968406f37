"""The training-data stage over a Na→Li series: frames per composition and x on every frame."""

from __future__ import annotations

import io

import pytest
from ase.io import read
from jobflow import run_locally

from ctaflow.analysis.blobs import unpack_file
from ctaflow.campaign.schema import (
    MLIPEngineSpec,
    RelaxStageSettings,
    SeriesSettings,
    TrainingDataStageSettings,
)
from ctaflow.engines import get_engine
from ctaflow.makers.mlff import TrainingDataMaker
from ctaflow.structures import demo_structure


@pytest.mark.slow
def test_series_dataset_has_every_composition(stores, tmp_path):
    jobs, _ = stores
    maker = TrainingDataMaker(
        get_engine(MLIPEngineSpec()),
        TrainingDataStageSettings(
            supercell_min_width_a=9.0, temperatures_k=[800], md_ps=0.02, sample_every=2
        ),
        SeriesSettings(replace="Na", by="Li", sites="mobile", n_compositions=3),
        RelaxStageSettings(fmax_ev_per_a=0.1, max_steps=60),
    )
    flow = maker.make(demo_structure())
    run_locally(
        flow, store=jobs, log=False, ensure_success=True, create_folders=True, root_dir=tmp_path
    )
    data = jobs.get_output(flow.output.uuid, load=True)
    # 2x2x2 cell, 24 Na: x = 0, 1/2, 1 -> 0, 12, 24 Li; 20 steps / 2 + 1 = 11 frames each
    assert data["n_frames_by_composition"] == {"Na3ClO": 11, "Na3Li3(ClO)2": 11, "Li3ClO": 11}
    assert sum(data["n_frames"].values()) == 33
    frames = read(
        io.StringIO(unpack_file(data["files"]["train"]).decode()), index=":", format="extxyz"
    )
    assert {a.info["config_type"] for a in frames} <= {"Na3ClO", "Na3Li3(ClO)2", "Li3ClO"}
    assert all(len(a) == 40 for a in frames)
