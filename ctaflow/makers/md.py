"""The MD protocol of the study on any engine: segments chained by their final structures and
velocities (:class:`MDProtocolMaker`), and the production protocol (:class:`MDStageMaker`).

The segments themselves are the engine's (:meth:`ctaflow.engines.base.Engine.md_maker`): atomate2's
force-field MD for the MLIP engines (:mod:`ctaflow.engines.mlip_md`), its VASP MD maker for the
VASP engines (:mod:`ctaflow.engines.vasp_md`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from jobflow import Flow, Maker
from pymatgen.core import Structure

from ctaflow.campaign.stages import MDStageSettings
from ctaflow.engines import default_engine
from ctaflow.engines.base import Engine
from ctaflow.engines.params import MDControls, MDSegment, steps_for
from ctaflow.makers.common import supercell_job


@dataclass
class MDProtocolMaker(Maker):
    """Chain MD segments; each starts from the previous one's final structure and velocities.

    ``engine`` is any engine with ``md_maker(segment, n_steps, seed, controls)``, so the same
    protocol runs on every engine.
    """

    engine: Engine = field(default_factory=default_engine)
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


@dataclass
class MDStageMaker(Maker):
    """The study's production protocol on any engine.

    supercell → NPT equilibration at ``equilibrate_temperature_k`` → for each production
    temperature T: NPT cooling to T, then NVT at T. The flow's output lists the production
    :class:`MDResult` documents in the order of ``settings.temperatures_k``.
    """

    engine: Engine = field(default_factory=default_engine)
    settings: MDStageSettings = field(default_factory=MDStageSettings)
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
