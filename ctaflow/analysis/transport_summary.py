"""Transport of one production run and over temperatures: the documents the transport stage
stores, and the pure functions that analyse a stored production run (kinisi, per species and
site class) and judge whether each D describes transport (issue #24).

A production run is either one stored MD segment (:class:`MDResult`) or the segments of a
production loop (:class:`~ctaflow.analysis.production.ProductionRun` and its pieces). Every
result carries its checks (:class:`PointCheck`): the diffusive regime of its MSD
(:func:`~ctaflow.analysis.regime.regime_of`), the temperature of the analysed frames and the
crystallinity of the framework; :func:`checked_fits` keeps the flagged ones out of the Arrhenius
fit (:func:`~ctaflow.analysis.arrhenius.checked_arrhenius`) with their reasons.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field
from pymatgen.core import Structure

from ctaflow.analysis.active_learning import TrustCheck, worst_trust
from ctaflow.analysis.arrhenius import CheckedArrhenius, checked_arrhenius
from ctaflow.analysis.chunks import join_chunks
from ctaflow.analysis.diffusion import DiffusionResult, MSDCurve, SamplingSettings
from ctaflow.analysis.md import MDResult, SegmentCheck
from ctaflow.analysis.production import ProductionRun, join_pieces, lattice_of
from ctaflow.analysis.regime import (
    CrystallinityCheck,
    RegimeCheck,
    RegimeSettings,
    hop_length,
    reasons_of,
    regime_of,
)
from ctaflow.analysis.trajectory import MDTrajectory
from ctaflow.analysis.transport import analyse_diffusion_with_msd


class PointCheck(BaseModel):
    """Whether one result (species / site class at one temperature) may enter an Arrhenius fit."""

    species: str
    site_class: str | None = None
    status: Literal["ok", "flagged"]
    reasons: list[str] = Field(default_factory=list)
    regime: RegimeCheck


class TransportSummary(BaseModel):
    """Diffusion results of one production run (per species, and per site class if asked), each
    with its :class:`PointCheck` (``checks``, same order as ``results``)."""

    temperature_k: float = Field(description="Mean temperature of the analysed frames, K.")
    target_temperature_k: float | None = Field(None, description="Thermostat target, K.")
    results: list[DiffusionResult]
    checks: list[PointCheck] = Field(default_factory=list)
    msd: list[MSDCurve] = Field(description="Tracer MSD curves for plots (time ps, MSD Å²).")
    skipped: list[str] = Field(default_factory=list, description="Groups that could not be fitted.")
    engine: dict[str, Any] = Field(default_factory=dict)
    md_duration_ps: float = Field(description="Production MD analysed (all segments), ps.")
    analysed_from_fs: float = Field(0.0, description="Frames before this time left out, fs.")
    md_check: SegmentCheck | None = Field(None, description="Temperature of the analysed frames.")
    crystallinity: CrystallinityCheck | None = None
    production: ProductionRun | None = Field(
        None, description="The production loop's record (segments, MSD reached, why it stopped)."
    )
    trust: TrustCheck | None = Field(
        None,
        description="The committee force deviation of the production segment that strayed "
        "furthest (a campaign-trained model with a committee; None otherwise).",
    )


class ArrheniusSummary(BaseModel):
    """Arrhenius fits over the production temperatures that passed their checks, per species /
    site class, of D and of σ."""

    fits: list[CheckedArrhenius]
    skipped: list[str] = Field(default_factory=list, description="Groups not fitted, and why.")


def md_trajectory(
    md: MDResult,
    arrays: dict[str, np.ndarray] | None = None,
    temperature_k: float | None = None,
) -> MDTrajectory:
    """The analysis view of stored MD frames (unwrapped positions, per-frame cells): of ``md``
    itself, or ``arrays`` (e.g. joined segments) with ``md``'s species and site classes."""
    arrays = arrays if arrays is not None else join_chunks(md.trajectory)
    final: Structure = md.final_structure
    classes = final.site_properties.get("site_class")
    return MDTrajectory(
        positions_a=arrays["positions_a"],
        lattices_a=arrays["cells_a"],
        species=tuple(site.specie.symbol for site in final),
        frame_interval_fs=md.sample_every * md.timestep_fs,
        temperature_k=temperature_k if temperature_k is not None else md.temperature_end_k,
        site_classes=tuple(classes) if classes else None,
        positions_are_unwrapped=True,
        metadata={"segment": md.segment, "engine": md.engine.get("engine")},
    )


def mobile_species(structure: Structure) -> list[str]:
    """Species on sites whose ``site_class`` is ``mobile``."""
    classes = structure.site_properties.get("site_class") or []
    return sorted(
        {s.specie.symbol for s, c in zip(structure, classes, strict=True) if c == "mobile"}
    )


def regime_settings(settings: dict[str, Any]) -> RegimeSettings:
    """The regime thresholds of the transport settings (``min_msd_a2``, ``slope_tolerance``)."""
    return RegimeSettings(
        min_msd_a2=settings.get("min_msd_a2"), slope_tolerance=settings.get("slope_tolerance", 0.25)
    )


def analyse_production(
    md: MDResult, species: list[str] | None, settings: dict[str, Any]
) -> TransportSummary:
    """Diffusion of ``species`` (default: the mobile ones) per site class in one MD segment.

    Without the crystal the run started from, the hop length is unknown (regime floor 4 Å²
    unless ``settings["min_msd_a2"]``) and the crystallinity is not checked; the temperature is
    the segment's measured mean, its check the segment's ``target_check``.
    """
    traj = md_trajectory(md, temperature_k=md.mean_temperature_k)
    return _analyse(
        traj,
        md.final_structure,
        species,
        settings,
        hops={},
        md_check=md.target_check,
        crystallinity=None,
        summary={
            "temperature_k": md.mean_temperature_k,
            "target_temperature_k": md.temperature_end_k,
            "engine": md.engine,
            "md_duration_ps": md.duration_ps,
        },
    )


def analyse_production_run(
    run: ProductionRun,
    pieces: Sequence[MDResult],
    species: list[str] | None,
    settings: dict[str, Any],
) -> TransportSummary:
    """Diffusion in the joined segments of a production loop, from ``run.analysed_from_fs``
    on, at the measured mean temperature; hop lengths from the crystal the MD started from."""
    arrays = join_pieces(pieces)
    keep = arrays["times_fs"] >= run.analysed_from_fs - 1e-9
    arrays = {name: values[keep] for name, values in arrays.items()}
    traj = md_trajectory(pieces[-1], arrays, run.mean_temperature_k)
    reference = run.reference_structure
    chosen = species or mobile_species(pieces[-1].final_structure)
    hops = {sp: run.hop_length_a.get(sp) or _hop(lattice_of(reference), sp) for sp in chosen}
    return _analyse(
        traj,
        pieces[-1].final_structure,
        chosen,
        settings,
        hops=hops,
        md_check=run.target_check,
        crystallinity=run.crystallinity,
        summary={
            "temperature_k": run.mean_temperature_k,
            "target_temperature_k": run.temperature_k,
            "engine": pieces[-1].engine,
            "md_duration_ps": run.duration_ps,
            "analysed_from_fs": run.analysed_from_fs,
            "production": run,
            "trust": worst_trust([piece.uncertainty for piece in pieces]),
        },
    )


def _hop(reference: Structure, species: str) -> float | None:
    try:
        return hop_length(reference, species)
    except ValueError:
        return None


def _analyse(
    traj: MDTrajectory,
    structure: Structure,
    species: list[str] | None,
    settings: dict[str, Any],
    *,
    hops: dict[str, float | None],
    md_check: SegmentCheck | None,
    crystallinity: CrystallinityCheck | None,
    summary: dict[str, Any],
) -> TransportSummary:
    chosen = species or mobile_species(structure)
    if not chosen:
        raise ValueError(
            "no mobile species: no site has site_class 'mobile'; set stages.transport.species"
        )
    sampling = SamplingSettings(
        n_samples=settings["n_samples"], n_walkers=settings["n_walkers"], seed=settings["seed"]
    )
    groups: list[str | None] = [None]
    if settings["by_site_class"] and traj.site_classes:
        groups += sorted(set(traj.site_classes))
    thresholds = regime_settings(settings)
    results, curves, checks, skipped = [], [], [], []
    for sp in chosen:
        seen: list[set] = []
        for site_class in groups:
            members = set(traj.indices(sp, site_class).tolist())
            if not members or members in seen:
                continue  # empty, or the same ions as an earlier group (e.g. all Na mobile)
            seen.append(members)
            try:
                result, curve = analyse_diffusion_with_msd(
                    traj,
                    sp,
                    site_class=site_class,
                    fit_start_ps=settings["fit_start_ps"],
                    fit_end_ps=settings["fit_end_ps"],
                    collective=settings["collective"],
                    sampling=sampling,
                )
            except (ValueError, np.linalg.LinAlgError) as exc:  # e.g. exactly immobile ions
                skipped.append(f"{sp}/{site_class}: {type(exc).__name__}: {exc}")
                continue
            regime = regime_of(result, curve, hops.get(sp), thresholds)
            reasons = reasons_of(md=md_check, regime=regime, crystal=crystallinity)
            checks.append(
                PointCheck(
                    species=sp,
                    site_class=site_class,
                    status="flagged" if reasons else "ok",
                    reasons=reasons,
                    regime=regime,
                )
            )
            results.append(result)
            curves.append(curve)
    return TransportSummary(
        results=results,
        checks=checks,
        msd=curves,
        skipped=skipped,
        md_check=md_check,
        crystallinity=crystallinity,
        **summary,
    )


def point_reasons(summary: TransportSummary) -> list[list[str]]:
    """The reasons of each result of ``summary`` (same order) to stay out of a fit; results of
    summaries stored before the checks existed have none."""
    if len(summary.checks) != len(summary.results):
        return [[] for _ in summary.results]
    return [list(check.reasons) for check in summary.checks]


def checked_fits(
    summaries: Sequence[TransportSummary], min_temperatures: int = 3
) -> tuple[list[CheckedArrhenius], list[str]]:
    """:func:`checked_arrhenius` of D and σ per species / site class over ``summaries``; groups
    with results at fewer than two temperatures are listed as skipped."""
    groups: dict[tuple, tuple[list[DiffusionResult], list[list[str]]]] = {}
    for summary in summaries:
        for result, why in zip(summary.results, point_reasons(summary), strict=True):
            results, reasons = groups.setdefault((result.species, result.site_class), ([], []))
            results.append(result)
            reasons.append(why)
    fits, skipped = [], []
    for (species, site_class), (results, reasons) in sorted(groups.items(), key=str):
        if len({r.temperature_k for r in results}) < 2:
            skipped.append(f"{species}/{site_class}: results at one temperature only")
            continue
        for quantity in ("diffusivity", "conductivity"):
            fits.append(
                checked_arrhenius(
                    results, reasons, quantity=quantity, min_temperatures=min_temperatures
                )
            )
    return fits, skipped
