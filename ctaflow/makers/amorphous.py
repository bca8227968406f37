"""Melt–quench amorphous sampling with any engine, and ΔE(amorphous − crystalline) per composition.

The MD runs through the engine's ``md_maker`` (atomate2's force-field MD makers for the embedded
engines, atomate2's VASP MD maker on clusters) and the relaxations through its ``relax_maker``,
so this module has no MD loop of its own. See :class:`AmorphousStageMaker` for the graph and
:mod:`ctaflow.analysis.amorphous` for the checks and statistics.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from jobflow import Flow, Maker, Response, job
from pymatgen.core import Structure

from ctaflow.analysis.amorphous import (
    AmorphousCompositionResult,
    AmorphousSample,
    ElementReference,
    delta_e_stats,
    formation_energy_per_atom,
    ground_state_warning,
)
from ctaflow.analysis.provenance import software_versions
from ctaflow.analysis.relax import RelaxResult
from ctaflow.campaign.sources import SeriesSettings
from ctaflow.campaign.stages import AmorphousStageSettings
from ctaflow.engines import default_engine
from ctaflow.engines.base import Engine
from ctaflow.jobs import result_job
from ctaflow.makers.common import series_job, supercell_job
from ctaflow.makers.melt_quench import TOLERANT, melt_quench_md, sample_chain, sample_retry
from ctaflow.makers.relax import RelaxStageMaker
from ctaflow.structures.elements import elemental_reference

logger = logging.getLogger(__name__)


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
    retried = [(s.index, a) for s in samples for a in s.attempts]
    if retried:
        warnings.append(
            f"{len(retried)} attempt(s) failed a check and were made again with a new seed: "
            + "; ".join(f"#{i} seed {a.seed} {a.status} ({a.reason})" for i, a in retried)
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
        n_retried=len(retried),
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
    quench → relax (cell + positions) → checks → retry (a sample that failed a check is made
    again with a new seed, up to ``sample_retries`` times: :mod:`ctaflow.makers.melt_quench`);
    then one :class:`AmorphousCompositionResult` per composition. Elemental references
    (optional) are relaxed once with the same engine. The flow's output lists the composition
    results.
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
                shared = melt_quench_md(
                    self.engine,
                    st,
                    "melt",
                    st.melt_temperature_k,
                    st.melt_ps,
                    st.seed + 1000 * k,
                    crystal.output.structure,
                )
                shared.name = f"melt{tag}"
                jobs.append(shared)
            samples = []
            for s in range(st.n_samples):
                seed = st.seed + 1000 * k + 1 + s
                chain, check = sample_chain(self.engine, st, crystal.output, shared, s, seed, tag)
                retry = sample_retry(
                    check.output,
                    crystal.output,
                    self.engine,
                    st,
                    s,
                    seed,
                    tag,
                    None if shared is None else shared.output.uuid,
                )
                retry.name = f"sample {s} retry{tag}"
                jobs += [*chain, retry]
                samples.append(retry.output)
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
