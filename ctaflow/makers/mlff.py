"""Training data and MACE training as jobs."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from jobflow import job

from ctaflow.analysis.blobs import PART_DATA_KEY, BlobPart, pack_file, unpack_file
from ctaflow.analysis.chunks import join_chunks
from ctaflow.analysis.dataset import (
    LabelledFrame,
    deduplicate,
    frames_from_arrays,
    frames_from_ionic_steps,
    split_indices,
    to_extxyz,
)
from ctaflow.analysis.md import MDResult
from ctaflow.analysis.mlff import (
    CommitteeMember,
    DatasetResult,
    MDSanity,
    MLFFResult,
    md_sanity,
    validation_metrics,
)
from ctaflow.analysis.provenance import software_versions

logger = logging.getLogger(__name__)

EPOCH_LINE = re.compile(
    r"Epoch (\d+): .*loss=([0-9.eE+-]+).*RMSE_E_per_atom=\s*([0-9.]+).*RMSE_F=\s*([0-9.]+)"
)


def md_frames(
    md: MDResult | dict, labeller: str, li_fraction: float | None = None
) -> list[LabelledFrame]:
    """Labelled frames of a stored MD segment."""
    md = md if isinstance(md, MDResult) else MDResult.model_validate(md)
    arrays = join_chunks(md.trajectory)
    species = [site.specie.symbol for site in md.final_structure]
    return frames_from_arrays(
        {
            k: v
            for k, v in arrays.items()
            if k in {"positions_a", "cells_a", "energies_ev", "forces_ev_per_a", "stresses_gpa"}
        },
        species,
        composition=md.final_structure.composition.reduced_formula,
        li_fraction=li_fraction,
        temperature_k=md.temperature_end_k,
        source=f"md {md.temperature_end_k:g} K",
        labeller=labeller,
    )


@job(data=[PART_DATA_KEY])
def dataset_job(
    md_results: list,
    labeller: str,
    split: list[float],
    seed: int,
    dedupe_tol_a: float,
    li_fractions: list[float | None] | None = None,
    relaxations: list[list] | None = None,
    relax_fractions: list[float | None] | None = None,
) -> DatasetResult:
    """Collect MD frames, and the ionic steps of the labeller's ``relaxations`` (see
    ``Engine.relax_outputs``), into a deduplicated, split dataset (extxyz files in the data
    store)."""
    frames: list[LabelledFrame] = []
    fractions = li_fractions or [None] * len(md_results)
    for md, x in zip(md_results, fractions, strict=True):
        frames += md_frames(md, labeller, x)
    relaxations = relaxations or []
    for steps, x in zip(relaxations, relax_fractions or [None] * len(relaxations), strict=True):
        frames += frames_from_ionic_steps(
            steps, li_fraction=x, source="relaxation", labeller=labeller
        )
    unique = deduplicate(frames, dedupe_tol_a)
    parts = split_indices(len(unique), tuple(split), seed)
    files = {
        name: pack_file(to_extxyz([unique[i] for i in idx]).encode(), f"{name}.extxyz")
        for name, idx in parts.items()
    }
    return DatasetResult(
        n_frames={name: len(idx) for name, idx in parts.items()},
        n_frames_by_composition=dict(Counter(f.composition for f in unique)),
        n_duplicates_removed=len(frames) - len(unique),
        labeller=labeller,
        sources=dict(Counter(f.source for f in unique)),
        split_seed=seed,
        files=files,
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
) -> tuple[list, list[int], list[float]]:
    """Langevin NVT with the model from ``start`` (ASE atoms): copies of the atoms every
    ``every`` steps, their step numbers and instantaneous temperatures (K)."""
    import numpy as np
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    from ctaflow.engines.calculators import mace_calculator

    atoms = start.copy()
    atoms.calc = mace_calculator(str(model_path))
    MaxwellBoltzmannDistribution(
        atoms, temperature_K=temperature_k, rng=np.random.default_rng(seed)
    )
    dyn = Langevin(
        atoms,
        timestep_fs * units.fs,
        temperature_K=temperature_k,
        friction=0.01 / units.fs,
        rng=np.random.default_rng(seed + 1),
    )
    frames, steps, temps = [], [], []
    for done in range(every, n_steps + 1, every):
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
    from pymatgen.io.ase import AseAtomsAdaptor

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
    metrics = validation_metrics(json.loads((folder / "evaluation.json").read_text())["test"])
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
        software=software_versions(("ctaflow", "mace-torch", "torch", "e3nn", "ase")),
    )
    return result, model_path


@job(data=[PART_DATA_KEY])
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
        from concurrent.futures import ThreadPoolExecutor

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
        from ase.io import read

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
    if not path.is_file():
        path.write_bytes(data)
    return path


@job
def series_job(structure, settings: dict):
    """The substitution series of the training supercell (see structures.series)."""
    from ctaflow.structures.series import substitution_series

    return substitution_series(structure, **settings)


class TrainingDataMaker:
    """Labelling MD at each temperature on a supercell, then the dataset job.

    With a substitution ``series`` the supercell is substituted first and every member is relaxed
    (cell and positions) with the labeller before its labelling MD; frames carry the member's x.
    ``settings`` are the ``training_data`` stage settings; ``engine`` is the labeller (VASP on
    clusters, the embedded universal MLIP here).
    """

    def __init__(self, engine, settings, series=None, relax_settings=None) -> None:
        self.engine = engine
        self.settings = settings
        self.series = series
        self.relax_settings = relax_settings

    def make(self, structure):
        from jobflow import Flow

        from ctaflow.makers.md import MDControls, MDSegment, steps_for, supercell_job
        from ctaflow.makers.relax import RelaxStageMaker

        st = self.settings
        cell = supercell_job(structure, st.supercell_min_width_a)
        cell.name = "training supercell"
        jobs: list = [cell]
        starts, fractions = [cell.output], [None]
        relax_steps: list = []
        if self.series is not None:
            series = series_job(cell.output, self.series.model_dump())
            series.name = "substitution series"
            jobs.append(series)
            starts, fractions = [], []
            n = self.series.n_compositions
            for i in range(n):
                relax = RelaxStageMaker(engine=self.engine, settings=self.relax_settings).make(
                    series.output.members[i].structure
                )
                relax.name = f"relax member {i}"
                jobs.append(relax)
                starts.append(relax.output.structure)
                fractions.append(i / (n - 1))
                relax_steps.append(self.engine.relax_outputs(relax.jobs[0]).get("ionic_steps"))
        controls = MDControls(timestep_fs=st.timestep_fs, sample_every=st.sample_every)
        steps = steps_for(st.md_ps, st.timestep_fs, st.sample_every)
        runs, run_fractions = [], []
        for k, (start, x) in enumerate(zip(starts, fractions, strict=True)):
            for i, temperature in enumerate(st.temperatures_k):
                segment = MDSegment(
                    f"label {temperature:g} K", "nvt", temperature, temperature, st.md_ps
                )
                md = self.engine.md_maker(segment, steps, st.seed + 100 * k + i, controls).make(
                    start
                )
                suffix = "" if x is None else f" x={x:g}"
                md.name = f"labelling md {temperature:g} K{suffix}"
                runs.append(md)
                run_fractions.append(x)
        data = dataset_job(
            [md.output for md in runs],
            self.engine.label,
            list(st.split),
            st.seed,
            st.dedupe_tol_a,
            run_fractions,
            [r for r in relax_steps if r is not None],
            # only series members are relaxed here (the base structure by the relax stage)
            [x for x, r in zip(fractions, relax_steps, strict=False) if r is not None],
        )
        data.name = "dataset"
        return Flow([*jobs, *runs, data], output=data.output, name="training data")


@job
def stage_on_trained_model(
    model: list,
    structure,
    stage: str,
    stage_settings: dict,
    mace_spec: dict,
    options: dict | None = None,
):
    """Write the trained model to the model cache, then replace this job by the stage's flow on
    it (``stage``: md or amorphous; ``options``: the amorphous stage's series and elements)."""
    from jobflow import Response

    from ctaflow.campaign.schema import AmorphousStageSettings, MDStageSettings, SeriesSettings
    from ctaflow.makers.amorphous import AmorphousStageMaker
    from ctaflow.makers.md import MDStageMaker

    engine = trained_mace_engine(model, mace_spec)
    options = options or {}
    if stage == "md":
        maker = MDStageMaker(engine=engine, settings=MDStageSettings.model_validate(stage_settings))
    elif stage == "amorphous":
        series = options.get("series")
        maker = AmorphousStageMaker(
            engine=engine,
            settings=AmorphousStageSettings.model_validate(stage_settings),
            series=None if series is None else SeriesSettings.model_validate(series),
            elements=options.get("elements"),
        )
    else:
        raise ValueError(f"stage {stage!r} cannot run on the campaign-trained model")
    return Response(replace=maker.make(structure))


def trained_mace_engine(model: list, mace_spec: dict):
    """A MACE engine on the model trained by the campaign (written to the model cache first)."""
    from ctaflow.campaign.schema import MaceEngineSpec
    from ctaflow.engines.mlip import MaceEngine

    path = materialise_model(model)
    return MaceEngine(MaceEngineSpec.model_validate({**mace_spec, "model_path": str(path)}))
