"""Collect report records from a job store and write report.json, report.md, index.html.

The sections are the stages' (:class:`~ctaflow.report.data.ReportSection` in the stage registry),
rendered in pipeline order: a table (or the section's own lines), notes and figures.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctaflow.analysis.provenance import software_versions
from ctaflow.report.data import ReportData
from ctaflow.report.format import table
from ctaflow.stages.registry import report_sections

if TYPE_CHECKING:
    from jobflow import JobStore
    from maggma.core import Store


def report_keys() -> tuple[str, ...]:
    """report.json keys: the campaign provenance, then one per section in pipeline order."""
    return ("provenance", *(section.key for section in report_sections()))


EXPERIMENTAL_REFERENCE = {
    "material": "Na5SmSi4O12",
    "conductivity_rt_s_per_cm": 2.9e-3,
    "activation_energy_impedance_ev": 0.15,
    "activation_energy_nmr_crystalline_ev": 0.13,
    "activation_energy_nmr_amorphised_ev": 0.07,
    "note": "experimental values of the study, for context only; never used for tuning",
}


def collect_report(
    store: JobStore, derived: Mapping[str, Store]
) -> dict[str, list[dict[str, Any]]]:
    """Report records (lists of flat dicts with units in the keys), one list per section and the
    campaign provenance. ``derived`` maps a collection name of :func:`ctaflow.stages.builders` to
    its connected store."""
    data = ReportData(store, derived)
    report: dict[str, list[dict[str, Any]]] = {
        section.key: section.records(data) for section in report_sections()
    }
    report["provenance"] = provenance_records(report, data)
    return {key: report[key] for key in report_keys()}


def provenance_records(report: dict[str, list], data: ReportData) -> list[dict[str, Any]]:
    """One record per campaign: its fingerprint, software, the structure's provenance and the
    description of every engine that produced a derived document."""
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
    return [
        {
            "campaign": name,
            "campaign_fingerprint": fingerprint,
            "software": software_versions(),
            "engines": info["engines"],
            "structure_provenance": info["structure_provenance"],
            "generated_at": datetime.now(UTC).isoformat(),
        }
        for (name, fingerprint), info in sorted(campaigns.items(), key=lambda kv: str(kv[0]))
    ]


def make_figures(report: dict[str, list], data: ReportData) -> dict[str, dict[str, bytes]]:
    """PNG figures per section key (sections without data have none)."""
    return {
        section.key: section.figures(report[section.key], data)
        for section in report_sections()
        if section.figures is not None and report[section.key]
    }


def write_report(store: JobStore, derived: Mapping[str, Store], out_dir: str | Path) -> Path:
    """Write ``report.json``, ``report.md``, PNG figures and a self-contained ``index.html``
    (figures embedded) into ``out_dir``; return the HTML path. ``derived``: see
    :func:`collect_report`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = ReportData(store, derived)
    report = collect_report(store, derived)
    figures = make_figures(report, data)
    flat = {name: png for section in figures.values() for name, png in section.items()}
    for name, png in flat.items():
        (out_dir / name).write_bytes(png)
    payload = {
        **report,
        "experimental_reference": [EXPERIMENTAL_REFERENCE],
        "figures": [{"file": name} for name in flat],
    }
    (out_dir / "report.json").write_text(json.dumps(payload, indent=2, default=str))
    markdown = to_markdown(report, {k: list(v) for k, v in figures.items()})
    (out_dir / "report.md").write_text(markdown)
    page = out_dir / "index.html"
    page.write_text(to_html(markdown, flat))
    return page


def to_markdown(
    report: dict[str, list[dict[str, Any]]], figures: dict[str, list[str]] | None = None
) -> str:
    """Human-readable summary of the report records; ``figures`` names each section's figure
    files (placed under the section)."""
    figures = figures or {}
    lines = ["# ctaflow report", ""]
    for prov in report["provenance"]:
        lines += [
            f"Campaign **{prov['campaign']}** (fingerprint `{prov['campaign_fingerprint']}`).",
            "",
            "Software: " + ", ".join(f"{k} {v}" for k, v in prov["software"].items()),
            "",
        ]
        for label, engine in prov["engines"].items():
            lines.append(f"Engine `{label}`: " + json.dumps(engine, default=str))
        lines.append("")
    pending = []
    for section in report_sections():
        rows = report[section.key]
        if not rows and not section.always:
            pending.append(section.key)
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
            lines += ["", "Notes:", *[f"- {n}" for n in notes]]
        for name in figures.get(section.key, []):
            lines += ["", f"![{name}]({name})"]
    if pending:
        lines += ["", "Not computed in this campaign: " + ", ".join(pending) + "."]
    ref = EXPERIMENTAL_REFERENCE
    lines += [
        "",
        "## Experimental reference (Na5SmSi4O12, context only)",
        "",
        f"σ(RT) = {ref['conductivity_rt_s_per_cm']:.1e} S/cm; Ea = "
        f"{ref['activation_energy_impedance_ev']} eV (impedance), "
        f"{ref['activation_energy_nmr_crystalline_ev']} eV (NMR, crystalline), "
        f"{ref['activation_energy_nmr_amorphised_ev']} eV (NMR, amorphised).",
        "",
    ]
    return "\n".join(lines)


def to_html(markdown: str, figures: dict[str, bytes] | None = None) -> str:
    """A self-contained HTML page from the report's Markdown (headings, lists, tables, images;
    images are embedded as data URIs)."""
    figures = figures or {}
    out: list[str] = []
    table: list[str] = []

    def flush_table() -> None:
        if not table:
            return
        rows = [[html.escape(c.strip()) for c in line.strip("|").split("|")] for line in table]
        head, body = rows[0], rows[2:]
        out.append("<table><tr>" + "".join(f"<th>{c}</th>" for c in head) + "</tr>")
        out.extend("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in body)
        out.append("</table>")
        table.clear()

    for line in markdown.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush_table()
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{level}>{html.escape(line.lstrip('#').strip())}</h{level}>")
        elif line.startswith("![") and "](" in line:
            name = line[line.index("](") + 2 : -1]
            data = base64.b64encode(figures.get(name, b"")).decode()
            out.append(f"<p><img alt='{html.escape(name)}' src='data:image/png;base64,{data}'></p>")
        elif line.startswith("- "):
            out.append(f"<ul><li>{html.escape(line[2:])}</li></ul>")
        elif line.strip():
            out.append(f"<p>{html.escape(line).replace('**', '')}</p>")
    flush_table()
    style = (
        "body{font-family:sans-serif;max-width:75em;margin:2em auto;line-height:1.4}"
        "table{border-collapse:collapse;margin:1em 0;font-size:90%}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>ctaflow report</title>"
        f"<style>{style}</style></head><body>" + "\n".join(out) + "</body></html>\n"
    )
