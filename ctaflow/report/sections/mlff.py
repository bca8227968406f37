"""Report sections of the force field: test-set errors and active learning."""

from __future__ import annotations

from typing import Any

from ctaflow.analysis.active_learning import ActiveLearningResult
from ctaflow.analysis.mlff import MLFFResult
from ctaflow.report import plots
from ctaflow.report.data import ReportData, ReportSection
from ctaflow.report.format import Records, notes_of

# --------------------------------------------------------------------------- mlff
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


def mlff_records(data: ReportData) -> Records:
    return [
        {"composition": doc["test_composition"], **{k: doc[k] for k in MLFF_FIELDS}}
        for doc in data.derived("mlff")
    ]


def parity_figures(rows: Records, data: ReportData) -> dict[str, bytes]:
    parities = [doc["output"]["parity"] for doc in data.outputs("mlff", MLFFResult)]
    return {
        f"parity_{i}.png": plots.parity_plot(parity, "MLFF forces, test set")
        for i, parity in enumerate(parities)
    }


MLFF = ReportSection(
    key="mlff",
    title="Machine-learned force field (test set)",
    records=mlff_records,
    columns=(
        "composition",
        "model_name",
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
    notes=notes_of,
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
                    **{k: out[k] for k in AL_RUN_FIELDS},
                    "final_md_check": _sanity_text(out.get("md_sanity")),
                }
            )
    return rows


def active_learning_notes(rows: Records) -> list[str]:
    """One note per run (its last exploration, which selected nothing)."""
    return [
        f"{row['campaign']}: committee of {row['committee_size']}, window "
        f"[{row['trust_lower_ev_per_a']:g}, {row['trust_upper_ev_per_a']:g}) eV/Å at "
        f"{row['explore_temperature_k']:g} K, {row['n_added_frames']} frames relabelled by "
        f"{row['labeller']}; {row['stop_reason']}; MD check of the final model: "
        f"{row['final_md_check']}."
        for row in rows
        if row["n_selected"] == 0
    ]


def active_learning_figures(rows: Records, data: ReportData) -> dict[str, bytes]:
    title = "active learning: exploration frames by σ_F"
    return {"active_learning.png": plots.active_learning_plot(rows, title)}


ACTIVE_LEARNING = ReportSection(
    key="active_learning",
    title="Active learning (committee force deviation)",
    records=active_learning_records,
    columns=AL_ITERATION_FIELDS,
    notes=active_learning_notes,
    figures=active_learning_figures,
)
