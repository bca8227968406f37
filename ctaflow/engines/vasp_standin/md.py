"""Molecular dynamics with ASE integrators mapped from VASP's MDALGO/SMASS/LANGEVIN_GAMMA.

The centre of mass is held at rest (ASE ``FixCom``), and temperatures are computed and targeted
with VASP's 3N−3 degrees of freedom. The MD step semantics follow VASP's output: NSW ionic
steps are written, the first at the starting positions; step *n* holds the positions, potential
energy, forces, stress and kinetic energy of MD step *n*. Velocities start from POSCAR (if
given) or from a Maxwell–Boltzmann distribution at TEBEG with zero total momentum, rescaled to
exactly TEBEG. The random generator is seeded from ``CTAFLOW_STANDIN_SEED``: two runs of the
same inputs give identical trajectories.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
from ase import units
from ase.constraints import FixCom
from ase.md.andersen import Andersen
from ase.md.langevin import Langevin
from ase.md.langevinbaoab import LangevinBAOAB
from ase.md.nose_hoover_chain import NoseHooverChainNVT
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
from ase.md.verlet import VelocityVerlet

from ctaflow.engines.vasp_standin.results import RunResult, md_temperature_k, record_step

if TYPE_CHECKING:
    from collections.abc import Callable

    from ase import Atoms
    from ase.md.md import MolecularDynamics

    from ctaflow.engines.vasp_standin.inputs import SpeciesBlock
    from ctaflow.engines.vasp_standin.results import IonicStep
    from ctaflow.engines.vasp_standin.settings import MDSettings

logger = logging.getLogger(__name__)

PER_PS_TO_ASE = 1.0 / (1000.0 * units.fs)  # friction ps⁻¹ → 1 / ASE time
KBAR_TO_EV_PER_A3 = units.GPa / 10.0


class RampedNoseHoover(NoseHooverChainNVT):
    """Nosé–Hoover (one thermostat, as VASP MDALGO = 2) on 3N−3 degrees of freedom.

    ASE's thermostat drives the kinetic energy to 3N·kT/2; with the centre of mass at rest only
    3N−3 degrees of freedom move, so the target handed to ASE is scaled by (3N−3)/3N and the
    temperature printed with VASP's 3N−3 convention averages to TEBEG. The target can change
    during the run (TEBEG → TEEND ramp) while the thermostat mass stays fixed, as in VASP.
    Relies on ``NoseHooverChainThermostat._kT`` of ASE 3.29 (ase is pinned < 3.30).
    """

    def __init__(self, atoms: Atoms, timestep: float, temperature_K: float, **kwargs) -> None:
        self._dof_factor = com_dof_factor(len(atoms))
        super().__init__(atoms, timestep, temperature_K=temperature_K * self._dof_factor, **kwargs)

    def set_temperature(self, temperature_k: float) -> None:
        """Retarget the thermostat to ``temperature_k`` (K, 3N−3 convention)."""
        self._thermostat._kT = units.kB * temperature_k * self._dof_factor


def com_dof_factor(n_atoms: int) -> float:
    """(3N−3)/3N: moving degrees of freedom over ASE's 3N when the centre of mass is fixed."""
    return max(3 * n_atoms - 3, 1) / (3 * n_atoms)


def nose_tdamp_fs(period_fs: float) -> float:
    """ASE ``tdamp`` (fs) for a Nosé–Hoover oscillation period ``period_fs``.

    With ASE's thermostat mass Q = 3N k_B T tdamp², small oscillations of the kinetic energy
    about its target have angular frequency √2 / tdamp, so period = √2 π tdamp.
    """
    return period_fs / (np.sqrt(2.0) * np.pi)


def initialise_velocities(
    atoms: Atoms,
    temperature_k: float,
    rng: np.random.Generator,
    velocities_a_per_fs: np.ndarray | None = None,
) -> None:
    """Set velocities from POSCAR, or Maxwell–Boltzmann at ``temperature_k`` (3N−3 d.o.f.)."""
    if velocities_a_per_fs is not None:
        atoms.set_velocities(np.asarray(velocities_a_per_fs) / units.fs)
        return
    if temperature_k <= 0:
        atoms.set_momenta(np.zeros((len(atoms), 3)))
        return
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_k, rng=rng)
    Stationary(atoms, preserve_temperature=False)
    current = md_temperature_k(atoms.get_kinetic_energy(), len(atoms))
    if current > 0:
        atoms.set_momenta(atoms.get_momenta() * np.sqrt(temperature_k / current))


def make_integrator(
    atoms: Atoms,
    settings: MDSettings,
    species: tuple[SpeciesBlock, ...],
    rng: np.random.Generator,
) -> MolecularDynamics:
    """The ASE integrator for the thermostat chosen by the INCAR."""
    dt = settings.timestep_fs * units.fs
    temperature = settings.start_temperature_k
    kind = settings.thermostat
    if kind == "nve":
        return VelocityVerlet(atoms, timestep=dt, logfile=None)
    if kind == "nose-hoover":
        tdamp = nose_tdamp_fs(settings.nose_period_fs) * units.fs
        return RampedNoseHoover(
            atoms, timestep=dt, temperature_K=temperature, tdamp=tdamp, tchain=1, logfile=None
        )
    if kind == "andersen":
        return Andersen(
            atoms,
            timestep=dt,
            temperature_K=temperature,
            andersen_prob=settings.andersen_prob,
            fixcm=False,
            rng=rng,
            logfile=None,
        )
    gammas = np.array(settings.langevin_gamma_per_ps)
    if kind == "langevin":
        per_atom = np.repeat(gammas, [block.count for block in species])[:, None]
        return Langevin(
            atoms,
            timestep=dt,
            temperature_K=temperature,
            friction=per_atom * PER_PS_TO_ASE,
            fixcm=False,
            rng=rng,
            logfile=None,
        )
    if kind == "langevin-npt":
        return LangevinBAOAB(
            atoms,
            timestep=dt,
            temperature_K=temperature,
            externalstress=-settings.pressure_kbar * KBAR_TO_EV_PER_A3,
            T_tau=1.0 / (gammas[0] * PER_PS_TO_ASE),
            P_tau=1.0 / (settings.langevin_gamma_lattice_per_ps * PER_PS_TO_ASE),
            rng=rng,
            logfile=None,
        )
    raise ValueError(f"unknown thermostat {kind!r}")  # settings.py only produces the above


def _retarget(dyn: MolecularDynamics, temperature_k: float) -> None:
    if isinstance(dyn, LangevinBAOAB | Andersen | RampedNoseHoover):
        dyn.set_temperature(temperature_k)
    elif isinstance(dyn, Langevin):
        dyn.set_temperature(temperature_K=temperature_k)


def molecular_dynamics(
    atoms: Atoms,
    settings: MDSettings,
    n_steps: int,
    species: tuple[SpeciesBlock, ...],
    velocities_a_per_fs: np.ndarray | None = None,
    on_step: Callable[[int, IonicStep], None] | None = None,
) -> RunResult:
    """Run ``n_steps`` MD steps (VASP NSW) and return one ionic step per MD step."""
    rng = np.random.default_rng(settings.seed)
    # VASP keeps the centre of mass at rest; stochastic thermostats then act on 3N−3 d.o.f.
    atoms.set_constraint([*atoms.constraints, FixCom()])
    initialise_velocities(atoms, settings.start_temperature_k, rng, velocities_a_per_fs)
    dyn = make_integrator(atoms, settings, species, rng)
    result = RunResult(converged=True)
    ramp = settings.start_temperature_k != settings.end_temperature_k
    for index in range(n_steps):
        if index > 0:
            if ramp:
                _retarget(dyn, settings.temperature_at(index, n_steps))
            dyn.run(1)
        step = record_step(atoms, with_velocities=True)
        result.steps.append(step)
        if on_step:
            on_step(index + 1, step)
    logger.info(
        "MD finished: %d steps of %g fs (%s)", n_steps, settings.timestep_fs, settings.thermostat
    )
    return result
