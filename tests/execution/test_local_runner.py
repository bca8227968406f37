"""The resumable local runner: reuse of finished jobs, failures, dynamic jobs, kill and resume,
in this process (workers=1) and in two worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from ctaflow.errors import CtaflowError
from ctaflow.execution.local import COMPLETED, RUNNING, run_flow, workdir_lock
from ctaflow.store import job_store, state_store
from tests.conftest import subprocess_env
from tests.execution import toyjobs


@pytest.fixture
def ledger(tmp_path, monkeypatch):
    path = tmp_path / "ledger.txt"
    path.write_text("")
    monkeypatch.setenv("CTAFLOW_TEST_LEDGER", str(path))
    return path


@pytest.fixture(params=[1, 2], ids=["inline", "2workers"])
def workers(request) -> int:
    return request.param


def _runs(ledger) -> list[str]:
    return ledger.read_text().split()


def _final(store, flow) -> float:
    return store.get_output(flow.jobs[-1].uuid)


def test_flow_runs_and_result_is_the_hand_sum(stores, workdir, ledger, workers):
    jobs, states = stores
    flow = toyjobs.chain()
    report = run_flow(flow, jobs, states, workdir, workers=workers)
    assert report.ok and report.n_reused == 0
    assert _final(jobs, flow) == 1 + 2 + 3 + 10 + 100 + 0
    assert sorted(_runs(ledger)) == sorted(["j1", "j2", "grow", "grow-a", "grow-b", "j4"])
    # 4 static jobs + the 2 of the replacement + jobflow's store_inputs job that carries the
    # replaced job's uuid (index 2)
    assert report.n_total == report.n_ran == 7
    assert {d["state"] for d in states.query({})} == {COMPLETED}


def test_rebuilt_flow_reuses_everything(stores, workdir, ledger, workers):
    jobs, states = stores
    run_flow(toyjobs.chain(), jobs, states, workdir, workers=workers)
    ledger.write_text("")
    rebuilt = toyjobs.chain()  # same seed: same uuids
    report = run_flow(rebuilt, jobs, states, workdir, workers=workers)
    assert _runs(ledger) == []
    assert report.n_reused == 4 and report.n_ran == 0
    assert _final(jobs, rebuilt) == 116


def test_other_seed_recomputes(stores, workdir, ledger):
    jobs, states = stores
    run_flow(toyjobs.chain("a"), jobs, states, workdir)
    ledger.write_text("")
    run_flow(toyjobs.chain("b"), jobs, states, workdir)
    assert len(_runs(ledger)) == 6


def test_failure_skips_dependents_runs_independent_and_rerun_fixes(
    stores, workdir, ledger, workers
):
    from jobflow import Flow

    from ctaflow.flows.uids import deterministic_uids

    jobs, states = stores

    def build(limit):
        with deterministic_uids(f"fail-{limit}"):
            a = toyjobs.named_add(1, 1, "a")
            check = toyjobs.fail_if(a.output, limit)
            after = toyjobs.named_add(check.output, 1, "after")
            independent = toyjobs.named_add(5, 5, "independent")
            return Flow([a, check, after, independent])

    report = run_flow(build(1), jobs, states, workdir, workers=workers)
    assert [f["name"] for f in report.failed] == ["fail_if"]
    assert "value 2 above 1" in report.failed[0]["error"]
    assert report.skipped == ["after"]
    assert "independent" in _runs(ledger)
    failed = states.query_one({"name": "fail_if"})
    assert failed["state"] == "FAILED" and "ValueError" in failed["error"]
    assert (workdir / "jobs").exists()
    # a rerun of the same flow retries only what did not complete
    ledger.write_text("")
    report = run_flow(build(1), jobs, states, workdir, workers=workers)
    assert sorted(_runs(ledger)) == ["fail_if"]
    assert report.n_reused == 2


def test_second_runner_on_same_workdir_is_refused(workdir):
    with (
        workdir_lock(workdir),
        pytest.raises(CtaflowError, match="another ctaflow run"),
        workdir_lock(workdir),
    ):
        pass


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killed_run_resumes_to_the_same_result(workdir, ledger, sig, workers):
    env = {**subprocess_env(), "CTAFLOW_TEST_LEDGER": str(ledger)}
    cmd = [sys.executable, "-m", "tests.execution.toyjobs", str(workdir), "30", str(workers)]
    child = subprocess.Popen(cmd, env=env)
    deadline = time.time() + 60
    while "j1" not in _runs(ledger) or "j2" not in _runs(ledger):  # j2 is sleeping now
        assert time.time() < deadline and child.poll() is None
        time.sleep(0.2)
    os.kill(child.pid, sig)
    child.wait(timeout=30)
    states = state_store(None, workdir)
    states.connect()
    assert states.query_one({"name": "j1"})["state"] == COMPLETED
    assert states.query_one({"name": "j2"})["state"] == RUNNING  # interrupted
    # resume in this process with no sleep: j1 reused, j2 onwards run again
    ledger.write_text("")
    jobs = job_store(None, workdir)
    flow = toyjobs.chain(sleep_s=30)
    flow_fast = toyjobs.chain(sleep_s=0)
    assert [j.uuid for j in flow.jobs] == [j.uuid for j in flow_fast.jobs]
    report = run_flow(flow_fast, jobs, states, workdir, workers=workers)
    assert report.ok
    assert "j1" not in _runs(ledger) and "j2" in _runs(ledger)
    assert _final(jobs, flow_fast) == 116
