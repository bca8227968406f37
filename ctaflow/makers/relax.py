"""The relaxation stage: an engine's relax job, a unit-carrying summary job and, where it is on,
the minimum check.

The minimum check (issue #22) is a dynamic jobflow loop: the relaxed structure is rattled
``rattles`` times (seeded), each copy relaxed again with the same engine and cell constraint; if
one ends more than ``tolerance_ev`` lower, the search continues from the lowest, at most
``max_cycles`` times. The stage's output is the structure kept (the lowest found) with a
:class:`~ctaflow.analysis.minimum.MinimumSummary` saying what was found. Its relaxations run at
the tighter of the stage's force criterion and the check's (0.01 eV/Å by default): at 0.05 eV/Å
relaxations stop on the flat slopes of symmetric saddles and the check cannot tell (measured,
see :mod:`ctaflow.analysis.minimum`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jobflow import Flow, Job, Maker, Response, job
from jobflow.core.job import JobConfig
from jobflow.core.reference import OnMissing
from pymatgen.core import Structure

from ctaflow.analysis.minimum import MinimumCheck, assess_minimum, rattle, summarise_minimum
from ctaflow.analysis.provenance import software_versions
from ctaflow.analysis.relax import RelaxResult, summarise_relaxation
from ctaflow.engines import default_engine
from ctaflow.engines.base import Engine
from ctaflow.engines.params import RelaxParams
from ctaflow.jobs import BULKY_KEYS, result_job


@result_job(RelaxResult)
def relax_summary(
    initial: Structure,
    final: Structure,
    energy_ev: float,
    forces_ev_per_a: list,
    fmax_target_ev_per_a: float,
    engine: dict[str, Any],
    initial_energy_ev: float | None = None,
    n_steps: int | None = None,
    minimum_trial: bool = False,
) -> RelaxResult:
    """Job wrapper around :func:`summarise_relaxation`."""
    result = summarise_relaxation(
        initial,
        final,
        energy_ev,
        forces_ev_per_a,
        fmax_target_ev_per_a,
        engine,
        initial_energy_ev=initial_energy_ev,
        n_steps=n_steps,
        software=software_versions(),
    )
    return result.model_copy(update={"minimum_trial": minimum_trial}) if minimum_trial else result


@dataclass
class RelaxStageMaker(Maker):
    """Relax a structure with an engine and summarise the result.

    Parameters
    ----------
    engine
        Any :class:`ctaflow.engines.base.Engine`; its ``relax_maker`` does the calculation.
    settings
        Relaxation settings (force criterion in eV/Å, steps, cell relaxation, optimiser): any
        :class:`~ctaflow.engines.params.RelaxParams`, e.g. the relax stage's settings.
    """

    engine: Engine = field(default_factory=default_engine)
    settings: RelaxParams = field(default_factory=RelaxParams)
    name: str = "relax"

    def make(self, structure: Structure) -> Flow:
        """Relax ``structure``; the flow's output is a :class:`RelaxResult` (with its minimum
        check when the check is on)."""
        params = self.settings
        checked = minimum_check_on(self.engine, params)
        if checked:
            fmax = min(params.fmax_ev_per_a, params.minimum.fmax_ev_per_a)
            params = params.model_copy(update={"fmax_ev_per_a": fmax})
        jobs = single_relaxation(self.engine, params, structure)
        if not checked:
            return Flow(jobs, output=jobs[-1].output, name=self.name)
        search = minimum_search(jobs[-1].output, self.engine, params)
        search.name = "minimum check"
        return Flow([*jobs, search], output=search.output, name=self.name)


def minimum_check_on(engine: Engine, params: RelaxParams) -> bool:
    """Whether a relaxation with ``params`` on ``engine`` is followed by the minimum check."""
    enabled = params.minimum.enabled
    return engine.checks_minimum_by_default if enabled is None else enabled


def single_relaxation(
    engine: Engine, params: RelaxParams, structure: Structure, trial: bool = False
) -> list:
    """The engine's relax job and its summary job (output: :class:`RelaxResult`; ``trial``:
    marked as a minimum check's rattled copy)."""
    calc = engine.relax_maker(params).make(structure)
    summary = relax_summary_of(engine, calc, structure, params.fmax_ev_per_a, trial)
    summary.name = "relax summary"
    return [calc, summary]


def relax_summary_of(
    engine: Engine, calc: Job, structure: Structure, fmax_ev_per_a: float, trial: bool = False
) -> Job:
    """The :func:`relax_summary` job of the engine's relax job ``calc`` started from
    ``structure``."""
    refs = engine.relax_outputs(calc)
    return relax_summary(
        structure,
        refs["structure"],
        refs["energy_ev"],
        refs["forces_ev_per_a"],
        fmax_ev_per_a,
        engine.describe(),
        initial_energy_ev=refs.get("initial_energy_ev"),
        n_steps=refs.get("n_steps"),
        minimum_trial=trial,
    )


# no output_schema on the loop's jobs: they replace themselves (see active_learning_job)
@job(data=BULKY_KEYS)
def minimum_search(
    reference: RelaxResult,
    engine: Engine,
    params: RelaxParams,
    cycle: int = 0,
    checks: list[MinimumCheck] | None = None,
    first_energy_ev: float | None = None,
) -> Response:
    """Rattle ``reference`` ``params.minimum.rattles`` times, relax every copy, then judge
    (:func:`judge_minimum`); replaces itself by those jobs."""
    m = params.minimum
    jobs, trials = [], []
    for k in range(m.rattles):
        start = rattle(reference.structure, m.rattle_a, seed=m.seed + 1000 * cycle + k)
        trial = single_relaxation(engine, params, start, trial=True)
        for j in trial:
            j.name = f"minimum check {cycle}.{k} {j.name}"
        jobs += trial
        trials.append(trial[-1].output)
    first = reference.energy_ev if first_energy_ev is None else first_energy_ev
    judge = judge_minimum(reference, trials, engine, params, cycle, checks or [], first)
    judge.name = f"minimum check {cycle} verdict"
    return Response(replace=Flow([*jobs, judge], output=judge.output))


@job(data=BULKY_KEYS, config=JobConfig(on_missing_references=OnMissing.NONE))
def judge_minimum(
    reference: RelaxResult,
    trials: list[RelaxResult | None],
    engine: Engine,
    params: RelaxParams,
    cycle: int,
    checks: list[MinimumCheck],
    first_energy_ev: float,
):
    """Compare the re-relaxed copies with ``reference``: keep it (a minimum), continue from the
    lowest copy (another cycle) or, after ``max_cycles``, keep the lowest unconfirmed. A copy
    whose relaxation failed arrives as None and is left out."""
    done = [RelaxResult.model_validate(t) for t in trials if t is not None]
    if not done:
        raise RuntimeError("every re-relaxation of the minimum check failed; see those jobs")
    check = assess_minimum(
        reference.structure,
        reference.energy_ev,
        [t.structure for t in done],
        [t.energy_ev for t in done],
        params.minimum.tolerance_ev,
    )
    checks = [*checks, check]
    kept = reference if check.is_minimum else done[check.lowest_trial]
    if not check.is_minimum and cycle + 1 < params.minimum.max_cycles:
        follow = minimum_search(kept, engine, params, cycle + 1, checks, first_energy_ev)
        follow.name = f"minimum check {cycle + 1}"
        return Response(replace=follow)
    summary = summarise_minimum(checks, first_energy_ev, kept.energy_ev)
    return kept.model_copy(update={"minimum": summary})
