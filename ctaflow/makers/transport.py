"""The transport stage: diffusion and conductivity from production MD, Arrhenius over the
temperatures whose runs pass the regime checks."""

from __future__ import annotations

from typing import Any

from jobflow import Flow, Response
from jobflow.core.reference import OutputReference

from ctaflow.analysis.md import MDResult
from ctaflow.analysis.production import ProductionRun
from ctaflow.analysis.transport_summary import (
    ArrheniusSummary,
    TransportSummary,
    analyse_production,
    analyse_production_run,
    checked_fits,
)
from ctaflow.jobs import result_job


def _is_production_run(doc: Any) -> bool:
    return isinstance(doc, ProductionRun) or (isinstance(doc, dict) and "pieces" in doc)


@result_job(TransportSummary)
def transport_job(production: Any, species: list[str] | None, settings: dict[str, Any]):
    """Analyse one production run: a stored MD segment (:class:`MDResult`), or the record of a
    production loop (:class:`ProductionRun`), whose segments this job then loads by replacing
    itself with :func:`production_transport_job` on references to them (the record names
    them by uuid, so the segments' trajectories are stored once)."""
    if _is_production_run(production):
        run = ProductionRun.model_validate(production)
        pieces = [OutputReference(piece.uuid) for piece in run.pieces]
        analysis = production_transport_job(pieces, run, species, settings)
        analysis.name = "transport"
        return Response(replace=analysis)
    md = production if isinstance(production, MDResult) else MDResult.model_validate(production)
    return analyse_production(md, species, settings)


@result_job(TransportSummary)
def production_transport_job(
    pieces: list[MDResult], run: ProductionRun, species: list[str] | None, settings: dict[str, Any]
) -> TransportSummary:
    """Analyse the joined segments of one production loop (see :func:`analyse_production_run`)."""
    docs = [p if isinstance(p, MDResult) else MDResult.model_validate(p) for p in pieces]
    return analyse_production_run(run, docs, species, settings)


@result_job(ArrheniusSummary)
def arrhenius_job(summaries: list[TransportSummary], min_temperatures: int = 3) -> ArrheniusSummary:
    """Arrhenius fits of D and σ over the temperatures whose results passed their checks, for
    each species / site class (:func:`~ctaflow.analysis.transport_summary.checked_fits`)."""
    parsed = [
        s if isinstance(s, TransportSummary) else TransportSummary.model_validate(s)
        for s in summaries
    ]
    fits, skipped = checked_fits(parsed, min_temperatures)
    return ArrheniusSummary(fits=fits, skipped=skipped)


def transport_flow(productions: list, species: list[str] | None, settings: dict[str, Any]) -> Flow:
    """Transport of every production run, then the Arrhenius fit if there are several."""
    jobs = []
    for production in productions:
        analysis = transport_job(production, species, settings)
        analysis.name = "transport"
        jobs.append(analysis)
    if len(jobs) > 1:
        fit = arrhenius_job([j.output for j in jobs], settings.get("min_temperatures", 3))
        fit.name = "arrhenius"
        jobs.append(fit)
    return Flow(jobs, output=[j.output for j in jobs], name="transport")
