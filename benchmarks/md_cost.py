"""MD cost: the ctaflow/atomate2 MD maker vs plain ASE with the same calculator, and time per step
against atom count (fitted exponent). Optionally a trained MACE model vs CHGNet.

Run: ``python -m benchmarks.md_cost [--mace MODEL] [--steps N]``. Prints Markdown tables.
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse
import time

import numpy as np
from ase import units
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

from ctaflow.engines.calculators import chgnet_calculator, mace_calculator
from ctaflow.structures import demo_structure


def cell(n: int):
    s = demo_structure()
    s.scale_lattice(4.54**3)
    s.make_supercell([n, n, n])
    return s


def plain_ase(structure, calc, steps: int) -> float:
    atoms = structure.to_ase_atoms()
    atoms.calc = calc
    MaxwellBoltzmannDistribution(atoms, temperature_K=600, rng=np.random.default_rng(0))
    dyn = Langevin(
        atoms,
        1 * units.fs,
        temperature_K=600,
        friction=0.01 / units.fs,
        rng=np.random.default_rng(1),
    )
    atoms.get_forces()
    t0 = time.perf_counter()
    dyn.run(steps)
    return (time.perf_counter() - t0) / steps


def ctaflow_maker(structure, force_field: dict, steps: int) -> float:
    from ctaflow.makers.md import MLIPMDMaker

    maker = MLIPMDMaker(
        ensemble="nvt",
        temperature=600,
        n_steps=steps,
        time_step=1.0,
        sample_every=10,
        seed=0,
        **force_field,
    )
    maker.traj_interval = 10
    maker.mb_velocity_seed = 0
    maker.ase_md_kwargs = {"rng": np.random.default_rng([0, 7919])}
    t0 = time.perf_counter()
    maker._run_ase_safe(structure)
    return (time.perf_counter() - t0) / steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mace", default=None, help="MACE .model file to compare with CHGNet")
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    chg = {
        "force_field_name": {
            "@module": "ctaflow.engines.calculators",
            "@callable": "chgnet_calculator",
        },
        "calculator_kwargs": {"threads": 1},
    }
    s = cell(3)  # 135 atoms
    calc = chgnet_calculator(threads=1)
    plain = plain_ase(s, calc, args.steps)
    ours = ctaflow_maker(s, chg, args.steps)
    print(
        f"| MD, {len(s)} atoms, {args.steps} steps | plain ASE (s/step) | ctaflow maker "
        "(s/step) | ratio |\n|---|---|---|---|"
    )
    print(f"| CHGNet Langevin NVT | {plain:.4f} | {ours:.4f} | {ours / plain:.2f}x |\n")
    sizes, costs = [], []
    models = [("CHGNet", calc)]
    if args.mace:
        models.append(("MACE", mace_calculator(args.mace, threads=1)))
    print("| model | atoms | s/step |\n|---|---|---|")
    for name, model in models:
        sizes, costs = [], []
        for n in (3, 4, 6):
            structure = cell(n)
            per = plain_ase(structure, model, max(5, args.steps // (n * n)))
            sizes.append(len(structure))
            costs.append(per)
            print(f"| {name} | {len(structure)} | {per:.4f} |")
        slope = np.polyfit(np.log(sizes), np.log(costs), 1)[0]
        print(f"| {name} | exponent of s/step vs atoms | {slope:.2f} |")


if __name__ == "__main__":
    main()
