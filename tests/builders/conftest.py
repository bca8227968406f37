"""A small campaign's job store, filled by running real ctaflow jobs (no ML model, no MD engine).

* transport: the stage's own jobs (``transport_flow``: kinisi on each production run, then the
  Arrhenius job over the runs that pass the regime checks) on synthetic random-walk MD segments
  whose D follows an Arrhenius law;
* relax: the stage's ``relax_summary`` job on hand-made initial/final structures;
* mlff: a job returning the real :class:`MLFFResult` with metrics from ``validation_metrics``
  on hand-made predictions (training a model is what the mlff tests do; here only the document
  matters).

The store is filled once per session and copied into every test's work directory.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from jobflow import Flow, job
from pymatgen.core import Lattice, Structure

from ctaflow.analysis.blobs import PART_DATA_KEY, pack_file
from ctaflow.analysis.mlff import MLFFResult, validation_metrics
from ctaflow.makers.relax import relax_summary
from ctaflow.makers.transport import transport_flow, transport_job
from tests.makers.test_transport_stage import walk_md as random_walk_md

K_B_EV = 8.617333262e-5
EA_TRUE_EV, D600 = 0.25, 2e-5  # Arrhenius law of the synthetic walkers (cm²/s at 600 K)
TRANSPORT = {
    "by_site_class": True,
    "fit_start_ps": None,
    "fit_end_ps": None,
    "collective": False,
    "n_samples": 100,
    "n_walkers": 8,
    "seed": 0,
    # the mobile walkers reach 0.7-6 Å² in 1.5 ps at 500-800 K; the fixed (pillar) Li only
    # their 0.06 Å² of rattling: they are refused from the fit (no hop length in a bare segment)
    "min_msd_a2": 0.3,
    "slope_tolerance": 0.25,
    "min_temperatures": 3,
}
CAMPAIGN = {"campaign": "demo", "campaign_fingerprint": "fp-1", "composition": "Li2O"}
ENGINE_A, ENGINE_B = "mlip:A", "mlip:B"


def meta(stage: str, engine: str | None, settings_hash: str = "h-1", **extra) -> dict:
    return {**CAMPAIGN, "stage": stage, "engine": engine, "settings_hash": settings_hash, **extra}


def walk_md(temperature_k: float, seed: int, n_frames: int = 150, rattle_a: float = 0.1):
    """A production run at ``temperature_k`` whose mobile Li follow D(T) = D600 exp(...)."""
    d = D600 * np.exp(-EA_TRUE_EV / K_B_EV * (1 / temperature_k - 1 / 600.0))
    return random_walk_md(
        d, n_frames=n_frames, seed=seed, temperature_k=temperature_k, rattle_a=rattle_a
    )


def transport_stage(temperatures, engine: str, seed: int = 0, **md) -> Flow:
    """The transport stage's flow (one analysis per temperature + Arrhenius) with metadata."""
    mds = [walk_md(t, seed + i, **md) for i, t in enumerate(temperatures)]
    flow = transport_flow(mds, None, TRANSPORT)
    flow.update_metadata(meta("transport", engine))
    return flow


def one_transport_task(temperature_k: float, engine: str, seed: int, **md) -> Flow:
    analysis = transport_job(walk_md(temperature_k, seed, **md), None, TRANSPORT)
    analysis.name = "transport"
    flow = Flow([analysis])
    flow.update_metadata(meta("transport", engine))
    return flow


def relax_stage(stage: str = "relax", forces=((0.0, 0.0, 0.01), (0.0, 0.0, -0.01))) -> Flow:
    """relax_summary on a hand-made NaCl relaxation: −7.0 eV for 2 atoms, first step −6.5 eV."""
    initial = Structure(
        Lattice.cubic(4.0),
        ["Na", "Cl"],
        [[0, 0, 0], [0.5, 0.5, 0.5]],
        site_properties={"site_class": ["mobile", "framework"]},
    )
    final = Structure(Lattice.cubic(4.2), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    summary = relax_summary(
        initial,
        final,
        -7.0,
        [list(f) for f in forces],
        0.02,
        {"kind": "mlip", "model": "A"},
        initial_energy_ev=-6.5,
        n_steps=12,
    )
    summary.name = "relax summary"
    flow = Flow([summary])
    flow.update_metadata(meta(stage, ENGINE_A, settings_hash="relax-1"))
    return flow


@job(data=[PART_DATA_KEY])
def mlff_result() -> MLFFResult:
    """A trained-model document whose test-set metrics come from ``validation_metrics``; its
    model part goes to the ``data`` store as the real training job's does (the builder must
    read the output without it)."""
    rng = np.random.default_rng(0)
    rows = []
    for composition, n_atoms, error in (("Li3ClO", 5, 0.01), ("Na3ClO", 5, 0.03)):
        for _ in range(4):
            forces = rng.normal(0, 1, (n_atoms, 3))
            rows.append(
                {
                    "composition": composition,
                    "n_atoms": n_atoms,
                    "energy_ref_ev": -3.0 * n_atoms,
                    "energy_pred_ev": -3.0 * n_atoms + error * n_atoms,
                    "forces_ref_ev_per_a": forces.tolist(),
                    "forces_pred_ev_per_a": (forces + 2 * error).tolist(),
                }
            )
    model = pack_file(bytes(range(256)) * 8, "mace.model")
    return MLFFResult(
        model=model,
        model_sha256=model[0].sha256,
        hyperparameters={"num_channels": 16},
        n_train=32,
        n_valid=4,
        n_test=8,
        **validation_metrics(rows),
        epochs_log=[{"epoch": 1.0, "loss": 1.0}, {"epoch": 2.0, "loss": 0.5}],
        training_time_s=10.0,
        labeller="mlip:A",
    )


def mlff_stage() -> Flow:
    fit = mlff_result()
    fit.name = "train mace"
    flow = Flow([fit])
    flow.update_metadata(meta("mlff", "mace", settings_hash="mlff-1"))
    return flow


def run(flow: Flow, workdir) -> None:
    from ctaflow.execution.local import run_flow
    from ctaflow.store import job_store, state_store

    report = run_flow(flow, job_store(None, workdir), state_store(None, workdir), workdir)
    assert report.n_ran > 0


@pytest.fixture(scope="session")
def campaign_store(tmp_path_factory):
    """Work directory of a small campaign: relax, mlff, and transport with two engines
    (A at 500 and 600 K: too few for a fit; B at 600, 700 and 800 K), each with its Arrhenius
    job."""
    workdir = tmp_path_factory.mktemp("campaign")
    run(relax_stage(), workdir)
    run(relax_stage(stage="training_data"), workdir)  # other stage: not read by RelaxBuilder
    run(mlff_stage(), workdir)
    run(transport_stage([500.0, 600.0], ENGINE_A, seed=0), workdir)
    run(transport_stage([600.0, 700.0, 800.0], ENGINE_B, seed=10), workdir)
    return workdir


@pytest.fixture
def filled(campaign_store, workdir):
    """A private copy of the campaign's store in this test's work directory."""
    shutil.copytree(campaign_store / "store", workdir / "store")
    return workdir


def make_builder(cls, workdir):
    """A builder on the embedded store of ``workdir``."""
    from ctaflow.store import derived_store, job_store

    return cls(job_store(None, workdir), derived_store(None, workdir, cls.collection))


def derived_docs(workdir, name: str, **criteria) -> list[dict]:
    """Documents of the derived collection ``name``."""
    from ctaflow.store import derived_store

    store = derived_store(None, workdir, name)
    store.connect()
    return list(store.query(criteria))


def outputs(workdir, **criteria) -> list[dict]:
    """Job output documents."""
    from ctaflow.store import job_store

    store = job_store(None, workdir)
    store.connect()
    return list(store.query(criteria))
