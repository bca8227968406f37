"""Report section of ion transport: D and σ per production run with the status of each point
(used in the Arrhenius fit, or excluded with its reasons), and the checked Arrhenius fits.

σ at room temperature appears only as the labelled extrapolation of a fit over passing points,
with its propagated 68 % interval; the Arrhenius figure draws the points used as filled markers
with the fitted line, the excluded ones hollow (reasons in the legend and the table).
"""

from __future__ import annotations

from typing import Any

from ctaflow.analysis.transport_summary import TransportSummary
from ctaflow.report import plots
from ctaflow.report.data import ReportData, ReportSection
from ctaflow.report.format import Records, notes_of

# --------------------------------------------------------------------------- transport
TRANSPORT_POINT_FIELDS = (
    "species",
    "site_class",
    "temperature_k",
    "target_temperature_k",
    "md_duration_ps",
    "diffusivity_cm2_per_s",
    "diffusivity_std_cm2_per_s",
    "conductivity_s_per_cm",
    "conductivity_std_s_per_cm",
    "haven_ratio_assumed",
    "msd_loglog_exponent",
    "status",
    "reasons",
    "production_stopped_because",
    "method",
    "notes",
)


def _point(point: dict[str, Any]) -> dict[str, Any]:
    row = {k: point.get(k) for k in TRANSPORT_POINT_FIELDS}
    regime = point.get("regime") or {}
    row["msd_end_a2"] = regime.get("msd_end_a2")
    row["msd_required_a2"] = regime.get("min_msd_a2")
    row["hops_per_ion"] = regime.get("hops_per_ion")
    row["reasons"] = "; ".join(point.get("reasons") or [])
    row["failed_checks"] = sorted({r.split(":")[0] for r in point.get("reasons") or []})
    row["status"] = point.get("status") or "used"
    trust = point.get("trust") or {}  # committee σ_F of the production MD (campaign-trained model)
    row["deviation_max_ev_per_a"] = trust.get("deviation_max_ev_per_a")
    return row


def _fit(doc: dict[str, Any]) -> dict[str, Any]:
    fit = doc.get("fit_diffusivity") or {}
    extrapolation = doc.get("conductivity_extrapolation") or {}
    return {
        "fit_status": doc.get("status") or ("fitted" if doc.get("activation_energy_ev") else None),
        "fit_reasons": "; ".join(doc.get("reasons") or []),
        "used_temperatures_k": doc.get("used_temperatures_k") or fit.get("used_temperatures_k"),
        "activation_energy_ev": doc.get("activation_energy_ev"),
        "activation_energy_std_ev": doc.get("activation_energy_std_ev"),
        "conductivity_extrapolated_s_per_cm": extrapolation.get("value"),
        "conductivity_extrapolated_interval_68_s_per_cm": extrapolation.get("interval_68"),
        "extrapolation_temperature_k": extrapolation.get("temperature_k"),
        "extrapolation_label": extrapolation.get("label"),
        "prefactor_cm2_per_s": (doc.get("arrhenius_diffusivity") or {}).get("prefactor_cm2_per_s"),
    }


def transport_records(data: ReportData) -> Records:
    return [
        {"campaign": doc["campaign"], "engine": doc["engine"], **_point(point), **_fit(doc)}
        for doc in data.derived("transport")
        for point in doc["points"]
    ]


def _group(row: dict[str, Any]) -> tuple:
    return (row.get("engine"), row["species"], row["site_class"])


def transport_fit_lines(rows: Records) -> list[str]:
    """One line per species / site class: the Arrhenius fit over the passing points (or why
    there is none) and the labelled extrapolation of σ with its interval."""
    lines = [""]
    seen = set()
    for row in rows:
        key = _group(row)
        if key in seen:
            continue
        seen.add(key)
        name = f"{row['species']} ({row['site_class'] or 'all'}, {row.get('engine')})"
        if row["fit_status"] != "fitted" or row["activation_energy_ev"] is None:
            why = row["fit_reasons"] or "no fit"
            lines.append(f"- {name}: no activation energy: {why}.")
            continue
        temps = ", ".join(f"{t:.0f}" for t in row["used_temperatures_k"] or [])
        line = (
            f"- {name}: E_a = {row['activation_energy_ev']:.3f} ± "
            f"{row['activation_energy_std_ev']:.3f} eV from the runs that passed the checks "
            f"at {temps} K"
        )
        if row["fit_reasons"]:
            line += f" ({row['fit_reasons']})"
        lines.append(line + ".")
        if row["conductivity_extrapolated_s_per_cm"] is not None:
            lo, hi = row["conductivity_extrapolated_interval_68_s_per_cm"]
            lines.append(
                f"  σ({row['extrapolation_temperature_k']:.0f} K) ≈ "
                f"{row['conductivity_extrapolated_s_per_cm']:.2g} S/cm, 68 % interval "
                f"[{lo:.2g}, {hi:.2g}] S/cm: {row['extrapolation_label']}."
            )
    return lines


def transport_figures(rows: Records, data: ReportData) -> dict[str, bytes]:
    curves = []
    for doc in data.outputs("transport", TransportSummary):
        out = doc["output"]
        for curve in out["msd"]:
            label = (
                f"{curve['species']} {curve['site_class'] or 'all'} {out['temperature_k']:.0f} K"
            )
            curves.append({**curve, "label": label})
    figures = {}
    if curves:
        figures["msd.png"] = plots.msd_plot(curves, "tracer MSD (production NVT)")
    if len({r["temperature_k"] for r in rows}) > 1:
        figures["arrhenius.png"] = plots.checked_arrhenius_plot(
            rows, "Arrhenius: filled = used in the fit (flagged ones too), hollow = excluded"
        )
    return figures


TRANSPORT = ReportSection(
    key="transport",
    title="Ion transport",
    records=transport_records,
    columns=(
        "species",
        "site_class",
        "target_temperature_k",
        "temperature_k",
        "md_duration_ps",
        "msd_end_a2",
        "msd_required_a2",
        "msd_loglog_exponent",
        "diffusivity_cm2_per_s",
        "diffusivity_std_cm2_per_s",
        "conductivity_s_per_cm",
        "conductivity_std_s_per_cm",
        "deviation_max_ev_per_a",
        "status",
        "reasons",
    ),
    extra=transport_fit_lines,
    notes=notes_of,
    figures=transport_figures,
)
