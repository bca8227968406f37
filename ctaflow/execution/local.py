"""A resumable local runner for jobflow flows, running independent jobs in parallel.

It follows ``jobflow.managers.local.run_locally`` (same job execution, same handling of
replace/detour/addition responses) and adds what a campaign needs:

* **parallel jobs**: jobs whose inputs are ready run at the same time in worker processes
  (:mod:`ctaflow.execution.workers`), one per core by default; ``workers=1`` runs every job in
  this process, one at a time, in the order of ``run_locally``.
* **resume**: a job whose uuid is recorded COMPLETED in the state store and whose output is in
  the job store is skipped. A job is recorded COMPLETED only after the jobs it created
  dynamically have completed, so a run killed at any point (SIGINT, SIGKILL) resumes to the same
  results: unfinished jobs run again from their inputs.
* **a folder per job** under ``WORKDIR/jobs/<stage>/`` named after the job and its uuid.
* **per-job states** (RUNNING, COMPLETED, FAILED, SKIPPED) with error messages, for ``status``.
* **one runner per work directory** (a lock file), so two runs never write the same store; within
  a run only this process writes the stores (workers send their documents back).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ctaflow.errors import CtaflowError
from ctaflow.execution.states import (
    COMPLETED,
    FAILED,
    RUNNING,
    SKIPPED,
    completed_state,
    set_state,
)
from ctaflow.execution.workers import WorkerPool, cpu_seconds, dumps, store_layout
from ctaflow.workdir import workdir_lock

if TYPE_CHECKING:
    from jobflow import Flow, Job, JobStore, Response
    from maggma.core import Store


logger = logging.getLogger(__name__)


@dataclass
class RunReport:
    """What a run did."""

    n_total: int = 0
    n_reused: int = 0
    n_ran: int = 0
    failed: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    #: jobs running now, in the order they started (this process or workers)
    running: list[Job] = field(default_factory=list)
    #: how many jobs may run at the same time
    workers: int = 1
    #: finished jobs run again because their stored outputs failed the check, with the reason
    rerun: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped


ProgressCallback = Callable[[str, "Job", RunReport], None]


def default_workers() -> int:
    """One worker per core this process may use (its CPU affinity, else ``os.cpu_count()``)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def run_flow(
    flow: Flow,
    store: JobStore,
    states: Store,
    workdir: str | Path,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
    worker_output: str | Path | None = None,
    lock_held: bool = False,
) -> RunReport:
    """Run ``flow`` in ``workdir``, reusing every job already completed in ``store``.

    Parameters
    ----------
    flow
        The flow (deterministic uuids make reuse across processes possible).
    store
        Job store receiving the outputs.
    states
        Store of per-job run states (key ``uuid``).
    workdir
        Work directory; each job runs in ``workdir/jobs/<stage>/<name>-<uuid8>-<index>``.
    progress
        Called in this process as ``progress(event, job, report)`` with event "start",
        "reused", "done", "failed" or "skipped"; ``report.n_total`` grows when jobs add jobs and
        ``report.running`` lists the jobs running now (the started one included).
    workers
        How many jobs may run at the same time (None: :func:`default_workers`). With 1 every job
        runs in this process, one after the other in ``run_locally``'s order. With more, jobs whose
        inputs are ready run in as many spawned worker processes, the one most jobs wait for
        in a chain first (see :meth:`_Run._start_ready`), a job claiming ``cores`` in its
        metadata on that many; a job that cannot be pickled or that asks for the store
        (``expose_store``) runs in this process. Only this process writes ``store`` and
        ``states``. Workers start with this process's environment (``OMP_NUM_THREADS``,
        ``CTAFLOW_MODEL_CACHE``, ...) and send their log records to its handlers.
    worker_output
        File receiving the workers' standard output and error, appended (None: this
        process's); keeps a terminal progress display readable.
    lock_held
        The caller already holds the work directory's lock (:func:`ctaflow.store.open_run`);
        otherwise the run takes it.
    """
    workers = default_workers() if workers is None else int(workers)
    if workers < 1:
        raise CtaflowError(f"workers must be 1 or more (got {workers})")
    workdir = Path(workdir).resolve()
    report = RunReport(n_total=count_jobs(flow), workers=workers)
    store.connect()
    states.connect()
    with contextlib.nullcontext() if lock_held else workdir_lock(workdir):
        if workers == 1:
            _Run(store, states, workdir, report, progress, pool=None).execute(flow)
        else:
            with WorkerPool(workers, store_layout(store), worker_output) as pool:
                _Run(store, states, workdir, report, progress, pool).execute(flow)
    return report


@dataclass(eq=False)
class _Node:
    """One job of the run, from the static flow or added by a job's response."""

    job: Job
    parents: list[str]  # as iterflow gives them: decide skip/stop
    deps: set[str]  # uuids that must be finished before it starts
    key: tuple[int, ...]  # run_locally's order: position in its flow, after its owner's
    owner: _Node | None  # the job whose response added it
    job_dir: Path | None = None
    pid: int | None = None
    response: Response | None = None
    diversions: list = field(default_factory=list)  # replace/detour/addition not added yet
    n_added: int = 0  # diversions added so far
    pending: int = 0  # unfinished jobs of the diversion being run
    ok: bool = True  # every job of its diversions completed
    must_run: bool = False  # neither stopped, skipped nor reused
    ready_round: int | None = None  # the scheduling round it was first seen ready in
    cpu_s: float | None = None  # CPU seconds of its own run (workers: measured there)


class _Run:
    """The scheduler of one run: jobs wait until every uuid they depend on is finished (a job
    with diversions finishes after them), then run as long as cores are free (order: see
    :meth:`_start_ready`)."""

    def __init__(
        self,
        store: JobStore,
        states: Store,
        workdir: Path,
        report: RunReport,
        progress: ProgressCallback | None,
        pool: WorkerPool | None,
    ) -> None:
        import itertools

        self.store, self.states, self.workdir = store, states, workdir
        self.report, self.progress, self.pool = report, progress, pool
        self.waiting: list[_Node] = []  # sorted by key
        self.unfinished: dict[str, int] = {}  # uuid -> nodes of that uuid not finished
        self.tasks: dict[int, _Node] = {}  # in worker processes
        self.errored: set[str] = set()
        self.stopped: set[str] = set()
        self._ids = itertools.count()
        self._round = 0  # scheduling rounds so far (one per call of _start_ready)

    def execute(self, flow: Flow) -> None:
        self._add(flow, owner=None)
        while True:
            self._start_ready()
            if not self.tasks:
                break
            for task, outcome in self.pool.wait():
                self._on_outcome(self.tasks.pop(task), outcome)
        if self.waiting:  # only a bug or a dependency cycle through a response gets here
            names = ", ".join(n.job.name for n in self.waiting)
            raise RuntimeError(f"jobs never became ready: {names}")

    def _add(self, flow: Flow, owner: _Node | None) -> int:
        import bisect

        chain, up = set(), owner
        while up is not None:
            chain.add(up.job.uuid)
            up = up.owner
        prefix = () if owner is None else (*owner.key, owner.n_added)
        count = 0
        for count, (job, parents) in enumerate(flow.iterflow(), start=1):
            deps = set(parents)
            if owner is not None:  # a dynamic job may refer to any job of the run
                deps |= {u for u in job.input_uuids if u in self.unfinished}
                deps -= chain  # its owners' outputs are stored already
            node = _Node(job, list(parents), deps, (*prefix, count), owner)
            self.unfinished[job.uuid] = self.unfinished.get(job.uuid, 0) + 1
            bisect.insort(self.waiting, node, key=lambda n: n.key)
        return count

    def _start_ready(self) -> None:
        """Settle ready jobs that need not run, then start ready jobs while cores are free:
        in key order without workers (``run_locally``'s), else the job of the highest
        ``priority`` (job metadata, default 0) first, then the one with the longest chain of
        jobs waiting for it (:meth:`_heights`), then the longest-ready, then key order.

        Chain length is list scheduling along the critical path: the demo's melts, whose
        glasses feed the interfaces that ended the run, waited 30-80 s behind MD extensions
        (8f21d68); spreading jobs over stages first instead cost the demo 11 s (the labelling
        shared the cores with the NEB). Longest-ready among equals: a chain of short steps
        advances as soon as its last step ends. A job whose metadata claims ``cores`` (a
        committee trained side by side) starts when that many workers are idle; the next
        jobs wait for it rather than slow it down as a third process on two cores.

        Priority is for chains the graph cannot show: the jobs of a trained model's stages
        (campaign metadata, see :func:`ctaflow.flows.campaign.build_campaign_flow`) add their
        active-learning rounds and MD extensions one by one as they run. Ordered by height
        alone, the demo's md extensions waited up to 160 s behind universal-MLIP jobs and the
        md stage ran its last 120 s on one core (docs/MEASUREMENTS.md, 2026-12-06)."""
        self._round += 1
        while True:
            ready = []
            for node in self.waiting:
                if not all(self.unfinished[u] == 0 for u in node.deps):
                    continue
                if self._settle(node):
                    break
                if node.ready_round is None:
                    node.ready_round = self._round
                ready.append(node)
            else:
                if not ready:
                    return
                if self.pool is not None:
                    free = self.pool.size - sum(self._cores(n) for n in self.tasks.values())
                    if free <= 0:
                        return
                    if len(ready) > 1:
                        height = self._heights()
                        ready.sort(key=lambda n: (-_priority(n), -height(n), n.ready_round))
                    if self._cores(ready[0]) > free and self.tasks:
                        return  # it waits for cores; nothing starts before it
                self._launch(ready[0])

    def _cores(self, node: _Node) -> int:
        """Workers a job keeps busy (with a pool): its metadata's ``cores`` (default 1), at
        most all."""
        claimed = (node.job.metadata or {}).get("cores", 1)
        return max(1, min(self.pool.size, int(claimed)))

    def _heights(self) -> Callable[[_Node], int]:
        """``height(node)``: the longest chain of waiting jobs that cannot start before ``node``
        ends (0: nothing waits for it). A job added by a response also holds up what waits for
        the job that added it (that job ends after its additions)."""
        waiting_on: dict[str, list[_Node]] = {}
        for node in self.waiting:
            for uuid in node.deps:
                waiting_on.setdefault(uuid, []).append(node)
        memo: dict[str, int] = {}

        def of_uuid(uuid: str) -> int:
            if uuid not in memo:
                memo[uuid] = 0  # a cycle (only a bug makes one) ends here
                memo[uuid] = max((1 + height(n) for n in waiting_on.get(uuid, ())), default=0)
            return memo[uuid]

        def height(node: _Node) -> int:
            best, up = of_uuid(node.job.uuid), node.owner
            while up is not None:
                best, up = max(best, of_uuid(up.job.uuid)), up.owner
            return best

        return height

    def _settle(self, node: _Node) -> bool:
        """Finish a job that needs not run (stopped, skipped, reused); False if it must run."""
        from jobflow.core.reference import OnMissing

        if node.must_run:  # decided before: its parents and its stored state cannot change
            return False
        job = node.job
        if self.stopped.intersection(node.parents):
            self.stopped.add(job.uuid)
            self._finish(node, ok=True)
        elif (
            self.errored.intersection(node.parents)
            and job.config.on_missing_references == OnMissing.ERROR
        ):
            self.errored.add(job.uuid)
            self.report.skipped.append(job.name)
            set_state(self.states, job, SKIPPED, error="a job it depends on failed")
            self._notify("skipped", job)
            self._finish(node, ok=False)
        elif (done := completed_state(self.states, self.store, job, self.report.rerun)) is not None:
            self.report.n_reused += 1
            if done.get("stop_children"):  # it stopped its children when it ran: again
                self.stopped.add(job.uuid)
            self._notify("reused", job)
            self._finish(node, ok=True)
        else:
            node.must_run = True
            return False
        return True

    def _launch(self, node: _Node) -> None:
        job = node.job
        self.waiting.remove(node)
        self.report.running.append(job)
        self._notify("start", job)
        node.job_dir = _job_dir(self.workdir, job)
        payload = None if self.pool is None else self._payload(node)
        if isinstance(payload, bytes):
            task = next(self._ids)
            node.pid = self.pool.next_pid()  # RUNNING is recorded before the job can start
            set_state(self.states, job, RUNNING, job_dir=node.job_dir, pid=node.pid)
            pid = self.pool.submit(task, payload, node.job_dir)
            if pid != node.pid:  # that worker had died: another one runs it
                node.pid = pid
                set_state(self.states, job, RUNNING, job_dir=node.job_dir, pid=pid)
            self.tasks[task] = node
        elif payload is not None:  # its inputs could not be resolved
            self._on_outcome(node, payload)
        else:
            self._run_here(node)

    def _run_here(self, node: _Node) -> None:
        """Run the job in this process, as ``run_locally`` does."""
        job = node.job
        node.pid = os.getpid()
        set_state(self.states, job, RUNNING, job_dir=node.job_dir, pid=node.pid)
        cpu = cpu_seconds()
        try:
            with contextlib.chdir(node.job_dir):
                response = job.run(store=self.store)
        except Exception as exc:  # a failed job must not stop independent jobs
            self._on_outcome(node, ("error", f"{type(exc).__name__}: {exc}", _trace()))
            return
        self._on_outcome(node, ("ran", cpu_seconds() - cpu, response))

    def _payload(self, node: _Node) -> bytes | tuple | None:
        """The job pickled for a worker, with its references resolved here as ``Job.run``
        would; None to run it in this process; an error outcome if resolving failed."""
        import dataclasses

        job = node.job
        if job.config.expose_store:
            return None
        if job.config.resolve_references:
            try:
                wrap = job.config.resolve_references == "both"
                job.resolve_args(store=self.store, wrap_resolved=wrap)
            except Exception as exc:
                return "error", f"{type(exc).__name__}: {exc}", _trace()
            job.config = dataclasses.replace(job.config, resolve_references=False)
        try:
            return dumps(job)
        except Exception as exc:
            logger.warning("%s runs in the runner process: it cannot be pickled (%s)", job, exc)
            return None

    def _on_outcome(self, node: _Node, outcome: tuple) -> None:
        job = node.job
        if outcome[0] == "unloadable":  # the worker cannot import it: run it here
            logger.warning("%s runs in the runner process: %s", job, outcome[1])
            self._run_here(node)
            return
        running = self.report.running
        del running[next(i for i, j in enumerate(running) if j is job)]
        if outcome[0] == "error":
            self._fail(node, outcome[1], outcome[2])
            return
        response, node.cpu_s = outcome[-1], outcome[-2]
        if outcome[0] == "ok":  # from a worker: store what the job wrote
            try:
                _store_documents(self.store, outcome[1], outcome[2])
            except Exception as exc:
                self._fail(node, f"{type(exc).__name__}: {exc}", _trace())
                return
        node.response = response
        node.diversions = [
            extra
            for extra in (response.replace, response.detour, response.addition)
            if extra is not None
        ]
        self._next_diversion(node)

    def _next_diversion(self, node: _Node) -> None:
        """Add the next replace/detour/addition flow of a job; complete it after the last."""
        from jobflow.core.flow import get_flow

        while node.diversions:
            extra = get_flow(node.diversions.pop(0), allow_external_references=True)
            self.report.n_total += count_jobs(extra)
            node.pending = self._add(extra, owner=node)
            node.n_added += 1
            if node.pending:
                return
        stop = bool(node.response.stop_children)
        if stop:
            self.stopped.add(node.job.uuid)
        if node.ok:
            set_state(
                self.states,
                node.job,
                COMPLETED,
                job_dir=node.job_dir,
                pid=node.pid,
                stop_children=stop,
                cpu_s=node.cpu_s,
            )
            self.report.n_ran += 1
            self._notify("done", node.job)
        self._finish(node, node.ok)

    def _fail(self, node: _Node, message: str, trace: str) -> None:
        job = node.job
        self.errored.add(job.uuid)
        (node.job_dir / "ctaflow_error.txt").write_text(trace or message + "\n")
        set_state(self.states, job, FAILED, job_dir=node.job_dir, error=message, pid=node.pid)
        self.report.failed.append(
            {"uuid": job.uuid, "name": job.name, "stage": _stage(job), "error": message}
        )
        self._notify("failed", job)
        self._finish(node, ok=False)

    def _finish(self, node: _Node, ok: bool) -> None:
        if node in self.waiting:
            self.waiting.remove(node)
        self.unfinished[node.job.uuid] -= 1
        owner = node.owner
        if owner is not None:
            owner.ok = owner.ok and ok
            owner.pending -= 1
            if owner.pending == 0:
                self._next_diversion(owner)

    def _notify(self, event: str, job: Job) -> None:
        if self.progress is not None:
            self.progress(event, job, self.report)


def _trace() -> str:
    return traceback.format_exc()


def _store_documents(store: JobStore, docs: list[dict], blobs: dict[str, list[dict]]) -> None:
    """Write what a job wrote in a worker: the blobs first, so a stored output is complete."""
    for name, items in blobs.items():
        if items:
            store.additional_stores[name].update(items, key="blob_uuid")
    if docs:
        store.docs_store.update(docs, key=["uuid", "index"])


def _priority(node: _Node) -> int:
    """A job's scheduling priority: its metadata's ``priority`` (default 0; higher first)."""
    return int((node.job.metadata or {}).get("priority", 0))


def count_jobs(flow: Flow) -> int:
    """Number of jobs in a flow, sub-flows included."""
    from jobflow import Flow

    return sum(count_jobs(item) if isinstance(item, Flow) else 1 for item in flow.jobs)


def _stage(job: Job) -> str:
    return str((job.metadata or {}).get("stage", "misc"))


def _job_dir(workdir: Path, job: Job) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", job.name).strip("_")[:60] or "job"
    path = workdir / "jobs" / _stage(job) / f"{slug}-{job.uuid[:8]}-{job.index}"
    if path.exists():  # leftovers of an interrupted attempt (a dying worker may still write)
        shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    return path
