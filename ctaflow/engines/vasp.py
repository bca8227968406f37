"""VASP engines: atomate2 VASP makers run through custodian, with the study's settings.

``VaspEngine`` runs a real VASP binary (clusters). ``VaspStandinEngine`` runs the very same makers,
custodian and parsers but with ctaflow's VASP stand-in as the executable, an MLIP computing the
energies (tests and demos without VASP; its outputs say which MLIP made them).
"""

from __future__ import annotations

import shlex
import sys
from typing import TYPE_CHECKING, Any

from atomate2.vasp.jobs.core import RelaxMaker, StaticMaker
from atomate2.vasp.jobs.md import MDMaker

from ctaflow.analysis.provenance import software_versions
from ctaflow.engines.base import Engine
from ctaflow.engines.params import MDControls, MDSegment, NEBParams, RelaxParams
from ctaflow.engines.specs import VaspEngineSpec, VaspStandinEngineSpec
from ctaflow.engines.vasp_inputs import (
    StudyMDSetGenerator,
    StudyNebSetGenerator,
    StudyRelaxSetGenerator,
    StudyStaticSetGenerator,
    potcar_error,
    study_config,
)
from ctaflow.engines.vasp_md import VaspMDSegmentMaker
from ctaflow.engines.vasp_neb import StudyNebFromImagesMaker, VaspNEBMaker
from ctaflow.errors import EngineError

if TYPE_CHECKING:
    from jobflow import Job, Maker, OutputReference


class VaspEngine(Engine):
    """Production VASP (PBE PAW) with the study preset; see :mod:`ctaflow.engines.vasp_inputs`."""

    spec_class = VaspEngineSpec
    #: every check costs rattles × cycles more DFT relaxations: asked for, not by default
    checks_minimum_by_default = False

    def __init__(self, spec: VaspEngineSpec) -> None:
        super().__init__(spec)
        self.config = study_config(spec)
        self.label = f"vasp:{spec.potcar_functional}"

    # ------------------------------------------------------------------ inputs and running
    def _generator_kwargs(self) -> dict[str, Any]:
        k = self.spec.kpoints
        return {
            "config_dict": self.config,
            "user_incar_settings": dict(self.spec.incar),
            "kpoint_spacing_per_a": k.spacing_per_a,
            "kpoint_convention": k.convention,
            "kpoint_style": k.style,
            # keep the atom order: NEB end points, site classes and substitution series refer
            # to atoms by index (atomate2 sorts by electronegativity by default)
            "sort_structure": False,
        }

    def vasp_cmd(self, seed: int | None = None) -> str:
        """Command custodian runs."""
        return self.spec.vasp_cmd

    def run_vasp_kwargs(self, seed: int | None = None) -> dict[str, Any]:
        return {
            "vasp_cmd": self.vasp_cmd(seed),
            "max_errors": self.spec.max_errors,
            "custodian_kwargs": {"polling_time_step": self.spec.polling_time_s},
        }

    def write_input_set_kwargs(self) -> dict[str, Any]:
        return {}

    def neb_vasp_job_kwargs(self) -> dict[str, Any]:
        """Extra keyword arguments of custodian's ``VaspNEBJob``."""
        return {}

    def _maker_kwargs(self) -> dict[str, Any]:
        return {
            "run_vasp_kwargs": self.run_vasp_kwargs(),
            "write_input_set_kwargs": self.write_input_set_kwargs(),
        }

    # ------------------------------------------------------------------ stage makers
    def relax_maker(self, settings: RelaxParams) -> Maker:
        generator = StudyRelaxSetGenerator(
            **self._generator_kwargs(),
            ionic_criterion=self.spec.ionic_criterion,
            ediffg_per_atom_ev=self.spec.ediffg_per_atom_ev,
            fmax_ev_per_a=settings.fmax_ev_per_a,
            nsw=settings.max_steps,
            relax_cell=settings.relax_cell,
        )
        return RelaxMaker(
            name=f"relax ({self.label})", input_set_generator=generator, **self._maker_kwargs()
        )

    def static_maker(self) -> Maker:
        return StaticMaker(
            name=f"static ({self.label})",
            input_set_generator=StudyStaticSetGenerator(**self._generator_kwargs()),
            **self._maker_kwargs(),
        )

    def md_maker(self, segment: MDSegment, n_steps: int, seed: int, controls: MDControls) -> Maker:
        """AIMD segment through atomate2's MDMaker (NVT: Nosé–Hoover, MDALGO 2; NPT: Langevin,
        MDALGO 3 with PSTRESS; ``controls.barostat`` is for the MLIP engines: VASP has no
        Berendsen barostat), followed by a job that turns the task document into an
        :class:`~ctaflow.analysis.md.MDResult` with a chunked trajectory."""
        kwargs = self._generator_kwargs()
        incar = {**kwargs.pop("user_incar_settings"), "RANDOM_SEED": [seed, 0, 0]}
        if segment.ensemble == "npt":
            incar["PSTRESS"] = segment.pressure_gpa * 10.0  # kbar
            incar["LANGEVIN_GAMMA_L"] = controls.langevin_friction_per_ps
        generator = StudyMDSetGenerator(
            **kwargs,
            user_incar_settings=incar,
            ensemble=segment.ensemble,
            start_temp=segment.temperature_start_k,
            end_temp=segment.temperature_end_k,
            nsteps=n_steps,
            time_step=controls.timestep_fs,
        )
        md = MDMaker(
            name=f"md {segment.name} ({self.label})",
            input_set_generator=generator,
            write_input_set_kwargs=self.write_input_set_kwargs(),
        )
        md.run_vasp_kwargs.update(self.run_vasp_kwargs(seed=seed))  # keep atomate2's MD handlers
        return VaspMDSegmentMaker(
            vasp_maker=md,
            segment=segment.name,
            ensemble=segment.ensemble,
            sample_every=controls.sample_every,
            seed=seed,
            pressure_gpa=segment.pressure_gpa if segment.ensemble == "npt" else None,
            engine_description=self.describe(),
        )

    def neb_maker(self, settings: NEBParams) -> Maker:
        """atomate2's ``NebFromImagesMaker`` with the study preset plus the NEB tags (see
        :class:`~ctaflow.engines.vasp_inputs.StudyNebSetGenerator`): ``SPRING = -spring``,
        ``EDIFFG = -fmax``, ``NSW = max_steps``, ``LCLIMB = climb``, VTST's ``IOPT`` for the
        optimiser; custodian's ``VaspNEBJob`` with the engine's command and limits. An
        unconverged band finishes the job (``converged`` false) instead of failing it."""
        generator = StudyNebSetGenerator(
            **self._generator_kwargs(),
            climbing_image=settings.climb,
            fmax_ev_per_a=settings.fmax_ev_per_a,
            spring_ev_per_a2=settings.spring_ev_per_a2,
            nsw=settings.max_steps,
            optimizer=settings.optimizer,
        )
        neb = StudyNebFromImagesMaker(
            name=f"neb ({self.label})",
            input_set_generator=generator,
            write_input_set_kwargs=self.write_input_set_kwargs(),
            stop_children_kwargs={"handle_unsuccessful": False},
        )
        vasp_job_kwargs = {**neb.run_vasp_kwargs["vasp_job_kwargs"], **self.neb_vasp_job_kwargs()}
        neb.run_vasp_kwargs.update(self.run_vasp_kwargs())  # keeps job_type NEB
        neb.run_vasp_kwargs["vasp_job_kwargs"] = vasp_job_kwargs
        return VaspNEBMaker(neb_maker=neb, name=f"neb ({self.label})")

    def neb_outputs(self, neb_job: Job) -> dict[str, OutputReference]:
        """``neb_job`` is the Flow of :meth:`neb_maker`'s ``make``; its output holds the
        references (:class:`~ctaflow.engines.vasp_neb.VaspNEBMaker`)."""
        out = neb_job.output
        return {
            key: out[key] for key in ("structures", "energies_ev", "forces_ev_per_a", "converged")
        }

    def relax_outputs(self, relax_job: Job) -> dict[str, OutputReference]:
        out = relax_job.output.output
        return {
            "structure": out.structure,
            "energy_ev": out.energy,
            "forces_ev_per_a": out.forces,
            "initial_energy_ev": relax_job.output.calcs_reversed[0]
            .output.ionic_steps[0]
            .e_0_energy,
            "ionic_steps": relax_job.output.calcs_reversed[0].output.ionic_steps,
        }

    # ------------------------------------------------------------------ provenance, checks
    def describe(self) -> dict[str, Any]:
        incar = {k: v for k, v in self.config["INCAR"].items() if k != "MAGMOM"}
        return {
            "engine": self.label,
            "kind": self.spec.kind,
            "xc": "PBE",
            "potcar_functional": self.spec.potcar_functional,
            "potcar_overrides": dict(self.spec.potcar),
            "preset_incar": {**incar, **self.spec.incar},
            "kpoints": self.spec.kpoints.model_dump(),
            "ionic_criterion": self.spec.ionic_criterion,
            "vasp_cmd": self.vasp_cmd(),
            "package_versions": software_versions(("atomate2", "pymatgen", "custodian")),
        }

    def check_available(self, elements: list[str] | None = None) -> None:
        message = potcar_error(sorted(elements or []), self.config) if elements else None
        if message is not None:
            raise EngineError(message)


class VaspStandinEngine(VaspEngine):
    """The VASP path with ctaflow's stand-in executable: no VASP, no POTCARs, MLIP energies."""

    spec_class = VaspStandinEngineSpec

    def __init__(self, spec: VaspStandinEngineSpec) -> None:
        super().__init__(spec)
        self.label = f"vasp-standin:{spec.model}"

    def vasp_cmd(self, seed: int | None = None) -> str:
        if self.spec.vasp_cmd:
            return self.spec.vasp_cmd
        python = shlex.quote(sys.executable)
        env = f"CTAFLOW_STANDIN_MODEL={self.spec.model}"
        if seed is not None:
            env += f" CTAFLOW_STANDIN_SEED={seed}"
        return f"env {env} {python} -m ctaflow.engines.vasp_standin"

    def write_input_set_kwargs(self) -> dict[str, Any]:
        return {"potcar_spec": True}  # symbols only: no potentials needed or written

    def neb_vasp_job_kwargs(self) -> dict[str, Any]:
        # VaspNEBJob.setup copies POTCAR to POTCAR.orig without checking that it exists (VaspJob
        # checks); with POTCAR.spec only it would stop with FileNotFoundError. Without the backup
        # the task document's orig_inputs stay empty; its inputs come from the head directory.
        return {"backup": False}

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "model": self.spec.model,
            "note": "VASP stand-in: atomate2 VASP inputs, custodian and parsers, energies from "
            f"the MLIP {self.spec.model}; not a DFT result",
        }

    def check_available(self, elements: list[str] | None = None) -> None:
        return None  # needs neither VASP nor POTCARs
