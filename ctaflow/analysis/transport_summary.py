"""Transport of one production run and over temperatures: the documents the transport stage
stores, and the pure function that analyses one stored MD segment (kinisi, per species and site
class)."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, Field
from pymatgen.core import Structure

from ctaflow.analysis.arrhenius import ArrheniusResult
from ctaflow.analysis.chunks import join_chunks
from ctaflow.analysis.diffusion import DiffusionResult, MSDCurve, SamplingSettings
from ctaflow.analysis.md import MDResult
from ctaflow.analysis.trajectory import MDTrajectory
from ctaflow.analysis.transport import analyse_diffusion_with_msd


class TransportSummary(BaseModel):
    """Diffusion results of one production run (per species, and per site class if asked)."""

    temperature_k: float
    results: list[DiffusionResult]
    msd: list[MSDCurve] = Field(description="Tracer MSD curves for plots (time ps, MSD Å²).")
    skipped: list[str] = Field(default_factory=list, description="Groups that could not be fitted.")
    engine: dict[str, Any] = Field(default_factory=dict)
    md_duration_ps: float


class ArrheniusSummary(BaseModel):
    """Arrhenius fits over the production temperatures, per species / site class."""

    fits: list[ArrheniusResult]
    skipped: list[str] = Field(default_factory=list, description="Groups not fitted, and why.")


def md_trajectory(md: MDResult) -> MDTrajectory:
    """The analysis view of a stored MD segment (unwrapped positions, per-frame cells)."""
    arrays = join_chunks(md.trajectory)
    final: Structure = md.final_structure
    classes = final.site_properties.get("site_class")
    return MDTrajectory(
        positions_a=arrays["positions_a"],
        lattices_a=arrays["cells_a"],
        species=tuple(site.specie.symbol for site in final),
        frame_interval_fs=md.sample_every * md.timestep_fs,
        temperature_k=md.temperature_end_k,
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


def analyse_production(
    md: MDResult, species: list[str] | None, settings: dict[str, Any]
) -> TransportSummary:
    """Diffusion of ``species`` (default: the mobile ones) per site class in one MD segment."""
    traj = md_trajectory(md)
    chosen = species or mobile_species(md.final_structure)
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
    results, curves, skipped = [], [], []
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
            results.append(result)
            curves.append(curve)
    return TransportSummary(
        temperature_k=md.temperature_end_k,
        results=results,
        msd=curves,
        engine=md.engine,
        md_duration_ps=md.duration_ps,
        skipped=skipped,
    )
