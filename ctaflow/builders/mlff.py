"""Force-field validation: test-set errors per composition of the series."""

from __future__ import annotations

from typing import Any

from ctaflow.analysis.mlff import MLFFResult
from ctaflow.builders.base import StageBuilder, Task, latest_per
from ctaflow.builders.schemas import MLFFDoc


class MLFFBuilder(StageBuilder):
    """:class:`MLFFResult` outputs of the ``mlff`` stage and of the active-learning retrainings →
    ``derived_mlff``.

    One document per (campaign, test-set composition) from the most recently trained model: the
    final model that later stages use (after active learning, its last committee's member 0);
    earlier models are listed in ``skipped`` as superseded. Grouped without the stage's settings
    hash (the document carries the hash of the stage that trained its model), so the
    retrainings of active learning supersede the mlff stage's model.
    """

    stage = "mlff"
    output_schema = MLFFResult
    document = MLFFDoc
    collection = "mlff"
    sub_keys = ("test_composition",)
    group_keys = ("campaign", "campaign_fingerprint", "composition", "engine")
    #: the stages whose jobs train models
    training_stages = ("mlff", "active_learning")

    @property
    def criteria(self) -> dict[str, Any]:
        return {**super().criteria, "metadata.stage": {"$in": list(self.training_stages)}}

    def derive(self, tasks: list[Task]) -> list[dict[str, Any]]:
        return [
            {
                **MLFFDoc.from_output(task.output, comp),
                "model_stage": task.metadata.get("stage"),
                "settings_hash": task.metadata.get("settings_hash"),
                "task_uuids": [task.uuid],
                "skipped": older,
            }
            for task, older in latest_per(tasks, lambda t: None)
            for comp in (task.output.per_composition or [None])
        ]
