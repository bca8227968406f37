"""Force-field validation: test-set errors per composition of the series."""

from __future__ import annotations

from typing import Any

from ctaflow.analysis.mlff import MLFFResult
from ctaflow.builders.base import StageBuilder, Task, latest_per
from ctaflow.builders.schemas import MLFFDoc


class MLFFBuilder(StageBuilder):
    """``mlff`` stage :class:`MLFFResult` outputs → ``derived_mlff``.

    One document per (group, test-set composition) from the most recently trained model of the
    group; earlier models are listed in ``skipped`` as superseded.
    """

    stage = "mlff"
    output_schema = MLFFResult
    document = MLFFDoc
    collection = "mlff"
    sub_keys = ("test_composition",)

    def derive(self, tasks: list[Task]) -> list[dict[str, Any]]:
        docs = []
        for task, superseded in latest_per(tasks, lambda t: None):
            out: MLFFResult = task.output
            model = {
                "rmse_energy_all_mev_per_atom": out.rmse_energy_mev_per_atom,
                "rmse_force_all_mev_per_a": out.rmse_force_mev_per_a,
                "mae_energy_all_mev_per_atom": out.mae_energy_mev_per_atom,
                "mae_force_all_mev_per_a": out.mae_force_mev_per_a,
                "architecture": out.architecture,
                "model_sha256": out.model_sha256,
                "labeller": out.labeller,
                "n_train": out.n_train,
                "n_valid": out.n_valid,
                "n_test": out.n_test,
                "epochs": len(out.epochs_log),
                "training_time_s": out.training_time_s,
                "md_sanity": None if out.md_sanity is None else out.md_sanity.model_dump(),
                "md_sanity_stable": None if out.md_sanity is None else out.md_sanity.stable,
                "hyperparameters": out.hyperparameters,
                "software": out.software,
                "task_uuids": [task.uuid],
                "skipped": superseded,
                "notes": _sanity_notes(out),
            }
            if not out.per_composition:
                notes = [*model["notes"], "the output has no per-composition metrics"]
                docs.append({**model, "notes": notes})
            for comp in out.per_composition:
                docs.append(
                    {
                        **model,
                        "test_composition": comp.composition,
                        "n_test_frames": comp.n_frames,
                        "rmse_energy_mev_per_atom": comp.rmse_energy_mev_per_atom,
                        "rmse_force_mev_per_a": comp.rmse_force_mev_per_a,
                    }
                )
        return docs


def _sanity_notes(out: MLFFResult) -> list[str]:
    check = out.md_sanity
    if check is None or check.stable:
        return []
    return [
        f"the trained model is not stable in a {check.n_steps}-step MD at "
        f"{check.temperature_k:g} K ({check.n_atoms} atoms): {check.reason}"
    ]
