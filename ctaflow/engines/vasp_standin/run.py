"""One stand-in run: read inputs, choose the MLIP, drive ASE, write VASP's output files.

Everything that can be refused (missing files, unknown model, unsupported tags) is checked
before torch and the model are loaded, so refusals are fast and leave no output files.

An NEB (``IMAGES = N > 0``) runs in the head directory, as custodian's ``VaspNEBJob`` starts VASP:
the moving images' output files go into ``01/`` … ``N/`` (one :class:`RunContext` each), the
end-point directories and the head directory get none, as with VASP; progress lines (one per
band evaluation, with the end points' energies first) go to stdout.
"""

from __future__ import annotations

import logging
import platform
import resource
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ctaflow import __version__
from ctaflow.engines.vasp_standin.dynamics import relax, single_point, to_atoms
from ctaflow.engines.vasp_standin.identity import PROGRAM
from ctaflow.engines.vasp_standin.inputs import read_band, read_incar, read_inputs
from ctaflow.engines.vasp_standin.md import molecular_dynamics
from ctaflow.engines.vasp_standin.models import model_from_env
from ctaflow.engines.vasp_standin.neb import nudged_elastic_band
from ctaflow.engines.vasp_standin.settings import Mode, run_settings
from ctaflow.engines.vasp_standin.textfiles import (
    oszicar_line,
    write_contcar,
    write_oszicar,
    write_outcar,
    write_xdatcar,
)
from ctaflow.engines.vasp_standin.vasprun import N_BANDS, write_vasprun

if TYPE_CHECKING:
    from ase.calculators.calculator import Calculator

    from ctaflow.engines.vasp_standin.inputs import VaspInputs
    from ctaflow.engines.vasp_standin.models import ModelSpec
    from ctaflow.engines.vasp_standin.results import IonicStep, RunResult
    from ctaflow.engines.vasp_standin.settings import RunSettings

logger = logging.getLogger(__name__)

#: INCAR tags echoed into vasprun ``parameters`` when present (level of theory requested)
ECHOED_PARAMETERS = ("LDAUTYPE", "LDAUL", "LDAUU", "LDAUJ", "MDALGO", "ENCUT", "PREC", "ALGO")


@dataclass
class RunContext:
    """Inputs, settings, results and accounting of one run (what the writers need)."""

    inputs: VaspInputs
    model: ModelSpec
    settings: RunSettings
    result: RunResult
    program_version: str
    started: datetime
    elapsed_seconds: float = 0.0
    user_seconds: float = 0.0
    system_seconds: float = 0.0
    max_memory_kb: float = 0.0
    platform: str = field(default_factory=lambda: f"{platform.system()} {platform.machine()}")

    @property
    def cpu_seconds(self) -> float:
        """User plus system CPU time of this process (s)."""
        return self.user_seconds + self.system_seconds

    def parameters(self) -> dict[str, Any]:
        """vasprun ``parameters``: what the stand-in actually did, in VASP's vocabulary."""
        incar, s = self.inputs.incar, self.settings
        params: dict[str, Any] = {
            "NELM": s.nelm,
            "EDIFF": s.ediff,
            "EDIFFG": s.ediffg,
            "IBRION": s.ibrion,
            "NSW": s.nsw,
            "ISIF": s.isif,
            "POTIM": float(incar.get("POTIM", 0.5)),
            "TEBEG": float(incar.get("TEBEG", 0.0)),
            "TEEND": float(incar.get("TEEND", incar.get("TEBEG", 0.0))),
            "SMASS": float(incar.get("SMASS", -3.0)),
            "PSTRESS": float(incar.get("PSTRESS", 0.0)),
            "ISPIN": 1,
            "NBANDS": N_BANDS,
            "LORBIT": 0,
            "ISMEAR": int(incar.get("ISMEAR", 1)),
            "SIGMA": float(incar.get("SIGMA", 0.2)),
            "GGA": str(incar.get("GGA", "--")),
            "LHFCALC": False,
            "AEXX": 0.0,
            "HFSCREEN": 0.0,
            "LUSE_VDW": False,
            "LDAU": bool(incar.get("LDAU", False)),
        }
        if s.neb is not None:
            params["IMAGES"] = s.neb.n_images
            params["SPRING"] = -s.neb.spring_ev_per_a2
        for key in ECHOED_PARAMETERS:
            if key in incar:
                params[key] = incar[key]
        if self.inputs.neutral_nelect is not None:
            params["NELECT"] = float(self.inputs.neutral_nelect)
        return params


@dataclass
class Accounting:
    """Start date, wall clock and CPU time of a run, counted from its creation."""

    t0: float = field(default_factory=time.perf_counter)
    usage0: Any = field(default_factory=lambda: resource.getrusage(resource.RUSAGE_SELF))
    started: datetime = field(default_factory=datetime.now)

    @property
    def elapsed_seconds(self) -> float:
        return time.perf_counter() - self.t0

    def context(self, **kwargs: Any) -> RunContext:
        """A :class:`RunContext` of ``kwargs`` with the accounting up to now."""
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return RunContext(
            started=self.started,
            elapsed_seconds=self.elapsed_seconds,
            user_seconds=usage.ru_utime - self.usage0.ru_utime,
            system_seconds=usage.ru_stime - self.usage0.ru_stime,
            max_memory_kb=float(usage.ru_maxrss),
            **kwargs,
        )


class ProgressWriter:
    """VASP-like progress lines on a stream (custodian sends stdout to ``vasp.out``)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.previous: IonicStep | None = None
        self.times: list[float] = []
        self._t = time.perf_counter()

    def restart_clock(self) -> None:
        """Time the next ionic step from now (after the model has loaded)."""
        self._t = time.perf_counter()

    def write(self, text: str) -> None:
        """Write one line and flush (custodian watches the file while the run goes)."""
        self.stream.write(text + "\n")
        self.stream.flush()

    def __call__(self, index: int, step: IonicStep) -> None:
        """Report ionic step ``index`` (1-based) and record how long it took."""
        now = time.perf_counter()
        self.times.append(now - self._t)
        self._t = now
        self.write(oszicar_line(index, step, self.previous))
        self.previous = step


def run_standin(
    directory: str | Path = ".",
    stream: IO[str] | None = None,
    environ: dict[str, str] | None = None,
    program_version: str | None = None,
) -> RunContext | list[RunContext]:
    """Run the stand-in in ``directory`` and write its VASP output files there.

    Parameters
    ----------
    directory
        Folder with INCAR, POSCAR and optionally KPOINTS, POTCAR / POTCAR.spec.
    stream
        Where progress lines go (the command line passes stdout); None for no progress.
    environ
        Environment to read ``CTAFLOW_STANDIN_*`` from (default ``os.environ``).
    program_version
        Version written into the outputs (default: the installed ctaflow version).

    Returns
    -------
    RunContext or list of RunContext
        Inputs, settings, the ionic steps and timings of the run; for an NEB one per moving
        image.

    Raises
    ------
    StandinError
        For anything the stand-in refuses; nothing is written in that case.
    """
    clock = Accounting()
    directory = Path(directory)
    model = model_from_env(environ)
    n_images = int(read_incar(directory).get("IMAGES", 0))
    if n_images > 0:
        return run_band(directory, n_images, model, stream, environ, program_version, clock)
    inputs = read_inputs(directory)
    settings = run_settings(inputs, model, environ)
    if program_version is None:
        program_version = __version__
    progress = ProgressWriter(stream) if stream is not None else None
    if progress:
        progress.write(f" {PROGRAM} {program_version}: MLIP {model.label}; not a DFT calculation")
        progress.write(f" mode {settings.mode.value}, {len(inputs.structure)} atoms")

    t_load = time.perf_counter()
    calculator = model.calculator()
    logger.info("model %s loaded in %.2f s", model.label, time.perf_counter() - t_load)
    if progress:
        progress.restart_clock()
    result = _drive(inputs, settings, calculator, progress)

    ctx = clock.context(
        inputs=inputs,
        model=model,
        settings=settings,
        result=result,
        program_version=program_version,
    )
    write_outputs(directory, ctx)
    if progress:
        per_step = sum(progress.times) / max(len(progress.times), 1)
        progress.write(
            f" {len(result.steps)} ionic steps, {per_step:.3f} s per step, "
            f"{ctx.elapsed_seconds:.2f} s in total"
        )
    return ctx


def run_band(
    directory: Path,
    n_images: int,
    model: ModelSpec,
    stream: IO[str] | None = None,
    environ: dict[str, str] | None = None,
    program_version: str | None = None,
    clock: Accounting | None = None,
) -> list[RunContext]:
    """The NEB of :func:`run_standin`: ``n_images`` moving images between ``00`` and
    ``{n_images + 1}``; writes the images' output files and returns their contexts."""

    clock = clock or Accounting()
    band = read_band(directory, n_images)
    settings = run_settings(band[0], model, environ)
    if program_version is None:
        program_version = __version__
    progress = ProgressWriter(stream) if stream is not None else None
    if progress:
        progress.write(f" {PROGRAM} {program_version}: MLIP {model.label}; not a DFT calculation")
        progress.write(
            f" mode neb, {n_images} images of {len(band[0].structure)} atoms, "
            f"{settings.neb.optimizer} ({settings.neb.optimizer_source}), "
            f"climbing image {'on' if settings.neb.climb else 'off'}"
        )

    calculator = model.calculator()
    if progress:
        progress.restart_clock()

    def report(index: int, steps: list[IonicStep]) -> None:
        energies = " ".join(f"{step.energy_ev:.6f}" for step in steps)
        fmax = max(step.neb.max_atom_force_ev_per_a for step in steps)
        progress.write(f"{index:4d} NEB E= {energies} eV  max NEB force {fmax:.4f} eV/A")

    atoms = [to_atoms(image.structure, calculator) for image in band]
    result = nudged_elastic_band(
        atoms, settings.neb, settings.nsw, calculator, on_step=report if progress else None
    )
    if progress:
        first, last = result.endpoint_energies_ev
        progress.write(
            f" end points (fixed): E(00)= {first:.6f} eV  E({n_images + 1:02d})= {last:.6f} eV"
        )

    contexts = [
        clock.context(
            inputs=inputs,
            model=model,
            settings=settings,
            result=image_result,
            program_version=program_version,
        )
        for inputs, image_result in zip(band[1:-1], result.images, strict=True)
    ]
    for ctx in contexts:
        write_outputs(ctx.inputs.directory, ctx)
    if progress:
        state = "reached" if result.converged else "did not reach"
        progress.write(
            f" {result.n_steps} band evaluations; {state} |EDIFFG| = "
            f"{settings.neb.fmax_ev_per_a:g} eV/A; {clock.elapsed_seconds:.2f} s in total"
        )
    return contexts


def _drive(
    inputs: VaspInputs,
    settings: RunSettings,
    calculator: Calculator,
    progress: ProgressWriter | None,
) -> RunResult:
    """Run the single point, relaxation or MD that ``settings`` ask for."""

    atoms = to_atoms(inputs.structure, calculator)
    if settings.mode is Mode.STATIC:
        return single_point(atoms, on_step=progress)
    if settings.mode is Mode.RELAX:
        return relax(atoms, settings.relax, settings.max_ionic_steps, on_step=progress)

    return molecular_dynamics(
        atoms,
        settings.md,
        settings.nsw,
        inputs.species,
        velocities_a_per_fs=inputs.velocities_a_per_fs,
        on_step=progress,
    )


def write_outputs(directory: Path, ctx: RunContext) -> None:
    """Write vasprun.xml, OUTCAR, OSZICAR, CONTCAR and XDATCAR into ``directory``."""
    steps = ctx.result.steps
    variable_cell = bool(
        (ctx.settings.relax and (ctx.settings.relax.move_shape or ctx.settings.relax.move_volume))
        or (ctx.settings.md and ctx.settings.md.thermostat == "langevin-npt")
    )
    write_xdatcar(directory / "XDATCAR", steps, ctx.inputs.comment, variable_cell)
    write_oszicar(directory / "OSZICAR", steps)
    write_contcar(directory / "CONTCAR", ctx)
    write_outcar(directory / "OUTCAR", ctx)
    # last: custodian's validator looks for a parseable vasprun.xml
    write_vasprun(directory / "vasprun.xml", ctx)
