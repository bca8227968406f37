"""Committee active learning as a dynamic jobflow.

One job explores with member 0 of the committee, judges every sampled frame by the committee
force deviation (:mod:`ctaflow.analysis.active_learning`) and either ends the loop or replaces
itself by: a static labelling job per selected frame (the training-data labeller, any engine) →
a job that adds the labelled frames to the training split → the committee's retraining → the
next exploration job. The last exploration's output is the stage's output.
"""

from __future__ import annotations

import io
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from ase.io import read
from jobflow import Flow, Response, job
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from ctaflow.analysis.active_learning import (
    ActiveLearningResult,
    ALIterationStats,
    ExploredFrame,
    UseCondition,
    condition_stats,
    force_deviation,
    select_by_condition,
    stop_reason_by_condition,
    window_summary,
)
from ctaflow.analysis.blobs import pack_file, unpack_file
from ctaflow.analysis.dataset import LabelledFrame, to_extxyz
from ctaflow.analysis.mlff import DatasetResult, MLFFResult
from ctaflow.campaign.stages_mlff import ActiveLearningStageSettings
from ctaflow.engines.base import Engine
from ctaflow.engines.calculators import mace_calculator
from ctaflow.jobs import BULKY_KEYS, result_job
from ctaflow.makers.mlff import (
    claim_training_cores,
    langevin_frames,
    materialise_model,
    train_mace_job,
)
from ctaflow.settings import TrustWindow
from ctaflow.structures.random_packing import random_packing

logger = logging.getLogger(__name__)


def exploration_starts(train_extxyz: str) -> list[tuple[str, Any]]:
    """The first training frame of each composition (``config_type``), in file order."""
    starts: dict[str, Any] = {}
    for atoms in read(io.StringIO(train_extxyz), index=":", format="extxyz"):
        comp = str(atoms.info.get("config_type", atoms.get_chemical_formula()))
        if comp not in starts:
            atoms.calc = None
            starts[comp] = atoms
    return list(starts.items())


def committee_forces(model_paths: list[Path], frames: list) -> list[np.ndarray]:
    """Per frame, the forces by every member, shape (K, n_atoms, 3), eV/Å (frames may differ
    in size)."""
    by_member = []
    for path in model_paths:
        calc = mace_calculator(str(path))
        forces = []
        for frame in frames:
            atoms = frame.copy()
            atoms.calc = calc
            forces.append(atoms.get_forces())
        by_member.append(forces)
    return [np.stack(per_frame) for per_frame in zip(*by_member, strict=True)]


def static_label_frame(static: dict, labeller: str, iteration: int) -> LabelledFrame:
    """A dataset frame from a static job's outputs (see ``Engine.static_outputs``)."""
    structure = static["structure"]
    if not isinstance(structure, Structure):
        structure = Structure.from_dict(structure)
    forces = np.asarray(static["forces_ev_per_a"], dtype=float)
    stress = static.get("stress_kbar")
    if not np.isfinite(forces).all() or not np.isfinite(static["energy_ev"]):
        raise ValueError(
            f"active-learning iteration {iteration}: the labeller {labeller} returned non-finite "
            "energy or forces for a selected frame; check that labelling job"
        )
    return LabelledFrame(
        species=[site.specie.symbol for site in structure],
        positions_a=structure.cart_coords.tolist(),
        cell_a=structure.lattice.matrix.tolist(),
        energy_ev=float(static["energy_ev"]),
        forces_ev_per_a=forces.tolist(),
        stress_gpa=None if stress is None else (-np.asarray(stress, dtype=float) / 10.0).tolist(),
        composition=structure.composition.reduced_formula,
        source=f"active learning {iteration}",
        labeller=labeller,
    )


@result_job(DatasetResult)
def extend_dataset_job(dataset: DatasetResult | dict, statics: list[dict], iteration: int):
    """The dataset with the relabelled frames appended to its training split (valid and test
    unchanged, so test errors of successive committees are comparable)."""
    ds = dataset if isinstance(dataset, DatasetResult) else DatasetResult.model_validate(dataset)
    frames = [static_label_frame(s, ds.labeller, iteration + 1) for s in statics]
    train = unpack_file(ds.files["train"]).decode() + to_extxyz(frames)
    by_comp = Counter(ds.n_frames_by_composition)
    by_comp.update(f.composition for f in frames)
    sources = Counter(ds.sources)
    sources.update(f.source for f in frames)
    return ds.model_copy(
        update={
            "n_frames": {**ds.n_frames, "train": ds.n_frames["train"] + len(frames)},
            "n_frames_by_composition": dict(by_comp),
            "sources": dict(sources),
            "files": {**ds.files, "train": pack_file(train.encode(), "train.extxyz")},
        }
    )


# no output_schema: jobflow gives a replacing job's schema to the job that stores the replacing
# flow's output, whose input is still a reference when this job replaces itself again
@job(data=BULKY_KEYS)
def active_learning_job(
    dataset: DatasetResult | dict,
    fit: MLFFResult | dict,
    settings: ActiveLearningStageSettings,
    labeller: Engine,
    hyper: dict[str, Any],
    threads: int = 1,
    sanity: dict[str, float] | None = None,
    iteration: int = 0,
    history: list[dict] | None = None,
    n_added: int = 0,
    conditions: list[UseCondition] | None = None,
):
    """Explore with the committee of ``fit``; end the loop or replace this job by the next
    relabel → retrain → explore round (see the module docstring). ``conditions``: the conditions
    of use to explore (see :func:`exploration_conditions`); ``sanity``: the MD check of
    :func:`ctaflow.makers.mlff.train_mace_job`, repeated on every retrained member 0."""
    st = settings
    ds = dataset if isinstance(dataset, DatasetResult) else DatasetResult.model_validate(dataset)
    fit = fit if isinstance(fit, MLFFResult) else MLFFResult.model_validate(fit)
    members = [fit.model] + [m.model for m in fit.committee]
    if len(members) < 2:
        raise ValueError(
            "active learning needs a committee: the mlff stage trained one model only "
            f"(committee_size {st.committee_size}); rerun the mlff stage"
        )
    paths = [materialise_model(parts) for parts in members]
    conds = exploration_conditions(st, conditions)
    starts = exploration_starts(unpack_file(ds.files["train"]).decode())
    frames, meta = [], []
    for k, (comp, start) in enumerate(starts):
        ends: dict[str, Any] = {}  # condition -> its last frame (the next one starts there)
        for c, cond in enumerate(conds):
            if cond.base_only and start.info.get("x", 0.0) != 0.0:
                continue  # the stage runs the model on the campaign's structure only
            n_steps = exploration_steps(st, cond)
            seed = st.seed + 1000 * iteration + 100 * k + c
            begin = ends.get(cond.follows, start)
            if cond.random_start_fraction is not None:  # the stage melts from random positions
                packed = random_packing(
                    AseAtomsAdaptor.get_structure(start), cond.random_start_fraction, seed
                )
                begin = AseAtomsAdaptor.get_atoms(packed)
            sampled, steps, _ = langevin_frames(
                paths[0],
                begin,
                cond.temperature_start_k,
                n_steps,
                st.explore_sample_every,
                cond.timestep_fs,
                seed=seed,
                end_temperature_k=cond.temperature_end_k,
                dtype="float32" if fit.precision and fit.precision.float32_ok else "float64",
                pressure_gpa=cond.pressure_gpa,
                barostat_damping_fs=cond.barostat_damping_fs,
            )
            ends[cond.name] = sampled[-1]
            frames += sampled
            meta += [(comp, cond.name, step) for step in steps]
    deviations = [force_deviation(f) for f in committee_forces(paths, frames)]
    windows = [trust_window(st, comp) for comp, _, _ in meta]
    lo = np.array([w.lower_ev_per_a for w in windows])
    hi = np.array([w.upper_ev_per_a for w in windows])
    names = [name for _, name, _ in meta]
    picked = select_by_condition(deviations, names, lo, hi, st.max_selected, st.seed + iteration)
    by_condition = condition_stats(deviations, names, picked, lo, hi, st.stop_fraction)
    summary = window_summary(deviations, lo, hi)
    reason = stop_reason_by_condition(
        by_condition, len(picked), st.stop_fraction, iteration, st.max_iterations
    )
    if reason is not None:
        picked = []
        by_condition = [c.model_copy(update={"n_selected": 0}) for c in by_condition]
    stats = ALIterationStats(
        iteration=iteration,
        **summary,
        n_selected=len(picked),
        n_train=ds.n_frames["train"],
        test_rmse_force_mev_per_a=fit.rmse_force_mev_per_a,
        test_rmse_energy_mev_per_atom=fit.rmse_energy_mev_per_atom,
        frames=[
            ExploredFrame(
                composition=comp,
                condition=name,
                step=step,
                deviation_ev_per_a=d,
                selected=i in picked,
            )
            for i, ((comp, name, step), d) in enumerate(zip(meta, deviations, strict=True))
        ],
        conditions=by_condition,
    )
    logger.info(
        "active learning %d: %d frames, %d accurate, %d in the window, %d above; %d selected",
        iteration,
        summary["n_frames"],
        summary["n_accurate"],
        summary["n_candidate"],
        summary["n_failed"],
        len(picked),
    )
    history = [*(history or []), stats.model_dump(mode="json")]
    if reason is not None:
        return ActiveLearningResult(
            iterations=[ALIterationStats.model_validate(h) for h in history],
            converged=reason.startswith("converged"),
            stop_reason=reason,
            committee_size=len(members),
            trust_lower_ev_per_a=st.trust_lower_ev_per_a,
            trust_upper_ev_per_a=st.trust_upper_ev_per_a,
            stop_fraction=st.stop_fraction,
            explore_temperature_k=st.explore_temperature_k,
            conditions=conds,
            labeller=ds.labeller,
            n_added_frames=n_added,
            model=fit.model,
            model_sha256=fit.model_sha256,
            committee=[m.model for m in fit.committee],
            rmse_force_mev_per_a=fit.rmse_force_mev_per_a,
            rmse_energy_mev_per_atom=fit.rmse_energy_mev_per_atom,
            md_sanity=fit.md_sanity,
            precision=fit.precision,
        )
    statics = []
    for n, i in enumerate(picked):
        label = labeller.static_maker().make(AseAtomsAdaptor.get_structure(frames[i]))
        label.name = f"al label {iteration + 1}.{n}"
        statics.append(label)
    grown = extend_dataset_job(ds, [labeller.static_outputs(s) for s in statics], iteration)
    grown.name = f"al dataset {iteration + 1}"
    retrain = train_mace_job(
        grown.output,
        hyper,
        threads,
        sanity,
        [m.seed for m in fit.committee],
        members if st.warm_start else None,  # each member from its own weights
    )
    retrain.name = f"al retrain {iteration + 1}"
    claim_training_cores(retrain, len(fit.committee) + 1, threads)
    follow = active_learning_job(
        grown.output,
        retrain.output,
        settings,
        labeller,
        hyper,
        threads,
        sanity,
        iteration + 1,
        history,
        n_added + len(picked),
        conditions,
    )
    follow.name = f"active learning {iteration + 1}"
    return Response(
        replace=Flow([*statics, grown, retrain, follow], output=follow.output, name="al round")
    )


def exploration_conditions(
    settings: ActiveLearningStageSettings, conditions: list[UseCondition] | None
) -> list[UseCondition]:
    """The conditions explored: one isothermal run at ``explore_temperature_k`` when it is set,
    else the conditions of use."""
    if settings.explore_temperature_k is not None:
        t = settings.explore_temperature_k
        steps = settings.explore_steps or 200
        return [
            UseCondition(
                name=f"explore {t:g} K",
                stage="active_learning",
                temperature_start_k=t,
                temperature_end_k=t,
                duration_ps=steps * settings.timestep_fs / 1000.0,
                timestep_fs=settings.timestep_fs,
            )
        ]
    if not conditions:
        raise ValueError(
            "active learning needs conditions to explore: explore_temperature_k (K), or a stage "
            "that runs on the trained model (md, amorphous)"
        )
    return list(conditions)


def exploration_steps(settings: ActiveLearningStageSettings, condition: UseCondition) -> int:
    """MD steps of one condition's exploration: ``explore_steps``, or as long as the stage runs
    it (at most ``max_explore_ps``), a multiple of the sampling interval."""
    every = settings.explore_sample_every
    if settings.explore_steps is not None:
        raw = settings.explore_steps
    else:
        ps = min(condition.duration_ps, settings.max_explore_ps)
        raw = round(ps * 1000.0 / condition.timestep_fs)
    return max(every, raw - raw % every)


def trust_window(settings: ActiveLearningStageSettings, composition: str) -> TrustWindow:
    """The trust window of a composition (its own, else the stage's)."""
    own = settings.trust_by_composition.get(composition)
    if own is not None:
        return TrustWindow(lower_ev_per_a=own.lower_ev_per_a, upper_ev_per_a=own.upper_ev_per_a)
    return TrustWindow(
        lower_ev_per_a=settings.trust_lower_ev_per_a, upper_ev_per_a=settings.trust_upper_ev_per_a
    )


def committee_seeds(seed: int, committee_size: int) -> list[int]:
    """Seeds of members 1..K-1 (member 0 keeps the mlff stage's seed)."""
    return [seed + 1000 * k for k in range(1, committee_size)]
