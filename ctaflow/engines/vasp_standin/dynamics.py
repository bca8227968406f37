"""Single points and relaxations with ASE; every force call becomes one VASP ionic step."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ase import units
from ase.constraints import FixAtoms
from ase.optimize import BFGS, FIRE

from ctaflow.engines.cell_filter import AtomForceFrechetCellFilter
from ctaflow.engines.vasp_standin.results import RunResult, record_step

if TYPE_CHECKING:
    from collections.abc import Callable

    from ase import Atoms
    from ase.calculators.calculator import Calculator
    from pymatgen.core import Structure

    from ctaflow.engines.vasp_standin.results import IonicStep
    from ctaflow.engines.vasp_standin.settings import RelaxSettings

logger = logging.getLogger(__name__)

OPTIMIZERS = {"BFGS": BFGS, "FIRE": FIRE}
#: PSTRESS (kbar) → ASE scalar pressure (eV/Å³)
KBAR_TO_EV_PER_A3 = units.GPa / 10.0


def to_atoms(structure: Structure, calculator: Calculator) -> Atoms:
    """ASE atoms of ``structure`` (selective dynamics become ASE constraints) with a calculator."""
    atoms = structure.to_ase_atoms()
    atoms.calc = calculator
    return atoms


def single_point(
    atoms: Atoms, on_step: Callable[[int, IonicStep], None] | None = None
) -> RunResult:
    """Energy, forces and stress of ``atoms``: one ionic step."""
    step = record_step(atoms)
    if on_step:
        on_step(1, step)
    return RunResult(steps=[step], converged=True)


def relax(
    atoms: Atoms,
    settings: RelaxSettings,
    max_steps: int,
    on_step: Callable[[int, IonicStep], None] | None = None,
) -> RunResult:
    """Relax ``atoms`` with at most ``max_steps`` force calls (VASP's NSW).

    Converged means: all forces on the atoms (lab frame, as VASP's; and, with a variable cell,
    the cell gradient of ASE's ``FrechetCellFilter``) below ``fmax_ev_per_a``; or, with an
    energy criterion, two successive energies (enthalpies at ``PSTRESS``) differing by less
    than ``energy_tolerance_ev`` — VASP's EDIFFG < 0 and EDIFFG > 0. Note: with EDIFFG < 0 and a
    variable cell VASP checks forces only; the cell gradient criterion here is stricter.
    """
    if not settings.move_positions:
        atoms.set_constraint([*atoms.constraints, FixAtoms(indices=list(range(len(atoms))))])
    target = atoms
    pressure = settings.pressure_kbar * KBAR_TO_EV_PER_A3
    if settings.move_shape or settings.move_volume:
        target = AtomForceFrechetCellFilter(
            atoms,
            hydrostatic_strain=not settings.move_shape,
            constant_volume=not settings.move_volume,
            scalar_pressure=pressure,
        )
    optimizer = OPTIMIZERS[settings.optimizer](target, logfile=None)
    fmax = settings.fmax_ev_per_a if settings.fmax_ev_per_a is not None else 0.0
    result = RunResult(converged=False)
    previous_energy = None
    for force_converged in optimizer.irun(fmax=fmax, steps=max(max_steps - 1, 0)):
        step = record_step(atoms)
        result.steps.append(step)
        if on_step:
            on_step(len(result.steps), step)
        energy = step.energy_ev + pressure * atoms.get_volume()  # enthalpy at PSTRESS
        if settings.energy_tolerance_ev is not None:
            done = (
                previous_energy is not None
                and abs(energy - previous_energy) < settings.energy_tolerance_ev
            )
        else:
            done = bool(force_converged)
        previous_energy = energy
        if done:
            result.converged = True
            break
        if len(result.steps) >= max_steps:
            break
    logger.info(
        "relaxation %s after %d ionic steps",
        "converged" if result.converged else "not converged",
        len(result.steps),
    )
    return result
