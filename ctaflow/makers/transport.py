"""The transport stage: diffusion and conductivity from production MD, Arrhenius over T."""

from __future__ import annotations

from typing import Any

import numpy as np
from jobflow import Flow

from ctaflow.analysis.arrhenius import arrhenius_from_results
from ctaflow.analysis.diffusion import DiffusionResult
from ctaflow.analysis.md import MDResult
from ctaflow.analysis.transport_summary import (
    ArrheniusSummary,
    TransportSummary,
    analyse_production,
)
from ctaflow.jobs import result_job


@result_job(TransportSummary)
def transport_job(
    production: MDResult, species: list[str] | None, settings: dict[str, Any]
) -> TransportSummary:
    """Analyse one production segment with kinisi."""
    md = production if isinstance(production, MDResult) else MDResult.model_validate(production)
    return analyse_production(md, species, settings)


@result_job(ArrheniusSummary)
def arrhenius_job(summaries: list[TransportSummary]) -> ArrheniusSummary:
    """Arrhenius fit of D and σ over temperatures for each species / site class."""
    parsed = [
        s if isinstance(s, TransportSummary) else TransportSummary.model_validate(s)
        for s in summaries
    ]
    groups: dict[tuple, list[DiffusionResult]] = {}
    for summary in parsed:
        for result in summary.results:
            groups.setdefault((result.species, result.site_class), []).append(result)
    fits, skipped = [], []
    for (species, site_class), results in sorted(groups.items(), key=str):
        values = np.array([r.diffusivity_cm2_per_s for r in results])
        if len({r.temperature_k for r in results}) < 2 or np.any(values <= 0):
            skipped.append(f"{species}/{site_class}: needs two temperatures with D > 0")
            continue
        for quantity in ("diffusivity", "conductivity"):
            fits.append(arrhenius_from_results(results, quantity=quantity))
    return ArrheniusSummary(fits=fits, skipped=skipped)


def transport_flow(productions: list, species: list[str] | None, settings: dict[str, Any]) -> Flow:
    """Transport of every production run, then the Arrhenius fit if there are several."""
    jobs = []
    for production in productions:
        analysis = transport_job(production, species, settings)
        analysis.name = "transport"
        jobs.append(analysis)
    if len(jobs) > 1:
        fit = arrhenius_job([j.output for j in jobs])
        fit.name = "arrhenius"
        jobs.append(fit)
    return Flow(jobs, output=[j.output for j in jobs], name="transport")
