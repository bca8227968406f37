"""Report sections of interfaces: electrolyte | metal γ, ion exchange across a stack."""

from __future__ import annotations

from ctaflow.analysis.exchange import ExchangeResult
from ctaflow.report import plots
from ctaflow.report.data import ReportData, ReportSection
from ctaflow.report.format import FLAGGED, Records, fmt, notes_of, status_of

# --------------------------------------------------------------------------- interfaces
INTERFACE_FIELDS = (
    "campaign",
    "engine",
    "phase",
    "metal",
    "sample",
    "electrolyte_formula",
    "miller",
    "metal_miller",
    "termination",
    "gamma_j_per_m2",
    "gamma_uncertainty_j_per_m2",
    "status",
    "reasons",
    "gamma_as_built_j_per_m2",
    "area_a2",
    "strain_pct",
    "n_interfaces",
    "n_atoms",
    "n_electrolyte_atoms",
    "n_metal_atoms",
    "metal_lattice_a",
    "energies",
    "anneal_temperature_k",
    "anneal_fs",
    "relaxed_converged",
    "max_force_ev_per_a",
    "settings_hash",
    "notes",
)
INTERFACE_NOTE = (
    "γ = (E_interface − N_el·e_el − N_metal·e_metal) / (2A): periodic stack, two interfaces per "
    "cell, A = in-plane area; the metal carries all the lattice mismatch and its reference is "
    "bulk metal strained in-plane as in the interface, relaxed along the normal; references "
    "with the same engine. Positive γ costs energy."
)


def interface_records(data: ReportData) -> Records:
    """Report records of the ``derived_interfaces`` documents."""
    rows = []
    for doc in data.derived("interfaces"):
        row = {k: doc.get(k) for k in INTERFACE_FIELDS}
        for key in ("miller", "metal_miller"):
            row[key] = list(row[key]) if row[key] is not None else None
        rows.append(row)
    return rows


def interface_matrix(rows: Records) -> list[str]:
    """Markdown table of γ (J/m², mean over samples) for phase (rows) × metal (columns)."""
    metals = sorted({r["metal"] for r in rows})
    lines = ["", "γ by phase and metal:", ""]
    lines.append("| phase | " + " | ".join(f"γ {m} (J/m²)" for m in metals) + " |")
    lines.append("|" + "---|" * (len(metals) + 1))
    for phase in ("crystalline", "amorphous"):
        cells = []
        for metal in metals:
            group = [r for r in rows if r["phase"] == phase and r["metal"] == metal]
            values = [r["gamma_j_per_m2"] for r in group]
            flagged = sum(status_of(r) == FLAGGED for r in group)
            text = fmt(sum(values) / len(values)) if values else "not computed"
            if flagged:  # never a plain number when a row under it is flagged
                text = f"⚠ {text} ({flagged} flagged)"
            cells.append(text + (f" (n={len(values)})" if len(values) > 1 else ""))
        lines.append(f"| {phase} | " + " | ".join(cells) + " |")
    return [*lines, "", INTERFACE_NOTE]


def interface_figures(rows: Records, data: ReportData) -> dict[str, bytes]:
    title = "interfacial energy γ (per interface)"
    return {"interfaces.png": plots.gamma_bar_plot(rows, title)}


INTERFACES = ReportSection(
    key="interfaces",
    title="Electrolyte | metal interfaces",
    records=interface_records,
    columns=(
        "phase",
        "metal",
        "sample",
        "electrolyte_formula",
        "miller",
        "metal_miller",
        "engine",
        "n_atoms",
        "area_a2",
        "strain_pct",
        "gamma_as_built_j_per_m2",
        "gamma_j_per_m2",
        "gamma_uncertainty_j_per_m2",
        "relaxed_converged",
    ),
    extra=interface_matrix,
    notes=notes_of,
    figures=interface_figures,
)


# --------------------------------------------------------------------------- exchange
EXCHANGE_NOTE = (
    "Exchange MD: Li on the former Na sites of the Na-rich block (per site class, 'none' = on no "
    "such site) and the mean displacement of framework atoms from their initial sites."
)


def exchange_records(data: ReportData) -> Records:
    """Report records of the exchange stage's outputs (one per MD run, with its time series)."""
    rows = []
    for doc in data.outputs("exchange", ExchangeResult):
        out, meta = doc["output"], doc["metadata"]
        series = out["series"]
        rows.append(
            {
                "campaign": meta.get("campaign"),
                "engine": meta.get("engine"),
                "stack": f"{out['first_composition']} | {out['second_composition']}",
                "n_atoms": out["n_atoms"],
                "temperature_k": out["temperature_k"],
                "duration_ps": out["duration_ps"],
                "n_sites": series["n_sites"],
                "final_li_on_sites": out["final_li_on_sites"],
                "final_framework_displacement_a": out["final_framework_displacement_a"],
                "times_fs": series["times_fs"],
                "li_on_sites": series["li_on_sites"],
                "framework_mean_displacement_a": series["framework_mean_displacement_a"],
                "cutoff_a": series["cutoff_a"],
            }
        )
    return rows


def exchange_figures(rows: Records, data: ReportData) -> dict[str, bytes]:
    return {
        f"exchange_{i}.png": plots.exchange_plot(row, f"ion exchange {row['stack']}")
        for i, row in enumerate(rows)
    }


EXCHANGE = ReportSection(
    key="exchange",
    title="Ion exchange across an electrolyte | electrolyte stack",
    records=exchange_records,
    columns=(
        "stack",
        "engine",
        "n_atoms",
        "temperature_k",
        "duration_ps",
        "n_sites",
        "final_li_on_sites",
        "final_framework_displacement_a",
    ),
    extra=lambda rows: ["", EXCHANGE_NOTE],
    figures=exchange_figures,
)
