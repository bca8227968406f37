"""Schemas of the derived collections (one document per group and sub-key; units in the names).

Every derived document starts with the same fields (:class:`DerivedDoc`): the grouping keys copied
from the job metadata, the tasks of its group (which make the build incremental), the tasks it
skipped and why, and two time stamps. The builder-specific fields follow in the subclasses.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from ctaflow import __version__
from ctaflow.analysis.active_learning import TrustCheck
from ctaflow.analysis.amorphous import AmorphousCompositionResult, AmorphousSample
from ctaflow.analysis.arrhenius import ArrheniusResult, CheckedArrhenius, Extrapolation
from ctaflow.analysis.diffusion import DiffusionResult
from ctaflow.analysis.interfaces import InterfaceResult
from ctaflow.analysis.md import SegmentCheck
from ctaflow.analysis.mlff import CompositionMetrics, MLFFResult
from ctaflow.analysis.neb import BarrierResult
from ctaflow.analysis.regime import CrystallinityCheck, RegimeCheck
from ctaflow.analysis.relax import RelaxResult

#: metadata keys a group shares. ``campaign_fingerprint`` is among them because a stage's
#: ``settings_hash`` covers only that stage: a transport task of a campaign whose relaxation or MD
#: settings changed has the same transport ``settings_hash`` but a different fingerprint.
GROUP_KEYS = ("campaign", "campaign_fingerprint", "composition", "engine", "settings_hash")


class TaskRef(BaseModel):
    """One job output document of the group (the highest ``index`` of its ``uuid``)."""

    uuid: str
    index: int
    completed_at: str = Field(description="jobflow's completion time, ISO 8601 as stored.")


class SkippedTask(BaseModel):
    """A task (or part of one) left out of a derived document, and why."""

    uuid: str | None = Field(None, description="Task uuid (None: not tied to one task).")
    reason: str


class DerivedDoc(BaseModel):
    """Fields every derived document has."""

    derived_id: str = Field(description="Key: hash of the builder, group and sub-key values.")
    group_id: str = Field(description="Hash of the grouping-key values (same for sub-keys).")
    builder: str = Field(description="Class name of the builder that wrote the document.")
    campaign: str | None
    campaign_fingerprint: str | None
    composition: str | None = Field(description="Reduced formula of the campaign's structure.")
    engine: str | None = Field(description="Engine label from the job metadata.")
    settings_hash: str | None = Field(description="Hash of the stage's settings.")
    state: Literal["successful", "failed"] = Field(
        "successful", description="failed: the builder itself raised; see ``error``."
    )
    error: str | None = None
    tasks: list[TaskRef] = Field(
        description="Every task of the group when it was built; a rebuild happens when this "
        "set (uuid, index, completed_at) differs from the job store's."
    )
    task_uuids: list[str] = Field(
        default_factory=list, description="Tasks whose outputs enter this document."
    )
    skipped: list[SkippedTask] = Field(
        default_factory=list, description="Tasks or parts left out, with the reason."
    )
    notes: list[str] = Field(default_factory=list)
    last_updated: datetime = Field(description="Newest ``completed_at`` among the group's tasks.")
    built_at: datetime = Field(description="When the builder wrote this document (UTC).")
    ctaflow_version: str = __version__
    ctaflow_source: str | None = Field(
        None,
        description="Fingerprint of the ctaflow sources that built it: a document built by other "
        "code is rebuilt.",
    )


class RelaxDoc(DerivedDoc):
    """One relaxation per (group, formula): the most recent task. Energies in eV, forces in eV/Å,
    lengths in Å, volumes in Å³. Unconverged relaxations are kept with ``converged`` False."""

    formula: str | None = None
    n_atoms: int | None = None
    energy_ev: float | None = None
    energy_per_atom_ev: float | None = None
    initial_energy_per_atom_ev: float | None = Field(None, description="First optimiser step.")
    max_force_ev_per_a: float | None = None
    fmax_target_ev_per_a: float | None = None
    converged: bool | None = None
    n_steps: int | None = None
    initial_volume_a3: float | None = None
    volume_a3: float | None = None
    lattice_abc_a: tuple[float, float, float] | None = None
    is_minimum: bool | None = Field(None, description="The minimum check's verdict (None: off).")
    minimum_verdict: str | None = None
    minimum_energy_drop_mev_per_atom: float | None = Field(
        None, description="How much lower the kept structure is than the relaxation's own end."
    )
    space_groups: str | None = Field(None, description="'relaxed -> kept' (spglib, 0.1 Å).")
    engine_description: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_output(cls, out: RelaxResult) -> dict[str, Any]:
        """This document's own fields from one relax-stage result (the builder adds the rest)."""
        notes = []
        check = out.minimum
        if not out.converged:
            notes.append(
                f"not converged: max force {out.max_force_ev_per_a:.3g} eV/Å > "
                f"{out.fmax_target_ev_per_a:.3g} eV/Å"
            )
        if check is not None and not check.start_was_minimum:
            notes.append(f"{out.formula}: the relaxed structure was {check.verdict}")
        initial = None if out.initial_energy_ev is None else out.initial_energy_ev / out.n_atoms
        return {
            **out.model_dump(include=_own_fields(cls, out)),
            "initial_energy_per_atom_ev": initial,
            "is_minimum": None if check is None else check.is_minimum,
            "minimum_verdict": None if check is None else check.verdict,
            "minimum_energy_drop_mev_per_atom": (
                None if check is None else check.energy_drop_mev_per_atom
            ),
            "space_groups": (
                None if check is None else f"{check.space_group_first} -> {check.space_group_final}"
            ),
            "engine_description": out.engine,
            "notes": notes,
        }


class MLFFDoc(DerivedDoc):
    """Test-set errors of one trained force field on the frames of one composition of the series.
    Energies in meV/atom, forces in meV/Å (force components)."""

    test_composition: str | None = Field(None, description="Reduced formula of the frames.")
    model_stage: str | None = Field(
        None, description="The stage that trained the model (mlff, or active_learning: final)."
    )
    n_test_frames: int | None = None
    rmse_energy_mev_per_atom: float | None = None
    rmse_force_mev_per_a: float | None = None
    rmse_energy_all_mev_per_atom: float | None = Field(None, description="Whole test set.")
    rmse_force_all_mev_per_a: float | None = Field(None, description="Whole test set.")
    mae_energy_all_mev_per_atom: float | None = None
    mae_force_all_mev_per_a: float | None = None
    architecture: str | None = None
    model_sha256: str | None = None
    labeller: str | None = None
    n_train: int | None = None
    n_valid: int | None = None
    n_test: int | None = None
    epochs: int | None = None
    training_time_s: float | None = None
    md_sanity: dict[str, Any] | None = Field(
        None, description="Short NVT run with the trained model (closest pair Å, temperatures K)."
    )
    md_sanity_stable: bool | None = None
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    software: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def from_output(cls, out: MLFFResult, comp: CompositionMetrics | None) -> dict[str, Any]:
        """The fields of one trained model (whole test set) and, with ``comp``, of the test
        frames of one composition."""
        sanity = out.md_sanity
        notes = []
        if sanity is not None and not sanity.stable:
            notes.append(
                f"the trained model is not stable in a {sanity.n_steps}-step MD at "
                f"{sanity.temperature_k:g} K ({sanity.n_atoms} atoms): {sanity.reason}"
            )
        fields = {
            **out.model_dump(include=_own_fields(cls, out)),
            "rmse_energy_all_mev_per_atom": out.rmse_energy_mev_per_atom,
            "rmse_force_all_mev_per_a": out.rmse_force_mev_per_a,
            "mae_energy_all_mev_per_atom": out.mae_energy_mev_per_atom,
            "mae_force_all_mev_per_a": out.mae_force_mev_per_a,
            "epochs": len(out.epochs_log),
            "md_sanity": None if sanity is None else sanity.model_dump(),
            "md_sanity_stable": None if sanity is None else sanity.stable,
            "notes": notes,
        }
        if comp is None:
            fields["notes"] = [*notes, "the output has no per-composition metrics"]
            return {**fields, "rmse_energy_mev_per_atom": None, "rmse_force_mev_per_a": None}
        return {
            **fields,
            "test_composition": comp.composition,
            "n_test_frames": comp.n_frames,
            "rmse_energy_mev_per_atom": comp.rmse_energy_mev_per_atom,
            "rmse_force_mev_per_a": comp.rmse_force_mev_per_a,
        }


class TransportPoint(DiffusionResult):
    """D and σ of one production run (:class:`DiffusionResult`), where it came from, and
    whether it entered the Arrhenius fit: ``status`` used; flagged (used, with its ``reasons``:
    its MD left the force field's trust window); or excluded with its ``reasons`` (regime of the
    MSD, temperature of the run, crystallinity; see :mod:`ctaflow.analysis.regime`).
    ``temperature_k`` is the measured mean temperature of the analysed frames,
    ``target_temperature_k`` the thermostat's."""

    task_uuid: str
    md_duration_ps: float
    target_temperature_k: float | None = None
    status: Literal["used", "flagged", "excluded"] = "used"
    reasons: list[str] = Field(default_factory=list)
    trust: TrustCheck | None = Field(
        None, description="Committee σ_F of the production segment that strayed furthest."
    )
    regime: RegimeCheck | None = None
    crystallinity: CrystallinityCheck | None = None
    md_check: SegmentCheck | None = None
    production_stopped_because: str | None = Field(
        None, description="Why the production run ended (MSD target, time limit, melting)."
    )


class TransportDoc(DerivedDoc):
    """Diffusion and conductivity of one species (and site class) over temperature: the points of
    every production run of the group and Arrhenius fits over those that passed their checks
    (:func:`~ctaflow.analysis.arrhenius.checked_arrhenius`). D in cm²/s, σ in S/cm.

    ``fit_diffusivity`` / ``fit_conductivity`` say whether a fit was made and why not;
    ``arrhenius_*`` are the fits themselves (None when not fitted); σ at room temperature exists
    only as ``conductivity_extrapolation``: labelled, with its 68 % interval."""

    species: str | None = None
    site_class: str | None = Field(None, description="None: every ion of the species.")
    temperatures_k: list[float] = Field(default_factory=list)
    points: list[TransportPoint] = Field(
        default_factory=list, description="One per production run, sorted by temperature."
    )
    status: Literal["fitted", "not fitted"] | None = None
    reasons: list[str] = Field(default_factory=list, description="Why not fitted, or caveats.")
    used_temperatures_k: list[float] = Field(default_factory=list)
    fit_diffusivity: CheckedArrhenius | None = None
    fit_conductivity: CheckedArrhenius | None = None
    arrhenius_diffusivity: ArrheniusResult | None = None
    arrhenius_conductivity: ArrheniusResult | None = None
    activation_energy_ev: float | None = Field(None, description="E_a of D(T), passing points.")
    activation_energy_std_ev: float | None = None
    conductivity_extrapolation: Extrapolation | None = Field(
        None, description="σ extrapolated (e.g. to 300 K) with its propagated 68 % interval."
    )


class BarrierDoc(DerivedDoc):
    """One NEB band per (group, moving species, mechanism, hop class): the most recent task.
    Energies in eV, lengths in Å, forces in eV/Å. Every band is kept with its ``status``
    (valid / flagged / excluded) and ``reasons``; ``barrier_ev`` is None unless the band passed
    every check (see :func:`ctaflow.analysis.neb.assess_band`)."""

    species: str | None = Field(None, description="Element of the moving ions.")
    host_species: str | None = Field(None, description="Mobile species before any swap.")
    mechanism: str | None = Field(None, description="'vacancy' or 'concerted'.")
    hop_label: int | None = Field(None, description="Symmetry-distinct hop class, 0 = shortest.")
    hop_length_a: float | None = None
    band_composition: str | None = Field(None, description="Reduced formula of the NEB cell.")
    n_atoms: int | None = None
    n_images: int | None = None
    status: str | None = Field(None, description="valid, flagged or excluded.")
    reasons: list[str] = Field(default_factory=list)
    kind: str | None = Field(None, description="'single' or 'sequential' (two maxima).")
    barrier_ev: float | None = None
    forward_barrier_ev: float | None = None
    backward_barrier_ev: float | None = None
    reaction_energy_ev: float | None = None
    spline_forward_barrier_ev: float | None = None
    max_force_highest_image_ev_per_a: float | None = None
    fmax_ev_per_a: float | None = None
    converged: bool | None = None
    endpoints_converged: bool | None = None
    ends_are_lowest: bool | None = None
    start_is_minimum: bool | None = None
    end_is_minimum: bool | None = None
    host_formula: str | None = None
    host_n_atoms: int | None = None
    host_minimum_verdict: str | None = Field(
        None, description="What the host supercell's minimum check found."
    )
    host_energy_drop_mev_per_atom: float | None = None
    host_space_groups: str | None = Field(None, description="'first -> final'.")
    neb_elapsed_s: float | None = None
    engine_description: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_output(cls, out: BarrierResult) -> dict[str, Any]:
        """This document's own fields from one NEB band; its reasons also become notes."""
        prof = out.profile
        host_min = out.host.minimum if out.host is not None else None
        return {
            **out.model_dump(include=_own_fields(cls, out)),
            "spline_forward_barrier_ev": prof.spline_forward_barrier_ev,
            "max_force_highest_image_ev_per_a": prof.max_force_highest_image_ev_per_a,
            "fmax_ev_per_a": prof.fmax_ev_per_a,
            "n_images": prof.n_images,
            "band_composition": out.composition,
            "start_is_minimum": out.verdict.start_is_minimum,
            "end_is_minimum": out.verdict.end_is_minimum,
            "host_formula": None if out.host is None else out.host.formula,
            "host_n_atoms": None if out.host is None else out.host.n_atoms,
            "host_minimum_verdict": None if host_min is None else host_min.verdict,
            "host_energy_drop_mev_per_atom": (
                None if host_min is None else host_min.energy_drop_mev_per_atom
            ),
            "host_space_groups": (
                None
                if host_min is None
                else f"{host_min.space_group_first} -> {host_min.space_group_final}"
            ),
            "engine_description": out.engine,
            "notes": [f"{out.species} {out.mechanism}: {r}" for r in out.reasons],
        }


class FormationEnergyDoc(DerivedDoc):
    """Amorphous vs crystalline energy of one composition of a series (the most recent task).
    ΔE = E_amorphous − E_crystalline per atom with one engine, meV/atom, over the samples that
    passed the melt / amorphous / stability checks; formation energies in eV/atom from elemental
    references relaxed with the same engine."""

    formula: str | None = Field(None, description="Reduced formula of this composition.")
    x: float | None = Field(None, description="Substituted fraction of the series.")
    substitution: str | None = Field(None, description="e.g. 'Na->Li'.")
    li_fraction: float | None = Field(None, description="x when the series puts Li in.")
    n_atoms: int | None = None
    crystal_energy_per_atom_ev: float | None = None
    crystal_converged: bool | None = None
    status: str | None = Field(None, description="valid, flagged or excluded (see reasons).")
    reasons: list[str] = Field(default_factory=list)
    n_samples: int = Field(0, description="Samples in the statistics.")
    n_requested: int | None = None
    n_failed: int | None = Field(None, description="Samples excluded (with reasons in notes).")
    n_retried: int | None = Field(
        None, description="Attempts made again with a new seed after a failed check (notes)."
    )
    delta_e_amorphous_minus_crystalline_mev_per_atom: float | None = None
    delta_e_stderr_mev_per_atom: float | None = None
    delta_e_min_mev_per_atom: float | None = None
    delta_e_max_mev_per_atom: float | None = None
    crystal_is_lowest: bool | None = Field(
        None, description="False when an included amorphous sample lies below the crystal."
    )
    formation_energy_crystal_ev_per_atom: float | None = None
    formation_energy_amorphous_ev_per_atom: float | None = None
    formation_energy_note: str | None = None
    samples: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Per sample: index, seed, status, reason, ΔE (meV/atom), checks.",
    )
    melt: dict[str, Any] = Field(default_factory=dict, description="Melt–quench settings.")
    engine_description: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_output(cls, out: AmorphousCompositionResult) -> dict[str, Any]:
        """This document's fields from one composition's melt–quench result: the stage's
        statistics flattened with units in the names, every sample with its status, the
        stage's warnings as notes."""
        stats = out.delta_e
        by_li = out.substitution is not None and out.substitution.endswith("->Li")
        status, reasons = formation_status(out)
        return {
            "status": status,
            "reasons": reasons,
            **out.model_dump(include=_own_fields(cls, out) - {"samples"}),
            "li_fraction": out.x if by_li else None,
            "n_samples": stats.n_samples,
            "delta_e_amorphous_minus_crystalline_mev_per_atom": stats.mean_mev_per_atom,
            "delta_e_stderr_mev_per_atom": stats.stderr_mev_per_atom,
            "delta_e_min_mev_per_atom": stats.min_mev_per_atom,
            "delta_e_max_mev_per_atom": stats.max_mev_per_atom,
            "crystal_is_lowest": None if stats.n_samples == 0 else stats.n_below_crystal == 0,
            "samples": [_sample_row(s) for s in out.samples],
            "engine_description": out.engine,
            "notes": list(out.warnings),
        }


#: fewest glasses for a ΔE with a standard error worth the name (the study: several samples)
MIN_GLASSES = 3


def formation_status(out: AmorphousCompositionResult) -> tuple[str, list[str]]:
    """Whether ΔE(amorphous − crystalline) of one composition is a result: excluded without a
    usable glass; flagged with fewer than three, an unconverged or unchecked-as-minimum
    crystalline reference, or glasses that left the force field's trust window."""
    n = out.delta_e.n_samples
    if n == 0:
        return "excluded", [
            f"no usable glass: {out.n_failed} of {out.n_requested} samples failed the melt–quench "
            "checks (see the notes)"
        ]
    reasons = []
    if n < MIN_GLASSES:
        reasons.append(f"only {n} usable glass(es): the mean and its error need ≥ {MIN_GLASSES}")
    if out.crystal_converged is False:
        reasons.append("the crystalline reference did not reach its force criterion")
    if out.crystal_is_minimum is False:
        reasons.append("the crystalline reference is not a confirmed minimum")
    strayed = [
        s.index for s in out.samples if s.status == "ok" and s.trust and s.trust.status == "flagged"
    ]
    if strayed:
        reasons.append(f"glasses {strayed} left the force field's trust window")
    return ("flagged" if reasons else "valid"), reasons


def _sample_row(sample: AmorphousSample) -> dict[str, Any]:
    checks = sample.checks
    return {
        "index": sample.index,
        "seed": sample.seed,
        "status": sample.status,
        "reason": sample.reason,
        "delta_e_mev_per_atom": sample.delta_e_mev_per_atom,
        "energy_per_atom_ev": sample.energy_per_atom_ev,
        "relax_converged": sample.relax_converged,
        "melt_msd_a2": None if checks is None else checks.melt_msd_a2,
        "long_range_order": None if checks is None else checks.long_range_order,
        "closest_pair_a": None if checks is None else checks.closest_pair_a,
        "max_force_deviation_ev_per_a": (
            None if sample.trust is None else sample.trust.deviation_max_ev_per_a
        ),
        "earlier_attempts": [a.model_dump() for a in sample.attempts],
    }


class InterfaceDoc(DerivedDoc):
    """One electrolyte | metal interface after annealing and minimisation. γ in J/m² (per
    interface; the periodic cell holds ``n_interfaces``), areas in Å², energies in eV, strain in %.
    """

    phase: str | None = Field(None, description="'crystalline' or 'amorphous'.")
    metal: str | None = None
    sample: int | None = Field(None, description="Electrolyte sample index.")
    electrolyte_formula: str | None = None
    miller: tuple[int, int, int] | None = None
    metal_miller: tuple[int, int, int] | None = None
    termination: str | None = None
    gamma_j_per_m2: float | None = None
    gamma_uncertainty_j_per_m2: float | None = Field(
        None, description="γ's uncertainty from the bulk electrolyte reference, J/m²."
    )
    status: str | None = Field(None, description="valid or flagged (see reasons).")
    reasons: list[str] = Field(default_factory=list)
    gamma_as_built_j_per_m2: float | None = None
    area_a2: float | None = None
    strain_pct: float | None = None
    n_interfaces: int | None = None
    n_atoms: int | None = None
    n_electrolyte_atoms: int | None = None
    n_metal_atoms: int | None = None
    metal_lattice_a: float | None = None
    energies: dict[str, Any] = Field(default_factory=dict)
    relaxed_converged: bool | None = None
    max_force_ev_per_a: float | None = None
    anneal_temperature_k: float | None = None
    anneal_fs: float | None = None
    md_mean_temperature_k: float | None = None
    engine_description: dict[str, Any] = Field(default_factory=dict)
    stage_settings: dict[str, Any] = Field(default_factory=dict)
    software: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def from_output(cls, out: InterfaceResult) -> dict[str, Any]:
        """This document's fields from one interface result."""
        return {
            **out.model_dump(include=_own_fields(cls, out)),
            "gamma_as_built_j_per_m2": out.energies.gamma_as_built_j_per_m2,
            "engine_description": out.engine,
            "stage_settings": out.settings,
            "notes": list(out.notes),
        }


def _own_fields(document: type[DerivedDoc], output: BaseModel) -> set[str]:
    """Fields a derived document copies as they are: those it shares by name with the stage
    output, except the common ones every derived document has."""
    return (set(document.model_fields) - set(DerivedDoc.model_fields)) & set(
        type(output).model_fields
    )
