"""Molecular dynamics through atomate2's VASP MD maker: one segment per job, its task document
turned into the same :class:`~ctaflow.analysis.md.MDResult` as the MLIP engines produce.

As with the MLIP engines, a structure at rest starts at twice the target temperature
(:mod:`ctaflow.engines.md_start`, velocities written to the POSCAR in Å/fs), the final structure
carries the last frame's velocities (finite differences of the positions) to the next segment,
and every result has its ``target_check``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import units
from jobflow import Flow, Maker
from pymatgen.core import Structure
from pymatgen.core.trajectory import Trajectory

from ctaflow.analysis.chunks import chunk_trajectory
from ctaflow.analysis.md import MDResult, check_segment_arrays, final_structure, md_statistics
from ctaflow.analysis.provenance import software_versions
from ctaflow.engines.md_start import vasp_start_job
from ctaflow.jobs import result_job


def vasp_trajectory_arrays(traj, time_step_fs: float, sample_every: int) -> dict[str, np.ndarray]:
    """Per-frame arrays (every ``sample_every``-th ionic step) of a VASP MD task's trajectory.

    Temperatures are the parsed per-step temperatures where the task document has them, else
    they come from finite-difference velocities.
    """
    lattices = np.asarray(traj.lattice)
    frac = np.asarray(traj.coords)
    if lattices.ndim == 2:
        lattices = np.repeat(lattices[None], len(frac), axis=0)
    # undo wrapping: VASP writes positions inside the cell
    dfrac = np.diff(frac, axis=0)
    frac = frac[0] + np.concatenate(
        [np.zeros_like(frac[:1]), np.cumsum(dfrac - np.round(dfrac), 0)]
    )
    positions = np.einsum("fij,fjk->fik", frac, lattices)
    props = traj.frame_properties
    n_atoms = positions.shape[1]
    vel = np.gradient(positions, time_step_fs, axis=0)  # Å/fs; one-sided at the last frame
    if all(p.get("temperature") is not None for p in props):
        temperatures = np.array([p["temperature"] for p in props], dtype=float)
    else:  # finite-difference velocities, VASP's 3N − 3 degrees of freedom
        masses = np.array([site.specie.atomic_mass for site in traj[0]], dtype=float)
        kinetic = 0.5 * np.einsum("a,fai->f", masses, vel**2) / units.fs**2  # amu Å²/fs² → eV
        temperatures = 2 * kinetic / ((3 * n_atoms - 3) * units.kB)
    arrays = {
        "positions_a": positions,
        "cells_a": lattices,
        "energies_ev": np.array([p.get("e_0_energy", p.get("energy")) for p in props], dtype=float),
        "forces_ev_per_a": np.array([p["forces"] for p in props], dtype=float),
        "stresses_gpa": -np.array([p["stress"] for p in props], dtype=float)
        / 10.0,  # kbar, VASP sign
        "temperatures_k": temperatures,
        "velocities_a_per_fs": vel,
        "times_fs": np.arange(len(props)) * time_step_fs,
    }
    return {name: a[::sample_every] for name, a in arrays.items()}


@result_job(MDResult)
def vasp_md_result(
    task_doc: Any,
    initial: Structure,
    segment: str,
    ensemble: str,
    sample_every: int,
    seed: int,
    pressure_gpa: float | None,
    engine: dict,
    max_chunk_mb: float = 8.0,
) -> MDResult:
    """Turn an atomate2 VASP MD task document into an :class:`MDResult` (chunked trajectory)."""
    doc = task_doc if isinstance(task_doc, dict) else task_doc.model_dump()
    traj = doc["vasp_objects"]["trajectory"]
    traj = traj if isinstance(traj, Trajectory) else Trajectory.from_dict(traj)
    incar = doc["calcs_reversed"][0]["input"]["incar"]
    dt = float(incar["POTIM"])
    arrays = vasp_trajectory_arrays(traj, dt, sample_every)
    n_steps = int(incar["NSW"])
    result = MDResult(
        segment=segment,
        ensemble=ensemble,
        thermostat=f"VASP MDALGO={incar.get('MDALGO')}",
        temperature_start_k=float(incar["TEBEG"]),
        temperature_end_k=float(incar.get("TEEND", incar["TEBEG"])),
        pressure_gpa=pressure_gpa,
        timestep_fs=dt,
        n_steps=n_steps,
        sample_every=sample_every,
        n_frames=len(arrays["times_fs"]),
        duration_ps=n_steps * dt / 1000.0,
        seed=seed,
        **md_statistics(arrays, float(initial.composition.weight)),
        final_structure=final_structure(arrays, initial),
        trajectory=chunk_trajectory(arrays, max_chunk_mb),
        engine=engine,
        software=software_versions(),
    )
    result.target_check = check_segment_arrays(
        arrays["times_fs"],
        arrays["temperatures_k"],
        result.temperature_start_k,
        result.temperature_end_k,
        stresses_gpa=arrays["stresses_gpa"],
        target_pressure_gpa=pressure_gpa,
    )
    return result


@dataclass
class VaspMDSegmentMaker(Maker):
    """An atomate2 VASP MD job followed by :func:`vasp_md_result` (same output as MLIPMDMaker)."""

    vasp_maker: Any = None
    name: str = "vasp md"
    segment: str = "md"
    ensemble: str = "nvt"
    sample_every: int = 10
    seed: int = 0
    pressure_gpa: float | None = None
    engine_description: dict = field(default_factory=dict)

    def make(self, structure: Structure) -> Flow:
        start_k = self.vasp_maker.input_set_generator.start_temp
        start = vasp_start_job(structure, start_k, self.seed)
        start.name = f"md start {self.segment}"
        md = self.vasp_maker.make(start.output)
        result = vasp_md_result(
            md.output,
            structure,
            self.segment,
            self.ensemble,
            self.sample_every,
            self.seed,
            self.pressure_gpa,
            self.engine_description,
        )
        result.name = f"md result {self.segment}"
        return Flow([start, md, result], output=result.output, name=self.name)
