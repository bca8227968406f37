"""One melt–quench sample: its chain of jobs, its checks and its retries.

A sample is melt (random start: its own; crystal start: the composition's shared melt) → hold
→ quench → relaxation → :func:`amorphous_sample` (the checks of
:mod:`ctaflow.analysis.amorphous`) → :func:`sample_retry`. A sample that fails a check is made
again with a new seed while ``sample_retries`` allows (:func:`sample_retry` replaces itself by a
new chain); the failed attempts travel with the last one, so the report shows every attempt.
"""

from __future__ import annotations

import math
from typing import Any

from jobflow import Flow, Response, job
from jobflow.core.job import JobConfig
from jobflow.core.reference import OnMissing, OutputReference

from ctaflow.analysis.active_learning import worst_trust
from ctaflow.analysis.amorphous import (
    AmorphousSample,
    SampleAttempt,
    checks_from_runs,
    network_species,
    sample_status,
)
from ctaflow.analysis.chunks import join_chunks
from ctaflow.analysis.relax import RelaxResult
from ctaflow.campaign.stages import AmorphousStageSettings
from ctaflow.engines.base import Engine
from ctaflow.engines.params import MDControls, MDSegment, steps_for
from ctaflow.jobs import result_job
from ctaflow.makers.common import random_packing_job
from ctaflow.makers.relax import RelaxStageMaker

#: a summary job runs even when some of its inputs failed (they arrive as None)
TOLERANT = JobConfig(on_missing_references=OnMissing.NONE)

#: seed offset of a sample's next attempt (samples of one composition differ by 1, compositions
#: by 1000)
ATTEMPT_SEED_STRIDE = 100_000


def _positions(md: Any) -> Any:
    return join_chunks(md.trajectory)["positions_a"]


@result_job(AmorphousSample, config=TOLERANT)
def amorphous_sample(
    crystal: RelaxResult | None,
    melt: Any,
    hold: Any,
    glass: RelaxResult | None,
    index: int,
    seed: int,
    settings: dict,
    quench: Any = None,
) -> AmorphousSample:
    """Checks and energy of one sample; a failed or skipped run arrives as None. The committee's
    judgement of the melt, hold and quench (when the engine has one) travels with it."""
    if crystal is None or melt is None or hold is None or glass is None:
        missing = [
            name
            for name, value in (
                ("crystalline reference", crystal),
                ("melt", melt),
                ("hold/quench", hold),
                ("relaxation", glass),
            )
            if value is None
        ]
        return AmorphousSample(
            index=index, seed=seed, status="failed", reason=f"no result from {', '.join(missing)}"
        )
    species = network_species(crystal.structure, settings.get("network_species"))
    melted = _positions(melt)
    if settings.get("melt_start") == "random":  # the first half lets the random start collapse:
        melted = melted[len(melted) // 2 :]  # the melted check counts the liquid's own diffusion
    checks = checks_from_runs(
        crystal.structure,
        glass.structure,
        [melted, _positions(hold)],
        hold.mean_temperature_k,
        settings["melt_temperature_k"],
        species,
        settings["min_msd_a2"],
        settings["max_long_range_order"],
    )
    status, reason = sample_status(checks)
    if not math.isfinite(glass.energy_per_atom_ev):
        status, reason = "unstable", "non-finite energy after relaxation"
    return AmorphousSample(
        index=index,
        seed=seed,
        status=status,
        reason=reason,
        energy_ev=glass.energy_ev,
        energy_per_atom_ev=glass.energy_per_atom_ev,
        delta_e_mev_per_atom=1000.0 * (glass.energy_per_atom_ev - crystal.energy_per_atom_ev),
        relax_converged=glass.converged,
        max_force_ev_per_a=glass.max_force_ev_per_a,
        volume_per_atom_a3=glass.volume_a3 / glass.n_atoms,
        structure=glass.structure,
        checks=checks,
        trust=worst_trust([getattr(md, "uncertainty", None) for md in (melt, hold, quench)]),
    )


def melt_quench_md(
    engine: Engine, st: AmorphousStageSettings, name: str, t_end: float, ps: float, seed: int,
    start: Any,
):  # fmt: skip
    """One MD segment of the melt–quench from the melt temperature to ``t_end``."""
    controls = MDControls(
        timestep_fs=st.timestep_fs,
        sample_every=st.sample_every,
        langevin_friction_per_ps=st.langevin_friction_per_ps,
        barostat=st.barostat,
        barostat_damping_fs=st.barostat_damping_fs,
    )
    hot = st.melt_temperature_k
    segment = MDSegment(name, st.ensemble, hot, t_end, ps, st.pressure_gpa)
    n_steps = steps_for(segment.duration_ps, st.timestep_fs, st.sample_every)
    return engine.md_maker(segment, n_steps, seed, controls).make(start)


def sample_chain(
    engine: Engine,
    st: AmorphousStageSettings,
    crystal: Any,
    shared_melt: Any,
    index: int,
    seed: int,
    tag: str,
    attempt: int = 0,
) -> tuple[list, Any]:
    """The jobs of one attempt of sample ``index`` and its check job (last). ``crystal``: the
    crystalline reference's RelaxResult (or a reference to it); ``shared_melt``: the
    composition's melt (crystal start) or None (random start: this attempt melts its own)."""
    hot = st.melt_temperature_k
    label = f"sample {index}" + (f" attempt {attempt + 1}" if attempt else "")
    jobs = []
    melt = shared_melt
    if melt is None:
        start = random_packing_job(crystal.structure, st.random_min_distance_fraction, seed)
        melt = melt_quench_md(engine, st, "melt", hot, st.melt_ps, seed, start.output)
        start.name, melt.name = f"{label} random start{tag}", f"{label} melt{tag}"
        jobs += [start, melt]
    melt_output = melt if isinstance(melt, OutputReference) else melt.output
    hold = melt_quench_md(engine, st, "hold", hot, st.hold_ps, seed, melt_output.final_structure)
    quench_ps = (hot - st.quench_end_temperature_k) / st.quench_rate_k_per_ps
    quench = melt_quench_md(
        engine, st, "quench", st.quench_end_temperature_k, quench_ps, seed,
        hold.output.final_structure,
    )  # fmt: skip
    glass = RelaxStageMaker(engine=engine, settings=st.relax_settings()).make(
        quench.output.final_structure
    )
    settings = st.model_dump(mode="json")
    check = amorphous_sample(
        crystal, melt_output, hold.output, glass.output, index, seed, settings,
        quench=quench.output,
    )  # fmt: skip
    for step, j in (("hold", hold), ("quench", quench), ("relax", glass), ("checks", check)):
        j.name = f"{label} {step}{tag}"
    return [*jobs, hold, quench, glass, check], check


# no output_schema: it replaces itself (as the MD loops of ctaflow.makers.md)
@job(config=TOLERANT)
def sample_retry(
    sample: AmorphousSample | None,
    crystal: RelaxResult | None,
    engine: Engine,
    settings: AmorphousStageSettings,
    index: int,
    seed: int,
    tag: str,
    shared_melt_uuid: str | None = None,
    earlier: list[SampleAttempt] | None = None,
):
    """The sample when it passed its checks, when ``settings.sample_retries`` attempts were
    made again already, or when there is no crystal to start from; else this job is replaced
    by a new attempt (seed + :data:`ATTEMPT_SEED_STRIDE`) and its own retry."""
    if sample is None:  # the check job itself failed
        sample = AmorphousSample(index=index, seed=seed, status="failed", reason="job failed")
    attempts = list(earlier or [])
    if sample.status == "ok" or len(attempts) >= settings.sample_retries or crystal is None:
        return sample.model_copy(update={"attempts": attempts})
    attempts.append(SampleAttempt(seed=sample.seed, status=sample.status, reason=sample.reason))
    seed = sample.seed + ATTEMPT_SEED_STRIDE
    melt = None if shared_melt_uuid is None else OutputReference(shared_melt_uuid)
    jobs, check = sample_chain(engine, settings, crystal, melt, index, seed, tag, len(attempts))
    retry = sample_retry(
        check.output, crystal, engine, settings, index, seed, tag, shared_melt_uuid, attempts
    )
    retry.name = f"sample {index} retry {len(attempts) + 1}{tag}"
    return Response(replace=Flow([*jobs, retry], output=retry.output))
