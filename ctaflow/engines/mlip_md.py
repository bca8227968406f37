"""Molecular dynamics with the embedded MLIP engines (one MD segment per job).

:class:`MLIPMDMaker` is atomate2's ``ForceFieldMDMaker`` with the changes a campaign needs:

1. **reproducible**: atomate2 0.1.5 seeds only the Maxwell-Boltzmann velocities
   (``mb_velocity_seed``); ASE's Langevin then draws its random forces from the global numpy
   generator, so two runs differ from the first step. Here the Langevin integrator gets its own
   ``numpy.random.Generator`` seeded from ``seed``.
2. **chunked trajectory**: frames go to the ``data`` store as :class:`TrajectoryChunk` documents
   of at most ``max_chunk_mb`` each, never one document over MongoDB's 16 MB limit.
3. **a summary with units** (:class:`ctaflow.analysis.md.MDResult`), and a final structure that
   keeps the input's site properties and carries the velocities to the next segment.
4. **a start at the target**: a structure without velocities gets them at twice the first
   target temperature (:mod:`ctaflow.engines.md_start`), and every result carries its
   ``target_check`` (:func:`ctaflow.analysis.md.check_segment_arrays`).
5. **temperature ramps under NPT**: atomate2's schedule callback sets ``dyn._temperature_K``,
   but ASE's Nosé–Hoover-chain integrators (MTKNPT) thermostat to ``_kT`` of their thermostat
   and barostat objects, so a cooling ramp was silently ignored (both runs of a test that cooled
   600 → 500 K and 600 → 600 K were identical). :class:`RampedMTKNPT` syncs them every step.
6. **Berendsen NPT at the cost of NVT**: :class:`~ctaflow.engines.berendsen.OneForceNPTBerendsen`
   (one force evaluation per step where ASE's NPTBerendsen makes two).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ase import units
from ase.md.nose_hoover_chain import MTKNPT
from atomate2.forcefields.md import ForceFieldMDMaker
from pymatgen.core import Structure

from ctaflow.analysis.active_learning import TrustCheck
from ctaflow.analysis.chunks import chunk_trajectory
from ctaflow.analysis.md import (
    MDResult,
    check_segment_arrays,
    final_structure,
    md_statistics,
    voigt_to_matrix,
)
from ctaflow.analysis.provenance import software_versions
from ctaflow.engines.berendsen import OneForceNPTBerendsen
from ctaflow.engines.committee import trajectory_trust
from ctaflow.engines.md_restart import CHECKPOINT_INTERVAL_S, restartable
from ctaflow.engines.md_start import with_start_velocities
from ctaflow.jobs import result_job
from ctaflow.settings import TrustWindow


class RampedMTKNPT(MTKNPT):
    """ASE's MTK NPT integrator that follows changes of ``_temperature_K`` (see module doc)."""

    def step(self):
        kt = units.kB * self._temperature_K
        if kt != self._kT:
            self._kT = kt
            self._thermostat._kT = kt
            self._barostat._kT = kt
        return super().step()


@dataclass
class MLIPMDMaker(ForceFieldMDMaker):
    """Force-field MD, seeded and chunked. Temperatures in K, pressure in kbar (atomate2),
    ``time_step`` in fs; ``sample_every`` = steps between stored frames."""

    name: str = "mlip md"
    segment: str = "md"
    seed: int = 0
    sample_every: int = 10
    max_chunk_mb: float = 8.0
    engine_description: dict = field(default_factory=dict)
    #: other committee members' model files and the trust window per composition (MACE):
    #: the stored frames are judged by the committee (see ctaflow.engines.committee)
    committee: list[str] = field(default_factory=list)
    trust_windows: dict = field(default_factory=dict)
    #: steps between checkpoints (0: none; None: every checkpoint_interval_s of wall time)
    checkpoint_every: int | None = None
    checkpoint_interval_s: float = CHECKPOINT_INTERVAL_S

    @result_job(MDResult)
    def make(self, structure: Structure, prev_dir: str | None = None) -> MDResult:
        """Run the segment from ``structure`` (velocities taken from its site properties)."""
        if self.n_steps % self.sample_every:
            raise ValueError(
                f"n_steps ({self.n_steps}) must be a multiple of sample_every ({self.sample_every})"
            )
        self.traj_interval = self.sample_every
        self.mb_velocity_seed = self.seed
        self.ase_md_kwargs = dict(self.ase_md_kwargs or {})
        if (self.dynamics or "langevin") == "langevin" and str(self.ensemble).endswith("nvt"):
            self.ase_md_kwargs["rng"] = np.random.default_rng([self.seed, 7919])
        if self.dynamics == "nose-hoover-chain" and str(self.ensemble).endswith("npt"):
            self.dynamics = RampedMTKNPT  # the class, set at run time: the job stays serialisable
        if self.dynamics == "berendsen" and str(self.ensemble).endswith("npt"):
            self.dynamics = OneForceNPTBerendsen  # half ASE's force evaluations (see the class)
        self.ionic_step_data = None
        structure = with_start_velocities(structure, first_target_k(self.temperature), self.seed)
        with restartable(self, structure):  # a rerun resumes from the last checkpoint
            result = self._run_ase_safe(structure, prev_dir=prev_dir)
        summary = summarise_md_run(self, structure, result.trajectory)
        if self.committee:
            summary.uncertainty = judge_with_committee(self, summary, result.trajectory)
        return summary


def first_target_k(temperature) -> float:
    """The first target temperature (K) of a constant or ramped ``temperature`` setting."""
    return float(np.atleast_1d(np.asarray(temperature, dtype=float))[0])


def trajectory_arrays(traj, time_step_fs: float, sample_every: int) -> dict[str, np.ndarray]:
    """Per-frame arrays with units from atomate2's pymatgen trajectory."""
    lattices = np.asarray(traj.lattice)
    if lattices.ndim == 2:
        lattices = np.repeat(lattices[None], len(traj.coords), axis=0)
    frac = np.asarray(traj.coords)
    props = traj.frame_properties
    arrays = {
        "positions_a": np.einsum("fij,fjk->fik", frac, lattices),
        "cells_a": lattices,
        "energies_ev": np.array([p["energy"] for p in props], dtype=float),
        "forces_ev_per_a": np.array([p["forces"] for p in props], dtype=float),
        "velocities_a_per_fs": np.array([p["velocities"] for p in props], dtype=float) * units.fs,
        "temperatures_k": np.array([p["temperature"] for p in props], dtype=float),
        "times_fs": np.arange(len(props)) * sample_every * time_step_fs,
    }
    if "stress" in props[0]:
        voigt = np.array([np.ravel(p["stress"]) for p in props], dtype=float)
        arrays["stresses_gpa"] = voigt_to_matrix(voigt) / units.GPa
    return arrays


def summarise_md_run(maker: MLIPMDMaker, initial: Structure, traj) -> MDResult:
    """Build the :class:`MDResult` of a finished run (pure apart from the maker's settings)."""
    arrays = trajectory_arrays(traj, maker.time_step, maker.sample_every)
    final = final_structure(arrays, initial)
    temps = np.atleast_1d(maker.t_schedule)
    pressure = None if str(maker.ensemble).endswith("nvt") else float(maker.pressure) / 10.0
    result = MDResult(
        segment=maker.segment,
        ensemble=str(maker.ensemble).split(".")[-1],
        thermostat=getattr(maker.dynamics, "__name__", str(maker.dynamics)),
        temperature_start_k=float(temps[0]),
        temperature_end_k=float(temps[-1]),
        pressure_gpa=pressure,
        timestep_fs=float(maker.time_step),
        n_steps=maker.n_steps,
        sample_every=maker.sample_every,
        n_frames=len(arrays["times_fs"]),
        duration_ps=maker.n_steps * maker.time_step / 1000.0,
        seed=maker.seed,
        **md_statistics(arrays, float(initial.composition.weight)),
        final_structure=final,
        trajectory=chunk_trajectory(arrays, maker.max_chunk_mb),
        engine=maker.engine_description,
        software=software_versions(),
    )

    result.target_check = check_segment_arrays(
        arrays["times_fs"],
        arrays["temperatures_k"],
        result.temperature_start_k,
        result.temperature_end_k,
        stresses_gpa=arrays.get("stresses_gpa"),
        target_pressure_gpa=pressure,
    )
    return result


def judge_with_committee(maker: MLIPMDMaker, summary: MDResult, traj) -> TrustCheck:
    """The committee force deviation of the run's stored frames (see
    :mod:`ctaflow.engines.committee`), judged by the trust window of its composition."""
    arrays = trajectory_arrays(traj, maker.time_step, maker.sample_every)
    formula = summary.final_structure.composition.reduced_formula
    window = TrustWindow.model_validate(
        maker.trust_windows.get(formula) or maker.trust_windows["default"]
    )
    kwargs = maker.calculator_kwargs or {}
    return trajectory_trust(
        arrays,
        [site.specie.symbol for site in summary.final_structure],
        maker.committee,
        window,
        device=kwargs.get("device", "cpu"),
        dtype=kwargs.get("dtype", "float64"),
    )
