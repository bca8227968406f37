"""Cost of the VASP path (atomate2 maker + custodian + stand-in) vs the same MLIP called directly.

Run: ``python -m benchmarks.standin_overhead`` (or through ``python -m benchmarks``). Prints
per-job and per-ionic-step times and their ratios; nothing here is asserted by a test.
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

from benchmarks.report import Row, markdown_table
from ctaflow.campaign.stages import RelaxStageSettings
from ctaflow.engines import get_engine
from ctaflow.engines.calculators import chgnet_calculator
from ctaflow.engines.specs import VaspStandinEngineSpec
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


def rows() -> list[Row]:
    """Row 4: the VASP path (atomate2 VASP maker + custodian + stand-in) / the same MLIP called
    directly, for a single-point job and per ionic step of a relaxation (20 atoms)."""
    s = _structure()
    d, v = direct(s), via_vasp_path(s)
    return [
        Row(
            "4",
            "VASP stand-in path / direct MLIP, per ionic step (20-atom relaxation)",
            v["per_step_s"] / d["per_step_s"],
            "×",
            None,
            f"direct CHGNet + BFGS {d['per_step_s']:.3f} s/step; VASP path "
            f"{v['per_step_s']:.3f} s/step (relax job minus static job, over "
            f"{v['steps']} ionic steps)",
            {"direct": d, "vasp_path": v},
        ),
        Row(
            "4",
            "VASP stand-in path / direct MLIP, single-point job (20 atoms)",
            v["static_job_s"] / d["single_s"],
            "×",
            None,
            f"direct {d['single_s']:.3f} s; VASP path {v['static_job_s']:.2f} s per job "
            "(inputs, custodian with 1 s polling, stand-in process start and model load, "
            "vasprun parsing, task document)",
            {"direct": d, "vasp_path": v},
        ),
    ]


def main() -> None:
    print(markdown_table(rows()))


if __name__ == "__main__":
    main()
