"""The MD protocol of the study on any engine: segments chained by their final structures and
velocities (:class:`MDProtocolMaker`), and the production protocol (:class:`MDStageMaker`).

The segments themselves are the engine's (:meth:`ctaflow.engines.base.Engine.md_maker`): atomate2's
force-field MD for the MLIP engines (:mod:`ctaflow.engines.mlip_md`), its VASP MD maker for the
VASP engines (:mod:`ctaflow.engines.vasp_md`).

The stage's equilibration and every production run are dynamic loops (issue #24): a job judges the
segment just run (:mod:`ctaflow.analysis.production`) and either finishes with a small record
(:class:`~ctaflow.analysis.production.EquilibrationRun`,
:class:`~ctaflow.analysis.production.ProductionRun`) or replaces itself by one more segment,
continuing from the last frame and velocities, and another judging job. The records name the
segments by job uuid: the segments' :class:`~ctaflow.analysis.md.MDResult` documents (and their
trajectories) are stored once, by the segment jobs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jobflow import Flow, Maker, Response, job
from jobflow.core.reference import OutputReference
from pymatgen.core import Structure

from ctaflow.analysis.md import MDResult
from ctaflow.analysis.production import (
    EquilibrationRun,
    SegmentRecord,
    equilibration_reached,
    equilibration_reasons,
    production_decision,
    volume_reason,
)
from ctaflow.analysis.transport_summary import mobile_species
from ctaflow.campaign.stages import MDStageSettings
from ctaflow.engines import default_engine
from ctaflow.engines.base import Engine
from ctaflow.engines.params import MDControls, MDSegment, RelaxParams, steps_for
from ctaflow.makers.common import defect_job, supercell_job
from ctaflow.structures._common import moved
from ctaflow.structures.defects import DefectSettings

#: seed offset of each further segment of a loop (segment k uses seed + k · SEED_STRIDE)
SEED_STRIDE = 1000


@dataclass
class MDProtocolMaker(Maker):
    """Chain MD segments; each starts from the previous one's final structure and velocities.

    ``engine`` is any engine with ``md_maker(segment, n_steps, seed, controls)``, so the same
    protocol runs on every engine.
    """

    engine: Engine = field(default_factory=default_engine)
    name: str = "md protocol"
    segments: list[MDSegment] = field(default_factory=list)
    controls: MDControls = field(default_factory=MDControls)
    seed: int = 0

    def make(self, structure: Structure) -> Flow:
        jobs = []
        current = structure
        for i, segment in enumerate(self.segments):
            md_job = segment_job(self.engine, segment, self.controls, self.seed + i, current)
            jobs.append(md_job)
            current = md_job.output.final_structure
        return Flow(jobs, output=[j.output for j in jobs], name=self.name)


def segment_job(engine: Engine, segment: MDSegment, controls: MDControls, seed: int, start):
    """The engine's job (or flow) running one segment from ``start``; its output is an
    :class:`MDResult`, stored by the job ``output.uuid`` (the flow's last job for VASP)."""
    n_steps = steps_for(segment.duration_ps, controls.timestep_fs, controls.sample_every)
    md_job = engine.md_maker(segment, n_steps, seed, controls).make(start)
    md_job.name = f"md {segment.name}"
    return md_job


def _controls(st: MDStageSettings) -> MDControls:
    return MDControls(
        timestep_fs=st.timestep_fs,
        sample_every=st.sample_every,
        langevin_friction_per_ps=st.langevin_friction_per_ps,
        thermostat_damping_fs=st.thermostat_damping_fs,
        barostat_damping_fs=st.barostat_damping_fs,
    )


def _equilibration_segment(st: MDStageSettings, k: int = 0) -> MDSegment:
    hot = st.equilibrate_temperature_k
    name = "equilibrate" if k == 0 else f"equilibrate ({k + 1})"
    return MDSegment(name, st.equilibrate_ensemble, hot, hot, st.equilibrate_ps, st.pressure_gpa)


def _production_segment(temperature: float, duration_ps: float, k: int = 0) -> MDSegment:
    name = f"production {temperature:g} K" + ("" if k == 0 else f" ({k + 1})")
    return MDSegment(name, "nvt", temperature, temperature, duration_ps)


def _md_result(doc: Any) -> MDResult:
    return doc if isinstance(doc, MDResult) else MDResult.model_validate(doc)


def _record(uuid: str, md: MDResult) -> SegmentRecord:
    return SegmentRecord(
        uuid=uuid, segment=md.segment, duration_ps=md.duration_ps, target_check=md.target_check
    )


# no output_schema on the loops' jobs: they replace themselves (see active_learning_job)
@job
def equilibration_loop(
    latest: MDResult,
    uuid: str,
    start: Structure,
    engine: Engine,
    settings: MDStageSettings,
    history: list[SegmentRecord] | None = None,
):
    """Judge the equilibration segment just run: finish (:class:`EquilibrationRun`) when its
    running means are on target, after ``settings.equilibrate_extensions`` more segments, or at
    once when the cell is no longer the crystal's (its volume, see
    :func:`~ctaflow.analysis.production.volume_reason`); else replace this job by one more
    segment and the next judgement. ``start`` is the MD cell before any MD."""
    md = _md_result(latest)
    st = settings
    records = [*(history or []), _record(uuid, md)]
    k = len(records)
    broken = volume_reason(start.volume, md.final_volume_a3)
    if equilibration_reached(md.target_check) or k > st.equilibrate_extensions or broken:
        reasons = [broken] if broken else []
        if not equilibration_reached(md.target_check):
            reasons += [
                f"not on target after {k} segment(s) ({k * st.equilibrate_ps:g} ps, "
                f"equilibrate_extensions {st.equilibrate_extensions}): {r}"
                for r in equilibration_reasons(md.target_check)
            ]
        return EquilibrationRun(
            status="flagged" if reasons else "ok",
            reasons=reasons,
            temperature_k=st.equilibrate_temperature_k,
            pressure_gpa=st.pressure_gpa,
            duration_ps=sum(r.duration_ps for r in records),
            max_duration_ps=(st.equilibrate_extensions + 1) * st.equilibrate_ps,
            volume_change_rel=md.final_volume_a3 / start.volume - 1.0,
            segments=records,
            final_structure=md.final_structure,
        )
    segment = _equilibration_segment(st, k)
    more = segment_job(
        engine, segment, _controls(st), st.seed + k * SEED_STRIDE, md.final_structure
    )
    judge = equilibration_loop(more.output, more.output.uuid, start, engine, st, records)
    judge.name = f"md equilibration check {k + 1}"
    return Response(replace=Flow([more, judge], output=judge.output))


@job
def production_loop(
    pieces: list[MDResult],
    uuids: list[str],
    reference: Structure,
    temperature_k: float,
    species: list[str] | None,
    engine: Engine,
    settings: MDStageSettings,
    seed: int,
    before: list[MDResult] | None = None,
    before_uuids: list[str] | None = None,
):
    """Judge the production run at ``temperature_k`` after its segments ``pieces`` (jobs
    ``uuids``): finish with its :class:`~ctaflow.analysis.production.ProductionRun`, or replace
    this job by one more segment (continuing the last) and the next judgement
    (:func:`~ctaflow.analysis.production.production_decision`)."""
    st = settings
    done = [_md_result(p) for p in pieces]
    chosen = species if species is not None else mobile_species(reference)
    records = [
        _record(u, _md_result(b)) for u, b in zip(before_uuids or [], before or [], strict=True)
    ]
    run, next_ps = production_decision(
        done,
        reference,
        chosen,
        temperature_k,
        msd_target_a2=st.msd_target_a2,
        max_duration_ps=st.max_production_ps,
        piece_ps=st.production_ps,
        uuids=uuids,
        before=records,
    )
    if next_ps <= 0:
        return run
    k = len(done)
    segment = _production_segment(temperature_k, next_ps, k)
    more = segment_job(
        engine, segment, _controls(st), seed + k * SEED_STRIDE, done[-1].final_structure
    )
    refs = [OutputReference(u) for u in uuids] + [more.output]
    judge = production_loop(
        refs,
        [*uuids, more.output.uuid],
        reference,
        temperature_k,
        species,
        engine,
        st,
        seed,
        [OutputReference(u) for u in before_uuids or []],
        before_uuids,
    )
    judge.name = f"md production {temperature_k:g} K check {k + 1}"
    return Response(replace=Flow([more, judge], output=judge.output))


@job
def relaxed_positions(structure: Structure, relaxed: Structure) -> Structure:
    """``structure`` with the fractional positions of ``relaxed``, its fixed-cell relaxation
    (same atoms in the same order): site properties (site classes, defect marks) and structure
    properties are those of ``structure``, with the step added to its provenance."""
    if [s.species_string for s in relaxed] != [s.species_string for s in structure]:
        raise ValueError("the relaxed MD cell does not hold the atoms of the cell it started from")
    return moved(structure, relaxed.frac_coords, {"step": "md_start_relax", "fixed_cell": True})


@dataclass
class MDStageMaker(Maker):
    """The study's production protocol on any engine.

    supercell → defects (``defects``, if any) → fixed-cell relaxation on the MD engine
    (``start_fmax_ev_per_a``; the checks keep the cell as built) → NPT (``equilibrate_ensemble``)
    equilibration at
    ``equilibrate_temperature_k``, extended until its running means are on target (at most
    ``equilibrate_extensions`` more segments; stopped when the cell volume is no longer the
    crystal's) → for each production temperature T: NPT cooling (or heating) to T when T
    differs from the equilibration temperature, then NVT production at T, extended until the
    MSD of every ``species`` (default: those on sites of class ``mobile``) reaches its target
    or ``max_production_ps``. The flow's output lists the
    :class:`~ctaflow.analysis.production.ProductionRun` records in the order of
    ``settings.temperatures_k``.
    """

    engine: Engine = field(default_factory=default_engine)
    settings: MDStageSettings = field(default_factory=MDStageSettings)
    defects: DefectSettings | None = None
    species: list[str] | None = None
    name: str = "md"

    def controls(self) -> MDControls:
        return _controls(self.settings)

    def equilibration(self) -> MDSegment:
        return _equilibration_segment(self.settings)

    def branch(self, temperature: float) -> list[MDSegment]:
        """The segments before the production loop at one temperature (K), and its first
        production segment. No cooling segment when T is the equilibration temperature."""
        st = self.settings
        hot = st.equilibrate_temperature_k
        segments = []
        if temperature != hot:
            verb = "cool" if temperature < hot else "heat"
            segments.append(
                MDSegment(
                    f"{verb} to {temperature:g} K",
                    st.equilibrate_ensemble,
                    hot,
                    temperature,
                    st.cool_ps,
                    st.pressure_gpa,
                )
            )
        return [*segments, _production_segment(temperature, st.production_ps)]

    def make(self, structure: Structure) -> Flow:
        st = self.settings
        cell = supercell_job(structure, st.supercell_min_width_a)
        cell.name = "md supercell"
        jobs: list = [cell]
        start = cell
        if self.defects is not None:
            start = defect_job(cell.output, self.defects)
            start.name = "md defects"
            jobs.append(start)
        # the cell as built is the reference of every check (its sites are the lattice's and
        # their distances the hops); the MD starts from its fixed-cell relaxation
        at_rest = start
        if st.start_fmax_ev_per_a is not None:
            params = RelaxParams(
                fmax_ev_per_a=st.start_fmax_ev_per_a,
                max_steps=st.start_max_steps,
                relax_cell=False,
            )
            relax = self.engine.relax_maker(params).make(start.output)
            relax.name = "md start relax"
            moved = relaxed_positions(start.output, self.engine.relax_outputs(relax)["structure"])
            moved.name = "md start at rest"
            jobs += [relax, moved]
            at_rest = moved
        first = segment_job(
            self.engine, self.equilibration(), self.controls(), st.seed, at_rest.output
        )
        equilibrate = equilibration_loop(
            first.output, first.output.uuid, start.output, self.engine, st
        )
        equilibrate.name = "md equilibration check 1"
        jobs += [first, equilibrate]
        productions = []
        for i, temperature in enumerate(st.temperatures_k):
            current = equilibrate.output.final_structure
            before, before_uuids = [], []
            *lead, production = self.branch(temperature)
            for segment in lead:
                md = segment_job(
                    self.engine, segment, self.controls(), st.seed + 1 + 2 * i, current
                )
                jobs.append(md)
                before.append(md.output)
                before_uuids.append(md.output.uuid)
                current = md.output.final_structure
            seed = st.seed + 2 + 2 * i
            md = segment_job(self.engine, production, self.controls(), seed, current)
            judge = production_loop(
                [md.output],
                [md.output.uuid],
                start.output,
                temperature,
                self.species,
                self.engine,
                st,
                seed,
                before,
                before_uuids,
            )
            judge.name = f"md production {temperature:g} K check 1"
            jobs += [md, judge]
            productions.append(judge.output)
        return Flow(jobs, output=productions, name=self.name)
