"""Report section of ion transport: D and σ per temperature, Arrhenius fits."""

from __future__ import annotations

from ctaflow.analysis.transport_summary import TransportSummary
from ctaflow.report import plots
from ctaflow.report.data import ReportData, ReportSection
from ctaflow.report.format import Records, notes_of

# --------------------------------------------------------------------------- transport
TRANSPORT_POINT_FIELDS = (
    "species",
    "site_class",
    "temperature_k",
    "md_duration_ps",
    "diffusivity_cm2_per_s",
    "diffusivity_std_cm2_per_s",
    "conductivity_s_per_cm",
    "conductivity_std_s_per_cm",
    "haven_ratio_assumed",
    "msd_loglog_exponent",
    "method",
    "notes",
)


def transport_records(data: ReportData) -> Records:
    return [
        {
            "campaign": doc["campaign"],
            "engine": doc["engine"],
            **{k: point[k] for k in TRANSPORT_POINT_FIELDS},
            "activation_energy_ev": doc["activation_energy_ev"],
            "activation_energy_std_ev": doc["activation_energy_std_ev"],
        }
        for doc in data.derived("transport")
        for point in doc["points"]
    ]


def transport_figures(rows: Records, data: ReportData) -> dict[str, bytes]:
    curves = []
    for doc in data.outputs("transport", TransportSummary):
        out = doc["output"]
        for curve in out["msd"]:
            label = f"{curve['species']} {curve['site_class'] or 'all'} {out['temperature_k']:g} K"
            curves.append({**curve, "label": label})
    figures = {}
    if curves:
        figures["msd.png"] = plots.msd_plot(curves, "tracer MSD (production NVT)")
    if len({r["temperature_k"] for r in rows}) > 1:
        figures["arrhenius.png"] = plots.arrhenius_plot(rows, "Arrhenius")
    return figures


TRANSPORT = ReportSection(
    key="transport",
    title="Ion transport",
    records=transport_records,
    columns=(
        "species",
        "site_class",
        "temperature_k",
        "md_duration_ps",
        "diffusivity_cm2_per_s",
        "diffusivity_std_cm2_per_s",
        "conductivity_s_per_cm",
        "conductivity_std_s_per_cm",
        "activation_energy_ev",
        "activation_energy_std_ev",
    ),
    notes=notes_of,
    figures=transport_figures,
)
