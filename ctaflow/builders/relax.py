"""Relaxations: energy per atom and convergence per (group, formula)."""

from __future__ import annotations

from typing import Any

from ctaflow.analysis.relax import RelaxResult
from ctaflow.builders.base import StageBuilder, Task, latest_per
from ctaflow.builders.schemas import RelaxDoc


class RelaxBuilder(StageBuilder):
    """``relax`` stage :class:`RelaxResult` outputs → ``derived_relax``.

    One document per (group, reduced formula) from the most recently completed task; earlier
    tasks of the same formula are listed in ``skipped`` as superseded. Unconverged relaxations
    are kept (``converged`` False, with a note) so that tables show them.
    """

    stage = "relax"
    output_schema = RelaxResult
    document = RelaxDoc
    collection = "relax"
    sub_keys = ("formula",)

    def derive(self, tasks: list[Task]) -> list[dict[str, Any]]:
        return [
            {**RelaxDoc.from_output(task.output), "task_uuids": [task.uuid], "skipped": older}
            for task, older in latest_per(tasks, lambda t: t.output.formula)
        ]
