"""NEB barriers: one document per (group, species, mechanism, hop class)."""

from __future__ import annotations

from typing import Any

from ctaflow.analysis.neb import BarrierResult
from ctaflow.builders.base import StageBuilder, Task, latest_per
from ctaflow.builders.schemas import BarrierDoc


class BarrierBuilder(StageBuilder):
    """``neb`` stage :class:`BarrierResult` outputs → ``derived_barriers``.

    The most recently completed band of each (species, mechanism, hop class) is used; earlier
    ones are listed in ``skipped`` as superseded. A band whose climbing image did not converge,
    or with an image below its end points, is kept with a note saying so.
    """

    stage = "neb"
    output_schema = BarrierResult
    document = BarrierDoc
    collection = "barriers"
    sub_keys = ("species", "mechanism", "hop_label")

    def derive(self, tasks: list[Task]) -> list[dict[str, Any]]:
        key = lambda t: (t.output.species, t.output.mechanism, t.output.hop_label)  # noqa: E731
        return [
            {**BarrierDoc.from_output(task.output), "task_uuids": [task.uuid], "skipped": older}
            for task, older in latest_per(tasks, key)
        ]
