"""The training-data stage: labelling MD (and the series members' relaxations) with the labeller
engine, collected into a deduplicated, split extxyz dataset in the ``data`` store."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from jobflow import Flow, Maker
from pymatgen.core import Structure

from ctaflow.analysis.blobs import pack_file
from ctaflow.analysis.chunks import join_chunks
from ctaflow.analysis.dataset import (
    LabelledFrame,
    deduplicate,
    frames_from_arrays,
    frames_from_ionic_steps,
    split_indices,
    to_extxyz,
)
from ctaflow.analysis.md import MDResult
from ctaflow.analysis.mlff import DatasetResult
from ctaflow.campaign.sources import SeriesSettings
from ctaflow.campaign.stages import TrainingDataStageSettings
from ctaflow.engines import default_engine
from ctaflow.engines.base import Engine
from ctaflow.engines.params import MDControls, MDSegment, RelaxParams, steps_for
from ctaflow.jobs import result_job
from ctaflow.makers.common import series_job, supercell_job
from ctaflow.makers.relax import RelaxStageMaker


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
) -> DatasetResult:
    """Collect MD frames, and the ionic steps of the labeller's ``relaxations`` (see
    ``Engine.relax_outputs``), into a deduplicated, split dataset (extxyz files in the data
    store)."""
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
    parts = split_indices(len(unique), tuple(split), seed)
    files = {
        name: pack_file(to_extxyz([unique[i] for i in idx]).encode(), f"{name}.extxyz")
        for name, idx in parts.items()
    }
    return DatasetResult(
        n_frames={name: len(idx) for name, idx in parts.items()},
        n_frames_by_composition=dict(Counter(f.composition for f in unique)),
        n_duplicates_removed=len(frames) - len(unique),
        labeller=labeller,
        sources=dict(Counter(f.source for f in unique)),
        split_seed=seed,
        files=files,
    )


@dataclass
class TrainingDataMaker(Maker):
    """Labelling MD at each temperature on a supercell, then the dataset job.

    With a substitution ``series`` the supercell is substituted first and every member is relaxed
    (cell and positions, ``relax_settings``) with the labeller before its labelling MD; frames
    carry the member's x. ``settings`` are the ``training_data`` stage settings; ``engine`` is the
    labeller (VASP on clusters, the embedded universal MLIP here).
    """

    engine: Engine = field(default_factory=default_engine)
    settings: TrainingDataStageSettings = field(default_factory=TrainingDataStageSettings)
    series: SeriesSettings | None = None
    relax_settings: RelaxParams = field(default_factory=RelaxParams)
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
        for k, (start, x) in enumerate(zip(starts, fractions, strict=True)):
            for i, temperature in enumerate(st.temperatures_k):
                segment = MDSegment(
                    f"label {temperature:g} K", "nvt", temperature, temperature, st.md_ps
                )
                md = self.engine.md_maker(segment, steps, st.seed + 100 * k + i, controls).make(
                    start
                )
                suffix = "" if x is None else f" x={x:g}"
                md.name = f"labelling md {temperature:g} K{suffix}"
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
        )
        data.name = "dataset"
        return Flow([*jobs, *runs, data], output=data.output, name="training data")
