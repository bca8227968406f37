"""Cost of the VASP path (atomate2 maker + custodian + stand-in) vs the same MLIP called directly.

Run: ``python -m benchmarks.standin_overhead``. Prints per-job and per-ionic-step times and their
ratios; nothing here is asserted by a test.
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")  # as the ctaflow CLI does (before numpy is imported)
import tempfile
import time

from ase.filters import FrechetCellFilter
from ase.optimize import BFGS
from jobflow import run_locally

from ctaflow.campaign.schema import RelaxStageSettings, VaspStandinEngineSpec
from ctaflow.engines import get_engine
from ctaflow.engines.calculators import chgnet_calculator
from ctaflow.store import job_store
from ctaflow.structures import demo_structure

FMAX = 0.01  # eV/Å, both paths


def _structure():
    s = demo_structure()
    s.make_supercell([2, 2, 1])  # 20 atoms, starting 4.84 Å cell: many relaxation steps
    return s


def direct(structure) -> dict[str, float]:
    calc = chgnet_calculator(threads=1)
    atoms = structure.to_ase_atoms()
    atoms.calc = calc
    t0 = time.perf_counter()
    atoms.get_potential_energy()
    single = time.perf_counter() - t0
    counter = {"n": 0}
    opt = BFGS(FrechetCellFilter(atoms), logfile=None)
    opt.attach(lambda: counter.__setitem__("n", counter["n"] + 1))
    t0 = time.perf_counter()
    opt.run(fmax=FMAX, steps=300)
    return {"single_s": single, "per_step_s": (time.perf_counter() - t0) / max(1, counter["n"])}


def via_vasp_path(structure) -> dict[str, float]:
    engine = get_engine(VaspStandinEngineSpec(ionic_criterion="force"))
    with tempfile.TemporaryDirectory() as tmp:
        store = job_store(None, tmp)
        times, steps = {}, 1
        for label in ("static", "relax"):
            if label == "relax":
                maker = engine.relax_maker(RelaxStageSettings(fmax_ev_per_a=FMAX, max_steps=300))
            else:
                maker = engine.static_maker()
            job = maker.make(structure)
            t0 = time.perf_counter()
            run_locally(
                job,
                store=store,
                log=False,
                ensure_success=True,
                create_folders=True,
                root_dir=os.path.join(tmp, label),
            )
            times[label] = time.perf_counter() - t0
            ionic = store.get_output(job.uuid)["calcs_reversed"][0]["output"]["ionic_steps"]
            steps = len(ionic or []) or steps
    return {
        "static_job_s": times["static"],
        "per_step_s": (times["relax"] - times["static"]) / steps,
        "steps": steps,
    }


def main() -> list[dict]:
    s = _structure()
    d, v = direct(s), via_vasp_path(s)
    rows = [
        {
            "measure": "single point, whole job (20 atoms)",
            "direct_s": d["single_s"],
            "vasp_path_s": v["static_job_s"],
        },
        {
            "measure": "one relaxation step (20 atoms)",
            "direct_s": d["per_step_s"],
            "vasp_path_s": v["per_step_s"],
        },
    ]
    print("| measure | direct MLIP (s) | VASP path + stand-in (s) | ratio |")
    print("|---|---|---|---|")
    for r in rows:
        r["ratio"] = r["vasp_path_s"] / r["direct_s"]
        print(
            f"| {r['measure']} | {r['direct_s']:.3f} | {r['vasp_path_s']:.3f} | {r['ratio']:.1f}x |"
        )
    return rows


if __name__ == "__main__":
    main()
