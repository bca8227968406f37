"""Report sections of the structure, its relaxation and the MD segments."""

from __future__ import annotations

from ctaflow.analysis.md import MDResult
from ctaflow.analysis.production import EquilibrationRun, ProductionRun
from ctaflow.analysis.structure import StructureRecord
from ctaflow.report.data import ReportData, ReportSection
from ctaflow.report.format import Records


# --------------------------------------------------------------------------- structures
def structure_records(data: ReportData) -> Records:
    rows = []
    for doc in data.outputs("structure", StructureRecord):
        out, meta = doc["output"], doc["metadata"]
        prov = out.get("provenance", {})
        rows.append(
            {
                "campaign": meta.get("campaign"),
                "campaign_fingerprint": meta.get("campaign_fingerprint"),
                "formula": out["formula"],
                "n_atoms": out["n_atoms"],
                "space_group": out["space_group"],
                "volume_a3": out["volume_a3"],
                "source": prov.get("source"),
                "experimental_structure": prov.get("experimental_structure"),
                "structure_label": prov.get("label"),
                "structure_description": prov.get("description"),
                "site_classes": out.get("site_classes", {}),
                "provenance": prov,
            }
        )
    return rows


def structure_lines(rows: Records) -> list[str]:
    return [
        f"- {row['formula']} ({row['space_group']}, {row['n_atoms']} atoms): "
        f"**{row['structure_label']}**. {row['structure_description']}"
        for row in rows
    ]


STRUCTURES = ReportSection(
    key="structures",
    title="Structures",
    records=structure_records,
    markdown=structure_lines,
    always=True,
)


# --------------------------------------------------------------------------- relax
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
    "is_minimum",
    "minimum_verdict",
    "minimum_energy_drop_mev_per_atom",
    "space_groups",
    "settings_hash",
    "notes",
)


def relax_records(data: ReportData) -> Records:
    return [
        {**{k: doc[k] for k in RELAX_FIELDS}, "lattice_abc_a": list(doc["lattice_abc_a"])}
        for doc in data.derived("relax")
    ]


RELAXATIONS = ReportSection(
    key="relaxations",
    title="Relaxations",
    records=relax_records,
    columns=(
        "formula",
        "engine",
        "initial_energy_per_atom_ev",
        "energy_per_atom_ev",
        "max_force_ev_per_a",
        "converged",
        "is_minimum",
        "space_groups",
        "initial_volume_a3",
        "volume_a3",
    ),
    notes=lambda rows: [r["minimum_verdict"] for r in rows if r.get("minimum_verdict")],
    always=True,
)


# --------------------------------------------------------------------------- md
def md_records(data: ReportData) -> Records:
    """One row per MD segment with its target check (target vs mean T, P ± std for NPT, the end
    of the start-up transient, status and reasons), then one per equilibration / production
    loop (segment ``equilibration`` / ``production T K (run)``: why it stopped)."""
    rows = [_segment_row(doc) for doc in data.outputs("md", MDResult)]
    rows += [_loop_row(doc, "equilibration") for doc in data.outputs("md", EquilibrationRun)]
    rows += [_loop_row(doc, "production") for doc in data.outputs("md", ProductionRun)]
    return rows


def _segment_row(doc: dict) -> dict:
    out, meta = doc["output"], doc["metadata"]
    check = out.get("target_check") or {}
    return {
        "campaign": meta.get("campaign"),
        "engine": meta.get("engine"),
        "segment": out["segment"],
        "ensemble": out["ensemble"],
        "thermostat": out["thermostat"],
        "n_atoms": len(out["final_structure"]["sites"]),
        "temperature_start_k": out["temperature_start_k"],
        "temperature_end_k": out["temperature_end_k"],
        "target_temperature_k": check.get("target_temperature_k"),
        "duration_ps": out["duration_ps"],
        "timestep_fs": out["timestep_fs"],
        "mean_temperature_k": out["mean_temperature_k"],
        "std_temperature_k": out["std_temperature_k"],
        "temperature_deviation_pct": (100 * check["temperature_deviation_rel"] if check else None),
        "target_pressure_gpa": out.get("pressure_gpa"),
        "mean_pressure_gpa": out["mean_pressure_gpa"],
        "std_pressure_gpa": check.get("std_pressure_gpa"),
        "equilibrated_at_fs": check.get("equilibrated_at_fs"),
        "status": check.get("status", "not checked"),
        "reasons": "; ".join(check.get("reasons") or []),
        "mean_density_g_per_cm3": out["mean_density_g_per_cm3"],
        "total_energy_slope_ev_per_atom_per_ps": out.get("total_energy_slope_ev_per_atom_per_ps"),
    }


def _loop_row(doc: dict, kind: str) -> dict:
    out, meta = doc["output"], doc["metadata"]
    segments = out.get("pieces") or out.get("segments") or []
    if kind == "production":
        msd = ", ".join(
            f"{sp} {out['msd_a2'][sp]:.2f}/{out['msd_target_a2'][sp]:.2f} Å²"
            for sp in out.get("species", [])
        )
        what = f"{out['stopped_because']} (MSD reached/target: {msd or 'none'})"
        name = f"production {out['temperature_k']:g} K (run)"
        mean_t = out.get("mean_temperature_k")
    else:
        what = f"{len(segments)} segment(s), at most {out['max_duration_ps']:g} ps"
        name = "equilibration (run)"
        mean_t = None
    return {
        "campaign": meta.get("campaign"),
        "engine": meta.get("engine"),
        "segment": name,
        "target_temperature_k": out["temperature_k"],
        "duration_ps": out["duration_ps"],
        "mean_temperature_k": mean_t,
        "n_segments": len(segments),
        "status": out["status"],
        "reasons": "; ".join([what, *out.get("reasons", [])]),
    }


MD = ReportSection(
    key="md",
    title="Molecular dynamics",
    records=md_records,
    columns=(
        "segment",
        "engine",
        "n_atoms",
        "duration_ps",
        "target_temperature_k",
        "mean_temperature_k",
        "std_temperature_k",
        "temperature_deviation_pct",
        "target_pressure_gpa",
        "mean_pressure_gpa",
        "std_pressure_gpa",
        "equilibrated_at_fs",
        "mean_density_g_per_cm3",
        "status",
        "reasons",
    ),
)
