"""Real ctaflow jobs in worker processes give what they give in the runner process."""

from __future__ import annotations

import numpy as np
import pytest

from ctaflow.analysis.chunks import join_chunks
from ctaflow.execution.local import run_flow
from ctaflow.execution.workers import dumps, loads
from ctaflow.store import job_store, state_store
from tests.execution import realjobs


def test_every_demo_campaign_job_pickles_for_a_worker():
    """Plain ``@job`` functions (which stdlib pickle refuses) and maker jobs round-trip."""
    from ctaflow.campaign import load_campaign
    from ctaflow.flows.campaign import build_campaign_flow
    from ctaflow.structures import load_structure
    from tests.conftest import REPO

    settings = load_campaign(REPO / "campaigns" / "demo.yaml")
    built = build_campaign_flow(settings, load_structure(settings.structure))
    jobs = [j for j, _ in built.flow.iterflow()]
    assert len(jobs) == built.n_jobs
    for job in jobs:
        copy = loads(dumps(job))
        assert (copy.uuid, copy.index, copy.name) == (job.uuid, job.index, job.name)
        original = getattr(job.function, "__func__", job.function)
        again = getattr(copy.function, "__func__", copy.function)
        assert getattr(again, "original", again) is getattr(original, "original", original)


@pytest.mark.slow
def test_relaxation_and_replacing_md_in_workers_equal_one_process(tmp_path):
    found = {}
    for workers in (1, 2):
        where = tmp_path / f"w{workers}"
        flow, relax_uuid, md_uuid = realjobs.flow()
        store, states = job_store(None, where), state_store(None, where)
        report = run_flow(flow, store, states, where, workers=workers)
        assert report.ok, report.failed
        relax = store.get_output(relax_uuid, load=True)
        md = store.get_output(md_uuid, load=True)  # the replacement's output (index 2)
        found[workers] = (relax, md, {d["pid"] for d in states.query({})})
    (relax1, md1, pids1), (relax2, md2, pids2) = found[1], found[2]
    assert len(pids1) == 1 and len(pids2) >= 2  # one process vs workers
    assert relax2.energy_ev == relax1.energy_ev
    assert relax2.structure == relax1.structure
    a, b = join_chunks(md1.trajectory), join_chunks(md2.trajectory)
    assert a["positions_a"].shape == (5, 5, 3)  # frames at steps 0, 5, ..., 20; 5 atoms
    assert np.array_equal(a["positions_a"], b["positions_a"])
