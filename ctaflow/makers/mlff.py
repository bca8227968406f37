"""MACE training as jobs: one model or a committee, trained on CPU in a worker process, checked
by a short MD; and running a stage on the model a campaign trains (known only at run time)."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from ase import units
from ase.io import read
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from jobflow import Maker, Response, job
from pymatgen.io.ase import AseAtomsAdaptor

from ctaflow.analysis.blobs import BlobPart, pack_file, unpack_file
from ctaflow.analysis.mlff import (
    CommitteeMember,
    DatasetResult,
    MDSanity,
    MLFFResult,
    md_sanity,
    precision_check,
    trained_in_float32,
    validation_metrics,
)
from ctaflow.analysis.provenance import software_versions
from ctaflow.engines.berendsen import OneForceNPTBerendsen
from ctaflow.engines.calculators import mace_calculator
from ctaflow.engines.params import MDControls
from ctaflow.jobs import result_job

logger = logging.getLogger(__name__)

EPOCH_LINE = re.compile(
    r"Epoch (\d+): .*loss=([0-9.eE+-]+).*RMSE_E_per_atom=\s*([0-9.]+).*RMSE_F=\s*([0-9.]+)"
)


def run_worker(
    folder: Path, name: str, hyper: dict, threads: int, init_model: str | None = None
) -> list[dict[str, float]]:
    """Run the training worker; log MACE's epoch lines as they come; return them."""
    config = folder / "train_config.json"
    config.write_text(
        json.dumps({"name": name, "hyper": hyper, "threads": threads, "init_model": init_model})
    )
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "ctaflow.mlff.train_worker", str(config)]
    epochs = []
    with open(folder / "mace_train.log", "w") as log_file:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=folder
        )
        for line in proc.stdout:
            log_file.write(line)
            match = EPOCH_LINE.search(line)
            if match:
                epoch = {
                    "epoch": int(match.group(1)),
                    "loss": float(match.group(2)),
                    "valid_rmse_energy_mev_per_atom": float(match.group(3)),
                    "valid_rmse_force_mev_per_a": float(match.group(4)),
                }
                epochs.append(epoch)
                logger.info("MACE epoch %(epoch)d: loss %(loss).4g", epoch)
        code = proc.wait()
    if code != 0:
        raise RuntimeError(f"MACE training failed (exit {code}); see {folder / 'mace_train.log'}")
    return epochs


def langevin_frames(
    model_path: Path,
    start,
    temperature_k: float,
    n_steps: int,
    every: int,
    timestep_fs: float = 1.0,
    seed: int = 0,
    end_temperature_k: float | None = None,
    dtype: str = "float64",
    pressure_gpa: float | None = None,
    barostat_damping_fs: float = 200.0,
) -> tuple[list, list[int], list[float]]:
    """Langevin NVT with the model from ``start`` (ASE atoms): copies of the atoms every
    ``every`` steps, their step numbers and instantaneous temperatures (K). With
    ``end_temperature_k`` the thermostat target ramps linearly to it (set every ``every``
    steps); ``dtype``: the model's precision. With ``pressure_gpa``: Berendsen NPT at that
    pressure instead (as the amorphous stage's npt melts; 100 fs thermostat, compressibility
    as :class:`~ctaflow.engines.params.MDControls`)."""
    atoms = start.copy()
    atoms.calc = mace_calculator(str(model_path), dtype=dtype)
    MaxwellBoltzmannDistribution(
        atoms, temperature_K=temperature_k, rng=np.random.default_rng(seed)
    )
    if pressure_gpa is None:
        dyn = Langevin(
            atoms,
            timestep_fs * units.fs,
            temperature_K=temperature_k,
            friction=0.01 / units.fs,
            rng=np.random.default_rng(seed + 1),
        )
    else:
        controls = MDControls(barostat="berendsen", barostat_damping_fs=barostat_damping_fs)
        dyn = OneForceNPTBerendsen(
            atoms,
            timestep_fs * units.fs,
            temperature_K=temperature_k,
            **controls.berendsen_npt_kwargs(pressure_gpa),
        )
    end = temperature_k if end_temperature_k is None else end_temperature_k
    frames, steps, temps = [], [], []
    for done in range(every, n_steps + 1, every):
        dyn.set_temperature(temperature_K=temperature_k + (end - temperature_k) * done / n_steps)
        dyn.run(every)
        frame = atoms.copy()
        frame.calc = None
        frames.append(frame)
        steps.append(done)
        temps.append(float(atoms.get_temperature()))
    return frames, steps, temps


def sanity_md(
    model_path: Path, start, temperature_k: float, n_steps: int, timestep_fs: float = 1.0
) -> MDSanity:
    """Langevin NVT with the model from ``start`` (ASE atoms), judged by :func:`md_sanity`."""
    frames, steps, temps = langevin_frames(
        model_path, start, temperature_k, n_steps, max(1, n_steps // 20), timestep_fs
    )
    structures = [AseAtomsAdaptor.get_structure(a) for a in frames]
    return md_sanity(structures, steps, temps, temperature_k, timestep_fs)


def train_one(
    ds: DatasetResult,
    hyper: dict[str, Any],
    threads: int,
    folder: Path,
    init_model: list | None = None,
) -> tuple[MLFFResult, Path]:
    """Train one MACE on the dataset's splits in ``folder`` and evaluate it on the test split;
    ``init_model`` (stored model parts): start from that model's weights (warm start)."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, parts in ds.files.items():
        (folder / f"{split}.extxyz").write_bytes(unpack_file(parts))
    start_from = None
    if init_model:
        (folder / "init.model").write_bytes(unpack_file(init_model))
        first = init_model[0]
        start_from = first.sha256 if isinstance(first, BlobPart) else first["sha256"]
    start = time.perf_counter()
    epochs = run_worker(
        folder, "ctaflow_mace", hyper, threads, "init.model" if init_model else None
    )
    elapsed = time.perf_counter() - start
    model_path = folder / "ctaflow_mace.model"
    evaluation = json.loads((folder / "evaluation.json").read_text())
    metrics = validation_metrics(evaluation["test"])
    model = pack_file(model_path.read_bytes(), "ctaflow_mace.model")
    result = MLFFResult(
        model=model,
        model_sha256=model[0].sha256,
        hyperparameters=hyper,
        n_train=ds.n_frames["train"],
        n_valid=ds.n_frames["valid"],
        n_test=ds.n_frames["test"],
        **metrics,
        epochs_log=epochs,
        training_time_s=elapsed,
        labeller=ds.labeller,
        initial_model_sha256=start_from,
        precision=(
            precision_check(
                evaluation["test"],
                evaluation["test_float32"],
                metrics["rmse_energy_mev_per_atom"],
                metrics["rmse_force_mev_per_a"],
            )
            if "test_float32" in evaluation
            else trained_in_float32()
            if hyper["default_dtype"] == "float32"
            else None
        ),
        software=software_versions(("ctaflow", "mace-torch", "torch", "e3nn", "ase")),
    )
    return result, model_path


def claim_training_cores(fit: Any, n_members: int, threads: int) -> Any:
    """Mark a :func:`train_mace_job` job with the cores it keeps busy (``cores`` in its
    metadata: its ``n_members`` members train side by side on ``threads`` each), so that the
    local runner starts nothing beside it: in the demo a CHGNet relaxation beside the two
    trainings ran 4x slower per step and the committee took 175 s, 107-125 s without it, on the
    path every stage after the MLFF waits on. Returns ``fit``."""
    fit.metadata = {**(fit.metadata or {}), "cores": n_members * threads}
    return fit


@result_job(MLFFResult)
def train_mace_job(
    dataset: DatasetResult | dict,
    hyper: dict[str, Any],
    threads: int = 1,
    sanity: dict[str, float] | None = None,
    committee_seeds: list[int] | None = None,
    init_models: list[list] | None = None,
) -> MLFFResult:
    """Train MACE on the dataset (CPU), evaluate it on the test split, and (``sanity``: target
    ``temperature_k`` and ``n_steps``) run a short MD with it from the first training frame.

    ``committee_seeds``: also train one more model per seed (same data and hyper-parameters,
    another seed), at most as many trainings at a time as the machine has cores; they are the
    further members of an active-learning committee (:attr:`MLFFResult.committee`).
    ``init_models``: per member (0 first) a stored model to start from (warm start).
    """
    ds = dataset if isinstance(dataset, DatasetResult) else DatasetResult.model_validate(dataset)
    folder = Path.cwd()
    seeds = [hyper.get("seed"), *(committee_seeds or [])]
    inits = init_models or [None] * len(seeds)
    if len(inits) != len(seeds):
        raise ValueError(f"{len(inits)} initial models for {len(seeds)} committee members")
    runs = [
        ({**hyper, "seed": seed} if k else hyper, folder / f"member{k}" if k else folder, init)
        for k, (seed, init) in enumerate(zip(seeds, inits, strict=True))
    ]
    if len(runs) == 1:
        trained = [train_one(ds, hyper, threads, folder, inits[0])]
    else:
        workers = max(1, min(len(runs), (os.cpu_count() or 1) // threads))
        logger.info("training a committee of %d models, %d at a time", len(runs), workers)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            trained = list(pool.map(lambda run: train_one(ds, run[0], threads, *run[1:]), runs))
    result, model_path = trained[0]
    result.committee = [
        CommitteeMember(
            seed=member.hyperparameters["seed"],
            model=member.model,
            model_sha256=member.model_sha256,
            rmse_energy_mev_per_atom=member.rmse_energy_mev_per_atom,
            rmse_force_mev_per_a=member.rmse_force_mev_per_a,
            training_time_s=member.training_time_s,
        )
        for member, _ in trained[1:]
    ]
    if sanity and sanity.get("n_steps"):
        start = read(folder / "train.extxyz", index=0)
        result.md_sanity = sanity_md(
            model_path, start, sanity["temperature_k"], int(sanity["n_steps"])
        )
        logger.info(
            "MD sanity check: %s", "stable" if result.md_sanity.stable else result.md_sanity.reason
        )
    return result


def materialise_model(parts: list, cache_dir: str | Path | None = None) -> Path:
    """Write a stored model file to the model cache (``CTAFLOW_MODEL_CACHE`` or
    ``~/.cache/ctaflow/models``) under its checksum; return the path."""
    data = unpack_file(parts)
    first = parts[0] if isinstance(parts[0], BlobPart) else BlobPart.model_validate(parts[0])
    root = Path(
        cache_dir or os.environ.get("CTAFLOW_MODEL_CACHE") or Path.home() / ".cache/ctaflow/models"
    )
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{first.sha256[:16]}-{first.name}"
    if not path.is_file():  # written whole or not at all: other processes may read it at once
        partial = path.with_name(f".{path.name}.{os.getpid()}.part")
        partial.write_bytes(data)
        partial.replace(path)
    return path


@job
def run_on_trained_model(
    trained: Any, maker: Maker, args: list, trust: dict | None = None
) -> Response:
    """Write the model the campaign trained to the model cache, then replace this job by
    ``maker.make(*args)`` on it. ``trained`` is the output of the stage that trained it (mlff or
    active learning: the model's stored parts and its committee's); ``maker`` is a stage maker
    whose ``engine`` is a MACE engine without a model file. With a committee, the engine judges
    every MD run by it, against ``trust`` (``{"default": window, composition: window}``)."""
    model, committee, float32_ok = trained_model_parts(trained)
    engine = maker.engine.with_model(
        materialise_model(model),
        [materialise_model(parts) for parts in committee],
        trust,
        float32_ok,
    )
    return Response(replace=replace(maker, engine=engine).make(*args))


def trained_model_parts(trained: Any) -> tuple[list, list[list], bool]:
    """Member 0's stored parts, the other members' (mlff result: committee of
    :class:`CommitteeMember`; active-learning result: committee of parts) and whether its
    precision check allows float32 MD."""
    data = trained if isinstance(trained, dict) else trained.model_dump()
    committee = [m["model"] if isinstance(m, dict) else m for m in data.get("committee") or []]
    precision = data.get("precision") or {}
    return data["model"], committee, bool(precision.get("float32_ok"))
