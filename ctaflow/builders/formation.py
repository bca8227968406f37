"""Amorphous vs crystalline energies: one document per (group, formula of the series)."""

from __future__ import annotations

from typing import Any

from ctaflow.analysis.amorphous import AmorphousCompositionResult
from ctaflow.builders.base import StageBuilder, Task, latest_per
from ctaflow.builders.schemas import FormationEnergyDoc


class FormationEnergyBuilder(StageBuilder):
    """``amorphous`` stage :class:`AmorphousCompositionResult` outputs →
    ``derived_formation_energies``.

    The statistics are the ones the stage computed (pure functions of
    :mod:`ctaflow.analysis.amorphous`); the builder flattens them with units in the field names,
    keeps every sample with its status, and turns the stage's warnings into notes.
    """

    stage = "amorphous"
    output_schema = AmorphousCompositionResult
    document = FormationEnergyDoc
    collection = "formation_energies"
    sub_keys = ("formula",)

    def derive(self, tasks: list[Task]) -> list[dict[str, Any]]:
        return [
            {
                **FormationEnergyDoc.from_output(task.output),
                "task_uuids": [task.uuid],
                "skipped": older,
            }
            for task, older in latest_per(tasks, lambda t: t.output.formula)
        ]
