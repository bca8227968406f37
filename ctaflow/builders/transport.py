"""Ion transport: D and σ of every production run of a group, and Arrhenius fits over those that
pass their checks."""

from __future__ import annotations

import math
from typing import Any

from ctaflow.analysis.arrhenius import MIN_ARRHENIUS_TEMPERATURES, checked_arrhenius
from ctaflow.analysis.transport_summary import TransportSummary, point_reasons
from ctaflow.builders.base import StageBuilder, Task, latest_per
from ctaflow.builders.schemas import SkippedTask, TransportDoc, TransportPoint


class TransportBuilder(StageBuilder):
    """``transport`` stage :class:`TransportSummary` outputs (one per production temperature) →
    ``derived_transport``, one document per (group, species, site class).

    The Arrhenius fits are recomputed over the group's points with
    :func:`~ctaflow.analysis.arrhenius.checked_arrhenius` (what the stage's ``arrhenius`` job
    calls), so a production run added later enters the fit; the stage's own
    ``ArrheniusSummary`` outputs are not read. Every point keeps its checks: ``used``, or
    ``excluded`` with the reasons of the analysis (regime, temperature, crystallinity) and stays
    in the document. Points with a non-finite D or std are skipped; species / site classes the
    analysis could not fit at some temperature (the summary's ``skipped``) are listed with the
    analysis' reason.
    """

    stage = "transport"
    output_schema = TransportSummary
    document = TransportDoc
    collection = "transport"
    sub_keys = ("species", "site_class")

    def derive(self, tasks: list[Task]) -> list[dict[str, Any]]:
        points: dict[tuple, list[TransportPoint]] = {}
        skipped: dict[tuple, list[SkippedTask]] = {}
        notes: list[str] = []
        # one run per temperature: a re-run (e.g. the campaign run again after an upgrade of
        # ctaflow, whose new job uuids do not reuse the old runs) replaces the earlier one
        # instead of adding a second point at the same temperature to the fit
        latest = latest_per(
            tasks, lambda t: t.output.target_temperature_k or t.output.temperature_k
        )
        superseded = [old for _, older in latest for old in older]
        for task, _ in latest:
            summary: TransportSummary = task.output
            checks = summary.checks if len(summary.checks) == len(summary.results) else None
            for k, (result, why) in enumerate(
                zip(summary.results, point_reasons(summary), strict=True)
            ):
                key = (result.species, result.site_class)
                points.setdefault(key, [])
                skipped.setdefault(key, [])
                values = (result.diffusivity_cm2_per_s, result.diffusivity_std_cm2_per_s)
                if not all(math.isfinite(v) for v in values):
                    skipped[key].append(
                        task.skip(f"non-finite D or its std at {result.temperature_k:g} K")
                    )
                    continue
                if min(values) <= 0:
                    why = [*why, f"D = {values[0]:.3g} ± {values[1]:.3g} cm²/s is not positive"]
                trust = summary.trust
                untrusted = trust is not None and trust.status == "flagged"
                status = "excluded" if why else "flagged" if untrusted else "used"
                points[key].append(
                    TransportPoint(
                        **dict(result),
                        task_uuid=task.uuid,
                        md_duration_ps=summary.md_duration_ps,
                        target_temperature_k=summary.target_temperature_k,
                        status=status,
                        reasons=[
                            *why,
                            *(f"trust: {r}" for r in (trust.reasons if untrusted else [])),
                        ],
                        trust=trust,
                        regime=checks[k].regime if checks else None,
                        crystallinity=summary.crystallinity,
                        md_check=summary.md_check,
                        production_stopped_because=(
                            summary.production.stopped_because if summary.production else None
                        ),
                    )
                )
            for entry in summary.skipped:
                key, reason = _analysis_skip(entry)
                if key is None:
                    notes.append(f"task {task.uuid}: {entry}")
                    continue
                points.setdefault(key, [])
                skipped.setdefault(key, []).append(
                    task.skip(f"not fitted at {summary.temperature_k:g} K: {reason}")
                )
        docs = []
        for key in sorted(points, key=lambda k: (k[0], k[1] is not None, k[1] or "")):
            doc = _arrhenius(sorted(points[key], key=lambda p: (p.temperature_k, p.task_uuid)))
            doc.update(
                species=key[0], site_class=key[1], skipped=[*skipped.get(key, []), *superseded]
            )
            doc["notes"] = [*notes, *doc["notes"]]
            docs.append(doc)
        return docs


def _arrhenius(
    points: list[TransportPoint], min_temperatures: int = MIN_ARRHENIUS_TEMPERATURES
) -> dict[str, Any]:
    """Points, temperatures and both checked Arrhenius fits of one species / site class."""
    doc: dict[str, Any] = {
        "points": points,
        "temperatures_k": [p.temperature_k for p in points],
        "task_uuids": sorted({p.task_uuid for p in points}),
        "notes": [],
    }
    if not points:
        return doc
    # flagged points enter the fit; the fit then says which of its points are untrusted
    reasons = [p.reasons if p.status == "excluded" else [] for p in points]
    untrusted = sorted({p.temperature_k for p in points if p.status == "flagged"})
    caveats = []
    if untrusted:
        caveats.append(
            "the MD at "
            + ", ".join(f"{t:.0f}" for t in untrusted)
            + " K left the force field's trust window (committee σ_F above its upper bound in "
            "some frames; see those points): the fit rests on frames where the model extrapolated"
        )
    for quantity in ("diffusivity", "conductivity"):
        checked = checked_arrhenius(
            points, reasons, quantity=quantity, min_temperatures=min_temperatures
        )
        if checked.status == "fitted":
            checked.reasons.extend(caveats)
        doc[f"fit_{quantity}"] = checked
        doc[f"arrhenius_{quantity}"] = checked.fit
    fit = doc["fit_diffusivity"]
    doc.update(status=fit.status, reasons=fit.reasons, used_temperatures_k=fit.used_temperatures_k)
    if fit.fit is not None:
        doc["activation_energy_ev"] = fit.fit.activation_energy_ev
        doc["activation_energy_std_ev"] = fit.fit.activation_energy_std_ev
    doc["conductivity_extrapolation"] = doc["fit_conductivity"].extrapolation
    return doc


def _analysis_skip(entry: str) -> tuple[tuple[str, str | None] | None, str]:
    """(species, site class) and reason from a summary's skipped entry ``"Na/None: error"``."""
    head, sep, reason = entry.partition(": ")
    species, slash, site_class = head.partition("/")
    if not sep or not slash or not species:
        return None, entry
    return (species, None if site_class == "None" else site_class), reason
