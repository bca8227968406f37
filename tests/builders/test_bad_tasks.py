"""Bad or incomplete tasks are skipped with a reason in the derived document; the build goes on."""

from __future__ import annotations

import copy
from datetime import datetime

import pytest
from jobflow import Flow, job
from pydantic import BaseModel

from ctaflow.analysis.transport_summary import TransportSummary
from ctaflow.builders import RelaxBuilder, TransportBuilder, run_builder
from ctaflow.builders.base import StageBuilder
from ctaflow.builders.schemas import DerivedDoc
from ctaflow.store import job_store, state_store
from tests.builders.conftest import (
    ENGINE_A,
    derived_docs,
    make_builder,
    meta,
    relax_stage,
    run,
    transport_stage,
)


def test_output_with_missing_fields_is_skipped_and_the_group_still_built(filled):
    jobs = job_store(None, filled)
    jobs.connect()
    good = jobs.query_one({"metadata.engine": ENGINE_A, "output.@class": "TransportSummary"})
    broken = copy.deepcopy(good)
    del broken["_id"], broken["output"]["results"]
    broken.update(uuid="broken-task", completed_at=datetime.now().isoformat())
    jobs.update(broken)

    stats = run_builder(make_builder(TransportBuilder, filled))
    assert stats.n_tasks == 6 and stats.n_groups == 2
    docs_a = [d for d in derived_docs(filled, "transport") if d["engine"] == ENGINE_A]
    assert len(docs_a) == 3
    for doc in docs_a:
        assert doc["state"] == "successful"
        assert doc["temperatures_k"] == [500.0, 600.0]  # the two good runs are used
        (skip,) = doc["skipped"]
        assert skip["uuid"] == "broken-task"
        assert skip["reason"] == "output is not a valid TransportSummary: results: Field required"
        assert "broken-task" in [t["uuid"] for t in doc["tasks"]]  # seen: not rebuilt again
        assert "broken-task" not in doc["task_uuids"]
    assert run_builder(make_builder(TransportBuilder, filled)).n_groups_built == 0


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # kinisi on ions that never move
def test_incomplete_analysis_and_failed_job(workdir):
    # 600 K: the pillar Li sit exactly still, kinisi cannot fit them (the summary says why);
    # 700 K: a production run without mobile sites, so the transport job raises (FAILED, no
    # output) and the Arrhenius job after it is skipped by the runner.
    flow = transport_stage([600.0, 700.0], ENGINE_A, rattle_a=0.0)
    no_mobile = flow.jobs[1].function_args[0]
    no_mobile.final_structure.remove_site_property("site_class")
    run(flow, workdir)
    states = state_store(None, workdir)
    states.connect()
    assert sorted(d["state"] for d in states.query({})) == ["COMPLETED", "FAILED", "SKIPPED"]

    stats = run_builder(make_builder(TransportBuilder, workdir))
    assert (stats.n_tasks, stats.n_groups_built) == (1, 1)  # the failed job left no output
    docs = {d["site_class"]: d for d in derived_docs(workdir, "transport")}
    assert set(docs) == {None, "mobile", "pillar"}
    assert docs["pillar"]["points"] == [] and docs["pillar"]["arrhenius_diffusivity"] is None
    (skip,) = docs["pillar"]["skipped"]
    assert skip["reason"].startswith("not fitted at 600 K: ValueError")
    assert docs["mobile"]["temperatures_k"] == [600.0]
    assert docs["mobile"]["arrhenius_diffusivity"] is None
    assert docs["mobile"]["status"] == "not fitted"
    assert "1 temperature(s) passed the checks, 3 needed" in docs["mobile"]["reasons"][0]


def test_unconverged_relaxation_is_kept_and_flagged(workdir):
    run(relax_stage(forces=((0.0, 0.0, 0.5), (0.0, 0.0, -0.5))), workdir)
    run_builder(make_builder(RelaxBuilder, workdir))
    (doc,) = derived_docs(workdir, "relax")
    assert doc["converged"] is False and doc["max_force_ev_per_a"] == 0.5
    assert doc["notes"] == ["not converged: max force 0.5 eV/Å > 0.02 eV/Å"]


class _Fragile(StageBuilder):
    """A builder whose analysis raises on every group."""

    stage = "transport"
    output_schema = TransportSummary
    document = DerivedDoc
    collection = "fragile"

    def derive(self, tasks):
        raise ZeroDivisionError("analysis bug")


def test_a_builder_error_is_recorded_not_raised_and_retried_on_request(filled):
    builder = make_builder(_Fragile, filled)
    stats = run_builder(builder)
    assert stats.n_groups_built == 2
    docs = derived_docs(filled, "fragile")
    assert [d["state"] for d in docs] == ["failed", "failed"]
    assert {d["error"] for d in docs} == {"ZeroDivisionError: analysis bug"}
    assert run_builder(builder).n_groups_built == 0  # maggma default: failed groups stay
    builder.retry_failed = True
    assert run_builder(builder).n_groups_built == 2


class _BarrierDoc(DerivedDoc):
    hop_label: str | None = None
    forward_barrier_ev: float | None = None


class _Hop(BaseModel):
    """Stand-in for the NEB stage's output (being written): one hop's barriers."""

    species: str
    hop_label: str
    forward_barrier_ev: float
    converged: bool


@job
def _neb(hop: str, barrier_ev: float, converged: bool) -> _Hop:
    return _Hop(species="Na", hop_label=hop, forward_barrier_ev=barrier_ev, converged=converged)


class _Barriers(StageBuilder):
    """What a barrier builder looks like: one short class."""

    stage = "neb"
    output_schema = _Hop
    document = _BarrierDoc
    collection = "barriers_test"
    sub_keys = ("hop_label",)

    def problem(self, output: _Hop) -> str | None:
        return None if output.converged else f"NEB of {output.hop_label} did not converge"

    def derive(self, tasks):
        return [
            {"hop_label": t.output.hop_label, "forward_barrier_ev": t.output.forward_barrier_ev}
            for t in tasks
        ]


@pytest.mark.filterwarnings("ignore:Some jobs are not connected")
def test_a_rejected_output_is_skipped_with_the_stage_reason(workdir):
    flow = Flow([_neb("a", 0.3, True), _neb("b", 9.9, False)])
    flow.update_metadata(meta("neb", ENGINE_A))
    run(flow, workdir)
    run_builder(make_builder(_Barriers, workdir))
    (doc,) = derived_docs(workdir, "barriers_test")
    assert (doc["hop_label"], doc["forward_barrier_ev"]) == ("a", 0.3)
    (skip,) = doc["skipped"]
    assert skip["reason"] == "NEB of b did not converge"
