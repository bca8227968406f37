"""What every engine offers to the stages. Stages receive an engine object; they never branch on
what kind of engine it is.

An engine is data: it is made from its spec (:mod:`ctaflow.engines.specs`) and serialises back to
it (``as_dict``/``from_dict``), so makers that hold an engine can travel inside a jobflow job (a
job that builds a stage at run time, FireWorks, jobflow-remote). Engines speak the vocabulary of
:mod:`ctaflow.engines.params` and know no stage and no campaign.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from monty.json import MSONable

from ctaflow.errors import EngineError

if TYPE_CHECKING:
    from jobflow import Job, Maker, OutputReference
    from pydantic import BaseModel

    from ctaflow.engines.params import MDControls, MDSegment, NEBParams, RelaxParams


class Engine(MSONable, ABC):
    """A calculator family that can make the atomate2 makers a stage needs."""

    #: the spec model this engine is made from (``cls(spec)``)
    spec_class: ClassVar[type[BaseModel]]
    #: short name used in job metadata and reports, e.g. ``"mlip:CHGNet-0.3.0"``
    label: str
    #: relaxations end with the minimum check unless it is switched off (cheap engines: on)
    checks_minimum_by_default: ClassVar[bool] = True

    def __init__(self, spec: BaseModel) -> None:
        self.spec = spec

    # ------------------------------------------------------------------ serialisation
    def as_dict(self) -> dict[str, Any]:
        return {
            "@module": type(self).__module__,
            "@class": type(self).__name__,
            "spec": self.spec.model_dump(mode="json"),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Engine:
        return cls(cls.spec_class.model_validate(d["spec"]))

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.spec == self.spec

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.label))

    @property
    def needs_trained_model(self) -> bool:
        """True when the engine's model is the one the campaign trains, known only at run time."""
        return False

    # ------------------------------------------------------------------ what every engine makes
    @abstractmethod
    def relax_maker(self, params: RelaxParams) -> Maker:
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

    @abstractmethod
    def md_maker(self, segment: MDSegment, n_steps: int, seed: int, controls: MDControls) -> Maker:
        """A maker whose ``make(structure)`` runs one MD segment of ``n_steps`` steps from
        ``structure`` (velocities from its ``velocities`` site property when present) and
        returns an :class:`~ctaflow.analysis.md.MDResult` whose trajectory is chunked into the
        ``data`` store."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Engine provenance for reports: kind, model, versions, numerical settings."""

    @abstractmethod
    def check_available(self, elements: list[str] | None = None) -> None:
        """Raise :class:`ctaflow.errors.EngineError` if this engine cannot run here for
        structures made of ``elements`` (e.g. missing POTCARs)."""

    # ------------------------------------------------------------------ what some engines make
    def normal_relax_maker(self, params: RelaxParams) -> Maker:
        """Like :meth:`relax_maker`, but the cell may change only along its ``c`` axis (the
        stacking normal when ``c`` is normal to ``a``, ``b``): positions and the cell's length
        along the normal relax, the in-plane cell stays fixed. Used for the strained metal
        reference of interfaces; same outputs as :meth:`relax_maker`."""
        raise EngineError(
            f"engine {self.label} cannot relax a cell along one axis only; use an MLIP engine "
            "for stages.interfaces"
        )

    def static_maker(self) -> Maker:
        """A maker whose ``make(structure)`` computes energy, forces and stress of one fixed
        structure (relabelling for active learning); outputs as :meth:`static_outputs`."""
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

    def neb_maker(self, params: NEBParams) -> Maker:
        """A maker whose ``make(images)`` runs a (climbing-image) NEB on the full band
        ``images`` (end points first and last, held fixed) with a fixed cell."""
        raise EngineError(f"engine {self.label} cannot run NEB; choose an MLIP or VASP engine")

    def neb_outputs(self, neb_job: Job) -> dict[str, OutputReference]:
        """References into the NEB job's output for the **intermediate** images only:
        ``structures`` (list of Structure), ``energies_ev`` (list of float, eV),
        ``forces_ev_per_a`` (per image an (n_atoms, 3) list, true forces, eV/Å),
        ``converged`` (bool: the engine's own criterion was met)."""
        raise EngineError(f"engine {self.label} cannot run NEB; choose an MLIP or VASP engine")
