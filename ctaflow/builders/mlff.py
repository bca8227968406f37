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
        return [
            {**MLFFDoc.from_output(task.output, comp), "task_uuids": [task.uuid], "skipped": older}
            for task, older in latest_per(tasks, lambda t: None)
            for comp in (task.output.per_composition or [None])
        ]
