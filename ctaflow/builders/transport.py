"""Ion transport: D and σ of every production run of a group, and Arrhenius fits over them."""

from __future__ import annotations

import math
from typing import Any

from ctaflow.analysis.arrhenius import arrhenius_from_results
from ctaflow.analysis.trajectory import TransportInputError
from ctaflow.analysis.transport_summary import TransportSummary
from ctaflow.builders.base import StageBuilder, Task
from ctaflow.builders.schemas import SkippedTask, TransportDoc, TransportPoint


class TransportBuilder(StageBuilder):
    """``transport`` stage :class:`TransportSummary` outputs (one per production temperature) →
    ``derived_transport``, one document per (group, species, site class).

    The Arrhenius fits are recomputed over the group's points with
    :func:`~ctaflow.analysis.arrhenius.arrhenius_from_results` (what the stage's ``arrhenius``
    job calls), so a production run added later enters the fit; the stage's own
    ``ArrheniusSummary`` outputs are not read. Points with a non-finite D or std are skipped;
    species / site classes the analysis could not fit at some temperature (the summary's
    ``skipped``) are listed with the analysis' reason.
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
        for task in tasks:
            summary: TransportSummary = task.output
            for result in summary.results:
                key = (result.species, result.site_class)
                points.setdefault(key, [])
                skipped.setdefault(key, [])
                values = (result.diffusivity_cm2_per_s, result.diffusivity_std_cm2_per_s)
                if not all(math.isfinite(v) for v in values):
                    skipped[key].append(
                        task.skip(f"non-finite D or its std at {result.temperature_k:g} K")
                    )
                    continue
                points[key].append(
                    TransportPoint(
                        **dict(result),
                        task_uuid=task.uuid,
                        md_duration_ps=summary.md_duration_ps,
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
            doc.update(species=key[0], site_class=key[1], skipped=skipped.get(key, []))
            doc["notes"] = [*notes, *doc["notes"]]
            docs.append(doc)
        return docs


def _arrhenius(points: list[TransportPoint]) -> dict[str, Any]:
    """Points, temperatures and both Arrhenius fits (or why not) of one species / site class."""
    doc: dict[str, Any] = {
        "points": points,
        "temperatures_k": [p.temperature_k for p in points],
        "task_uuids": sorted({p.task_uuid for p in points}),
        "notes": [],
    }
    if not points:
        return doc
    for quantity in ("diffusivity", "conductivity"):
        try:
            doc[f"arrhenius_{quantity}"] = arrhenius_from_results(points, quantity=quantity)
        except TransportInputError as exc:
            doc["notes"].append(f"no Arrhenius fit of the {quantity}: {exc}")
    if doc.get("arrhenius_diffusivity") is not None:
        doc["activation_energy_ev"] = doc["arrhenius_diffusivity"].activation_energy_ev
        doc["activation_energy_std_ev"] = doc["arrhenius_diffusivity"].activation_energy_std_ev
    return doc


def _analysis_skip(entry: str) -> tuple[tuple[str, str | None] | None, str]:
    """(species, site class) and reason from a summary's skipped entry ``"Na/None: error"``."""
    head, sep, reason = entry.partition(": ")
    species, slash, site_class = head.partition("/")
    if not sep or not slash or not species:
        return None, entry
    return (species, None if site_class == "None" else site_class), reason
