"""Jobs in worker processes: they really overlap, give what one process and jobflow's
run_locally give, resume after the runner is killed, and a dead worker fails only its job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from jobflow import Flow, JobStore, job, run_locally
from maggma.stores import MemoryStore
from monty.json import jsanitize

from ctaflow.errors import CtaflowError
from ctaflow.execution.local import COMPLETED, FAILED, RUNNING, run_flow, workdir_lock
from ctaflow.flows.uids import deterministic_uids
from ctaflow.store import job_store, state_store
from tests.conftest import subprocess_env
from tests.execution import toyjobs


@pytest.fixture
def ledger(tmp_path, monkeypatch):
    path = tmp_path / "ledger.txt"
    path.write_text("")
    monkeypatch.setenv("CTAFLOW_TEST_LEDGER", str(path))
    return path


def _runs(ledger) -> list[str]:
    return ledger.read_text().split()


def _outputs(store: JobStore) -> dict:
    """{(job name, index): output} with data-store blobs loaded, JSON-comparable."""
    found = {}
    for doc in store.query({}, properties=["uuid", "index", "name"]):
        every = store.get_output(doc["uuid"], which="all", load=True)
        found[(doc["name"], doc["index"])] = jsanitize(every[doc["index"] - 1], strict=True)
    return found


def test_ready_jobs_run_at_the_same_time(stores, workdir, ledger, tmp_path):
    """Each job waits for the other one to start: both complete only if they overlap."""
    jobs, states = stores
    with deterministic_uids("rendezvous"):
        a = toyjobs.rendezvous("a", "b", str(tmp_path))
        b = toyjobs.rendezvous("b", "a", str(tmp_path))
        flow = Flow([a, b])
    seen = []

    def progress(event, job, report):
        seen.append((event, job.name, [j.name for j in report.running]))

    report = run_flow(flow, jobs, states, workdir, progress=progress, workers=2)
    assert report.ok and report.n_ran == 2 and report.workers == 2
    starts = [running for event, _, running in seen if event == "start"]
    assert sorted(starts[-1]) == ["rendezvous", "rendezvous"]  # both listed as running
    assert report.running == []
    pids = {d["pid"] for d in states.query({})}
    assert len(pids) == 2 and os.getpid() not in pids  # two worker processes, not this one


def test_the_longest_ready_job_starts_first(stores, workdir, ledger):
    """Two dynamic chains made first (smaller keys) keep both workers busy and always have a job
    ready; a job made after them, ready from the start, must not wait until they end (in key
    order it would: each chain's next step has the smaller key)."""
    jobs, states = stores
    with deterministic_uids("longest-ready"):
        x, z = toyjobs.countdown(3, "x", 0.2), toyjobs.countdown(3, "z", 0.2)
        x.name, z.name = "x3", "z3"
        late = toyjobs.named_add(1, 2, "late")
        flow = Flow([x, z, late])
    report = run_flow(flow, jobs, states, workdir, workers=2)
    assert report.ok and report.n_ran == 9
    runs = _runs(ledger)
    assert sorted(runs) == sorted(["late", *(f"{c}{n}" for c in "xz" for n in range(4))])
    assert runs.index("late") < min(runs.index("x1"), runs.index("z1"))


def test_the_job_with_the_longest_chain_waiting_for_it_starts_first(stores, workdir, ledger):
    """Three jobs ready at once for two workers: the one three jobs wait for in a chain starts
    in the first pair, though two jobs without dependents come before it in the flow (and were
    seen ready in the same round)."""
    jobs, states = stores
    with deterministic_uids("critical-path"):
        a1 = toyjobs.named_add(1, 1, "a1", sleep_s=0.3)
        a2 = toyjobs.named_add(1, 2, "a2", sleep_s=0.3)
        b = toyjobs.named_add(1, 3, "b")
        c = toyjobs.named_add(b.output, 1, "c")
        d = toyjobs.named_add(c.output, 1, "d")
        e = toyjobs.named_add(d.output, 1, "e")
        flow = Flow([a1, a2, b, c, d, e])
    report = run_flow(flow, jobs, states, workdir, workers=2)
    assert report.ok and report.n_ran == 6
    runs = _runs(ledger)
    assert runs.index("b") < max(runs.index("a1"), runs.index("a2"))
    assert runs.index("b") < runs.index("c") < runs.index("d") < runs.index("e")


def test_a_chain_of_higher_priority_runs_first_as_it_grows(stores, workdir, ledger):
    """A dynamic chain (each step adds the next: the graph never shows more than one) with
    metadata priority 1 goes ahead of six ready jobs made before it: its four steps have all
    started before the fourth of them. Without the priority it would start after all six (the
    same height and readiness; they come first in the flow)."""
    jobs, states = stores
    with deterministic_uids("priority"):
        fillers = [toyjobs.named_add(1, i, f"f{i}", sleep_s=0.3) for i in range(1, 7)]
        chain = toyjobs.countdown(3, "p", 0.2)
        chain.name = "p3"
        chain.update_metadata({"priority": 1}, dynamic=True)
        flow = Flow([*fillers, chain])
    report = run_flow(flow, jobs, states, workdir, workers=2)
    assert report.ok and report.n_ran == 10
    runs = _runs(ledger)
    assert [r for r in runs if r.startswith("p")] == ["p3", "p2", "p1", "p0"]
    assert runs.index("p0") < runs.index("f4")


def test_a_job_claiming_cores_runs_alone(stores, workdir, ledger, tmp_path):
    """A job whose metadata claims 4 cores (more than the 2 workers: it gets both) starts first
    (a job waits for it) and nothing runs beside it; the two one-core jobs then run together
    (each waits for the other to start)."""
    jobs, states = stores
    with deterministic_uids("cores"):
        a = toyjobs.rendezvous("a", "b", str(tmp_path))
        b = toyjobs.rendezvous("b", "a", str(tmp_path))
        wide = toyjobs.span("wide", 0.5)
        wide.metadata = {"cores": 4}
        after = toyjobs.named_add(wide.output, 1, "after")
        flow = Flow([a, b, wide, after])
    report = run_flow(flow, jobs, states, workdir, workers=2)
    assert report.ok and report.n_ran == 4
    runs = _runs(ledger)
    assert runs[:2] == ["wide:start", "wide:end"]
    assert sorted(runs[2:4]) == ["a", "b"]


def test_the_cpu_time_of_each_job_is_recorded(stores, workdir, ledger):
    """A job's own CPU time and that of a child process it waits for are recorded in its state;
    a job that sleeps records almost none. (``burn`` measures its own CPU in-process: the
    recorded time includes it.)"""
    jobs, states = stores
    with deterministic_uids("cpu"):
        here = toyjobs.burn(0.4)
        child = toyjobs.burn(0.4, in_child=True)
        idle = toyjobs.named_add(1, 1, "idle", sleep_s=0.4)
        here.name, child.name = "here", "child"
        flow = Flow([here, child, idle])
    assert run_flow(flow, jobs, states, workdir, workers=2).ok
    cpu = {d["name"]: d["cpu_s"] for d in states.query({}, ["name", "cpu_s"])}
    assert cpu["here"] >= jobs.get_output(here.uuid) >= 0.4
    assert cpu["child"] >= 0.4  # the child's CPU; the job's own process only waited
    assert jobs.get_output(child.uuid) < 0.3
    assert cpu["idle"] < 0.3


def test_results_equal_one_process_and_run_locally(workdir, ledger, tmp_path):
    """Same outputs (data-store arrays, replace, detour, addition included) three ways."""
    results, stored = {}, {}
    for workers in (1, 2):
        where = tmp_path / f"w{workers}"
        store, states = job_store(None, where), state_store(None, where)
        report = run_flow(toyjobs.fanout(), store, states, where, workers=workers)
        assert report.ok and report.n_ran == report.n_total == 13
        results[workers] = _outputs(store)
        stored[workers] = sorted(
            (d["name"], d["index"], str(d["metadata"])) for d in store.query({})
        )
    reference = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    run_locally(toyjobs.fanout(), store=reference, log=False, ensure_success=True)
    assert results[2] == results[1] == _outputs(reference)
    assert stored[2] == stored[1]
    final = [v for (name, _), v in results[2].items() if name == "gather"]
    assert final == [toyjobs.fanout_total()]  # hand sum, 205
    assert results[2][("table", 1)]["squares"] == [0.0, 1.0, 4.0, 9.0]


def test_sequence_of_events_with_one_worker_is_run_locallys_order(stores, workdir, ledger):
    """workers=1: jobs one at a time, dynamic jobs right after the job that made them."""
    jobs, states = stores
    events = []
    run_flow(
        toyjobs.chain(),
        jobs,
        states,
        workdir,
        progress=lambda e, j, r: events.append(f"{e} {j.name}"),
        workers=1,
    )
    assert events == [
        "start j1",
        "done j1",
        "start j2",
        "done j2",
        "start grow",
        "start grow-a",
        "done grow-a",
        "start grow-b",
        "done grow-b",
        "start store_inputs",
        "done store_inputs",
        "done grow",  # only after the jobs that replaced it
        "start j4",
        "done j4",
    ]


def test_dead_worker_fails_its_job_only(stores, workdir, ledger):
    jobs, states = stores
    with deterministic_uids("die"):
        a = toyjobs.named_add(1, 1, "a")
        doomed = toyjobs.die(a.output)
        after = toyjobs.named_add(doomed.output, 1, "after")
        independent = toyjobs.named_add(5, 5, "independent")
        later = toyjobs.named_add(independent.output, 1, "later")
        flow = Flow([a, doomed, after, independent, later])
    report = run_flow(flow, jobs, states, workdir, workers=2)
    assert [f["name"] for f in report.failed] == ["die"]
    assert "WorkerDied" in report.failed[0]["error"] and "SIGKILL" in report.failed[0]["error"]
    assert report.skipped == ["after"] and report.n_ran == 3
    assert states.query_one({"name": "die"})["state"] == FAILED
    assert jobs.get_output(later.uuid) == 11


def test_stop_children_in_a_worker_stops_only_its_children(stores, workdir, ledger):
    jobs, states = stores
    with deterministic_uids("stop"):
        first = toyjobs.stopper(1)
        child = toyjobs.named_add(first.output, 1, "child")
        other = toyjobs.named_add(2, 2, "other")
        flow = Flow([first, child, other])
    report = run_flow(flow, jobs, states, workdir, workers=2)
    assert report.ok and report.n_ran == 2
    assert "child" not in _runs(ledger) and jobs.get_output(other.uuid) == 4
    # a resumed run reuses the stopper and stops its children again
    ledger.write_text("")
    report = run_flow(flow, jobs, states, workdir, workers=2)
    assert report.ok and report.n_ran == 0 and report.n_reused == 2
    assert _runs(ledger) == []


def test_unpicklable_job_runs_in_the_runner_process(stores, workdir, ledger):
    @job
    def local_double(x):  # defined in a function: no worker can import it
        return 2 * x

    jobs, states = stores
    with deterministic_uids("local"):
        picklable = toyjobs.named_add(1, 2, "picklable")
        doubled = local_double(picklable.output)
        flow = Flow([picklable, doubled])
    report = run_flow(flow, jobs, states, workdir, workers=2)
    assert report.ok and jobs.get_output(doubled.uuid) == 6
    assert states.query_one({"uuid": doubled.uuid})["pid"] == os.getpid()
    assert states.query_one({"uuid": picklable.uuid})["pid"] != os.getpid()


def test_job_a_worker_cannot_import_runs_in_the_runner_process(
    stores, workdir, ledger, monkeypatch
):
    """Its module exists only in this process: it pickles here, a worker cannot load it."""
    import types

    module = types.ModuleType("ctaflow_test_only_here")
    exec("from jobflow import job\n@job\ndef triple(x):\n    return 3 * x\n", module.__dict__)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    jobs, states = stores
    with deterministic_uids("only-here"):
        first = toyjobs.named_add(1, 2, "first")
        tripled = module.triple(first.output)
        flow = Flow([first, tripled])
    report = run_flow(flow, jobs, states, workdir, workers=2)
    assert report.ok and jobs.get_output(tripled.uuid) == 9
    assert states.query_one({"uuid": tripled.uuid})["pid"] == os.getpid()


def test_worker_output_goes_to_the_file_asked_for(stores, workdir, ledger, tmp_path, capfd):
    jobs, states = stores
    with deterministic_uids("shout"):
        flow = Flow([toyjobs.shout("hello from a worker")])
    out = tmp_path / "workers.log"
    assert run_flow(flow, jobs, states, workdir, workers=2, worker_output=out).ok
    text = out.read_text()
    assert "stdout: hello from a worker" in text and "stderr: hello from a worker" in text
    assert "hello from a worker" not in "".join(capfd.readouterr())


def test_second_run_on_a_locked_workdir_is_refused(stores, workdir, ledger):
    jobs, states = stores
    with workdir_lock(workdir), pytest.raises(CtaflowError, match="another ctaflow run"):
        run_flow(toyjobs.pair(), jobs, states, workdir, workers=2)
    assert _runs(ledger) == []


def test_workers_below_one_is_an_error(stores, workdir):
    jobs, states = stores
    with pytest.raises(CtaflowError, match="workers must be 1 or more"):
        run_flow(toyjobs.pair(), jobs, states, workdir, workers=0)


def _gone(pid: int) -> bool:
    """The process exited (a zombie counts: nothing reaps orphans in some containers)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killed_parallel_run_leaves_no_worker_and_resumes(workdir, ledger, sig):
    env = {**subprocess_env(), "CTAFLOW_TEST_LEDGER": str(ledger)}
    cmd = [sys.executable, "-m", "tests.execution.toyjobs", str(workdir), "60", "2", "pair"]
    child = subprocess.Popen(cmd, env=env)
    deadline = time.time() + 120
    while not {"p1", "p2"} <= set(_runs(ledger)):  # both sleeping in workers now
        assert time.time() < deadline and child.poll() is None
        time.sleep(0.2)
    states = state_store(None, workdir)
    states.connect()
    running = {d["name"]: d for d in states.query({"state": RUNNING})}
    assert set(running) == {"p1", "p2"}
    pids = {d["pid"] for d in running.values()}
    assert len(pids) == 2 and child.pid not in pids
    os.kill(child.pid, sig)
    child.wait(timeout=60)
    while not all(_gone(pid) for pid in pids):  # the workers stop by themselves
        assert time.time() < deadline, "worker processes outlived the runner"
        time.sleep(0.2)
    ledger.write_text("")
    jobs = job_store(None, workdir)
    report = run_flow(toyjobs.pair(sleep_s=0), jobs, states, workdir, workers=2)
    assert report.ok and report.n_reused == 0
    assert sorted(_runs(ledger)) == ["p1", "p2", "ptotal"]  # the interrupted jobs ran again
    assert jobs.get_output(toyjobs.pair().jobs[-1].uuid) == 10
    assert {d["state"] for d in states.query({})} == {COMPLETED}
