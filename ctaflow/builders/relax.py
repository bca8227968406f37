"""Relaxations: energy per atom and convergence per (group, formula)."""

from __future__ import annotations

from typing import Any

from ctaflow.analysis.relax import RelaxResult
from ctaflow.builders.base import StageBuilder, Task, latest_per
from ctaflow.builders.schemas import RelaxDoc


class RelaxBuilder(StageBuilder):
    """``relax`` stage :class:`RelaxResult` outputs → ``derived_relax``.

    One document per (group, reduced formula) from the most recently completed stage result
    (with the minimum check on, the check's verdict: the structure kept); earlier results of the
    same formula are listed in ``skipped`` as superseded, the check's rattled copies are left
    out. Unconverged relaxations are kept (``converged`` False, with a note) so that tables show
    them.
    """

    stage = "relax"
    output_schema = RelaxResult
    document = RelaxDoc
    collection = "relax"
    sub_keys = ("formula",)

    def problem(self, output: RelaxResult) -> str | None:
        return "a rattled copy of a minimum check" if output.minimum_trial else None

    def derive(self, tasks: list[Task]) -> list[dict[str, Any]]:
        # the check's verdict completes after the relaxation it checked
        return [
            {**RelaxDoc.from_output(task.output), "task_uuids": [task.uuid], "skipped": older}
            for task, older in latest_per(tasks, lambda t: t.output.formula)
        ]
