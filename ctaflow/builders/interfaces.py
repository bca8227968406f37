"""Interfacial energies: one document per (group, phase, metal, electrolyte sample)."""

from __future__ import annotations

from typing import Any

from ctaflow.analysis.interfaces import InterfaceResult
from ctaflow.builders.base import StageBuilder, Task, latest_per
from ctaflow.builders.schemas import InterfaceDoc


class InterfaceBuilder(StageBuilder):
    """``interfaces`` stage :class:`InterfaceResult` outputs → ``derived_interfaces``.

    The most recently completed interface of each (phase, metal, sample) is used; earlier ones
    are listed in ``skipped`` as superseded. An interface whose minimisation did not reach the
    force criterion is kept with a note.
    """

    stage = "interfaces"
    output_schema = InterfaceResult
    document = InterfaceDoc
    collection = "interfaces"
    sub_keys = ("phase", "metal", "sample")

    def derive(self, tasks: list[Task]) -> list[dict[str, Any]]:
        key = lambda t: (t.output.phase, t.output.metal, t.output.sample)  # noqa: E731
        return [
            {**InterfaceDoc.from_output(task.output), "task_uuids": [task.uuid], "skipped": older}
            for task, older in latest_per(tasks, key)
        ]
