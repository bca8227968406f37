"""Report sections of the force field: test-set errors and active learning."""

from __future__ import annotations

from typing import Any

from ctaflow.analysis.active_learning import ActiveLearningResult
from ctaflow.analysis.mlff import MLFFResult
from ctaflow.report import plots
from ctaflow.report.data import ReportData, ReportSection
from ctaflow.report.format import Records, notes_of, table

# --------------------------------------------------------------------------- mlff
MLFF_FIELDS = (
    "campaign",
    "architecture",
    "model_stage",
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


def mlff_records(data: ReportData) -> Records:
    """One row per test composition of the final model (see MLFFBuilder), each with the stages
    whose results ran on that model."""
    rows = []
    for doc in data.derived("mlff"):
        used = used_by(data, doc["model_sha256"])
        rows.append(
            {
                "composition": doc["test_composition"],
                **{k: doc.get(k) for k in MLFF_FIELDS},
                "used_by": used,
            }
        )
    return rows


def used_by(data: ReportData, sha256: str | None) -> list[str]:
    """Stages whose stored results name this model file (engine description of MD segments and
    melt–quench summaries: the model cache names files by their checksum)."""
    if not sha256:
        return []
    stages = []
    for doc in data.store.query(
        {"metadata.stage": {"$in": ["md", "amorphous"]}, "output.engine.kind": "mace"},
        properties=["metadata.stage", "output.engine.model_path"],
    ):
        path = str(doc["output"]["engine"].get("model_path", ""))
        if sha256[:16] in path and doc["metadata"]["stage"] not in stages:
            stages.append(doc["metadata"]["stage"])
    return stages


def mlff_notes(rows: Records) -> list[str]:
    notes = notes_of(rows)
    for sha in dict.fromkeys(r["model_sha256"] for r in rows):
        row = next(r for r in rows if r["model_sha256"] == sha)
        where = "after active learning" if row["model_stage"] == "active_learning" else "mlff"
        users = ", ".join(row["used_by"]) or "no stored result yet"
        notes.append(f"model {sha[:8]} ({where}) used by: {users}")
    return notes


def parity_figures(rows: Records, data: ReportData) -> dict[str, bytes]:
    """The parity plot of the final model (the one the rows describe)."""
    figures = {}
    for i, sha in enumerate(dict.fromkeys(r["model_sha256"] for r in rows)):
        doc = data.store.query_one(
            {"output.@class": MLFFResult.__name__, "output.model_sha256": sha},
            properties=["output.parity"],
        )
        if doc is not None:
            title = f"MLFF {sha[:8]}, test set"
            figures[f"parity_{i}.png"] = plots.parity_plot(doc["output"]["parity"], title)
    return figures


MLFF = ReportSection(
    key="mlff",
    title="Machine-learned force field (test set)",
    records=mlff_records,
    columns=(
        "composition",
        "model_name",
        "model_stage",
        "architecture",
        "labeller",
        "n_train",
        "n_test_frames",
        "epochs",
        "rmse_energy_mev_per_atom",
        "rmse_force_mev_per_a",
        "training_time_s",
        "md_sanity_stable",
    ),
    notes=mlff_notes,
    figures=parity_figures,
)


# --------------------------------------------------------------------------- active learning
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


def _sanity_text(check: dict[str, Any] | None) -> str:
    if not check:
        return "not run"
    where = f"{check['n_steps']} steps at {check['temperature_k']:g} K"
    return f"stable over {where}" if check["stable"] else f"unstable ({check['reason']}; {where})"


def active_learning_records(data: ReportData) -> Records:
    """One record per exploration of each active-learning run (iteration 0: the first
    committee), with the run's window, labeller and stop reason repeated on each."""
    rows = []
    for doc in data.outputs("active_learning", ActiveLearningResult):
        out, meta = doc["output"], doc["metadata"]
        for it in out["iterations"]:
            rows.append(
                {
                    "campaign": meta.get("campaign"),
                    "engine": meta.get("engine"),
                    **{k: it[k] for k in AL_ITERATION_FIELDS},
                    **{k: out.get(k) for k in AL_RUN_FIELDS},
                    "conditions": it.get("conditions") or [],
                    "final_md_check": _sanity_text(out.get("md_sanity")),
                }
            )
    return rows


CONDITION_COLUMNS = (
    "iteration",
    "condition",
    "n_frames",
    "fraction_above_lower",
    "n_failed",
    "n_selected",
    "deviation_mean_ev_per_a",
    "deviation_max_ev_per_a",
    "converged",
)


def condition_table(rows: Records) -> list[str]:
    """Per exploration and condition of use: how its frames fall in the trust window."""
    per = [
        {"iteration": row["iteration"], **c} for row in rows for c in row.get("conditions") or []
    ]
    if not per:
        return []
    return ["", "Per condition of use:", "", *table(per, CONDITION_COLUMNS)]


def active_learning_notes(rows: Records) -> list[str]:
    """One note per run (its last exploration, which selected nothing)."""
    notes = []
    for row in rows:
        if row["n_selected"]:
            continue
        t = row.get("explore_temperature_k")
        where = (
            f"at {t:g} K"
            if t is not None
            else f"over {len(row.get('conditions') or [])} conditions of use"
        )
        notes.append(
            f"{row['campaign']}: committee of {row['committee_size']}, window "
            f"[{row['trust_lower_ev_per_a']:g}, {row['trust_upper_ev_per_a']:g}) eV/Å {where}, "
            f"{row['n_added_frames']} frames relabelled by {row['labeller']}; "
            f"{row['stop_reason']}; MD check of the final model: {row['final_md_check']}."
        )
    return notes


def active_learning_figures(rows: Records, data: ReportData) -> dict[str, bytes]:
    title = "active learning: exploration frames by σ_F"
    return {"active_learning.png": plots.active_learning_plot(rows, title)}


ACTIVE_LEARNING = ReportSection(
    key="active_learning",
    title="Active learning (committee force deviation)",
    records=active_learning_records,
    columns=AL_ITERATION_FIELDS,
    extra=condition_table,
    notes=active_learning_notes,
    figures=active_learning_figures,
)
