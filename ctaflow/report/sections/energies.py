"""Report sections of energies: amorphous vs crystalline, migration barriers."""

from __future__ import annotations

from ctaflow.analysis.neb import BarrierResult
from ctaflow.report import plots
from ctaflow.report.data import ReportData, ReportSection
from ctaflow.report.format import Records, notes_of

# --------------------------------------------------------------------------- amorphous
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
    "status",
    "reasons",
    "n_samples",
    "n_requested",
    "n_failed",
    "n_retried",
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


def formation_records(data: ReportData) -> Records:
    docs = data.derived("formation_energies")
    docs = sorted(docs, key=lambda d: (str(d["campaign"]), str(d["engine"]), d["x"] or 0))
    return [{k: doc.get(k) for k in FORMATION_FIELDS} for doc in docs]


def formation_notes(rows: Records) -> list[str]:
    notes = []
    for row in rows:
        notes += [f"{row['formula']}: {row['status']}: {r}" for r in row.get("reasons") or []]
        notes += [f"{row['formula']}: {n}" for n in row["notes"]]
        notes.append(f"{row['formula']}: formation energies {row['formation_energy_note']}")
    return notes


def formation_figures(rows: Records, data: ReportData) -> dict[str, bytes]:
    title = "E(amorphous) − E(crystalline), melt–quench"
    return {"delta_e.png": plots.delta_e_plot(rows, title)}


FORMATION_ENERGIES = ReportSection(
    key="formation_energies",
    title="Amorphous vs crystalline (melt–quench, same engine)",
    records=formation_records,
    columns=(
        "formula",
        "li_fraction",
        "engine",
        "n_atoms",
        "status",
        "n_samples",
        "n_failed",
        "n_retried",
        "delta_e_amorphous_minus_crystalline_mev_per_atom",
        "delta_e_stderr_mev_per_atom",
        "delta_e_min_mev_per_atom",
        "crystal_is_lowest",
        "formation_energy_crystal_ev_per_atom",
        "formation_energy_amorphous_ev_per_atom",
    ),
    notes=formation_notes,
    figures=formation_figures,
)


# --------------------------------------------------------------------------- neb
BARRIER_FIELDS = (
    "campaign",
    "engine",
    "species",
    "host_species",
    "mechanism",
    "kind",
    "hop_label",
    "hop_length_a",
    "n_atoms",
    "n_images",
    "status",
    "reasons",
    "barrier_ev",
    "forward_barrier_ev",
    "backward_barrier_ev",
    "reaction_energy_ev",
    "spline_forward_barrier_ev",
    "max_force_highest_image_ev_per_a",
    "fmax_ev_per_a",
    "converged",
    "endpoints_converged",
    "ends_are_lowest",
    "start_is_minimum",
    "end_is_minimum",
    "host_formula",
    "host_n_atoms",
    "host_minimum_verdict",
    "host_energy_drop_mev_per_atom",
    "host_space_groups",
    "neb_elapsed_s",
    "settings_hash",
    "notes",
)


def barrier_records(data: ReportData) -> Records:
    return [
        {"composition": doc["band_composition"], **{k: doc[k] for k in BARRIER_FIELDS}}
        for doc in data.derived("barriers")
    ]


def host_lines(rows: Records) -> list[str]:
    """One line per NEB host: was the symmetric start a minimum, and how much lower is the
    relaxed host."""
    seen, lines = set(), []
    for row in rows:
        key = (row.get("host_formula"), row.get("host_n_atoms"), row.get("engine"))
        if row.get("host_minimum_verdict") is None or key in seen:
            continue
        seen.add(key)
        lines.append(
            f"host {row['host_formula']} ({row['host_n_atoms']} atoms, {row['engine']}): "
            f"{row['host_minimum_verdict']}"
        )
    return lines


def neb_figures(rows: Records, data: ReportData) -> dict[str, bytes]:
    profiles = []
    for doc in data.outputs("neb", BarrierResult):
        out = doc["output"]
        prof = out["profile"]
        label = f"{out['species']} {out['mechanism']} hop {out['hop_label']}"
        status = out.get("status", "valid" if out["converged"] else "excluded")
        if status != "valid":
            label += f" ({status})"
        profiles.append(
            {
                "label": label,
                "r_a": prof["reaction_coordinate_a"],
                "energy_ev": prof["relative_energies_ev"],
                "spline_r_a": prof["spline_r_a"],
                "spline_energy_ev": prof["spline_energy_ev"],
            }
        )
    return {"neb.png": plots.neb_plot(profiles, "NEB energy profiles")} if profiles else {}


BARRIERS = ReportSection(
    key="barriers",
    title="Migration barriers (climbing-image NEB)",
    records=barrier_records,
    columns=(
        "species",
        "mechanism",
        "kind",
        "hop_length_a",
        "engine",
        "n_atoms",
        "n_images",
        "status",
        "barrier_ev",
        "backward_barrier_ev",
        "reaction_energy_ev",
        "max_force_highest_image_ev_per_a",
        "neb_elapsed_s",
    ),
    notes=lambda rows: [*host_lines(rows), *notes_of(rows)],
    figures=neb_figures,
)
