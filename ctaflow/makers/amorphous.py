"""Melt–quench amorphous sampling with any engine, and ΔE(amorphous − crystalline) per composition.

The MD runs through the engine's ``md_maker`` (atomate2's force-field MD makers for the embedded
engines, atomate2's VASP MD maker on clusters) and the relaxations through its ``relax_maker``,
so this module has no MD loop of its own. See :class:`AmorphousStageMaker` for the graph and
:mod:`ctaflow.analysis.amorphous` for the checks and statistics.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

from jobflow import Flow, Maker, Response, job
from jobflow.core.job import JobConfig
from jobflow.core.reference import OnMissing
from pymatgen.core import Structure

from ctaflow.analysis.active_learning import worst_trust
from ctaflow.analysis.amorphous import (
    AmorphousCompositionResult,
    AmorphousSample,
    ElementReference,
    checks_from_runs,
    delta_e_stats,
    formation_energy_per_atom,
    ground_state_warning,
    network_species,
    sample_status,
)
from ctaflow.analysis.chunks import join_chunks
from ctaflow.analysis.provenance import software_versions
from ctaflow.analysis.relax import RelaxResult
from ctaflow.campaign.sources import SeriesSettings
from ctaflow.campaign.stages import AmorphousStageSettings
from ctaflow.engines import default_engine
from ctaflow.engines.base import Engine
from ctaflow.engines.params import MDControls, MDSegment, steps_for
from ctaflow.jobs import result_job
from ctaflow.makers.common import random_packing_job, series_job, supercell_job
from ctaflow.makers.relax import RelaxStageMaker
from ctaflow.structures.elements import elemental_reference

#: a summary job runs even when some of its inputs failed (they arrive as None)
TOLERANT = JobConfig(on_missing_references=OnMissing.NONE)

logger = logging.getLogger(__name__)


def _positions(md: Any) -> Any:
    return join_chunks(md.trajectory)["positions_a"]


@result_job(AmorphousSample, config=TOLERANT)
def amorphous_sample(
    crystal: RelaxResult | None,
    melt: Any,
    hold: Any,
    glass: RelaxResult | None,
    index: int,
    seed: int,
    settings: dict,
    quench: Any = None,
) -> AmorphousSample:
    """Checks and energy of one sample; a failed or skipped run arrives as None. The committee's
    judgement of the melt, hold and quench (when the engine has one) travels with it."""
    if crystal is None or melt is None or hold is None or glass is None:
        missing = [
            name
            for name, value in (
                ("crystalline reference", crystal),
                ("melt", melt),
                ("hold/quench", hold),
                ("relaxation", glass),
            )
            if value is None
        ]
        return AmorphousSample(
            index=index, seed=seed, status="failed", reason=f"no result from {', '.join(missing)}"
        )
    species = network_species(crystal.structure, settings.get("network_species"))
    melted = _positions(melt)
    if settings.get("melt_start") == "random":  # the first half lets the random start collapse:
        melted = melted[len(melted) // 2 :]  # the melted check counts the liquid's own diffusion
    checks = checks_from_runs(
        crystal.structure,
        glass.structure,
        [melted, _positions(hold)],
        hold.mean_temperature_k,
        settings["melt_temperature_k"],
        species,
        settings["min_msd_a2"],
        settings["max_long_range_order"],
    )
    status, reason = sample_status(checks)
    if not math.isfinite(glass.energy_per_atom_ev):
        status, reason = "unstable", "non-finite energy after relaxation"
    return AmorphousSample(
        index=index,
        seed=seed,
        status=status,
        reason=reason,
        energy_ev=glass.energy_ev,
        energy_per_atom_ev=glass.energy_per_atom_ev,
        delta_e_mev_per_atom=1000.0 * (glass.energy_per_atom_ev - crystal.energy_per_atom_ev),
        relax_converged=glass.converged,
        max_force_ev_per_a=glass.max_force_ev_per_a,
        volume_per_atom_a3=glass.volume_a3 / glass.n_atoms,
        structure=glass.structure,
        checks=checks,
        trust=worst_trust([getattr(md, "uncertainty", None) for md in (melt, hold, quench)]),
    )


@result_job(AmorphousCompositionResult, config=TOLERANT)
def amorphous_composition(
    crystal: RelaxResult | None,
    samples: list,
    references: list,
    reference_provenance: list[dict],
    x: float | None,
    substitution: str | None,
    member: Structure | None,
    settings: dict,
    engine: dict,
) -> AmorphousCompositionResult:
    """ΔE statistics over the samples that passed every check, and formation energies."""
    samples = [
        s
        if s is not None
        else AmorphousSample(index=i, seed=-1, status="failed", reason="job failed")
        for i, s in enumerate(samples)
    ]
    good = [s for s in samples if s.status == "ok"]
    label = engine.get("engine", "the engine")
    warnings = []
    if crystal is None:
        stats = delta_e_stats(0.0, [])
        warnings.append("the crystalline reference relaxation failed: no ΔE")
    else:
        stats = delta_e_stats(crystal.energy_per_atom_ev, [s.energy_per_atom_ev for s in good])
        if not crystal.converged:
            warnings.append(
                f"crystalline reference not converged (max force "
                f"{crystal.max_force_ev_per_a:.3g} eV/Å)"
            )
    excluded = [s for s in samples if s.status != "ok"]
    if excluded:
        warnings.append(
            f"{len(excluded)} of {len(samples)} samples excluded: "
            + "; ".join(f"#{s.index} {s.status} ({s.reason})" for s in excluded)
        )
    strayed = [s for s in good if s.trust is not None and s.trust.status == "flagged"]
    if strayed:
        worst = max(s.trust.deviation_max_ev_per_a for s in strayed)
        warnings.append(
            f"samples {[s.index for s in strayed]} left the force field's trust window during the "
            f"melt–quench (committee force deviation up to {worst:.3g} eV/Å ≥ "
            f"{strayed[0].trust.window.upper_ev_per_a:g}): their ΔE is flagged"
        )
    unconverged = [s.index for s in good if s.relax_converged is False]
    if unconverged:
        warnings.append(f"samples {unconverged} did not reach the force criterion")
    note = ground_state_warning(stats, label)
    if note:
        warnings.append(note)

    refs = [
        ElementReference(
            element=prov["element"],
            energy_per_atom_ev=None if ref is None else ref.energy_per_atom_ev,
            converged=None if ref is None else ref.converged,
            provenance=prov
            if ref is not None or "reason" in prov
            else {**prov, "reason": "failed"},
        )
        for ref, prov in zip(references, reference_provenance, strict=True)
    ]
    mu = {r.element: r.energy_per_atom_ev for r in refs if r.energy_per_atom_ev is not None}
    ef_cr = ef_am = None
    fe_note = ""
    try:
        if crystal is not None:
            ef_cr = formation_energy_per_atom(crystal.energy_ev, crystal.structure.composition, mu)
        if good:
            ef_am = sum(
                formation_energy_per_atom(s.energy_ev, s.structure.composition, mu) for s in good
            ) / len(good)
        fe_note = f"from elemental references relaxed with {label}"
        if engine.get("kind") == "mace":
            fe_note += (
                "; a MACE model trained on the campaign's compositions has never seen the "
                "elements (metals, molecules), so these formation energies are not meaningful"
            )
    except ValueError as exc:
        fe_note = f"not reported: {exc}"
    return AmorphousCompositionResult(
        x=x,
        substitution=substitution,
        formula="unknown" if member is None else member.composition.reduced_formula,
        n_atoms=None if crystal is None else crystal.n_atoms,
        crystal_energy_per_atom_ev=None if crystal is None else crystal.energy_per_atom_ev,
        crystal_converged=None if crystal is None else crystal.converged,
        crystal_is_minimum=(
            None if crystal is None or crystal.minimum is None else crystal.minimum.is_minimum
        ),
        crystal_volume_per_atom_a3=None if crystal is None else crystal.volume_a3 / crystal.n_atoms,
        samples=samples,
        n_requested=len(samples),
        n_failed=len(excluded),
        delta_e=stats,
        warnings=warnings,
        formation_energy_crystal_ev_per_atom=ef_cr,
        formation_energy_amorphous_ev_per_atom=ef_am,
        formation_energy_note=fe_note,
        elemental_references=refs,
        melt={
            "melt_start": settings.get("melt_start", "crystal"),
            **{
                k: settings[k]
                for k in (
                    "melt_temperature_k",
                    "melt_ps",
                    "hold_ps",
                    "quench_rate_k_per_ps",
                    "quench_end_temperature_k",
                    "timestep_fs",
                    "min_msd_a2",
                    "max_long_range_order",
                )
            },
        },
        engine=engine,
        software=software_versions(),
    )


@dataclass
class AmorphousStageMaker(Maker):
    """Crystalline reference and ``n_samples`` melt–quench glasses per composition.

    supercell → (substitution series) → per composition: relax (crystal) → NVT melt (random
    start: per sample, from its own random positions) → per sample: NVT hold (own seed) → NVT
    quench → relax (cell + positions) → checks; then one
    :class:`AmorphousCompositionResult` per composition. Elemental references (optional) are
    relaxed once with the same engine. The flow's output lists the composition results.
    """

    engine: Engine = field(default_factory=default_engine)
    cell_engine: Engine | None = None  # relaxes cell + positions of every composition first
    settings: AmorphousStageSettings = field(default_factory=AmorphousStageSettings)
    series: SeriesSettings | None = None
    elements: list[str] | None = None  # of the input, when it is a reference at build time
    name: str = "amorphous"

    def make(self, structure: Structure) -> Flow:
        st = self.settings
        cell = supercell_job(structure, st.supercell_min_width_a)
        cell.name = "amorphous supercell"
        jobs: list = [cell]
        if self.series is not None:
            series = series_job(cell.output, self.series.model_dump())
            series.name = "substitution series"
            jobs.append(series)
            n = self.series.n_compositions
            members = [(series.output.members[i].structure, i / (n - 1)) for i in range(n)]
            substitution = f"{self.series.replace}->{self.series.by}"
        else:
            members, substitution = [(cell.output, None)], None

        references, provenance = self._elemental_references(structure, jobs)
        controls = MDControls(
            timestep_fs=st.timestep_fs,
            sample_every=st.sample_every,
            langevin_friction_per_ps=st.langevin_friction_per_ps,
            barostat=st.barostat,
            barostat_damping_fs=st.barostat_damping_fs,
        )
        hot = st.melt_temperature_k
        quench_ps = (hot - st.quench_end_temperature_k) / st.quench_rate_k_per_ps

        def md(name: str, t_start: float, t_end: float, ps: float, seed: int, start):
            segment = MDSegment(name, st.ensemble, t_start, t_end, ps, st.pressure_gpa)
            n_steps = steps_for(segment.duration_ps, st.timestep_fs, st.sample_every)
            return self.engine.md_maker(segment, n_steps, seed, controls).make(start)

        settings = st.model_dump(mode="json")
        outputs = []
        for k, (member, x) in enumerate(members):
            tag = "" if x is None else f" x={x:g}"
            if self.cell_engine is not None:
                unchecked = st.relax_settings().model_copy(update={"relax_cell": True})
                cell_relax = RelaxStageMaker(engine=self.cell_engine, settings=unchecked).make(
                    member
                )
                cell_relax.name = f"composition cell{tag}"
                jobs.append(cell_relax)
                member = cell_relax.output.structure
            crystal = RelaxStageMaker(
                engine=self.engine, settings=st.relax_settings(check=True)
            ).make(member)
            crystal.name = f"crystalline reference{tag}"
            jobs.append(crystal)
            shared = None  # from the crystal: one melt, shared by the samples
            if st.melt_start == "crystal":
                shared = md(
                    "melt", hot, hot, st.melt_ps, st.seed + 1000 * k, crystal.output.structure
                )
                shared.name = f"melt{tag}"
                jobs.append(shared)
            samples = []
            for s in range(st.n_samples):
                seed = st.seed + 1000 * k + 1 + s
                melt = shared
                if melt is None:  # random start: every sample melts from its own positions
                    start = random_packing_job(
                        crystal.output.structure, st.random_min_distance_fraction, seed
                    )
                    start.name = f"sample {s} random start{tag}"
                    melt = md("melt", hot, hot, st.melt_ps, seed, start.output)
                    melt.name = f"sample {s} melt{tag}"
                    jobs += [start, melt]
                hold = md("hold", hot, hot, st.hold_ps, seed, melt.output.final_structure)
                quench = md(
                    "quench",
                    hot,
                    st.quench_end_temperature_k,
                    quench_ps,
                    seed,
                    hold.output.final_structure,
                )
                glass = RelaxStageMaker(engine=self.engine, settings=st.relax_settings()).make(
                    quench.output.final_structure
                )
                check = amorphous_sample(
                    crystal.output,
                    melt.output,
                    hold.output,
                    glass.output,
                    s,
                    seed,
                    settings,
                    quench=quench.output,
                )
                for step, j in (
                    ("hold", hold),
                    ("quench", quench),
                    ("relax", glass),
                    ("checks", check),
                ):
                    j.name = f"sample {s} {step}{tag}"
                jobs += [hold, quench, glass, check]
                samples.append(check.output)
            summary = amorphous_composition(
                crystal.output,
                samples,
                references,
                provenance,
                x,
                substitution,
                member,
                settings,
                self.engine.describe(),
            )
            summary.name = f"amorphous summary{tag}"
            jobs.append(summary)
            outputs.append(summary.output)
        return Flow(jobs, output=outputs, name=self.name)

    def _elemental_references(self, structure: Structure, jobs: list) -> tuple[list, list[dict]]:
        """Relaxation outputs (or None) and provenance of every element the stage needs."""
        if not self.settings.elemental_references:
            return [], []
        if self.elements is not None:
            elements = set(self.elements)
        else:
            elements = {el.symbol for el in structure.composition.elements}
        if self.series is not None:
            elements.add(self.series.by)
        refs, provs = [], []
        for element in sorted(elements):
            ref, prov = elemental_reference(element)
            provs.append(prov)
            if ref is None:
                refs.append(None)
                continue
            relax = RelaxStageMaker(
                engine=self.engine,
                settings=self.settings.relax_settings(relax_cell=prov["kind"] == "solid"),
            ).make(ref)
            relax.name = f"elemental reference {element}"
            jobs.append(relax)
            refs.append(relax.output)
        return refs, provs


@job
def usable_amorphous_sample(result: AmorphousCompositionResult) -> Structure | Response:
    """The lowest-energy sample of ``result`` that passed every check (for later stages). With
    none, the jobs that would use it are stopped (not failed: the crystalline work of the same
    stage goes on) and the output says why."""
    good = [s for s in result.samples if s.status == "ok" and s.structure is not None]
    if not good:
        reasons = "; ".join(f"#{s.index} {s.status}" for s in result.samples)
        why = (
            f"no amorphous sample of {result.formula} passed the melt–quench checks ({reasons}); "
            "see the amorphous stage's notes (longer or hotter melt, a better engine)"
        )
        logger.warning("%s: the jobs that need a glass are not run", why)
        return Response(output={"not_computed": why}, stop_children=True)
    return min(good, key=lambda s: s.energy_per_atom_ev).structure
