"""Collect report records from a job store and write report.json, report.md, index.html."""

from __future__ import annotations

import base64
import html
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctaflow.analysis.provenance import software_versions

if TYPE_CHECKING:
    from collections.abc import Mapping

    from jobflow import JobStore
    from maggma.core import Store

#: report.json keys; stages that have not run leave their list empty
REPORT_KEYS = (
    "provenance",
    "structures",
    "relaxations",
    "md",
    "mlff",
    "active_learning",
    "transport",
    "formation_energies",
    "barriers",
    "interfaces",
)

#: Markdown tables of the summary: (section title, report key, columns)
TABLES = (
    (
        "Relaxations",
        "relaxations",
        [
            "formula",
            "engine",
            "initial_energy_per_atom_ev",
            "energy_per_atom_ev",
            "max_force_ev_per_a",
            "converged",
            "initial_volume_a3",
            "volume_a3",
        ],
    ),
    (
        "Machine-learned force field (test set)",
        "mlff",
        [
            "composition",
            "architecture",
            "labeller",
            "n_train",
            "n_test_frames",
            "epochs",
            "rmse_energy_mev_per_atom",
            "rmse_force_mev_per_a",
            "training_time_s",
            "md_sanity_stable",
        ],
    ),
    (
        "Molecular dynamics",
        "md",
        [
            "segment",
            "engine",
            "n_atoms",
            "duration_ps",
            "temperature_end_k",
            "mean_temperature_k",
            "std_temperature_k",
            "mean_pressure_gpa",
            "mean_density_g_per_cm3",
        ],
    ),
    (
        "Ion transport",
        "transport",
        [
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
        ],
    ),
    (
        "Amorphous vs crystalline (melt–quench, same engine)",
        "formation_energies",
        [
            "formula",
            "li_fraction",
            "engine",
            "n_atoms",
            "n_samples",
            "n_failed",
            "delta_e_amorphous_minus_crystalline_mev_per_atom",
            "delta_e_stderr_mev_per_atom",
            "delta_e_min_mev_per_atom",
            "crystal_is_lowest",
            "formation_energy_crystal_ev_per_atom",
            "formation_energy_amorphous_ev_per_atom",
        ],
    ),
    (
        "Migration barriers (climbing-image NEB)",
        "barriers",
        [
            "species",
            "mechanism",
            "hop_length_a",
            "engine",
            "n_atoms",
            "n_images",
            "forward_barrier_ev",
            "backward_barrier_ev",
            "reaction_energy_ev",
            "max_force_highest_image_ev_per_a",
            "converged",
            "ends_are_lowest",
            "neb_elapsed_s",
        ],
    ),
)

# ---- interfaces (issue 10) ---------------------------------------------------------------
INTERFACE_TABLE = (
    "Electrolyte | metal interfaces",
    "interfaces",
    [
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
        "relaxed_converged",
    ],
)
TABLES = (*TABLES, INTERFACE_TABLE)
AL_ITERATION_FIELDS = (
    "iteration",
    "n_frames",
    "n_accurate",
    "n_candidate",
    "n_failed",
    "fraction_above_lower",
    "n_selected",
    "n_train",
    "deviation_mean_ev_per_a",
    "deviation_max_ev_per_a",
    "test_rmse_force_mev_per_a",
    "test_rmse_energy_mev_per_atom",
)
AL_RUN_FIELDS = (
    "committee_size",
    "labeller",
    "explore_temperature_k",
    "trust_lower_ev_per_a",
    "trust_upper_ev_per_a",
    "stop_fraction",
    "n_added_frames",
    "converged",
    "stop_reason",
    "model_sha256",
)
TABLES = (
    *TABLES,
    ("Active learning (committee force deviation)", "active_learning", list(AL_ITERATION_FIELDS)),
)
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


def interface_records(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Report records of the ``derived_interfaces`` documents."""
    rows = []
    for doc in docs:
        row = {k: doc.get(k) for k in INTERFACE_FIELDS}
        for key in ("miller", "metal_miller"):
            row[key] = list(row[key]) if row[key] is not None else None
        rows.append(row)
    return rows


def interface_matrix(rows: list[dict[str, Any]]) -> list[str]:
    """Markdown table of γ (J/m², mean over samples) for phase (rows) × metal (columns)."""
    metals = sorted({r["metal"] for r in rows})
    lines = ["| phase | " + " | ".join(f"γ {m} (J/m²)" for m in metals) + " |"]
    lines.append("|" + "---|" * (len(metals) + 1))
    for phase in ("crystalline", "amorphous"):
        cells = []
        for metal in metals:
            values = [
                r["gamma_j_per_m2"] for r in rows if r["phase"] == phase and r["metal"] == metal
            ]
            text = _fmt(sum(values) / len(values)) if values else "not computed"
            cells.append(text + (f" (n={len(values)})" if len(values) > 1 else ""))
        lines.append(f"| {phase} | " + " | ".join(cells) + " |")
    return lines


def _sanity_text(check: dict[str, Any] | None) -> str:
    if not check:
        return "not run"
    where = f"{check['n_steps']} steps at {check['temperature_k']:g} K"
    return f"stable over {where}" if check["stable"] else f"unstable ({check['reason']}; {where})"


def active_learning_records(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per exploration of each active-learning run (iteration 0: the first
    committee), with the run's window, labeller and stop reason repeated on each."""
    rows = []
    for doc in docs:
        out, meta = doc["output"], doc["metadata"]
        for it in out["iterations"]:
            rows.append(
                {
                    "campaign": meta.get("campaign"),
                    "engine": meta.get("engine"),
                    **{k: it[k] for k in AL_ITERATION_FIELDS},
                    **{k: out[k] for k in AL_RUN_FIELDS},
                    "final_md_check": _sanity_text(out.get("md_sanity")),
                }
            )
    return rows


def exchange_records(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Report records of the exchange stage's outputs (one per MD run, with its time series)."""
    rows = []
    for doc in docs:
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


EXCHANGE_NOTE = (
    "Exchange MD: Li on the former Na sites of the Na-rich block (per site class, 'none' = on no "
    "such site) and the mean displacement of framework atoms from their initial sites."
)
# ---- end interfaces ----------------------------------------------------------------------

EXPERIMENTAL_REFERENCE = {
    "material": "Na5SmSi4O12",
    "conductivity_rt_s_per_cm": 2.9e-3,
    "activation_energy_impedance_ev": 0.15,
    "activation_energy_nmr_crystalline_ev": 0.13,
    "activation_energy_nmr_amorphised_ev": 0.07,
    "note": "experimental values of the study, for context only; never used for tuning",
}


#: fields copied from the derived documents into the report records
RELAX_FIELDS = (
    "campaign",
    "formula",
    "n_atoms",
    "engine",
    "energy_per_atom_ev",
    "initial_energy_per_atom_ev",
    "max_force_ev_per_a",
    "fmax_target_ev_per_a",
    "converged",
    "n_steps",
    "initial_volume_a3",
    "volume_a3",
    "settings_hash",
)
MLFF_FIELDS = (
    "campaign",
    "architecture",
    "model_sha256",
    "n_test_frames",
    "rmse_energy_mev_per_atom",
    "rmse_force_mev_per_a",
    "rmse_energy_all_mev_per_atom",
    "rmse_force_all_mev_per_a",
    "n_train",
    "labeller",
    "epochs",
    "training_time_s",
    "md_sanity_stable",
    "md_sanity",
    "notes",
    "hyperparameters",
    "software",
)
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
FORMATION_FIELDS = (
    "campaign",
    "engine",
    "formula",
    "x",
    "substitution",
    "li_fraction",
    "n_atoms",
    "crystal_energy_per_atom_ev",
    "crystal_converged",
    "n_samples",
    "n_requested",
    "n_failed",
    "delta_e_amorphous_minus_crystalline_mev_per_atom",
    "delta_e_stderr_mev_per_atom",
    "delta_e_min_mev_per_atom",
    "delta_e_max_mev_per_atom",
    "crystal_is_lowest",
    "formation_energy_crystal_ev_per_atom",
    "formation_energy_amorphous_ev_per_atom",
    "formation_energy_note",
    "samples",
    "melt",
    "settings_hash",
    "notes",
)
BARRIER_FIELDS = (
    "campaign",
    "engine",
    "species",
    "host_species",
    "mechanism",
    "hop_label",
    "hop_length_a",
    "n_atoms",
    "n_images",
    "forward_barrier_ev",
    "backward_barrier_ev",
    "reaction_energy_ev",
    "spline_forward_barrier_ev",
    "max_force_highest_image_ev_per_a",
    "fmax_ev_per_a",
    "converged",
    "endpoints_converged",
    "ends_are_lowest",
    "neb_elapsed_s",
    "settings_hash",
    "notes",
)


def _outputs(store: JobStore, stage: str, schema: str) -> list[dict[str, Any]]:
    return list(
        store.query(
            {"metadata.stage": stage, "output.@class": schema},
            properties=["uuid", "metadata", "output", "completed_at"],
        )
    )


def _derived(derived: Mapping[str, Store], name: str) -> list[dict[str, Any]]:
    """Successful documents of one derived collection, in a stable order."""
    docs = derived[name].query({"state": "successful"}) if name in derived else []
    return sorted(docs, key=lambda d: (str(d.get("campaign")), d["derived_id"]))


def collect_report(
    store: JobStore, derived: Mapping[str, Store]
) -> dict[str, list[dict[str, Any]]]:
    """Report records (lists of flat dicts with units in the keys).

    Structures and MD segments come from the job outputs; relaxations, force-field errors,
    transport and barriers from the derived collections the builders wrote (``derived`` maps a
    collection name of :data:`ctaflow.builders.BUILDERS` to its connected store), so the report
    shows exactly what ``ctaflow query`` and a cluster-side ``mrun`` see.
    """
    report: dict[str, list[dict[str, Any]]] = {key: [] for key in REPORT_KEYS}
    campaigns: dict[tuple, dict[str, Any]] = {}
    for doc in _outputs(store, "structure", "StructureRecord"):
        out, meta = doc["output"], doc["metadata"]
        prov = out.get("provenance", {})
        report["structures"].append(
            {
                "campaign": meta.get("campaign"),
                "formula": out["formula"],
                "n_atoms": out["n_atoms"],
                "space_group": out["space_group"],
                "volume_a3": out["volume_a3"],
                "source": prov.get("source"),
                "experimental_structure": prov.get("experimental_structure"),
                "structure_label": prov.get("label"),
                "structure_description": prov.get("description"),
                "site_classes": out.get("site_classes", {}),
            }
        )
        key = (meta.get("campaign"), meta.get("campaign_fingerprint"))
        campaigns.setdefault(key, {"structure_provenance": prov, "engines": {}})
    for doc in _derived(derived, "relax"):
        report["relaxations"].append(
            {
                **{k: doc[k] for k in RELAX_FIELDS},
                "lattice_abc_a": list(doc["lattice_abc_a"]),
            }
        )
        key = (doc["campaign"], doc["campaign_fingerprint"])
        campaigns.setdefault(key, {"structure_provenance": {}, "engines": {}})
        campaigns[key]["engines"][doc["engine"]] = doc["engine_description"]
    for doc in _outputs(store, "md", "MDResult"):
        out, meta = doc["output"], doc["metadata"]
        report["md"].append(
            {
                "campaign": meta.get("campaign"),
                "engine": meta.get("engine"),
                "segment": out["segment"],
                "ensemble": out["ensemble"],
                "thermostat": out["thermostat"],
                "n_atoms": len(out["final_structure"]["sites"]),
                "temperature_start_k": out["temperature_start_k"],
                "temperature_end_k": out["temperature_end_k"],
                "duration_ps": out["duration_ps"],
                "timestep_fs": out["timestep_fs"],
                "mean_temperature_k": out["mean_temperature_k"],
                "std_temperature_k": out["std_temperature_k"],
                "mean_pressure_gpa": out["mean_pressure_gpa"],
                "mean_density_g_per_cm3": out["mean_density_g_per_cm3"],
                "total_energy_slope_ev_per_atom_per_ps": out.get(
                    "total_energy_slope_ev_per_atom_per_ps"
                ),
            }
        )
    for doc in _derived(derived, "mlff"):
        report["mlff"].append(
            {
                "composition": doc["test_composition"],
                **{k: doc[k] for k in MLFF_FIELDS},
            }
        )
    report["active_learning"] = active_learning_records(
        _outputs(store, "active_learning", "ActiveLearningResult")
    )
    for doc in _derived(derived, "transport"):
        for point in doc["points"]:
            report["transport"].append(
                {
                    "campaign": doc["campaign"],
                    "engine": doc["engine"],
                    **{k: point[k] for k in TRANSPORT_POINT_FIELDS},
                    "activation_energy_ev": doc["activation_energy_ev"],
                    "activation_energy_std_ev": doc["activation_energy_std_ev"],
                }
            )
    formation = _derived(derived, "formation_energies")
    for doc in sorted(formation, key=lambda d: (str(d["campaign"]), str(d["engine"]), d["x"] or 0)):
        report["formation_energies"].append({k: doc[k] for k in FORMATION_FIELDS})
    for doc in _derived(derived, "barriers"):
        report["barriers"].append(
            {
                "composition": doc["band_composition"],
                **{k: doc[k] for k in BARRIER_FIELDS},
            }
        )
    report["interfaces"] = interface_records(_derived(derived, "interfaces"))  # issue 10
    report["exchange"] = exchange_records(_outputs(store, "exchange", "ExchangeResult"))
    for (name, fingerprint), info in sorted(campaigns.items(), key=lambda kv: str(kv[0])):
        report["provenance"].append(
            {
                "campaign": name,
                "campaign_fingerprint": fingerprint,
                "software": software_versions(),
                "engines": info["engines"],
                "structure_provenance": info["structure_provenance"],
                "generated_at": datetime.now(UTC).isoformat(),
            }
        )
    return report


def collect_figure_data(store: JobStore) -> dict[str, Any]:
    """Arrays the figures need (MSD curves, parity points), read from the stored documents."""
    curves = []
    for doc in _outputs(store, "transport", "TransportSummary"):
        out = doc["output"]
        for curve in out["msd"]:
            label = f"{curve['species']} {curve['site_class'] or 'all'} {out['temperature_k']:g} K"
            curves.append({**curve, "label": label})
    parity = [doc["output"]["parity"] for doc in _outputs(store, "mlff", "MLFFResult")]
    profiles = []
    for doc in _outputs(store, "neb", "BarrierResult"):
        out = doc["output"]
        prof = out["profile"]
        label = f"{out['species']} {out['mechanism']} hop {out['hop_label']}"
        if not out["converged"]:
            label += " (not converged)"
        profiles.append(
            {
                "label": label,
                "r_a": prof["reaction_coordinate_a"],
                "energy_ev": prof["relative_energies_ev"],
                "spline_r_a": prof["spline_r_a"],
                "spline_energy_ev": prof["spline_energy_ev"],
            }
        )
    return {"msd": curves, "parity": parity, "neb": profiles}


def make_figures(report: dict[str, list], figure_data: dict[str, Any]) -> dict[str, bytes]:
    """PNG figures for the sections that have data."""
    from ctaflow.report import plots

    figures: dict[str, bytes] = {}
    for i, parity in enumerate(figure_data["parity"]):
        figures[f"parity_{i}.png"] = plots.parity_plot(parity, "MLFF forces, test set")
    if figure_data["msd"]:
        figures["msd.png"] = plots.msd_plot(figure_data["msd"], "tracer MSD (production NVT)")
    if figure_data.get("neb"):
        figures["neb.png"] = plots.neb_plot(figure_data["neb"], "NEB energy profiles")
    if report["active_learning"]:
        figures["active_learning.png"] = plots.active_learning_plot(
            report["active_learning"], "active learning: exploration frames by σ_F"
        )
    if report["formation_energies"]:
        figures["delta_e.png"] = plots.delta_e_plot(
            report["formation_energies"], "E(amorphous) − E(crystalline), melt–quench"
        )
    if report.get("interfaces"):  # issue 10
        figures["interfaces.png"] = plots.gamma_bar_plot(
            report["interfaces"], "interfacial energy γ (per interface)"
        )
    for i, row in enumerate(report.get("exchange") or []):  # issue 10
        figures[f"exchange_{i}.png"] = plots.exchange_plot(row, f"ion exchange {row['stack']}")
    if len({r["temperature_k"] for r in report["transport"]}) > 1:
        figures["arrhenius.png"] = plots.arrhenius_plot(report["transport"], "Arrhenius")
    return figures


def write_report(store: JobStore, derived: Mapping[str, Store], out_dir: str | Path) -> Path:
    """Write ``report.json``, ``report.md``, PNG figures and a self-contained ``index.html``
    (figures embedded) into ``out_dir``; return the HTML path. ``derived``: see
    :func:`collect_report`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = collect_report(store, derived)
    figures = make_figures(report, collect_figure_data(store))
    for name, png in figures.items():
        (out_dir / name).write_bytes(png)
    payload = {
        **report,
        "experimental_reference": [EXPERIMENTAL_REFERENCE],
        "figures": [{"file": name} for name in figures],
    }
    (out_dir / "report.json").write_text(json.dumps(payload, indent=2, default=str))
    markdown = to_markdown(report)
    if figures:
        markdown += "\n## Figures\n\n" + "\n".join(f"![{n}]({n})" for n in figures) + "\n"
    (out_dir / "report.md").write_text(markdown)
    page = out_dir / "index.html"
    page.write_text(to_html(markdown, figures))
    return page


def _table(rows: list[dict[str, Any]], columns: list[str]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(row.get(c)) for c in columns) + " |")
    return lines


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def to_markdown(report: dict[str, list[dict[str, Any]]]) -> str:
    """Human-readable summary of the report records."""
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
    lines += ["## Structures", ""]
    for row in report["structures"]:
        lines.append(
            f"- {row['formula']} ({row['space_group']}, {row['n_atoms']} atoms): "
            f"**{row['structure_label']}**. {row['structure_description']}"
        )
    for title, key, columns in TABLES:
        if report[key] or key == "relaxations":
            lines += ["", f"## {title}", ""]
            lines += _table(report[key], columns)
    if report["transport"]:
        notes = sorted({n for row in report["transport"] for n in row["notes"]})
        lines += ["", "Notes on the transport numbers:", *[f"- {n}" for n in notes]]
    mlff_notes = sorted({n for row in report["mlff"] for n in row.get("notes") or []})
    if mlff_notes:
        lines += ["", "Notes on the force field:", *[f"- {n}" for n in mlff_notes]]
    last = [r for r in report["active_learning"] if r["n_selected"] == 0]  # end of each run
    if last:
        lines += ["", "Notes on active learning:"]
    for row in last:
        lines.append(
            f"- {row['campaign']}: committee of {row['committee_size']}, window "
            f"[{row['trust_lower_ev_per_a']:g}, {row['trust_upper_ev_per_a']:g}) eV/Å at "
            f"{row['explore_temperature_k']:g} K, {row['n_added_frames']} frames relabelled by "
            f"{row['labeller']}; {row['stop_reason']}; MD check of the final model: "
            f"{row['final_md_check']}."
        )
    if report["formation_energies"]:
        lines += ["", "Notes on the amorphous samples:"]
        for row in report["formation_energies"]:
            lines += [f"- {row['formula']}: {n}" for n in row["notes"]]
            lines.append(f"- {row['formula']}: formation energies {row['formation_energy_note']}")
    if report.get("interfaces"):  # issue 10
        lines += ["", "γ by phase and metal:", "", *interface_matrix(report["interfaces"])]
        lines += ["", INTERFACE_NOTE]
        notes = sorted({n for row in report["interfaces"] for n in row.get("notes") or []})
        lines += [f"- {n}" for n in notes]
    if report.get("exchange"):  # issue 10
        lines += ["", "## Ion exchange across an electrolyte | electrolyte stack", ""]
        cols = ["stack", "engine", "n_atoms", "temperature_k", "duration_ps", "n_sites"]
        cols += ["final_li_on_sites", "final_framework_displacement_a"]
        lines += [*_table(report["exchange"], cols), "", EXCHANGE_NOTE]
    pending = [k for k in REPORT_KEYS[3:] if not report[k]]
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
