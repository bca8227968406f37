"""The training-data stage over a Na→Li series: frames per composition and x on every frame."""

from __future__ import annotations

import io

import pytest
from ase.io import read
from jobflow import run_locally

from ctaflow.analysis.blobs import unpack_file
from ctaflow.campaign.sources import SeriesSettings
from ctaflow.campaign.stages import RelaxStageSettings
from ctaflow.campaign.stages_mlff import TrainingDataStageSettings
from ctaflow.engines import get_engine
from ctaflow.engines.specs import MLIPEngineSpec
from ctaflow.makers.training_data import TrainingDataMaker
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
    # 2x2x2 cell, 24 Na: x = 0, 1/2, 1 -> 0, 12, 24 Li; 20 steps / 2 + 1 = 11 MD frames each,
    # plus the labeller's relaxation steps of each member (less the last one, which the first
    # MD frame repeats and deduplication drops)
    n_md = 3 * 11
    assert data["sources"]["md 800 K"] == n_md
    n_relax = data["sources"]["relaxation"]
    assert n_relax >= 3  # the unrelaxed members differ from their relaxed selves
    assert sum(data["n_frames"].values()) == n_md + n_relax
    assert set(data["n_frames_by_composition"]) == {"Na3ClO", "Na3Li3(ClO)2", "Li3ClO"}
    assert all(n >= 12 for n in data["n_frames_by_composition"].values())
    frames = []
    for split in ("train", "valid", "test"):
        text = unpack_file(data["files"][split]).decode()
        frames += read(io.StringIO(text), index=":", format="extxyz")
    assert {a.info["config_type"] for a in frames} == {"Na3ClO", "Na3Li3(ClO)2", "Li3ClO"}
    assert all(len(a) == 40 for a in frames)
    # energy falls along each relaxation: its first frame lies above its lowest one
    for comp in ("Na3ClO", "Na3Li3(ClO)2", "Li3ClO"):
        relax = [
            a for a in frames if a.info["config_type"] == comp and a.info["source"] == "relaxation"
        ]
        energies = [a.info["REF_energy"] for a in relax]
        if len(energies) > 1:
            assert max(energies) > min(energies)


def test_an_npt_melt_is_labelled_and_explored_npt(monkeypatch):
    """amorphous ensemble npt: the melt's condition of use carries its pressure, so the labeller
    runs it (and the quench ramp after it) NPT with the Berendsen barostat, the other labelling
    temperatures NVT; the exploration's integrator follows the same condition (EMT in place of
    the model: a compressed crystal at 0 GPa expands under NPT, keeps its cell under NVT)."""
    import numpy as np
    from ase.calculators.emt import EMT
    from pymatgen.io.ase import AseAtomsAdaptor

    from ctaflow.campaign.stages import AmorphousStageSettings
    from ctaflow.makers import mlff
    from ctaflow.stages.conditions import amorphous_conditions
    from tests.makers.fast_engine import EMTEngine, cu3au

    st = AmorphousStageSettings(melt_temperature_k=2000, ensemble="npt", pressure_gpa=0.0)
    melt, quench = amorphous_conditions(st)
    assert melt.pressure_gpa == quench.pressure_gpa == 0.0
    assert melt.barostat_damping_fs == st.barostat_damping_fs
    assert amorphous_conditions(AmorphousStageSettings())[0].pressure_gpa is None  # nvt
    maker = TrainingDataMaker(
        engine=EMTEngine(MLIPEngineSpec()),
        settings=TrainingDataStageSettings(supercell_min_width_a=3.0, temperatures_k=[1000.0]),
        conditions=[melt, quench],
    )
    flow = maker.make(cu3au())
    md = {
        job.name: job.function.__self__ for job in flow.jobs if job.name.startswith("labelling md")
    }
    assert set(md) == {"labelling md 1000 K", "labelling md 2000 K", "labelling md 2000 -> 300 K"}
    assert md["labelling md 1000 K"].ensemble.value == "nvt"
    for name in ("labelling md 2000 K", "labelling md 2000 -> 300 K"):
        assert md[name].ensemble.value == "npt" and md[name].dynamics == "berendsen"
        assert md[name].pressure == 0.0 and md[name].ase_md_kwargs["pressure_au"] == 0.0

    monkeypatch.setattr(mlff, "mace_calculator", lambda *a, **k: EMT())
    cell = cu3au()
    cell.make_supercell([2, 2, 2])
    cell.scale_lattice(cell.volume * 0.92)  # compressed: under pressure
    start = AseAtomsAdaptor.get_atoms(cell)
    volumes = {}
    for pressure in (None, 0.0):
        frames, _, _ = mlff.langevin_frames(
            "unused", start, 300.0, 200, 50, 2.0, seed=1, pressure_gpa=pressure
        )
        volumes[pressure] = [f.get_volume() for f in frames]
    assert np.allclose(volumes[None], cell.volume)
    assert volumes[0.0][-1] > 1.03 * cell.volume
