"""Molecular dynamics with the embedded MLIP engine, and the MD protocol of the study.

:class:`MLIPMDMaker` is atomate2's ``ForceFieldMDMaker`` with three changes a campaign needs:

1. **reproducible**: atomate2 0.1.5 seeds only the Maxwell-Boltzmann velocities
   (``mb_velocity_seed``); ASE's Langevin then draws its random forces from the global numpy
   generator, so two runs differ from the first step. Here the Langevin integrator gets its own
   ``numpy.random.Generator`` seeded from ``seed``.
2. **chunked trajectory**: frames go to the ``data`` store as :class:`TrajectoryChunk` documents
   of at most ``max_chunk_mb`` each, never one document over MongoDB's 16 MB limit.
3. **a summary with units** (:class:`ctaflow.analysis.md.MDResult`), and a final structure that
   keeps the input's site properties and carries the velocities to the next segment.
4. **temperature ramps under NPT**: atomate2's schedule callback sets ``dyn._temperature_K``,
   but ASE's Nosé–Hoover-chain integrators (MTKNPT) thermostat to ``_kT`` of their thermostat
   and barostat objects, so a cooling ramp was silently ignored (both runs of a test that cooled
   600 → 500 K and 600 → 600 K were identical). :class:`RampedMTKNPT` syncs them every step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import units
from ase.md.nose_hoover_chain import MTKNPT
from atomate2.forcefields.md import ForceFieldMDMaker
from jobflow import Flow, Maker, job
from pymatgen.core import Structure

from ctaflow.analysis.chunks import CHUNK_DATA_KEY, chunk_trajectory
from ctaflow.analysis.md import MDResult, md_statistics, voigt_to_matrix
from ctaflow.analysis.provenance import software_versions


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

    @job(data=[CHUNK_DATA_KEY])
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
        self.ionic_step_data = None
        result = self._run_ase_safe(structure, prev_dir=prev_dir)
        return summarise_md_run(self, structure, result.trajectory)


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


def _final_structure(arrays: dict[str, np.ndarray], initial: Structure) -> Structure:
    """Last frame with the initial structure's site properties and (if known) velocities."""
    final = Structure(
        arrays["cells_a"][-1],
        initial.species,
        arrays["positions_a"][-1],
        coords_are_cartesian=True,
        site_properties=dict(initial.site_properties),
        properties=dict(initial.properties or {}),
    )
    if "velocities_a_per_fs" in arrays:
        final.add_site_property(
            "velocities", (arrays["velocities_a_per_fs"][-1] / units.fs).tolist()
        )
    return final


def summarise_md_run(maker: MLIPMDMaker, initial: Structure, traj) -> MDResult:
    """Build the :class:`MDResult` of a finished run (pure apart from the maker's settings)."""
    arrays = trajectory_arrays(traj, maker.time_step, maker.sample_every)
    final = _final_structure(arrays, initial)
    temps = np.atleast_1d(maker.t_schedule)
    pressure = None if str(maker.ensemble).endswith("nvt") else float(maker.pressure) / 10.0
    return MDResult(
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
    if all(p.get("temperature") is not None for p in props):
        temperatures = np.array([p["temperature"] for p in props], dtype=float)
    else:  # finite-difference velocities, VASP's 3N − 3 degrees of freedom
        vel = np.gradient(positions, time_step_fs, axis=0)
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
        "times_fs": np.arange(len(props)) * time_step_fs,
    }
    return {name: a[::sample_every] for name, a in arrays.items()}


@job(data=[CHUNK_DATA_KEY])
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
    from pymatgen.core.trajectory import Trajectory

    doc = task_doc if isinstance(task_doc, dict) else task_doc.model_dump()
    traj = doc["vasp_objects"]["trajectory"]
    traj = traj if isinstance(traj, Trajectory) else Trajectory.from_dict(traj)
    incar = doc["calcs_reversed"][0]["input"]["incar"]
    dt = float(incar["POTIM"])
    arrays = vasp_trajectory_arrays(traj, dt, sample_every)
    n_steps = int(incar["NSW"])
    return MDResult(
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
        final_structure=_final_structure(arrays, initial),
        trajectory=chunk_trajectory(arrays, max_chunk_mb),
        engine=engine,
        software=software_versions(),
    )


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
        md = self.vasp_maker.make(structure)
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
        return Flow([md, result], output=result.output, name=self.name)


@dataclass
class MDSegment:
    """One segment of a protocol: ensemble, temperatures (K), pressure (GPa), length (ps)."""

    name: str
    ensemble: str
    temperature_start_k: float
    temperature_end_k: float
    duration_ps: float
    pressure_gpa: float = 0.0


@dataclass
class MDControls:
    """Integration settings shared by the segments of a protocol."""

    timestep_fs: float = 1.0
    sample_every: int = 10
    langevin_friction_per_ps: float = 10.0
    thermostat_damping_fs: float = 100.0
    barostat_damping_fs: float = 1000.0


@dataclass
class MDProtocolMaker(Maker):
    """Chain MD segments; each starts from the previous one's final structure and velocities.

    ``engine`` is any engine with ``md_maker(segment, n_steps, seed, controls)``, so the same
    protocol runs on every engine.
    """

    engine: Any = None
    name: str = "md protocol"
    segments: list[MDSegment] = field(default_factory=list)
    controls: MDControls = field(default_factory=MDControls)
    seed: int = 0

    def make(self, structure: Structure) -> Flow:
        jobs = []
        current = structure
        for i, segment in enumerate(self.segments):
            n_steps = steps_for(
                segment.duration_ps, self.controls.timestep_fs, self.controls.sample_every
            )
            maker = self.engine.md_maker(segment, n_steps, self.seed + i, self.controls)
            md_job = maker.make(current)
            md_job.name = f"md {segment.name}"
            jobs.append(md_job)
            current = md_job.output.final_structure
        return Flow(jobs, output=[j.output for j in jobs], name=self.name)


@job
def supercell_job(structure: Structure, min_width_a: float) -> Structure:
    """The MD supercell (see :func:`ctaflow.structures.supercell.make_supercell`)."""
    from ctaflow.structures.supercell import make_supercell

    return make_supercell(structure, min_width_a)


@dataclass
class MDStageMaker(Maker):
    """The study's production protocol on any engine.

    supercell → NPT equilibration at ``equilibrate_temperature_k`` → for each production
    temperature T: NPT cooling to T, then NVT at T. The flow's output lists the production
    :class:`MDResult` documents in the order of ``settings.temperatures_k``.
    """

    engine: Any = None
    settings: Any = None  # ctaflow.campaign.schema.MDStageSettings
    name: str = "md"

    def controls(self) -> MDControls:
        st = self.settings
        return MDControls(
            timestep_fs=st.timestep_fs,
            sample_every=st.sample_every,
            langevin_friction_per_ps=st.langevin_friction_per_ps,
            thermostat_damping_fs=st.thermostat_damping_fs,
            barostat_damping_fs=st.barostat_damping_fs,
        )

    def equilibration(self) -> MDSegment:
        st = self.settings
        hot = st.equilibrate_temperature_k
        return MDSegment("equilibrate", "npt", hot, hot, st.equilibrate_ps, st.pressure_gpa)

    def branch(self, temperature: float) -> list[MDSegment]:
        """Cooling and production segments for one production temperature (K)."""
        st = self.settings
        return [
            MDSegment(
                f"cool to {temperature:g} K",
                "npt",
                st.equilibrate_temperature_k,
                temperature,
                st.cool_ps,
                st.pressure_gpa,
            ),
            MDSegment(
                f"production {temperature:g} K", "nvt", temperature, temperature, st.production_ps
            ),
        ]

    def make(self, structure: Structure) -> Flow:
        st = self.settings
        cell = supercell_job(structure, st.supercell_min_width_a)
        cell.name = "md supercell"
        equilibrate = MDProtocolMaker(
            engine=self.engine,
            segments=[self.equilibration()],
            controls=self.controls(),
            seed=st.seed,
        ).make(cell.output)
        jobs: list = [cell, equilibrate]
        productions = []
        for i, temperature in enumerate(st.temperatures_k):
            branch = MDProtocolMaker(
                engine=self.engine,
                name=f"md {temperature:g} K",
                segments=self.branch(temperature),
                controls=self.controls(),
                seed=st.seed + 1 + 2 * i,
            ).make(equilibrate.output[-1].final_structure)
            jobs.append(branch)
            productions.append(branch.output[-1])
        return Flow(jobs, output=productions, name=self.name)


def steps_for(duration_ps: float, timestep_fs: float, sample_every: int) -> int:
    """Number of steps for a duration, rounded up to a multiple of ``sample_every``."""
    raw = max(1, round(duration_ps * 1000.0 / timestep_fs))
    return int(-(-raw // sample_every) * sample_every)
