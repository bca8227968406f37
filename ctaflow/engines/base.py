"""What every engine offers to the stages. Stages receive an engine object; they never branch on
what kind of engine it is."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobflow import Job, Maker, OutputReference

    from ctaflow.campaign.schema import RelaxStageSettings


class Engine(ABC):
    """A calculator family that can make the atomate2 makers a stage needs."""

    #: short name used in job metadata and reports, e.g. ``"mlip:CHGNet-0.3.0"``
    label: str

    @abstractmethod
    def relax_maker(self, settings: RelaxStageSettings) -> Maker:
        """A maker whose ``make(structure)`` relaxes a structure and returns a task document
        with ``structure``, ``output.energy`` (eV) and ``output.forces`` (eV/Å)."""

    @abstractmethod
    def relax_outputs(self, relax_job: Job) -> dict[str, OutputReference]:
        """References into the relax job's output: ``structure``, ``energy_ev``,
        ``forces_ev_per_a`` and, where the engine records them, ``initial_energy_ev`` and
        ``n_steps``."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Engine provenance for reports: kind, model, versions, numerical settings."""

    @abstractmethod
    def check_available(self, elements: list[str] | None = None) -> None:
        """Raise :class:`ctaflow.errors.EngineError` if this engine cannot run here for
        structures made of ``elements`` (e.g. missing POTCARs)."""
