"""The embedded MLIP engine: atomate2 force-field makers driven by a packaged universal MLIP."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from ase import units
from atomate2.forcefields.jobs import ForceFieldRelaxMaker, ForceFieldStaticMaker
from atomate2.forcefields.utils import ase_calculator

from ctaflow.analysis.provenance import software_versions
from ctaflow.engines.base import Engine
from ctaflow.engines.calculators import MACE_FACTORY, MLIP_FACTORIES, MLIP_SPECIES
from ctaflow.engines.cell_filter import AtomForceFrechetCellFilter
from ctaflow.engines.mlip_md import MLIPMDMaker
from ctaflow.engines.mlip_neb import MLIPNebMaker
from ctaflow.engines.params import MDControls, MDSegment, NEBParams, RelaxParams
from ctaflow.engines.specs import MaceEngineSpec, MLIPEngineSpec
from ctaflow.errors import EngineError
from ctaflow.settings import TrustWindow

if TYPE_CHECKING:
    from ase.calculators.calculator import Calculator
    from jobflow import Job, Maker, OutputReference


#: Python packages behind each universal MLIP family (provenance and availability)
MLIP_PACKAGES = {"CHGNet": ("chgnet",), "SevenNet": ("sevenn", "e3nn")}


class MLIPEngine(Engine):
    """Universal MLIP shipped with its package (CHGNet, SevenNet: weights inside the wheel)."""

    kind = "mlip"
    spec_class = MLIPEngineSpec

    def __init__(self, spec: MLIPEngineSpec) -> None:
        super().__init__(spec)
        suffix = "" if spec.dtype == "float32" else f"-{spec.dtype}"
        self.label = f"mlip:{spec.model}-{spec.model_version}{suffix}"

    def _force_field(self) -> dict[str, Any]:
        """atomate2 force-field arguments: calculator factory (import path) and its kwargs."""
        module, func = MLIP_FACTORIES[self.spec.model].rsplit(".", 1)
        return {
            "force_field_name": {"@module": module, "@callable": func},
            "calculator_kwargs": {
                "model_version": self.spec.model_version,
                "device": self.spec.device,
                "threads": self.spec.threads,
                "dtype": self.spec.dtype,
            },
        }

    def calculator(self) -> Calculator:
        """The ASE calculator the makers of this engine run (for checks outside a job)."""
        force_field = self._force_field()
        return ase_calculator(force_field["force_field_name"], **force_field["calculator_kwargs"])

    def relax_maker(self, settings: RelaxParams) -> Maker:
        return ForceFieldRelaxMaker(
            name=f"relax ({self.label})",
            relax_cell=settings.relax_cell,
            steps=settings.max_steps,
            # with the cell: converge on the atoms' own forces (see engines/cell_filter.py)
            relax_kwargs={
                "fmax": settings.fmax_ev_per_a,
                "cell_filter": AtomForceFrechetCellFilter,
            },
            optimizer_kwargs={"optimizer": settings.optimizer},
            # atomate2 keeps a step's structure only under "mol_or_struct"
            ionic_step_data=("energy", "forces", "stress", "mol_or_struct"),
            store_trajectory="partial",
            **self._force_field(),
        )

    def static_maker(self) -> Maker:
        return ForceFieldStaticMaker(name=f"static ({self.label})", **self._force_field())

    def normal_relax_maker(self, settings: RelaxParams) -> Maker:
        """Positions and the cell's zz strain only (ASE FrechetCellFilter mask, Voigt order
        xx, yy, zz, yz, xz, xy): in-plane lattice vectors (z = 0) stay exactly as they are."""
        maker = self.relax_maker(settings.model_copy(update={"relax_cell": True}))
        maker.name = f"relax along normal ({self.label})"
        maker.relax_kwargs = {
            **maker.relax_kwargs,
            "filter_kwargs": {"mask": [False, False, True, False, False, False]},
        }
        return maker

    def md_maker(self, segment: MDSegment, n_steps: int, seed: int, controls: MDControls) -> Maker:
        if controls.barostat not in ("mtk", "berendsen"):
            raise ValueError(f"unknown barostat {controls.barostat!r}: mtk or berendsen")
        npt = segment.ensemble == "npt"
        berendsen = npt and controls.barostat == "berendsen"
        if berendsen:
            ase_md_kwargs = controls.berendsen_npt_kwargs(segment.pressure_gpa)
        elif npt:
            ase_md_kwargs = {
                "tdamp": controls.thermostat_damping_fs * units.fs,
                "pdamp": controls.barostat_damping_fs * units.fs,
            }
        else:
            ase_md_kwargs = {"friction": controls.langevin_friction_per_ps * 1e-3 / units.fs}
        t0, t1 = segment.temperature_start_k, segment.temperature_end_k
        return MLIPMDMaker(
            name=f"md {segment.name} ({self.label})",
            segment=segment.name,
            ensemble=segment.ensemble,
            dynamics="berendsen" if berendsen else "nose-hoover-chain" if npt else "langevin",
            temperature=t0 if t0 == t1 else [t0, t1],
            pressure=segment.pressure_gpa * 10.0 if npt else None,  # atomate2 wants kbar
            n_steps=n_steps,
            time_step=controls.timestep_fs,
            seed=seed,
            sample_every=controls.sample_every,
            ase_md_kwargs=ase_md_kwargs,
            engine_description=self.describe(),
            **self._force_field(),
        )

    def neb_maker(self, settings: NEBParams) -> Maker:
        return MLIPNebMaker(
            name=f"neb ({self.label})",
            steps=settings.max_steps,
            optimizer=settings.optimizer,
            relax_kwargs={"fmax": settings.fmax_ev_per_a},
            neb_kwargs={
                "k": settings.spring_ev_per_a2,
                "climb": settings.climb,
                "method": "improvedtangent",
            },
            engine_description=self.describe(),
            **self._force_field(),
        )

    def neb_outputs(self, neb_job: Job) -> dict[str, OutputReference]:
        out = neb_job.output
        return {
            "structures": out.structures,
            "energies_ev": out.energies_ev,
            "forces_ev_per_a": out.forces_ev_per_a,
            "converged": out.converged,
            "elapsed_s": out.elapsed_s,
        }

    def relax_outputs(self, relax_job: Job) -> dict[str, OutputReference]:
        out = relax_job.output.output
        return {
            "structure": relax_job.output.structure,
            "energy_ev": out.energy,
            "forces_ev_per_a": out.forces,
            "initial_energy_ev": out.ionic_steps[0].energy,
            "n_steps": out.n_steps,
            "ionic_steps": out.ionic_steps,
        }

    def describe(self) -> dict[str, Any]:
        return {
            "engine": self.label,
            "kind": self.kind,
            "model": self.spec.model,
            "model_version": self.spec.model_version,
            "device": self.spec.device,
            "dtype": self.spec.dtype,
            "threads": self.spec.threads,
            "package_versions": software_versions(
                (*MLIP_PACKAGES[self.spec.model], "torch", "ase")
            ),
            "note": "universal MLIP standing in for DFT; not a DFT result",
        }

    def check_available(self, elements: list[str] | None = None) -> None:
        for package in MLIP_PACKAGES[self.spec.model]:
            try:
                version(package)
            except PackageNotFoundError:
                raise EngineError(
                    f"engine 'mlip' with model {self.spec.model} needs the {package} package: "
                    "run 'make install'"
                ) from None
        if elements:
            known = MLIP_SPECIES[self.spec.model](self.spec.model_version)
            missing = sorted(set(elements) - known)
            if missing:
                raise EngineError(
                    f"{self.spec.model} {self.spec.model_version} does not know the elements "
                    f"{missing}; choose another model or engine"
                )


class MaceEngine(MLIPEngine):
    """A MACE model from a file: trained by the campaign's mlff stage or given by path."""

    kind = "mace"
    spec_class = MaceEngineSpec

    def __init__(self, spec: MaceEngineSpec) -> None:
        Engine.__init__(self, spec)
        path = spec.model_path
        self.label = f"mace:{path.name if path else 'trained'}"

    @property
    def needs_trained_model(self) -> bool:
        return self.spec.model_path is None

    def _force_field(self) -> dict[str, Any]:
        if self.spec.model_path is None:
            raise EngineError(
                "this MACE engine uses the model trained by the campaign; it is only known "
                "after the mlff stage has run (ctaflow builds the jobs then)"
            )
        module, func = MACE_FACTORY.rsplit(".", 1)
        return {
            "force_field_name": {"@module": module, "@callable": func},
            "calculator_kwargs": {
                "model_path": str(self.spec.model_path),
                "device": self.spec.device,
                "dtype": self.spec.dtype,
                "threads": self.spec.threads,
            },
        }

    def with_model(
        self, path, committee=(), trust: dict | None = None, float32_ok: bool = False
    ) -> MaceEngine:
        """The same engine with a concrete model file (and its committee's other members, trust
        windows ``{"default": window, composition: window}``, and whether its precision check
        allows float32 MD: then ``md_dtype: auto`` becomes float32)."""
        update: dict[str, Any] = {"model_path": path, "committee": list(committee)}
        if self.spec.md_dtype == "auto":
            update["md_dtype"] = "float32" if float32_ok else self.spec.dtype
        if trust:
            update["trust_window"] = TrustWindow.model_validate(trust["default"])
            update["trust_by_composition"] = {
                k: TrustWindow.model_validate(v) for k, v in trust.items() if k != "default"
            }
        return MaceEngine(self.spec.model_copy(update=update))

    def md_maker(self, segment: MDSegment, n_steps: int, seed: int, controls: MDControls) -> Maker:
        """The MLIP engine's MD segment, judged by the committee when there is one."""
        maker = super().md_maker(segment, n_steps, seed, controls)
        md_dtype = self.spec.dtype if self.spec.md_dtype == "auto" else self.spec.md_dtype
        maker.calculator_kwargs = {**maker.calculator_kwargs, "dtype": md_dtype}
        maker.engine_description = {**maker.engine_description, "md_dtype": md_dtype}
        if self.spec.committee:
            maker.committee = [str(path) for path in self.spec.committee]
            maker.trust_windows = {
                "default": self.spec.trust_window.model_dump(),
                **{k: w.model_dump() for k, w in self.spec.trust_by_composition.items()},
            }
        return maker

    def describe(self) -> dict[str, Any]:
        return {
            "engine": self.label,
            "kind": "mace",
            "model_path": str(self.spec.model_path) if self.spec.model_path else "trained",
            "committee_size": 1 + len(self.spec.committee),
            "device": self.spec.device,
            "dtype": self.spec.dtype,
            "threads": self.spec.threads,
            "package_versions": software_versions(("mace-torch", "torch", "e3nn", "ase")),
            "note": "machine-learned force field; accuracy limited to its training data",
        }

    def check_available(self, elements: list[str] | None = None) -> None:
        path = self.spec.model_path
        if path is None:
            return
        if not path.is_file():
            raise EngineError(f"MACE model '{path}' not found; give the path of a .model file")
        check_model_loads(path)


def check_model_loads(path) -> None:
    """Load a MACE model in a child process (mace changes torch loading process-wide)."""
    code = (
        "import sys; from mace.calculators import MACECalculator; "
        "MACECalculator(model_paths=sys.argv[1], device='cpu', default_dtype='float64')"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=300
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
        raise EngineError(
            f"MACE model '{path}' cannot be loaded ({last}); it is corrupt or not a MACE "
            "model: retrain it or point model_path to a valid .model file"
        )
