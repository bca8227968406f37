"""Restartable MLIP MD segments: a segment killed mid-run resumes from its last checkpoint.

Each MD segment (an equilibration, a 200 ps production, a melt) is one job; a cluster job
killed at its walltime, a node failure or ``kill -9`` of ``ctaflow run`` used to rerun the
whole segment. :func:`restartable` wraps the run of :class:`ctaflow.engines.mlip_md.MLIPMDMaker`
so that the rerun of the same segment continues where the last checkpoint left it and ends on
the uninterrupted trajectory: the same final positions, bit for bit, and the same stored frames.

How (atomate2's ``AseMDMaker.run_ase`` builds the ASE dynamics object, attaches its trajectory
observer and temperature-schedule callback, and calls ``run(n_steps)``; none of that is
copied here):

* the maker's dynamics class is swapped, for the run only, for a subclass whose ``irun``
  restores a checkpoint when there is one (atoms, integrator state, step count, the trajectory
  observer's frames), replays the schedule callbacks for the restored step, attaches the
  checkpoint writer and runs the remaining steps;
* a checkpoint holds positions, momenta and cell, the thermostat and barostat variables of the
  Nosé–Hoover-chain / MTK integrators, the state of Langevin's own ``numpy.random.Generator``
  (:class:`MLIPMDMaker` gives it one), the step count, and the frames observed so far; frames
  are appended in chunks (``frames-<first>-<end>.npz``), so a checkpoint writes only what is new,
  and ``state.npz`` is replaced atomically after them: a kill while writing leaves the previous
  checkpoint whole;
* checkpoints live in ``$CTAFLOW_CHECKPOINT_DIR`` (``ctaflow run`` sets ``WORKDIR/checkpoints``;
  on a cluster, export it in the worker's environment, e.g. FireWorks' ``pre_rocket`` or
  jobflow-remote's ``pre_run``) or else ``~/.cache/ctaflow/md-checkpoints``, outside the job
  folder, which the local runner, FireWorks and jobflow-remote all make anew for a rerun;
* a segment's folder is named by a fingerprint of everything that determines its trajectory
  (input structure with its velocities, ensemble, schedule, steps, seed, force field): the rerun
  of the same job finds it whatever job uuid runs it (the campaign-trained model's jobs get new
  uuids when they are made again), and a changed input never resumes a stale checkpoint;
* the folder is removed when the segment has finished.

When: every ``checkpoint_every`` steps if the maker sets it (0: never), otherwise after
``checkpoint_interval_s`` of wall time (default 300 s, so at most five minutes of MD are lost),
and never sooner than 100 times the duration of the previous write, which keeps checkpoints
below 1 % of the run's time whatever the cell size.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from ase.md.langevin import Langevin
from ase.md.nose_hoover_chain import MTKNPT, IsotropicMTKNPT, NoseHooverChainNVT
from ase.md.verlet import VelocityVerlet
from atomate2.ase.utils import TrajectoryObserver
from monty.json import jsanitize

if TYPE_CHECKING:
    from ase.md.md import MolecularDynamics
    from pymatgen.core import Structure

logger = logging.getLogger(__name__)

#: environment variable naming the folder that holds the checkpoints of every segment
CHECKPOINT_ENV = "CTAFLOW_CHECKPOINT_DIR"
#: default wall time between two checkpoints, s
CHECKPOINT_INTERVAL_S = 300.0
#: a checkpoint is written at most once per this many times its own writing time (< 1 %)
COST_FACTOR = 100.0
#: integrators whose whole state :func:`integrator_state` captures
SUPPORTED = (VelocityVerlet, Langevin, NoseHooverChainNVT, IsotropicMTKNPT, MTKNPT)
#: integrator attributes that carry state between steps (those an integrator has)
DYNAMICS_STATE = ("_q", "_p", "_h", "_p_c", "_p_g", "_eps", "_p_eps", "_kT", "_temperature_K")
THERMOSTAT_STATE = ("_eta", "_p_eta", "_kT")
BAROSTAT_STATE = ("_xi", "_p_xi", "_kT")
#: the trajectory observer's per-frame lists (atomate2.ase.utils.TrajectoryObserver)
FRAME_LISTS = (
    "energies",
    "forces",
    "stresses",
    "magmoms",
    "atom_positions",
    "cells",
    "velocities",
    "temperatures",
)


def checkpoint_root() -> Path:
    """Where segments keep their checkpoints (see the module docstring)."""
    configured = os.environ.get(CHECKPOINT_ENV)
    return Path(configured) if configured else Path.home() / ".cache/ctaflow/md-checkpoints"


#: integrator arguments atomate2 derives from the schedule at run time (or ctaflow from the seed)
DERIVED_KWARGS = ("rng", "temperature_K", "pressure_au", "externalstress")


def segment_fingerprint(maker: Any, structure: Structure) -> str:
    """Hash of everything that determines a segment's trajectory (not where or when it runs).

    Only what the job's maker holds before atomate2 runs it counts: a maker that already ran in
    this process (atomate2 adds the schedule's first values to ``ase_md_kwargs`` and sets an
    NVT pressure to NaN) gives the same fingerprint.
    """
    kwargs = {k: v for k, v in (maker.ase_md_kwargs or {}).items() if k not in DERIVED_KWARGS}
    data = {
        "structure": structure.as_dict(),
        "dynamics": getattr(maker.dynamics, "__name__", maker.dynamics),
        "ase_md_kwargs": kwargs,
        **{
            name: getattr(maker, name, None)
            for name in (
                "ensemble",
                "temperature",
                "pressure",
                "n_steps",
                "time_step",
                "seed",
                "sample_every",
                "mb_velocity_seed",
                "zero_linear_momentum",
                "zero_angular_momentum",
                "force_field_name",
                "calculator_kwargs",
            )
        },
    }
    if "npt" not in str(data["ensemble"]):
        data["pressure"] = None
    text = json.dumps(jsanitize(data, strict=False, enum_values=True), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@contextmanager
def restartable(maker: Any, structure: Structure) -> Iterator[Path | None]:
    """Run ``maker``'s MD (inside the block) with checkpoints, resuming from one if the same
    segment left one; yields the checkpoint folder (None: this integrator cannot resume).

    ``maker`` is an atomate2 ``AseMDMaker``; its ``dynamics`` is swapped for the block only.
    """
    base = resolve_dynamics(maker)
    every = getattr(maker, "checkpoint_every", None)
    if every == 0 or base is None or not issubclass(base, SUPPORTED):
        if every != 0:
            logger.info("MD with %s runs without checkpoints", getattr(base, "__name__", base))
        yield None
        return
    folder = checkpoint_root() / segment_fingerprint(maker, structure)
    interval = float(getattr(maker, "checkpoint_interval_s", CHECKPOINT_INTERVAL_S))
    policy = _Policy(every=every, interval_s=interval)
    original = maker.dynamics
    maker.dynamics = checkpointing(base, Checkpoints(folder), policy)
    try:
        yield folder
    finally:
        maker.dynamics = original
    Checkpoints(folder).clear()  # only when the segment finished


def resolve_dynamics(maker: Any) -> type | None:
    """The ASE integrator class atomate2 will run for ``maker.dynamics`` (a preset name or a
    class), as ``AseMDMaker.run_ase`` resolves it."""
    from importlib import import_module

    from atomate2.ase.md import DynamicsPresets, MDEnsemble, default_dynamics

    ensemble = MDEnsemble(str(getattr(maker.ensemble, "value", maker.ensemble)))
    dynamics = maker.dynamics or default_dynamics[ensemble]
    if isinstance(dynamics, type):
        return dynamics
    key = f"{ensemble.value}_{str(dynamics).lower().replace('-', '_')}"
    if key not in DynamicsPresets.__members__:
        return None
    module, name = DynamicsPresets[key].value.rsplit(".", 1)
    return getattr(import_module(module), name)


@dataclass
class _Policy:
    """When to write: every ``every`` steps, or after ``interval_s`` of wall time."""

    every: int | None
    interval_s: float
    last: float = 0.0
    cost_s: float = 0.0

    def due(self, step: int) -> bool:
        if self.every:
            return step % self.every == 0
        wait = max(self.interval_s, COST_FACTOR * self.cost_s)
        return time.perf_counter() - self.last >= wait


def checkpointing(base: type, checkpoints: Checkpoints, policy: _Policy) -> type:
    """``base`` (an ASE integrator) that resumes from and writes ``checkpoints``."""

    def irun(self: MolecularDynamics, steps: int = 50):
        trajectory = next(
            (f for f, *_ in self.observers if isinstance(f, TrajectoryObserver)), None
        )
        try:
            integrator_state(self)
        except ValueError as exc:
            logger.warning("MD runs without checkpoints: %s", exc)
            yield from base.irun(self, steps)
            return
        if checkpoints.restore(self, trajectory):
            for function, interval, args, kwargs in list(self.observers):
                # the schedule callbacks set the targets of the next step; the frames are back
                if function is not trajectory and interval > 0 and self.nsteps % interval == 0:
                    function(*args, **kwargs)
            # a warning: the job was interrupted before, the user should see it in the logs
            logger.warning("MD resumed at step %d from %s", self.nsteps, checkpoints.folder)
        policy.last = time.perf_counter()

        def write() -> None:
            if 0 < self.nsteps < steps and policy.due(self.nsteps):
                start = time.perf_counter()
                checkpoints.save(self, trajectory)
                policy.last = time.perf_counter()
                policy.cost_s = policy.last - start

        self.attach(write, interval=1)
        # atomate2 asks for the whole segment; a resumed run has done part of it
        yield from base.irun(self, max(steps - self.nsteps, 0))

    return type(base.__name__, (base,), {"irun": irun, "__module__": base.__module__})


# --------------------------------------------------------------------------- the files
class Checkpoints:
    """The checkpoint folder of one segment: ``state.npz`` and the frame chunks."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.n_saved_frames = 0

    @property
    def state_file(self) -> Path:
        return self.folder / "state.npz"

    def save(self, dyn: MolecularDynamics, trajectory: TrajectoryObserver | None) -> None:
        """Write the frames since the last checkpoint, then the state (atomically)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        n_frames = len(trajectory.energies) if trajectory is not None else 0
        if n_frames > self.n_saved_frames:
            chunk = {
                name: _stack(getattr(trajectory, name)[self.n_saved_frames : n_frames])
                for name in FRAME_LISTS
            }
            _write_npz(self.folder / f"frames-{self.n_saved_frames:09d}-{n_frames:09d}.npz", chunk)
        arrays, meta = integrator_state(dyn)
        meta["n_frames"] = n_frames
        if trajectory is not None:
            meta["observer_flags"] = dict(trajectory._calc_kwargs)
        arrays["meta"] = np.array(json.dumps(meta))
        _write_npz(self.state_file, arrays)
        self.n_saved_frames = n_frames

    def restore(self, dyn: MolecularDynamics, trajectory: TrajectoryObserver | None) -> bool:
        """Put the last checkpoint into ``dyn`` and ``trajectory``; False if there is none or
        it does not fit (then it is removed and the segment starts from its beginning)."""
        if not self.state_file.is_file():
            return False
        try:
            with np.load(self.state_file, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            meta = json.loads(str(arrays.pop("meta")))
            frames = self._frames(meta["n_frames"]) if trajectory is not None else {}
            check_state(dyn, arrays, meta)
        except Exception as exc:  # unreadable (cut short by a kill, disk full): start over
            logger.warning("ignoring the MD checkpoint in %s: %s", self.folder, exc)
            self.clear()
            return False
        apply_state(dyn, arrays, meta)
        if trajectory is not None:
            for name in FRAME_LISTS:
                setattr(trajectory, name, list(frames[name]))
            trajectory._calc_kwargs.update(meta.get("observer_flags", {}))
        self.n_saved_frames = meta["n_frames"]
        return True

    def _frames(self, n_frames: int) -> dict[str, list]:
        """The first ``n_frames`` frames from the chunks; chunks a later, unfinished checkpoint
        wrote are ignored."""
        frames: dict[str, list] = {name: [] for name in FRAME_LISTS}
        end = 0
        for path in sorted(self.folder.glob("frames-*.npz")):
            first, last = (int(x) for x in path.stem.split("-")[1:])
            if first != end or last > n_frames:
                continue
            with np.load(path, allow_pickle=False) as data:
                for name in FRAME_LISTS:
                    frames[name] += list(data[name]) if data[name].size else []
            end = last
        if end != n_frames:
            raise ValueError(f"frames 0-{n_frames} are not all on disk (found 0-{end})")
        return frames

    def clear(self) -> None:
        if self.folder.is_dir():
            for path in self.folder.iterdir():
                path.unlink(missing_ok=True)
            self.folder.rmdir()


def _stack(items: list) -> np.ndarray:
    return np.asarray(items, dtype=float) if items else np.zeros(0)


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write, flush to disk, then rename: readers see the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        np.savez(handle, **arrays)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


# --------------------------------------------------------------------------- integrator state
def integrator_state(dyn: MolecularDynamics) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Everything a supported integrator carries from one step to the next."""
    atoms = dyn.atoms
    arrays = {
        "positions": atoms.get_positions(),
        "momenta": atoms.get_momenta(),
        "cell": np.array(atoms.get_cell()),
    }
    for prefix, owner, names in _state_holders(dyn):
        for name in names:
            if name in vars(owner):
                arrays[f"{prefix}{name}"] = np.asarray(getattr(owner, name))
    meta: dict[str, Any] = {"integrator": type(dyn).__name__, "nsteps": int(dyn.nsteps)}
    rng = getattr(dyn, "rng", None)
    if isinstance(rng, np.random.Generator):
        meta["rng"] = rng.bit_generator.state
    elif rng is not None:  # numpy's global generator: its state is not this segment's alone
        raise ValueError("Langevin draws from numpy's global generator; give it its own")
    return arrays, meta


def check_state(dyn: MolecularDynamics, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Raise ValueError unless ``arrays`` and ``meta`` are a state of this very integrator."""
    if meta.get("integrator") != type(dyn).__name__:
        raise ValueError(f"written by {meta.get('integrator')}, not {type(dyn).__name__}")
    expected, _ = integrator_state(dyn)
    if set(expected) != set(arrays):
        raise ValueError(f"state {sorted(arrays)} is not that of {type(dyn).__name__}")
    for name, value in expected.items():
        if np.shape(value) != np.shape(arrays[name]):
            raise ValueError(f"{name} has shape {np.shape(arrays[name])}, not {np.shape(value)}")
    if ("rng" in meta) != isinstance(getattr(dyn, "rng", None), np.random.Generator):
        raise ValueError("random generator state missing or unexpected")


def apply_state(dyn: MolecularDynamics, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Set a checked state (:func:`check_state`) into ``dyn`` and its atoms."""
    atoms = dyn.atoms
    atoms.set_cell(arrays["cell"], scale_atoms=False)
    atoms.set_positions(arrays["positions"])
    atoms.set_momenta(arrays["momenta"])
    for prefix, owner, names in _state_holders(dyn):
        for name in names:
            key = f"{prefix}{name}"
            if key in arrays:
                value = arrays[key]
                setattr(owner, name, value.copy() if value.ndim else value.item())
    if "rng" in meta:
        dyn.rng.bit_generator.state = meta["rng"]
    dyn.nsteps = int(meta["nsteps"])


def _state_holders(dyn: MolecularDynamics) -> list[tuple[str, Any, tuple[str, ...]]]:
    holders = [("dyn", dyn, DYNAMICS_STATE)]
    for attr, names in (("_thermostat", THERMOSTAT_STATE), ("_barostat", BAROSTAT_STATE)):
        if attr in vars(dyn):
            holders.append((attr, getattr(dyn, attr), names))
    return [(f"{prefix}.", owner, names) for prefix, owner, names in holders]
