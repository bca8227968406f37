"""The training-data stage: labelling MD (and the series members' relaxations) with the labeller
engine, collected into a deduplicated, split extxyz dataset in the ``data`` store."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from jobflow import Flow, Maker
from pymatgen.core import Structure

from ctaflow.analysis.active_learning import UseCondition
from ctaflow.analysis.blobs import pack_file
from ctaflow.analysis.chunks import join_chunks
from ctaflow.analysis.dataset import (
    LabelledFrame,
    deduplicate,
    frames_from_arrays,
    frames_from_ionic_steps,
    stratified_split,
    to_extxyz,
)
from ctaflow.analysis.md import MDResult
from ctaflow.analysis.mlff import DatasetResult
from ctaflow.campaign.sources import SeriesSettings
from ctaflow.campaign.stages_mlff import TrainingDataStageSettings
from ctaflow.engines import default_engine
from ctaflow.engines.base import Engine
from ctaflow.engines.params import MDControls, MDSegment, RelaxParams, steps_for
from ctaflow.jobs import result_job
from ctaflow.makers.common import defect_job, random_packing_job, series_job, supercell_job
from ctaflow.makers.relax import RelaxStageMaker
from ctaflow.structures.defects import DefectSettings


def md_frames(
    md: MDResult | dict, labeller: str, li_fraction: float | None = None
) -> list[LabelledFrame]:
    """Labelled frames of a stored MD segment."""
    md = md if isinstance(md, MDResult) else MDResult.model_validate(md)
    arrays = join_chunks(md.trajectory)
    species = [site.specie.symbol for site in md.final_structure]
    return frames_from_arrays(
        {
            k: v
            for k, v in arrays.items()
            if k in {"positions_a", "cells_a", "energies_ev", "forces_ev_per_a", "stresses_gpa"}
        },
        species,
        composition=md.final_structure.composition.reduced_formula,
        li_fraction=li_fraction,
        temperature_k=md.temperature_end_k,
        source=f"md {md.temperature_end_k:g} K",
        labeller=labeller,
    )


@result_job(DatasetResult)
def dataset_job(
    md_results: list,
    labeller: str,
    split: list[float],
    seed: int,
    dedupe_tol_a: float,
    li_fractions: list[float | None] | None = None,
    relaxations: list[list] | None = None,
    relax_fractions: list[float | None] | None = None,
    min_test_per_composition: int = 10,
) -> DatasetResult:
    """Collect MD frames, and the ionic steps of the labeller's ``relaxations`` (see
    ``Engine.relax_outputs``), into a deduplicated dataset split by composition and source (at
    least ``min_test_per_composition`` test frames each: :func:`stratified_split`), as extxyz
    files in the data store."""
    frames: list[LabelledFrame] = []
    fractions = li_fractions or [None] * len(md_results)
    for md, x in zip(md_results, fractions, strict=True):
        frames += md_frames(md, labeller, x)
    relaxations = relaxations or []
    for steps, x in zip(relaxations, relax_fractions or [None] * len(relaxations), strict=True):
        frames += frames_from_ionic_steps(
            steps, li_fraction=x, source="relaxation", labeller=labeller
        )
    unique = deduplicate(frames, dedupe_tol_a)
    strata = [(f.composition, f.source) for f in unique]
    parts = stratified_split(strata, tuple(split), seed, min_test_per_composition)
    files = {
        name: pack_file(to_extxyz([unique[i] for i in idx]).encode(), f"{name}.extxyz")
        for name, idx in parts.items()
    }
    return DatasetResult(
        n_frames={name: len(idx) for name, idx in parts.items()},
        n_test_by_composition=dict(Counter(unique[i].composition for i in parts["test"])),
        n_frames_by_composition=dict(Counter(f.composition for f in unique)),
        n_duplicates_removed=len(frames) - len(unique),
        labeller=labeller,
        sources=dict(Counter(f.source for f in unique)),
        split_seed=seed,
        files=files,
    )


#: labelling temperature when no stage uses the trained model and none is given, K
DEFAULT_LABELLING_K = 1000.0


def labelling_plan(
    settings: TrainingDataStageSettings, conditions: list[UseCondition]
) -> tuple[list[float], list[UseCondition]]:
    """The labelling MD of every composition: isothermal runs at ``settings.temperatures_k``, or
    by default at every temperature the model will be used at (the isothermal ``conditions``; 1000
    K when no stage uses the model), and the ramps of the conditions that ask for one (a quench
    from a melt), each continuing from the run at its start temperature (added if missing)."""
    given = settings.temperatures_k
    isothermal = {c.temperature_start_k for c in conditions if c.isothermal}
    temperatures = sorted(given if given else (isothermal or {DEFAULT_LABELLING_K}))
    ramps = [c for c in conditions if c.label_ramp] if settings.ramps else []
    temperatures = sorted({*temperatures, *(c.temperature_start_k for c in ramps)})
    return temperatures, ramps


def random_starts(conditions: list[UseCondition]) -> dict[float, float]:
    """``{temperature: min_distance_fraction}`` of the isothermal conditions that start from
    random positions (a melt from a disordered start): the labelling run at that temperature
    starts from a random packing of the member too, so the model sees the liquid it will make."""
    return {
        c.temperature_start_k: c.random_start_fraction
        for c in conditions
        if c.isothermal and c.random_start_fraction is not None
    }


def labelling_segment(
    name: str, t0: float, t1: float, ps: float, condition: UseCondition | None, controls
) -> tuple[MDSegment, MDControls]:
    """The labelling MD segment (and its controls) for a condition of use: NPT with the
    condition's pressure and Berendsen barostat when it runs NPT (a melt at its own density),
    NVT otherwise."""
    if condition is None or condition.pressure_gpa is None:
        return MDSegment(name, "nvt", t0, t1, ps), controls
    npt = replace(controls, barostat="berendsen", barostat_damping_fs=condition.barostat_damping_fs)
    return MDSegment(name, "npt", t0, t1, ps, condition.pressure_gpa), npt


def member_conditions(conditions: list[UseCondition], member: int) -> list[UseCondition]:
    """The conditions of use that concern series member ``member`` (0: the campaign's own
    composition): the others skip those a stage runs on the campaign's structure only."""
    return list(conditions) if member == 0 else [c for c in conditions if not c.base_only]


@dataclass
class TrainingDataMaker(Maker):
    """Labelling MD at each temperature on a supercell, then the dataset job.

    With a substitution ``series`` the supercell is substituted first and every member is relaxed
    (cell and positions, ``relax_settings``) with the labeller before its labelling MD; frames
    carry the member's x. ``settings`` are the ``training_data`` stage settings; ``engine`` is the
    labeller (VASP on clusters, the embedded universal MLIP here). ``conditions`` are the
    conditions of use of the model the data will train (:func:`labelling_plan`; the series
    members skip the conditions a stage runs on the campaign's structure only). With
    ``defects`` (the campaign's, applied by the stages that run the model on a defective cell),
    the first member's cell with those defects is also labelled at ``defect_temperatures_k``
    (those stages' temperatures): a model used on interstitials or vacancies has seen them.
    """

    engine: Engine = field(default_factory=default_engine)
    settings: TrainingDataStageSettings = field(default_factory=TrainingDataStageSettings)
    series: SeriesSettings | None = None
    relax_settings: RelaxParams = field(default_factory=RelaxParams)
    conditions: list[UseCondition] = field(default_factory=list)
    defects: DefectSettings | None = None
    defect_temperatures_k: list[float] = field(default_factory=list)
    name: str = "training data"

    def make(self, structure: Structure) -> Flow:
        st = self.settings
        cell = supercell_job(structure, st.supercell_min_width_a)
        cell.name = "training supercell"
        jobs: list = [cell]
        starts, fractions = [cell.output], [None]
        relax_steps: list = []
        if self.series is not None:
            series = series_job(cell.output, self.series.model_dump())
            series.name = "substitution series"
            jobs.append(series)
            starts, fractions = [], []
            n = self.series.n_compositions
            for i in range(n):
                # no minimum check: the member only starts the labelling MD
                unchecked = self.relax_settings.model_copy(
                    update={
                        "minimum": self.relax_settings.minimum.model_copy(update={"enabled": False})
                    }
                )
                relax = RelaxStageMaker(engine=self.engine, settings=unchecked).make(
                    series.output.members[i].structure
                )
                relax.name = f"relax member {i}"
                jobs.append(relax)
                starts.append(relax.output.structure)
                fractions.append(i / (n - 1))
                relax_steps.append(self.engine.relax_outputs(relax.jobs[0]).get("ionic_steps"))
        controls = MDControls(timestep_fs=st.timestep_fs, sample_every=st.sample_every)
        steps = steps_for(st.md_ps, st.timestep_fs, st.sample_every)
        runs, run_fractions = [], []
        if self.defects is not None and self.defect_temperatures_k:
            defective = defect_job(starts[0], self.defects)
            defective.name = "training defects"
            jobs.append(defective)
            for i, temperature in enumerate(sorted(self.defect_temperatures_k)):
                segment = MDSegment(
                    f"label defects {temperature:g} K", "nvt", temperature, temperature, st.md_ps
                )
                seed = st.seed + 100 * len(starts) + i
                md = self.engine.md_maker(segment, steps, seed, controls).make(defective.output)
                md.name = f"labelling md defects {temperature:g} K"
                runs.append(md)
                run_fractions.append(fractions[0])
        for k, (start, x) in enumerate(zip(starts, fractions, strict=True)):
            suffix = "" if x is None else f" x={x:g}"
            mine = member_conditions(self.conditions, k)
            temperatures, ramps = labelling_plan(st, mine)
            packed = random_starts(mine)
            npt = {
                c.temperature_start_k: c
                for c in mine
                if c.isothermal and c.pressure_gpa is not None
            }
            at: dict[float, Any] = {}  # temperature -> the labelling run there
            for i, temperature in enumerate(temperatures):
                segment, ctl = labelling_segment(
                    f"label {temperature:g} K",
                    temperature,
                    temperature,
                    st.md_ps,
                    npt.get(temperature),
                    controls,
                )
                seed = st.seed + 100 * k + i
                begin, how = start, ""
                if temperature in packed:
                    pack = random_packing_job(start, packed[temperature], seed)
                    pack.name = f"labelling random start {temperature:g} K{suffix}"
                    jobs.append(pack)
                    begin, how = pack.output, " (random start)"
                md = self.engine.md_maker(segment, steps, seed, ctl).make(begin)
                md.name = f"labelling md {temperature:g} K{suffix}{how}"
                runs.append(md)
                run_fractions.append(x)
                at[temperature] = md
            for r, ramp in enumerate(ramps):
                t0, t1 = ramp.temperature_start_k, ramp.temperature_end_k
                segment, ctl = labelling_segment(
                    f"label {t0:g} -> {t1:g} K", t0, t1, st.md_ps, ramp, controls
                )
                seed = st.seed + 100 * k + 50 + r
                md = self.engine.md_maker(segment, steps, seed, ctl).make(
                    at[t0].output.final_structure
                )
                md.name = f"labelling md {t0:g} -> {t1:g} K{suffix}"
                runs.append(md)
                run_fractions.append(x)
        data = dataset_job(
            [md.output for md in runs],
            self.engine.label,
            list(st.split),
            st.seed,
            st.dedupe_tol_a,
            run_fractions,
            [r for r in relax_steps if r is not None],
            # only series members are relaxed here (the base structure by the relax stage)
            [x for x, r in zip(fractions, relax_steps, strict=False) if r is not None],
            min_test_per_composition=st.min_test_frames_per_composition,
        )
        data.name = "dataset"
        return Flow([*jobs, *runs, data], output=data.output, name="training data")
