"""Interfacial energies: one document per (group, phase, metal, electrolyte sample)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ctaflow.analysis.interfaces import InterfaceResult
from ctaflow.builders.base import StageBuilder, Task, latest_per
from ctaflow.builders.schemas import DerivedDoc


class InterfaceDoc(DerivedDoc):
    """One electrolyte | metal interface after annealing and minimisation. γ in J/m² (per
    interface; the periodic cell holds ``n_interfaces``), areas in Å², energies in eV, strain in %.
    """

    phase: str | None = Field(None, description="'crystalline' or 'amorphous'.")
    metal: str | None = None
    sample: int | None = Field(None, description="Electrolyte sample index.")
    electrolyte_formula: str | None = None
    miller: tuple[int, int, int] | None = None
    metal_miller: tuple[int, int, int] | None = None
    termination: str | None = None
    gamma_j_per_m2: float | None = None
    gamma_as_built_j_per_m2: float | None = None
    area_a2: float | None = None
    strain_pct: float | None = None
    n_interfaces: int | None = None
    n_atoms: int | None = None
    n_electrolyte_atoms: int | None = None
    n_metal_atoms: int | None = None
    metal_lattice_a: float | None = None
    energies: dict[str, Any] = Field(default_factory=dict)
    relaxed_converged: bool | None = None
    max_force_ev_per_a: float | None = None
    anneal_temperature_k: float | None = None
    anneal_fs: float | None = None
    md_mean_temperature_k: float | None = None
    engine_description: dict[str, Any] = Field(default_factory=dict)
    stage_settings: dict[str, Any] = Field(default_factory=dict)
    software: dict[str, str] = Field(default_factory=dict)


#: result fields copied as they are
COPIED = (
    "phase", "metal", "sample", "electrolyte_formula", "miller", "metal_miller", "termination",
    "gamma_j_per_m2", "area_a2", "strain_pct", "n_interfaces", "n_atoms", "n_electrolyte_atoms",
    "n_metal_atoms", "metal_lattice_a", "relaxed_converged", "max_force_ev_per_a",
    "anneal_temperature_k", "anneal_fs", "md_mean_temperature_k", "software",
)  # fmt: skip


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
        docs = []
        key = lambda t: (t.output.phase, t.output.metal, t.output.sample)  # noqa: E731
        for task, superseded in latest_per(tasks, key):
            out: InterfaceResult = task.output
            docs.append(
                {
                    **out.model_dump(include=set(COPIED)),
                    "gamma_as_built_j_per_m2": out.energies.gamma_as_built_j_per_m2,
                    "energies": out.energies.model_dump(),
                    "engine_description": out.engine,
                    "stage_settings": out.settings,
                    "task_uuids": [task.uuid],
                    "skipped": superseded,
                    "notes": list(out.notes),
                }
            )
        return docs
