"""Amorphous-vs-crystalline energies: one document per (group, composition of the series)."""

from __future__ import annotations

from typing import Any

from ctaflow.builders.base import StageBuilder, Task, latest_per
from ctaflow.builders.schemas import FormationEnergyDoc
from ctaflow.makers.amorphous import AmorphousCompositionResult


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
        docs = []
        for task, superseded in latest_per(tasks, lambda t: t.output.formula):
            out: AmorphousCompositionResult = task.output
            stats = out.delta_e
            by_li = out.substitution is not None and out.substitution.endswith("->Li")
            docs.append(
                {
                    "formula": out.formula,
                    "x": out.x,
                    "substitution": out.substitution,
                    "li_fraction": out.x if by_li else None,
                    "n_atoms": out.n_atoms,
                    "crystal_energy_per_atom_ev": out.crystal_energy_per_atom_ev,
                    "crystal_converged": out.crystal_converged,
                    "n_samples": stats.n_samples,
                    "n_requested": out.n_requested,
                    "n_failed": out.n_failed,
                    "delta_e_amorphous_minus_crystalline_mev_per_atom": stats.mean_mev_per_atom,
                    "delta_e_stderr_mev_per_atom": stats.stderr_mev_per_atom,
                    "delta_e_min_mev_per_atom": stats.min_mev_per_atom,
                    "delta_e_max_mev_per_atom": stats.max_mev_per_atom,
                    "crystal_is_lowest": None
                    if stats.n_samples == 0
                    else stats.n_below_crystal == 0,
                    "formation_energy_crystal_ev_per_atom": (
                        out.formation_energy_crystal_ev_per_atom
                    ),
                    "formation_energy_amorphous_ev_per_atom": (
                        out.formation_energy_amorphous_ev_per_atom
                    ),
                    "formation_energy_note": out.formation_energy_note,
                    "samples": [_sample_row(s) for s in out.samples],
                    "melt": out.melt,
                    "engine_description": out.engine,
                    "task_uuids": [task.uuid],
                    "skipped": superseded,
                    "notes": list(out.warnings),
                }
            )
        return docs


def _sample_row(sample) -> dict[str, Any]:
    checks = sample.checks
    return {
        "index": sample.index,
        "seed": sample.seed,
        "status": sample.status,
        "reason": sample.reason,
        "delta_e_mev_per_atom": sample.delta_e_mev_per_atom,
        "energy_per_atom_ev": sample.energy_per_atom_ev,
        "relax_converged": sample.relax_converged,
        "melt_msd_a2": None if checks is None else checks.melt_msd_a2,
        "long_range_order": None if checks is None else checks.long_range_order,
        "closest_pair_a": None if checks is None else checks.closest_pair_a,
    }
