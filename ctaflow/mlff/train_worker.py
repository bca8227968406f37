"""Train a MACE model and evaluate it on the test split, in a process of its own.

``python -m ctaflow.mlff.train_worker CONFIG.json``. A separate process because importing mace
sets ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` process-wide (it would silently change every later
``torch.load`` of the caller) and because training holds large buffers. The folder of the config
must contain ``train.extxyz``, ``valid.extxyz`` and ``test.extxyz``; the worker writes
``<name>.model``, MACE's logs and ``evaluation.json`` (test-set predictions computed here).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

#: ctaflow hyper-parameter names -> mace_run_train options
MACE_OPTIONS = {
    "model": "model",
    "num_channels": "num_channels",
    "max_l": "max_L",
    "r_max_a": "r_max",
    "correlation": "correlation",
    "num_interactions": "num_interactions",
    "max_num_epochs": "max_num_epochs",
    "batch_size": "batch_size",
    "lr": "lr",
    "energy_weight": "energy_weight",
    "forces_weight": "forces_weight",
    "stress_weight": "stress_weight",
    "default_dtype": "default_dtype",
    "seed": "seed",
    "e0s": "E0s",
}


def mace_argv(name: str, hyper: dict, init_model: str | None = None) -> list[str]:
    """Command-line options for mace's run_train (pure; tested). ``init_model``: a model file
    whose architecture and weights the training starts from (warm start; mace's
    ``--foundation_model`` without multi-head fine-tuning)."""
    argv = [
        "mace_run_train",
        f"--name={name}",
        "--train_file=train.extxyz",
        "--valid_file=valid.extxyz",
        "--test_file=test.extxyz",
        "--energy_key=REF_energy",
        "--forces_key=REF_forces",
        "--stress_key=REF_stress",
        "--device=cpu",
        "--save_cpu",
        f"--valid_batch_size={hyper['batch_size']}",
    ]
    if hyper.get("stress_weight", 0) > 0:
        argv.append("--compute_stress=True")
        argv.append("--loss=stress")
    for key, option in MACE_OPTIONS.items():
        if key in hyper and hyper[key] is not None:
            argv.append(f"--{option}={hyper[key]}")
    if hyper.get("pair_repulsion"):
        argv.append("--pair_repulsion")  # a flag of mace_run_train, no value
    if init_model:
        argv += [f"--foundation_model={init_model}", "--multiheads_finetuning=False"]
    return argv


def evaluate(model_path: Path, test_file: Path, dtype: str) -> dict:
    """Energies per atom and forces predicted by the model for every test frame."""
    import numpy as np
    from ase.io import read
    from mace.calculators import MACECalculator

    calc = MACECalculator(model_paths=str(model_path), device="cpu", default_dtype=dtype)
    rows = []
    for atoms in read(test_file, index=":", format="extxyz"):
        ref_e = float(atoms.info["REF_energy"])
        ref_f = np.asarray(atoms.arrays["REF_forces"])
        atoms.calc = calc
        rows.append(
            {
                "composition": str(atoms.info.get("config_type", "")),
                "n_atoms": len(atoms),
                "energy_ref_ev": ref_e,
                "energy_pred_ev": float(atoms.get_potential_energy()),
                "forces_ref_ev_per_a": ref_f.tolist(),
                "forces_pred_ev_per_a": atoms.get_forces().tolist(),
            }
        )
    return {"test": rows}


def main(config_path: str) -> None:
    config = json.loads(Path(config_path).read_text())
    folder = Path(config_path).parent
    os.chdir(folder)
    import torch

    torch.set_num_threads(int(config.get("threads", 1)))
    from mace.cli import run_train

    sys.argv = mace_argv(config["name"], config["hyper"], config.get("init_model"))
    run_train.main()
    model = folder / f"{config['name']}.model"
    if not model.is_file():
        raise SystemExit(f"MACE finished without writing {model}")
    result = evaluate(model, folder / "test.extxyz", config["hyper"]["default_dtype"])
    if config["hyper"]["default_dtype"] == "float64":  # is float32 as good? (MD may use it)
        result["test_float32"] = evaluate(model, folder / "test.extxyz", "float32")["test"]
    (folder / "evaluation.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
