"""Initial velocities of an MD run that starts from a structure at rest (e.g. a relaxed lattice).

Why twice the target temperature: a crystal at its energy minimum is, to first order, a set of
harmonic oscillators. Velocities drawn at T give each mode its kinetic energy and no potential
energy; within a quarter of a vibration period (~20–50 fs) equipartition moves half of it into
the potential, so the instantaneous temperature falls to ~T/2 before any thermostat acts, and a
Langevin (1/γ = 100 fs) or Nosé–Hoover (tdamp 100 fs) thermostat restores it only over a few
hundred fs (measured with CHGNet on the demo's 40-atom Na₃OCl cell: the 0.1-ps equilibration at
600 K averaged 373 K; and with EMT Cu in tests/analysis/test_md_targets.py). Drawn at 2T, the
same exchange leaves the lattice at T from the start. The draw is exact (``force_temp``: the
kinetic temperature of the drawn set is 2T, not a sample around it) and without centre-of-mass
motion (``Stationary``); it is seeded, so a run is reproducible.

A structure that carries velocities (site property ``velocities``, ASE units, as every ctaflow
MD segment leaves its final structure) continues with them: only a structure at rest gets new
ones.
"""

from __future__ import annotations

import numpy as np
from ase import units
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
from jobflow import job
from pymatgen.core import Structure

#: start temperature / target temperature for a structure at rest (see the module docstring)
START_TEMPERATURE_FACTOR = 2.0


def has_velocities(structure: Structure) -> bool:
    """Whether ``structure`` carries (non-zero) velocities to continue an MD run with."""
    v = structure.site_properties.get("velocities")
    return v is not None and bool(np.any(np.asarray(v, dtype=float)))


def start_velocities(
    structure: Structure,
    temperature_k: float,
    seed: int,
    factor: float = START_TEMPERATURE_FACTOR,
) -> np.ndarray:
    """Maxwell–Boltzmann velocities (ASE units, (n, 3)) whose kinetic temperature (3N degrees
    of freedom, ASE's ``get_temperature``) is exactly ``factor × temperature_k``, with zero total
    momentum (ASE's ``Stationary`` rescales to keep the temperature), drawn with
    ``default_rng(seed)``."""
    atoms = structure.to_ase_atoms()
    MaxwellBoltzmannDistribution(
        atoms,
        temperature_K=factor * temperature_k,
        rng=np.random.default_rng(seed),
        force_temp=True,
    )
    Stationary(atoms)
    return atoms.get_velocities()


def with_start_velocities(
    structure: Structure,
    temperature_k: float,
    seed: int,
    factor: float = START_TEMPERATURE_FACTOR,
) -> Structure:
    """``structure`` unchanged if it carries velocities, else a copy with
    :func:`start_velocities` as its ``velocities`` site property (ASE units)."""
    if has_velocities(structure) or temperature_k <= 0:
        return structure
    out = structure.copy()
    out.add_site_property(
        "velocities", start_velocities(structure, temperature_k, seed, factor).tolist()
    )
    return out


@job
def vasp_start_job(structure: Structure, temperature_k: float, seed: int) -> Structure:
    """The structure a VASP MD segment starts from, velocities in VASP's unit (Å/fs).

    ctaflow structures carry velocities in ASE units; VASP reads them from the POSCAR in Å/fs.
    A structure at rest gets :func:`start_velocities` at 2T (see the module docstring), as the
    MLIP engines do.
    """
    start = with_start_velocities(structure, temperature_k, seed)
    out = start.copy()
    if has_velocities(start):
        velocities = np.asarray(start.site_properties["velocities"], dtype=float) * units.fs
        out.add_site_property("velocities", velocities.tolist())
    return out
