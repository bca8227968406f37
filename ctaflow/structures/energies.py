"""Energies used to rank candidate structures: Ewald sums and MLIP callables.

The structure builders never load a model themselves: they receive an *energy function*, any
callable ``f(structure) -> total energy in eV``. :func:`calculator_energy_function` turns an ASE
calculator (e.g. :func:`ctaflow.engines.calculators.chgnet_calculator`) into one, as a single
point or after a short relaxation; :func:`relax_with_calculator` is the relaxation the structure
search uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ctaflow.structures._common import decorate

if TYPE_CHECKING:
    from ase.calculators.calculator import Calculator
    from pymatgen.core import Structure

#: f(structure) -> total energy in eV
EnergyFunction = Callable[["Structure"], float]


def ewald_energy(structure: Structure, oxidation_states: dict[str, float]) -> float:
    """Total Ewald energy (eV) of an ordered structure with point charges ``oxidation_states``.

    The cell must be ordered; a net charge is compensated by a uniform background (pymatgen's
    convention), which leaves energy *differences* at fixed composition meaningful.
    """
    from pymatgen.analysis.ewald import EwaldSummation

    return float(EwaldSummation(decorate(structure, oxidation_states)).total_energy)


@dataclass
class RelaxOutcome:
    """Result of :func:`relax_with_calculator`. Energies in eV, forces in eV/Å."""

    structure: Structure
    energy_ev: float
    max_force_ev_per_a: float
    n_steps: int
    converged: bool


def relax_with_calculator(
    structure: Structure,
    calculator: Calculator,
    fmax: float = 0.05,
    steps: int = 200,
    relax_cell: bool = True,
    keep_symmetry: bool = False,
    symprec: float = 0.01,
) -> RelaxOutcome:
    """Relax positions (and the cell when ``relax_cell``) with ASE FIRE.

    Parameters
    ----------
    structure
        Ordered structure; site properties are carried to the relaxed structure.
    calculator
        Any ASE calculator.
    fmax
        Force criterion in eV/Å (applied to the cell filter's generalised forces when the cell
        relaxes).
    steps
        Maximum FIRE steps.
    relax_cell
        Relax the cell too, through :class:`ase.filters.FrechetCellFilter`.
    keep_symmetry
        Keep the initial space group (found with ``symprec``) with
        :class:`ase.constraints.FixSymmetry`.
    symprec
        Symmetry tolerance of ``keep_symmetry``, Å.
    """
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(structure.copy().remove_oxidation_states())
    atoms.calc = calculator
    if keep_symmetry:
        from ase.constraints import FixSymmetry

        atoms.set_constraint(FixSymmetry(atoms, symprec=symprec))
    target = FrechetCellFilter(atoms) if relax_cell else atoms
    opt = FIRE(target, logfile=None)
    converged = bool(opt.run(fmax=fmax, steps=steps))
    forces = atoms.get_forces()
    atoms.set_constraint()
    relaxed = AseAtomsAdaptor.get_structure(atoms)
    for key, values in structure.site_properties.items():
        relaxed.add_site_property(key, list(values))
    for site, old in zip(relaxed, structure, strict=True):
        site.label = old.label
    relaxed.properties = dict(structure.properties or {})
    return RelaxOutcome(
        structure=relaxed,
        energy_ev=float(atoms.get_potential_energy()),
        max_force_ev_per_a=float(np.linalg.norm(forces, axis=1).max()),
        n_steps=int(opt.nsteps),
        converged=converged,
    )


def calculator_energy_function(
    calculator: Calculator,
    relax_steps: int = 0,
    fmax: float = 0.1,
    relax_cell: bool = False,
) -> EnergyFunction:
    """An :data:`EnergyFunction` from an ASE calculator.

    Parameters
    ----------
    calculator
        Any ASE calculator (e.g. CHGNet from :mod:`ctaflow.engines.calculators`).
    relax_steps
        0 for a single point; otherwise the energy after at most this many FIRE steps.
    fmax
        Force criterion of the relaxation, eV/Å.
    relax_cell
        Relax the cell as well.
    """

    def energy(structure: Structure) -> float:
        if relax_steps > 0:
            return relax_with_calculator(
                structure, calculator, fmax=fmax, steps=relax_steps, relax_cell=relax_cell
            ).energy_ev
        from pymatgen.io.ase import AseAtomsAdaptor

        atoms = AseAtomsAdaptor.get_atoms(structure.copy().remove_oxidation_states())
        atoms.calc = calculator
        return float(atoms.get_potential_energy())

    energy.settings = {  # type: ignore[attr-defined]
        "calculator": type(calculator).__name__,
        "relax_steps": relax_steps,
        "fmax_ev_per_a": fmax,
        "relax_cell": relax_cell,
    }
    return energy


def describe_energy_function(function: EnergyFunction | None) -> dict | None:
    """What provenance records about an energy function (its ``settings`` or its name)."""
    if function is None:
        return None
    settings = getattr(function, "settings", None)
    name = getattr(function, "__qualname__", type(function).__name__)
    return {"name": name, **(settings or {})}
