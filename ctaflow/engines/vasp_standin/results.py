"""What a stand-in run produces: one :class:`IonicStep` per force call, in VASP units.

Units and signs follow vasprun.xml: energies in eV, forces in eV/Å, stress in kbar with VASP's
sign (positive = compressive: the cell pushes outwards), velocities in Å/fs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ase import Atoms, units
from pymatgen.core import Lattice, Structure

#: ASE stress (eV/Å³, positive = tensile) → VASP stress (kbar, positive = compressive)
EV_PER_A3_TO_KBAR = -10.0 / units.GPa


@dataclass(frozen=True)
class NEBStepInfo:
    """What VTST prints for one image at one NEB step (improved tangent; Henkelman & Jónsson,
    J. Chem. Phys. 113, 9978 (2000)).

    Parameters
    ----------
    tangent
        Unit tangent of the band at this image, shape (n_atoms, 3) (the whole vector has norm 1).
    spring_projection_ev_per_a
        Spring force along the tangent, k (|R_{i+1} − R_i| − |R_i − R_{i−1}|); 0 for the
        climbing image.
    real_projection_ev_per_a
        True force projected on the tangent (VTST's "REAL"; pymatgen's ``tangent_force``).
    perpendicular_real_ev_per_a
        Norm of the true force perpendicular to the tangent.
    distance_previous_a, distance_next_a
        Distance to the previous and next image in configuration space, Å.
    angle_deg
        Angle between the directions to the previous and the next image (180: straight band).
    neb_forces_ev_per_a
        The force the optimiser moves the image with, shape (n_atoms, 3): perpendicular true
        force plus spring force, or the true force with its tangential part inverted for the
        climbing image.
    climbing
        Whether this image is the climbing image at this step.
    """

    tangent: np.ndarray
    spring_projection_ev_per_a: float
    real_projection_ev_per_a: float
    perpendicular_real_ev_per_a: float
    distance_previous_a: float
    distance_next_a: float
    angle_deg: float
    neb_forces_ev_per_a: np.ndarray
    climbing: bool

    @property
    def max_atom_force_ev_per_a(self) -> float:
        """Largest NEB force on an atom (VTST's "FORCES: max atom"; EDIFFG < 0 applies to it)."""
        return float(np.max(np.linalg.norm(self.neb_forces_ev_per_a, axis=1)))


@dataclass(frozen=True)
class IonicStep:
    """One force call of the MLIP.

    Parameters
    ----------
    structure
        Structure at which energy, forces and stress were evaluated.
    energy_ev
        Potential energy (eV); the MLIP has no electronic entropy, so VASP's free energy,
        energy without entropy and energy(σ→0) are all equal to it.
    forces_ev_per_a
        Forces, shape (n_atoms, 3), eV/Å.
    stress_kbar
        3×3 stress tensor in kbar, VASP sign convention.
    kinetic_energy_ev
        Ionic kinetic energy (MD only), eV.
    temperature_k
        Instantaneous temperature (MD only) with VASP's 3N−3 degrees of freedom, K.
    velocities_a_per_fs
        Velocities (MD only), shape (n_atoms, 3), Å/fs.
    neb
        The image's NEB quantities at this step (NEB runs only).
    """

    structure: Structure
    energy_ev: float
    forces_ev_per_a: np.ndarray
    stress_kbar: np.ndarray
    kinetic_energy_ev: float | None = None
    temperature_k: float | None = None
    velocities_a_per_fs: np.ndarray | None = None
    neb: NEBStepInfo | None = None

    @property
    def max_force_ev_per_a(self) -> float:
        """Largest force norm on any atom (eV/Å)."""
        return float(np.max(np.linalg.norm(self.forces_ev_per_a, axis=1)))

    @property
    def drift_ev_per_a(self) -> np.ndarray:
        """Net force on the cell (eV/Å), VASP's ``total drift``."""
        return self.forces_ev_per_a.sum(axis=0)


@dataclass
class RunResult:
    """All ionic steps of a run plus whether it reached its convergence criterion."""

    steps: list[IonicStep] = field(default_factory=list)
    converged: bool = True

    @property
    def final(self) -> IonicStep:
        """The last ionic step."""
        return self.steps[-1]


def md_temperature_k(kinetic_energy_ev: float, n_atoms: int) -> float:
    """Temperature from the kinetic energy with 3N−3 degrees of freedom (as VASP prints it)."""
    dof = max(3 * n_atoms - 3, 1)
    return 2.0 * kinetic_energy_ev / (dof * units.kB)


def record_step(atoms: Atoms, with_velocities: bool = False) -> IonicStep:
    """An :class:`IonicStep` from atoms whose calculator holds results for their positions.

    The calculator is asked for energy, forces and stress; ASE caches them, so this costs no
    extra force call after an optimiser or MD step.
    """
    energy = float(atoms.get_potential_energy())
    forces = np.array(atoms.get_forces(apply_constraint=False), dtype=float)
    stress = np.array(atoms.get_stress(voigt=False), dtype=float) * EV_PER_A3_TO_KBAR
    # VASP writes positions folded into the cell, also during MD
    structure = Structure(
        Lattice(np.array(atoms.cell[:], dtype=float)),
        atoms.get_chemical_symbols(),
        atoms.get_scaled_positions(wrap=True),
    )
    kinetic = temperature = velocities = None
    if with_velocities:
        kinetic = float(atoms.get_kinetic_energy())
        temperature = md_temperature_k(kinetic, len(atoms))
        velocities = atoms.get_velocities() * units.fs  # Å per ASE time → Å/fs
    return IonicStep(
        structure=structure,
        energy_ev=energy,
        forces_ev_per_a=forces,
        stress_kbar=stress,
        kinetic_energy_ev=kinetic,
        temperature_k=temperature,
        velocities_a_per_fs=velocities,
    )
