"""Collect report records from a job store and write report.json, report.md, index.html.

The sections are the stages' (:class:`~ctaflow.report.data.ReportSection` in the stage registry),
rendered in pipeline order: a table (or the section's own lines) with the status of every record
that carries one, notes, and captioned figures. The Markdown is the source of the HTML page
(:mod:`ctaflow.report.html`). Experimental reference values appear only when the campaign
declares them (``reference:`` in the campaign file).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctaflow.analysis.provenance import software_versions
from ctaflow.report.data import ReportData
from ctaflow.report.format import fmt, table
from ctaflow.report.html import to_html
from ctaflow.stages.registry import STAGES, report_sections

if TYPE_CHECKING:
    from jobflow import JobStore
    from maggma.core import Store

__all__ = [
    "collect_report",
    "make_figures",
    "model_stages",
    "report_keys",
    "to_html",
    "to_markdown",
    "write_report",
]


def report_keys() -> tuple[str, ...]:
    """report.json keys: the campaign provenance, then one per section in pipeline order."""
    return ("provenance", *(section.key for section in report_sections()))


def model_stages() -> tuple[str, ...]:
    """The stages that provide a trained model, in pipeline order (from the registry)."""
    return tuple(name for name, spec in STAGES.items() if spec.provides == "model")


def report_data(store: JobStore, derived: Mapping[str, Store]) -> ReportData:
    """What the sections read, with the trained models' names."""
    return ReportData(store, derived, model_stages())


def collect_report(
    store: JobStore, derived: Mapping[str, Store], data: ReportData | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Report records (lists of flat dicts with units in the keys), one list per section and the
    campaign provenance. ``derived`` maps a collection name of :func:`ctaflow.stages.builders` to
    its connected store. Records whose engine is a trained model get its readable name
    (``engine_name``), records with a ``model_sha256`` the model's (``model_name``)."""
    data = data or report_data(store, derived)
    report: dict[str, list[dict[str, Any]]] = {
        section.key: data.model_names.annotate(section.records(data))
        for section in report_sections()
    }
    report["provenance"] = provenance_records(report, data)
    return {key: report[key] for key in report_keys()}


def provenance_records(report: dict[str, list], data: ReportData) -> list[dict[str, Any]]:
    """One record per campaign: its fingerprint, software, the structure's provenance and the
    description of every engine that produced a derived document (with the readable name of
    each trained model)."""
    campaigns: dict[tuple, dict[str, Any]] = {}
    for row in report.get("structures", []):
        key = (row["campaign"], row["campaign_fingerprint"])
        campaigns.setdefault(key, {"structure_provenance": row["provenance"], "engines": {}})
    for name in data.derived_stores:
        for doc in data.derived(name):
            key = (doc["campaign"], doc["campaign_fingerprint"])
            info = campaigns.setdefault(key, {"structure_provenance": {}, "engines": {}})
            if doc.get("engine") and doc.get("engine_description"):
                info["engines"][doc["engine"]] = doc["engine_description"]
    records = []
    for (name, fingerprint), info in sorted(campaigns.items(), key=lambda kv: str(kv[0])):
        names = {
            label: data.model_names.engine_name(label, name)
            or data.model_names.engine_name(description.get("engine"), name)
            for label, description in info["engines"].items()
        }
        records.append(
            {
                "campaign": name,
                "campaign_fingerprint": fingerprint,
                "software": software_versions(),
                "engines": info["engines"],
                "engine_names": {k: v for k, v in names.items() if v},
                "structure_provenance": info["structure_provenance"],
                "generated_at": datetime.now(UTC).isoformat(),
            }
        )
    return records


def make_figures(
    report: dict[str, list], data: ReportData
) -> dict[str, dict[str, tuple[bytes, str]]]:
    """Captioned PNG figures per section key: file name → (PNG, caption); sections without data
    have none."""
    return {
        section.key: section.captioned_figures(report[section.key], data)
        for section in report_sections()
        if section.figures is not None and report[section.key]
    }


def write_report(
    store: JobStore,
    derived: Mapping[str, Store],
    out_dir: str | Path,
    reference: Sequence[Mapping[str, Any]] = (),
) -> Path:
    """Write ``report.json``, ``report.md``, PNG figures and a self-contained ``index.html``
    (figures embedded) into ``out_dir``; return the HTML path. ``derived``: see
    :func:`collect_report`; ``reference``: the campaign's experimental reference values
    (:class:`ctaflow.campaign.schema.ReferenceValue` as dicts), shown only when given."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = report_data(store, derived)
    report = collect_report(store, derived, data)
    figures = make_figures(report, data)
    flat = {name: png for section in figures.values() for name, (png, _) in section.items()}
    for name, png in flat.items():
        (out_dir / name).write_bytes(png)
    captions = {n: caption for section in figures.values() for n, (_, caption) in section.items()}
    payload = {
        **report,
        "figures": [{"file": name} for name in flat],
        "captions": captions,
    }
    if reference:
        payload["experimental_reference"] = [dict(r) for r in reference]
    (out_dir / "report.json").write_text(json.dumps(payload, indent=2, default=str))
    section_captions = {
        key: {name: caption for name, (_, caption) in items.items()}
        for key, items in figures.items()
    }
    markdown = to_markdown(report, section_captions, reference)
    (out_dir / "report.md").write_text(markdown)
    page = out_dir / "index.html"
    page.write_text(to_html(markdown, flat))
    return page


def to_markdown(
    report: dict[str, list[dict[str, Any]]],
    figures: Mapping[str, Sequence[str] | Mapping[str, str]] | None = None,
    reference: Sequence[Mapping[str, Any]] = (),
) -> str:
    """Human-readable summary of the report records. ``figures`` gives each section's figure
    files, as a list or as file name → caption (placed under the section, numbered; a figure
    without a caption gets the section title); ``reference``: see :func:`write_report`."""
    figures = figures or {}
    lines = ["# ctaflow report", ""]
    for prov in report["provenance"]:
        lines += provenance_lines(prov)
    pending = []
    n_figure = 0
    for section in report_sections():
        rows = report[section.key]
        if not rows and not section.always:
            pending.append(section.title)
            continue
        lines += ["", f"## {section.title}", ""]
        if section.markdown is not None:
            lines += section.markdown(rows)
        else:
            lines += table(rows, section.columns)
        if section.extra is not None and rows:
            lines += section.extra(rows)
        notes = section.notes(rows) if section.notes is not None else []
        if notes:
            lines += ["", "Notes:", "", *[f"- {n}" for n in notes]]
        given = figures.get(section.key, {})
        captions = given if isinstance(given, Mapping) else dict.fromkeys(given, "")
        for name, caption in captions.items():
            n_figure += 1
            caption = caption or section.title
            lines += ["", f"![{name}]({name})", "", f"*Figure {n_figure}. {caption}*"]
    if pending:
        lines += ["", "Not computed in this campaign: " + "; ".join(pending) + "."]
    if reference:
        lines += ["", "## Experimental reference (context only)", ""]
        lines += reference_lines(reference)
    lines.append("")
    return "\n".join(lines)


def provenance_lines(prov: dict[str, Any]) -> list[str]:
    """The campaign's fingerprint, software and engines (a table, trained models by name)."""
    lines = [
        f"Campaign **{prov['campaign']}** (fingerprint `{prov['campaign_fingerprint']}`).",
        "",
        "Software: " + ", ".join(f"{k} {v}" for k, v in prov["software"].items()),
        "",
    ]
    rows = []
    for label, engine in prov["engines"].items():
        path = engine.get("model_path")
        rows.append(
            {
                "engine": prov.get("engine_names", {}).get(label) or label,
                "label": f"`{label}`",
                "kind": engine.get("kind"),
                "model": " ".join(
                    str(v) for v in (engine.get("model"), engine.get("model_version")) if v
                )
                or (f"`{Path(path).name}`" if path else None),
                "device": " / ".join(str(engine[k]) for k in ("device", "dtype") if engine.get(k)),
                "packages": ", ".join(
                    f"{k} {v}" for k, v in (engine.get("package_versions") or {}).items()
                ),
                "note": engine.get("note"),
            }
        )
    if rows:
        lines += [*table(rows, list(rows[0])), ""]
    if prov.get("engine_names"):
        lines += [
            "Trained models are named *MACE <campaign> <sha256[:8]>*; "
            "`ctaflow export --what models` writes each as `mace-<campaign>-<sha8>.model`.",
            "",
        ]
    return lines


def reference_lines(reference: Sequence[Mapping[str, Any]]) -> list[str]:
    """The campaign's experimental reference values as a table (for context, never fitted)."""
    rows = [
        {
            "quantity": r.get("quantity"),
            "value": fmt(r.get("value")),
            "unit": r.get("unit"),
            "material": r.get("material"),
            "condition": r.get("condition"),
            "source": r.get("source"),
        }
        for r in reference
    ]
    columns = [c for c in rows[0] if any(row.get(c) for row in rows)]
    return [
        "Values the campaign file declares (`reference:`), for comparison only: no setting or "
        "result of ctaflow is tuned to them.",
        "",
        *table(rows, columns),
    ]
