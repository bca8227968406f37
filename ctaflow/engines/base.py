"""What every engine offers to the stages. Stages receive an engine object; they never branch on
what kind of engine it is."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobflow import Job, Maker, OutputReference

    from ctaflow.campaign.schema import NEBStageSettings, RelaxStageSettings


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
        ``forces_ev_per_a`` and, where the engine records them, ``initial_energy_ev``,
        ``n_steps`` and ``ionic_steps`` (per step: structure under ``structure`` or
        ``mol_or_struct``, energy under ``e_0_energy`` or ``energy`` in eV, ``forces`` in eV/Å,
        ``stress`` in kbar with VASP's sign, as VASP and atomate2's force-field documents keep
        them)."""

    def normal_relax_maker(self, settings: RelaxStageSettings) -> Maker:
        """Like :meth:`relax_maker`, but the cell may change only along its ``c`` axis (the
        stacking normal when ``c`` is normal to ``a``, ``b``): positions and the cell's length
        along the normal relax, the in-plane cell stays fixed. Used for the strained metal
        reference of interfaces; same outputs as :meth:`relax_maker`."""
        from ctaflow.errors import EngineError

        raise EngineError(
            f"engine {self.label} cannot relax a cell along one axis only; use an MLIP engine "
            "for stages.interfaces"
        )

    def static_maker(self) -> Maker:
        """A maker whose ``make(structure)`` computes energy, forces and stress of one fixed
        structure (relabelling for active learning); outputs as :meth:`static_outputs`."""
        from ctaflow.errors import EngineError

        raise EngineError(f"engine {self.label} cannot label single structures")

    def static_outputs(self, static_job: Job) -> dict[str, OutputReference]:
        """References into the static job's task document: ``structure``, ``energy_ev``,
        ``forces_ev_per_a`` and ``stress_kbar`` (3×3, positive = compressive, as VASP and
        atomate2's force-field documents store it)."""
        out = static_job.output
        return {
            "structure": out.structure,
            "energy_ev": out.output.energy,
            "forces_ev_per_a": out.output.forces,
            "stress_kbar": out.output.stress,
        }

    def neb_maker(self, settings: NEBStageSettings) -> Maker:
        """A maker whose ``make(images)`` runs a (climbing-image) NEB on the full band
        ``images`` (end points first and last, held fixed) with a fixed cell."""
        from ctaflow.errors import EngineError

        raise EngineError(f"engine {self.label} cannot run NEB; choose an MLIP or VASP engine")

    def neb_outputs(self, neb_job: Job) -> dict[str, OutputReference]:
        """References into the NEB job's output for the **intermediate** images only:
        ``structures`` (list of Structure), ``energies_ev`` (list of float, eV),
        ``forces_ev_per_a`` (per image an (n_atoms, 3) list, true forces, eV/Å),
        ``converged`` (bool: the engine's own criterion was met)."""
        from ctaflow.errors import EngineError

        raise EngineError(f"engine {self.label} cannot run NEB; choose an MLIP or VASP engine")

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Engine provenance for reports: kind, model, versions, numerical settings."""

    @abstractmethod
    def check_available(self, elements: list[str] | None = None) -> None:
        """Raise :class:`ctaflow.errors.EngineError` if this engine cannot run here for
        structures made of ``elements`` (e.g. missing POTCARs)."""
