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
        docs = []
        for task, superseded in latest_per(tasks, lambda t: t.output.formula):
            out: RelaxResult = task.output
            notes = []
            if not out.converged:
                notes.append(
                    f"not converged: max force {out.max_force_ev_per_a:.3g} eV/Å > "
                    f"{out.fmax_target_ev_per_a:.3g} eV/Å"
                )
            docs.append(
                {
                    "formula": out.formula,
                    "n_atoms": out.n_atoms,
                    "energy_ev": out.energy_ev,
                    "energy_per_atom_ev": out.energy_per_atom_ev,
                    "initial_energy_per_atom_ev": (
                        None
                        if out.initial_energy_ev is None
                        else out.initial_energy_ev / out.n_atoms
                    ),
                    "max_force_ev_per_a": out.max_force_ev_per_a,
                    "fmax_target_ev_per_a": out.fmax_target_ev_per_a,
                    "converged": out.converged,
                    "n_steps": out.n_steps,
                    "initial_volume_a3": out.initial_volume_a3,
                    "volume_a3": out.volume_a3,
                    "lattice_abc_a": out.lattice_abc_a,
                    "engine_description": out.engine,
                    "task_uuids": [task.uuid],
                    "skipped": superseded,
                    "notes": notes,
                }
            )
        return docs
