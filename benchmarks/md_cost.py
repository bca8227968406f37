"""MD cost: ctaflow's MD job vs plain ASE with the same calculator; a MACE model of the demo's size
vs CHGNet per MD step and peak memory; time per step against atom count (fitted exponent).

Run: ``python -m benchmarks.md_cost [--steps N] [--sizes 100 300 1000] [--mace MODEL]``; the
runner (``python -m benchmarks``) calls :func:`overhead_rows` and :func:`model_rows`.

Each model/size case of :func:`model_rows` runs in a process of its own
(``python -m benchmarks.md_cost --worker JSON``) so that its peak resident memory
(``ru_maxrss``) is its own, and so that importing mace (which sets
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` process-wide) never touches the runner.
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.report import Row, markdown_table

TEMPERATURE_K = 600.0
TIMESTEP_FS = 1.0
FRICTION_PER_PS = 10.0  # ctaflow's MDControls default
#: atoms -> supercell of the 5-atom Na3OCl cell, as near cubic as the count allows
SUPERCELLS = {
    100: (5, 2, 2),
    135: (3, 3, 3),
    300: (5, 4, 3),
    1000: (8, 5, 5),
    3000: (10, 10, 6),
}
#: the demo's MLFF hyper-parameters (campaigns/demo.yaml and MLFFStageSettings defaults)
DEMO_MACE = {
    "num_channels": 16,
    "max_L": 0,
    "r_max": 5.0,
    "num_interactions": 2,
    "correlation": 2,
}
UNTRAINED = "MACE: untrained model"
MACE_NOTE = (
    UNTRAINED + " of the demo's size (16 channels, max_L 0, r_max 5 Å, 2 interactions, "
    "correlation 2, float64, {parameters:,} parameters, as the demo's trained model); time per "
    "step does not depend on the weights"
)


def cell(n_atoms: int):
    """The demo antiperovskite at CHGNet's lattice parameter (4.54 Å), ``n_atoms`` atoms."""
    from ctaflow.structures import demo_structure

    s = demo_structure()
    s.scale_lattice(4.54**3)
    s.make_supercell(list(SUPERCELLS[n_atoms]))
    return s


def fit_exponent(sizes, costs) -> tuple[float, float | None]:
    """Slope of log(cost) against log(size), cost ∝ size**slope, and the slope's standard error
    from the fit's residuals (None with two points)."""
    x = np.log(np.asarray(sizes, float))
    y = np.log(np.asarray(costs, float))
    slope, intercept = np.polyfit(x, y, 1)
    if len(x) < 3:
        return float(slope), None
    residual = y - (slope * x + intercept)
    sxx = float(((x - x.mean()) ** 2).sum())
    return float(slope), float(np.sqrt((residual**2).sum() / (len(x) - 2) / sxx))


def _langevin(atoms, rng_seed=1):
    from ase import units
    from ase.md.langevin import Langevin

    return Langevin(
        atoms,
        TIMESTEP_FS * units.fs,
        temperature_K=TEMPERATURE_K,
        friction=FRICTION_PER_PS * 1e-3 / units.fs,
        rng=np.random.default_rng(rng_seed),
    )


def plain_ase_run(structure, calc, steps: int, seed: int = 0):
    """Plain-ASE Langevin MD of ``steps`` steps, seeded as ctaflow's MD job with ``seed`` seeds
    it (velocities at 2T from ``default_rng(seed)``, see
    :func:`ctaflow.engines.md_start.start_velocities`; Langevin noise from
    ``default_rng([seed, 7919])``, see
    :class:`ctaflow.engines.mlip_md.MLIPMDMaker`), so both follow the same trajectory; nothing
    recorded. Returns (wall time with set-up and first forces, CPU time, final atoms)."""
    from ctaflow.engines.md_start import start_velocities

    t0, cpu0 = time.perf_counter(), time.process_time()
    atoms = structure.to_ase_atoms()
    atoms.calc = calc
    atoms.set_velocities(start_velocities(structure, TEMPERATURE_K, seed))
    _langevin(atoms, [seed, 7919]).run(steps)
    return time.perf_counter() - t0, time.process_time() - cpu0, atoms


def ctaflow_run(structure, steps: int, workdir: Path, engine_spec, seed: int = 0, force_field=None):
    """The same MD as a ctaflow job: the engine's ``md_maker`` (atomate2 ``ForceFieldMDMaker``
    subclass), run by ctaflow's local runner into an embedded store (frames every 10 steps,
    chunked trajectory, summary, run states), in this process (``workers=1``: the cost of a
    job; starting worker processes is a cost per run, row 7's). ``force_field``: maker fields
    that replace the engine's calculator (e.g. :data:`LJ_FORCE_FIELD`). Returns (wall time,
    CPU time, final structure)."""
    from dataclasses import replace

    from jobflow import Flow
    from pymatgen.core import Structure

    from ctaflow.engines import get_engine
    from ctaflow.engines.params import MDControls, MDSegment
    from ctaflow.execution.local import run_flow
    from ctaflow.store import job_store, state_store

    engine = get_engine(engine_spec)
    segment = MDSegment("bench", "nvt", TEMPERATURE_K, TEMPERATURE_K, steps * TIMESTEP_FS / 1e3)
    controls = MDControls(
        timestep_fs=TIMESTEP_FS, sample_every=10, langevin_friction_per_ps=FRICTION_PER_PS
    )
    maker = engine.md_maker(segment, steps, seed=seed, controls=controls)
    if force_field:
        maker = replace(maker, **force_field)
    job = maker.make(structure)
    store, states = job_store(None, workdir), state_store(None, workdir)
    t0, cpu0 = time.perf_counter(), time.process_time()
    report = run_flow(Flow([job]), store, states, workdir, workers=1)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    if not report.ok:
        raise RuntimeError(f"ctaflow MD job failed: {report.failed}")
    store.connect()
    doc = store.query_one({"uuid": job.uuid}, properties=["output.final_structure"])
    store.close()
    return elapsed, cpu, Structure.from_dict(doc["output"]["final_structure"])


#: a Lennard-Jones calculator (ASE's; ~16 ms per step at 135 atoms, a quarter of the float32
#: MACE's 68 ms, measured) for the same MD through both paths: the difference of the two wall
#: times is the orchestration, with less absolute timing noise than with MACE (still ~2 s per
#: 2,000 steps on this VM, see RESULTS.md). One LJ for every element; minimum at 2.27 Å, the demo
#: cell's Na-O distance.
LJ_KWARGS = {"sigma": 2.27 / 2 ** (1 / 6), "epsilon": 0.1, "rc": 5.0, "smooth": True}
LJ_FORCE_FIELD = {
    "force_field_name": {"@module": "ase.calculators.lj", "@callable": "LennardJones"},
    "calculator_meta": None,
    "calculator_kwargs": LJ_KWARGS,
}


def overhead_worker(case: dict) -> dict:
    """Row 1 in this process: the same MD of ``case["steps"]`` steps by plain ASE, then as a
    ctaflow job, with the same calculator: ``case["mace_model"]`` (in ``case["dtype"]``) through
    the ``mace`` engine, or ``case["calculator"] == "lj"`` (:data:`LJ_FORCE_FIELD`, set into the
    mlip engine's MD maker). The model is loaded and warmed up first, out of both timings
    (ctaflow's calculator factories cache loaded models per process, so the job reuses it)."""
    import torch
    from ase.calculators.lj import LennardJones

    from ctaflow.engines.calculators import mace_calculator
    from ctaflow.engines.specs import MaceEngineSpec, MLIPEngineSpec

    torch.set_num_threads(1)
    force_field = None
    if case.get("calculator") == "lj":
        calc, force_field = LennardJones(**LJ_KWARGS), LJ_FORCE_FIELD
        spec = MLIPEngineSpec(threads=1)  # its calculator is replaced: CHGNet never loads
    else:
        dtype = case.get("dtype", "float64")
        calc = mace_calculator(case["mace_model"], dtype=dtype, threads=1)
        spec = MaceEngineSpec(model_path=Path(case["mace_model"]), dtype=dtype, threads=1)
    s = cell(case["atoms"])
    warm = s.copy()
    warm.perturb(0.05)
    plain_ase_run(warm, calc, WARM_UP_STEPS)  # first calls, out of the timing
    runs = []  # alternating pairs, plain ASE first: a slow drift of the VM hits both
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(case.get("pairs", 1)):
            plain, plain_cpu, atoms = plain_ase_run(s, calc, case["steps"])
            ours, ours_cpu, final = ctaflow_run(
                s, case["steps"], Path(tmp) / f"run{i}", spec, 0, force_field
            )
            # same seeds, same trajectory: the cost per step depends on the trajectory
            # (neighbour counts), so a diverged pair would compare different work
            drift = atoms.positions - final.cart_coords
            drift -= np.round(drift @ np.linalg.inv(atoms.cell.array)) @ atoms.cell.array
            runs.append(
                {
                    "plain_s": plain,
                    "ctaflow_s": ours,
                    "plain_cpu_s": plain_cpu,
                    "ctaflow_cpu_s": ours_cpu,
                    "final_position_difference_a": float(np.abs(drift).max()),
                }
            )
    out = {**case, "runs": runs}
    for key in runs[0]:
        out[key] = float(np.mean([r[key] for r in runs]))
    out["final_position_difference_a"] = max(r["final_position_difference_a"] for r in runs)
    out["extra_s"] = out["ctaflow_s"] - out["plain_s"]
    out["extra_s_se"] = standard_error([r["ctaflow_s"] - r["plain_s"] for r in runs])
    return out


def overhead_rows(
    step_counts: list[int],
    mace_model: str | Path | None = None,
    n_atoms: int = 135,
    lj_pairs: int = 3,
) -> list[Row]:
    """Row 1 per step count, each calculator's runs (plain ASE, then ctaflow) in a process of
    its own:

    * the ratio with the campaign's MLFF (``mace_model``: the demo's trained MACE when the
      runner finds one, else an untrained model of its size) in float32, its faster precision,
      so the ratio is an upper bound for the float64 production runs;
    * the absolute extra time of the ctaflow path, measured with a Lennard-Jones calculator
      (cheaper, so the orchestration is less hidden in the calculator's timing noise) as the
      mean over ``lj_pairs`` alternating pairs with its standard error, and the ratio it
      implies for the MACE run: 1 + extra / plain-ASE MACE time.
    """
    with tempfile.TemporaryDirectory() as tmp:
        path, note = mace_model_file(mace_model, Path(tmp))
        pairs = []
        for steps in step_counts:
            lj = {"atoms": n_atoms, "steps": steps, "calculator": "lj", "pairs": lj_pairs}
            mace = {"atoms": n_atoms, "steps": steps, "mace_model": str(path), "dtype": "float32"}
            pairs.append(
                [_in_subprocess(["--overhead", json.dumps(c)], timeout=3600) for c in (lj, mace)]
            )
    label = mace_label(note)
    rows = []
    for lj, mace in pairs:
        steps = mace["steps"]
        extra, extra_se = lj["extra_s"], lj["extra_s_se"]
        rows.append(
            Row(
                "1",
                f"orchestration overhead: ctaflow MD job / plain ASE ({label} float32, "
                f"{n_atoms} atoms, N = {steps} steps)",
                mace["ctaflow_s"] / mace["plain_s"],
                "×",
                ("<=", 1.05),
                _pair_text(mace, steps)
                + f"; CPU-time ratio {mace['ctaflow_cpu_s'] / mace['plain_cpu_s']:.3f}; one "
                "pair, plain ASE first: this VM's time per step varies by ~10 % between runs, "
                f"more than the overhead (next rows); {note}",
                mace,
            )
        )
        rows.append(
            Row(
                "1",
                f"orchestration overhead, absolute: ctaflow − plain ASE, Lennard-Jones "
                f"calculator ({n_atoms} atoms, N = {steps} steps)",
                extra,
                "s",
                None,
                _pair_text(lj, steps)
                + f"; mean of {lj['pairs']} alternating pairs ± standard error; "
                f"{extra / steps * 1e3:.2f} ms per step if all of it scaled with steps "
                "(job set-up, trajectory observer, temperature callback, chunked trajectory "
                "and task document into the embedded store, run states)",
                lj,
                uncertainty=extra_se,
            )
        )
        ratio, ratio_se = ratio_with_error(mace["plain_s"] + extra, extra_se, mace["plain_s"], None)
        rows.append(
            Row(
                "1",
                f"orchestration overhead implied for the {label} float32 run: 1 + (extra time "
                "with Lennard-Jones) / (plain-ASE MACE time)",
                ratio,
                "×",
                ("<=", 1.05),
                f"{extra:.2f} s over {mace['plain_s']:.1f} s (± from the extra time's standard "
                "error); for float64, whose steps cost more, the ratio is closer to 1",
                {"extra_s": extra, "extra_s_se": extra_se, "plain_mace_s": mace["plain_s"]},
                uncertainty=ratio_se,
            )
        )
    return rows


def _pair_text(r: dict, steps: int) -> str:
    p, o = r["plain_s"], r["ctaflow_s"]
    return (
        f"plain ASE {p / steps * 1e3:.2f} ms/step ({p:.1f} s), ctaflow {o / steps * 1e3:.2f} "
        f"ms/step ({o:.1f} s); Langevin {TEMPERATURE_K:g} K, 1 fs, frames every 10 steps, the "
        f"same seeds (final positions differ by ≤ {r['final_position_difference_a']:.1e} Å)"
    )


def mace_label(note: str) -> str:
    """How the rows name the MACE model that :func:`mace_model_file` described with ``note``."""
    return "MACE (demo size, untrained)" if note.startswith(UNTRAINED) else "trained MACE"


def mace_model_file(mace_model: str | Path | None, tmp: Path) -> tuple[Path, str]:
    """(model file, description): ``mace_model`` as given, or an untrained model of the demo's
    size built into ``tmp``."""
    if mace_model is not None:  # absolute: the ctaflow MD job runs in its own job directory
        return Path(mace_model).resolve(), f"MACE: trained model {Path(mace_model).name}"
    path = tmp / "demo_size_untrained.model"
    built = _in_subprocess(["--build-mace", str(path)], timeout=300)
    return path, MACE_NOTE.format(parameters=built["parameters"])


# ---------------------------------------------------------------- per-case worker processes


def _rss_mb() -> float:
    """Peak resident memory of this process, MB. VmHWM, not ru_maxrss: Linux carries
    ru_maxrss over fork + exec, so a worker would report the runner's own peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _available_mb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("inf")


def worker(case: dict) -> dict:
    """One model at one size, in this process: s/step of Langevin MD and peak RSS."""
    import torch
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    torch.set_num_threads(1)
    if case["model"] == "chgnet":
        from ctaflow.engines.calculators import chgnet_calculator

        calc = chgnet_calculator(threads=1)
    else:
        from ctaflow.engines.calculators import mace_calculator

        calc = mace_calculator(case["mace_model"], dtype=case.get("dtype", "float64"), threads=1)
    rss_loaded = _rss_mb()
    atoms = cell(case["atoms"]).to_ase_atoms()
    atoms.calc = calc
    MaxwellBoltzmannDistribution(atoms, temperature_K=TEMPERATURE_K, rng=np.random.default_rng(0))
    t0 = time.perf_counter()
    atoms.get_forces()  # first call: graph set-up, out of the timing
    first = time.perf_counter() - t0
    dyn = _langevin(atoms)
    warmed = warm_up(dyn, case.get("warm_up_s", 2.0))
    blocks = []  # s/step of each repeat: the spread gives the error bar
    min_steps = case.get("min_steps", 2)
    for _ in range(case.get("repeats", 1)):
        steps, t0 = 0, time.perf_counter()
        while steps < min_steps or (time.perf_counter() - t0 < case["budget_s"] and steps < 500):
            dyn.run(1)
            steps += 1
        blocks.append({"steps": steps, "s_per_step": (time.perf_counter() - t0) / steps})
    per_step = [b["s_per_step"] for b in blocks]
    return {
        **case,
        "steps": sum(b["steps"] for b in blocks),
        "s_per_step": float(np.mean(per_step)),
        "s_per_step_se": standard_error(per_step),
        "blocks": blocks,
        "first_call_s": first,
        "warm_up_steps": warmed,
        "rss_after_load_mb": rss_loaded,
        "peak_rss_mb": _rss_mb(),
    }


#: MD steps run before any timing: MACE's first calls after the first force evaluation are
#: slower (135 atoms: 851, 167, 122 ms, then 83-160 ms per step, measured; the cause, perhaps
#: TorchScript's profiling runs, was not checked)
WARM_UP_STEPS = 3


def warm_up(dyn, max_s: float = 2.0) -> int:
    """Run up to :data:`WARM_UP_STEPS` steps of ``dyn``, at least one unless ``max_s`` is 0,
    fewer when they take longer than ``max_s`` (e.g. CHGNet at 1,000 atoms); return how many
    ran."""
    steps, t0 = 0, time.perf_counter()
    while steps < WARM_UP_STEPS and (
        (steps == 0 and max_s > 0) or time.perf_counter() - t0 < max_s
    ):
        dyn.run(1)
        steps += 1
    return steps


def standard_error(values) -> float | None:
    """Standard error of the mean (ddof 1); None for fewer than two values."""
    v = np.asarray(values, float)
    return float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else None


def ratio_with_error(a: float, a_se, b: float, b_se) -> tuple[float, float | None]:
    """a / b and its standard error from independent errors of a and b (first order); ``b_se``
    None: b taken as exact; ``a_se`` None: no error."""
    ratio = a / b
    if a_se is None:
        return ratio, None
    return ratio, ratio * float(np.hypot(a_se / a, (b_se or 0.0) / b))


def memory_estimate_mb(cases: list[dict], n_atoms: int) -> float:
    """Peak RSS expected at ``n_atoms`` from the two largest measured cases of one model: the
    memory above the loaded model grown linearly in atoms (neighbour lists and graphs are
    linear in atoms at fixed density), plus the loaded model."""
    done = sorted(cases, key=lambda c: c["atoms"])[-2:]
    base = done[-1]["rss_after_load_mb"]
    above = [c["peak_rss_mb"] - c["rss_after_load_mb"] for c in done]
    if len(done) == 1:
        return base + above[0] * n_atoms / done[0]["atoms"]
    slope = (above[1] - above[0]) / (done[1]["atoms"] - done[0]["atoms"])
    return base + above[1] + slope * (n_atoms - done[1]["atoms"])


def build_mace_model(path: Path, hyper: dict = DEMO_MACE) -> int:
    """Save an untrained MACE (ScaleShiftMACE with mace_run_train's defaults) for Li, O, Na, Cl;
    return its number of parameters. Same architecture as the demo's trained model."""
    # as importing mace does; e3nn's own constants need it with torch >= 2.6 (import order)
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    import torch
    from e3nn import o3
    from mace import modules

    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    zs = [3, 8, 11, 17]
    model = modules.ScaleShiftMACE(
        r_max=hyper["r_max"],
        num_bessel=8,
        num_polynomial_cutoff=5,
        max_ell=3,
        interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        interaction_cls_first=modules.interaction_classes["RealAgnosticInteractionBlock"],
        num_interactions=hyper["num_interactions"],
        num_elements=len(zs),
        hidden_irreps=o3.Irreps(f"{hyper['num_channels']}x0e")
        if hyper["max_L"] == 0
        else o3.Irreps(
            "+".join(
                f"{hyper['num_channels']}x{ell}{'e' if ell % 2 == 0 else 'o'}"
                for ell in range(hyper["max_L"] + 1)
            )
        ),
        MLP_irreps=o3.Irreps("16x0e"),
        atomic_energies=np.zeros(len(zs)),
        avg_num_neighbors=20.0,
        atomic_numbers=zs,
        correlation=hyper["correlation"],
        gate=torch.nn.functional.silu,
        radial_MLP=[64, 64, 64],
        radial_type="bessel",
        atomic_inter_scale=1.0,
        atomic_inter_shift=0.0,
    )
    torch.save(model.to("cpu"), path)
    return sum(p.numel() for p in model.parameters())


def _pythonpath() -> str:
    root = str(Path(__file__).resolve().parents[1])
    return os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)


def _in_subprocess(argv: list[str], timeout: float) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.md_cost", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "PYTHONPATH": _pythonpath()},
        check=False,
    )
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"worker {argv[:2]} failed: {tail}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def model_rows(
    sizes: list[int],
    budget_s: float,
    mace_model: str | Path | None = None,
    exponent_sizes: list[int] | None = None,
    repeats: int = 3,
) -> list[Row]:
    """Rows 2 and 3: MACE vs CHGNet per step at each size (speed-up, peak memory), and the
    exponent of s/step against atoms for each model over all sizes measured.

    ``budget_s``: time spent in each of ``repeats`` timed blocks per case (at least 2 steps
    each); the spread of the blocks gives the standard errors. ``exponent_sizes``: sizes used
    only for the exponent (row 3), e.g. 3,000 atoms, one block each, skipped when the expected
    peak memory (:func:`memory_estimate_mb`) exceeds 85 % of the memory available.
    """
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        mace_model, note = mace_model_file(mace_model, Path(tmp))
        extra = [n for n in exponent_sizes or [] if n not in sizes]
        skipped = []  # extra sizes only: a failure there (memory) leaves rows 2-3 standing
        for n in [*sizes, *extra]:
            for model in ("chgnet", "mace", "mace32"):
                if model == "mace32" and n in extra:
                    continue
                case = {
                    "model": model,
                    "atoms": n,
                    "budget_s": budget_s,
                    "repeats": 1 if n in extra else repeats,
                    # extra sizes: one timed step (CHGNet takes ~30 s per step at 3,000 atoms)
                    "min_steps": 1 if n in extra else 2,
                    "warm_up_s": 0.0 if n in extra and model == "chgnet" else 2.0,
                }
                if model.startswith("mace"):
                    case["mace_model"] = str(mace_model)
                    case["dtype"] = "float32" if model == "mace32" else "float64"
                done = [c for c in cases if c["model"] == model]
                if n in extra and done:
                    need = memory_estimate_mb(done, n)
                    if need > 0.85 * _available_mb():
                        skipped.append(
                            f"{model} at {n} atoms skipped: ~{need:.0f} MB expected, "
                            f"{_available_mb():.0f} MB available"
                        )
                        continue
                try:
                    cases.append(_in_subprocess(["--worker", json.dumps(case)], timeout=1800))
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    if n not in extra:
                        raise
                    skipped.append(f"{model} at {n} atoms not measured: {exc}")
    by = {(c["model"], c["atoms"]): c for c in cases}
    label = mace_label(note)
    spread = f"± standard error over {repeats} timed blocks per case"
    rows = []
    for n in sizes:
        c = by["chgnet", n]
        for model, dtype in (("mace", "float64"), ("mace32", "float32")):
            m = by[model, n]
            ratio, se = ratio_with_error(
                c["s_per_step"], c["s_per_step_se"], m["s_per_step"], m["s_per_step_se"]
            )
            if model == "mace":
                details = (
                    f"CHGNet {_per_step(c)} s/step, peak RSS {c['peak_rss_mb']:.0f} MB; "
                    f"MACE {_per_step(m)} s/step, peak RSS {m['peak_rss_mb']:.0f} MB (whole "
                    f"process; after model load {c['rss_after_load_mb']:.0f} / "
                    f"{m['rss_after_load_mb']:.0f} MB); {c['steps']} / {m['steps']} steps; "
                    + spread
                    + ("; " + note if n == sizes[0] else "")
                )
            else:
                details = (
                    f"MACE float32 {_per_step(m)} s/step, peak RSS {m['peak_rss_mb']:.0f} MB, "
                    f"{m['steps']} steps (the same model cast to float32 by MACECalculator; "
                    "the demo trains and runs float64)"
                )
            rows.append(
                Row(
                    "2",
                    f"{label} ({dtype}) vs CHGNet, time per MD step, {n} atoms",
                    ratio,
                    "× faster",
                    (">=", 5.0),
                    details,
                    {"chgnet": c, model: m},
                    uncertainty=se,
                )
            )
    for model, name in (("chgnet", "CHGNet"), ("mace", f"{label} (float64)")):
        pts = sorted((n, r["s_per_step"]) for (kind, n), r in by.items() if kind == model)
        if len(pts) < 2:
            continue  # an exponent needs two sizes
        ns, cost = zip(*pts, strict=True)
        slope, slope_se = fit_exponent(ns, cost)
        rows.append(
            Row(
                "3",
                f"cost growth, {name}: exponent of s/step vs atoms ({ns[0]}–{ns[-1]})",
                slope,
                "",
                None,
                "s/step: "
                + ", ".join(f"{n}: {t:.4f}" for n, t in pts)
                + ("; ± standard error of the slope from the fit's residuals" if slope_se else "")
                + "".join(
                    f"; peak RSS at {n} atoms {by[model, n]['peak_rss_mb']:.0f} MB"
                    for n in ns
                    if n not in sizes
                )
                + "".join(f"; {x}" for x in skipped if x.startswith(model + " ")),
                {"points": pts, "peak_rss_mb": {n: by[model, n]["peak_rss_mb"] for n in ns}},
                uncertainty=slope_se,
            )
        )
    return rows


def _per_step(case: dict) -> str:
    se = case.get("s_per_step_se")
    return f"{case['s_per_step']:.4f}" + (f" ± {se:.4f}" if se is not None else "")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=100, help="MD steps of the overhead row")
    parser.add_argument("--sizes", type=int, nargs="*", default=[100, 300, 1000])
    parser.add_argument("--budget", type=float, default=2.0, help="seconds per timed block")
    parser.add_argument("--mace", default=None, help="MACE .model file (default: untrained)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--overhead", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--build-mace", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    if args.overhead:
        print(json.dumps(overhead_worker(json.loads(args.overhead))))
        return
    if args.build_mace:
        print(json.dumps({"parameters": build_mace_model(Path(args.build_mace))}))
        return
    rows = overhead_rows([args.steps], args.mace) + model_rows(args.sizes, args.budget, args.mace)
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
