"""CHGNet evaluation through ctaflow (forces and stress from one backward pass,
:mod:`ctaflow.engines.chgnet_inference`) vs chgnet's own two-pass evaluation of the same weights.

Run: ``python -m benchmarks.chgnet_eval`` (or through ``python -m benchmarks``). Alternating
timed blocks of force + stress calls on the demo antiperovskite (40 and 135 atoms, atoms moved
before every call, single thread); the largest force and stress differences are reported with
the ratio. Nothing here is asserted by a test.
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")  # as the ctaflow CLI does (before numpy is imported)
import time

import numpy as np

from benchmarks.md_cost import ratio_with_error, standard_error
from benchmarks.report import Row, markdown_table

#: atoms of the demo cell: 2x2x2 (the demo's amorphous, labelling and NEB cells) and 3x3x3
SIZES = {40: (2, 2, 2), 135: (3, 3, 3)}


def _atoms(n_atoms: int):
    from ctaflow.structures import demo_structure

    s = demo_structure()
    s.scale_lattice(4.54**3)
    s.make_supercell(list(SIZES[n_atoms]))
    atoms = s.to_ase_atoms()
    atoms.rattle(0.05, seed=1)
    return atoms


def _calculators():
    import torch
    from chgnet.model import CHGNet
    from chgnet.model.dynamics import CHGNetCalculator

    from ctaflow.engines.calculators import chgnet_calculator

    torch.set_num_threads(1)
    own = CHGNetCalculator(model=CHGNet.load(verbose=False), use_device="cpu")
    return {"chgnet": own, "ctaflow": chgnet_calculator(threads=1)}


def _block(calc, atoms, calls: int) -> float:
    """Seconds per force + stress evaluation over ``calls`` calls (a new geometry each)."""
    a = atoms.copy()
    a.calc = calc
    t0 = time.perf_counter()
    for _ in range(calls):
        a.positions[0, 0] += 1e-3
        a.get_forces()
        a.get_stress()
    return (time.perf_counter() - t0) / calls


def rows(calls: int = 20, repeats: int = 3) -> list[Row]:
    """Row 8: chgnet's own evaluation / ctaflow's, per call (40 and 135 atoms)."""
    calcs = _calculators()
    out = []
    for n_atoms in SIZES:
        atoms = _atoms(n_atoms)
        results = {}
        for name, calc in calcs.items():
            a = atoms.copy()
            a.calc = calc
            results[name] = (a.get_forces(), a.get_stress())  # also the warm-up call
        times = {name: [] for name in calcs}
        for _ in range(repeats):  # alternating blocks: drifts of the machine hit both
            for name, calc in calcs.items():
                times[name].append(_block(calc, atoms, calls))
        own, ours = (float(np.mean(times[k])) for k in ("chgnet", "ctaflow"))
        ratio, error = ratio_with_error(
            own, standard_error(times["chgnet"]), ours, standard_error(times["ctaflow"])
        )
        df = float(np.abs(results["chgnet"][0] - results["ctaflow"][0]).max())
        ds = float(np.abs(results["chgnet"][1] - results["ctaflow"][1]).max())
        out.append(
            Row(
                "8",
                f"CHGNet forces + stress, chgnet's own evaluation / ctaflow's ({n_atoms} atoms)",
                ratio,
                "× faster",
                None,
                f"chgnet {1000 * own:.1f} ms, ctaflow {1000 * ours:.1f} ms per call; "
                f"{repeats} alternating blocks of {calls} calls, ± standard error; largest "
                f"differences: force {df:.1e} eV/Å, stress {ds:.1e} eV/Å³ (float32)",
                {"times_s": times, "max_force_diff": df, "max_stress_diff": ds},
                uncertainty=error,
            )
        )
    return out


def main() -> None:
    print(markdown_table(rows()))


if __name__ == "__main__":
    main()
