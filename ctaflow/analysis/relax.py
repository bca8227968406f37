"""Relaxation results: a unit-carrying summary of a relaxation task document."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, Field
from pymatgen.core import Structure

from ctaflow.analysis.minimum import MinimumSummary


class RelaxResult(BaseModel):
    """Summary of one relaxation. Energies in eV, forces in eV/Å, lengths in Å, volumes in Å³."""

    formula: str = Field(description="Reduced formula of the relaxed structure.")
    n_atoms: int
    structure: Structure = Field(description="Relaxed structure (site properties kept).")
    energy_ev: float = Field(description="Final total energy, eV.")
    energy_per_atom_ev: float = Field(description="Final energy per atom, eV/atom.")
    initial_energy_ev: float | None = Field(None, description="Energy of the first step, eV.")
    max_force_ev_per_a: float = Field(description="Largest final force norm, eV/Å.")
    fmax_target_ev_per_a: float = Field(description="Force criterion asked for, eV/Å.")
    converged: bool = Field(description="max force ≤ criterion at the end.")
    n_steps: int | None = Field(None, description="Optimiser steps taken.")
    initial_volume_a3: float
    volume_a3: float
    lattice_abc_a: tuple[float, float, float]
    engine: dict[str, Any] = Field(description="Engine description (kind, model, versions).")
    structure_provenance: dict[str, Any] = Field(default_factory=dict)
    software: dict[str, str] = Field(default_factory=dict)
    minimum: MinimumSummary | None = Field(
        None, description="The minimum check (rattle and re-relax), when it ran."
    )
    minimum_trial: bool = Field(
        False, description="A rattled copy relaxed by a minimum check, not a stage result."
    )


def max_force(forces: Any) -> float:
    """Largest per-atom force norm (same units as ``forces``)."""
    arr = np.asarray(forces, dtype=float).reshape(-1, 3)
    return float(np.linalg.norm(arr, axis=1).max()) if arr.size else 0.0


def summarise_relaxation(
    initial: Structure,
    final: Structure,
    energy_ev: float,
    forces_ev_per_a: Any,
    fmax_target_ev_per_a: float,
    engine: dict[str, Any],
    initial_energy_ev: float | None = None,
    n_steps: int | None = None,
    software: dict[str, str] | None = None,
) -> RelaxResult:
    """Build a :class:`RelaxResult`; site properties of ``initial`` are carried to ``final``."""
    final = final.copy()
    for key, values in initial.site_properties.items():
        if key not in final.site_properties and len(values) == len(final):
            final.add_site_property(key, values)
    provenance = dict((initial.properties or {}).get("provenance", {}))
    final.properties = {**(final.properties or {}), "provenance": provenance}
    fmax = max_force(forces_ev_per_a)
    return RelaxResult(
        formula=final.composition.reduced_formula,
        n_atoms=len(final),
        structure=final,
        energy_ev=float(energy_ev),
        energy_per_atom_ev=float(energy_ev) / len(final),
        initial_energy_ev=None if initial_energy_ev is None else float(initial_energy_ev),
        max_force_ev_per_a=fmax,
        fmax_target_ev_per_a=fmax_target_ev_per_a,
        converged=fmax <= fmax_target_ev_per_a,
        n_steps=n_steps,
        initial_volume_a3=float(initial.volume),
        volume_a3=float(final.volume),
        lattice_abc_a=tuple(float(x) for x in final.lattice.abc),
        engine=engine,
        structure_provenance=provenance,
        software=software or {},
    )
