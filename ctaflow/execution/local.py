"""A resumable local runner for jobflow flows.

It follows ``jobflow.managers.local.run_locally`` (same job execution, same handling of
replace/detour/addition responses) and adds what a campaign needs:

* **resume**: a job whose uuid is recorded COMPLETED in the state store and whose output is in
  the job store is skipped. A job is recorded COMPLETED only after the jobs it created
  dynamically have completed, so a run killed at any point (SIGINT, SIGKILL) resumes to the same
  results: unfinished jobs run again from their inputs.
* **a folder per job** under ``WORKDIR/jobs/<stage>/`` named after the job and its uuid.
* **per-job states** (RUNNING, COMPLETED, FAILED, SKIPPED) with error messages, for ``status``.
* **one runner per work directory** (a lock file), so two runs never write the same store.
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
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ctaflow.workdir import workdir_lock

if TYPE_CHECKING:
    from jobflow import Flow, Job, JobStore, Response
    from maggma.core import Store

logger = logging.getLogger(__name__)

COMPLETED, FAILED, RUNNING, SKIPPED = "COMPLETED", "FAILED", "RUNNING", "SKIPPED"


@dataclass
class RunReport:
    """What a run did."""

    n_total: int = 0
    n_reused: int = 0
    n_ran: int = 0
    failed: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped


ProgressCallback = Callable[[str, "Job", RunReport], None]


def run_flow(
    flow: Flow,
    store: JobStore,
    states: Store,
    workdir: str | Path,
    progress: ProgressCallback | None = None,
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
        Work directory; each job runs in ``workdir/jobs/<stage>/<name>-<uuid8>``.
    progress
        Called as ``progress(event, job, report)`` with event "start", "reused", "done",
        "failed" or "skipped"; ``report.n_total`` grows when jobs add jobs.
    """
    from jobflow.core.reference import OnMissing

    workdir = Path(workdir).resolve()
    report = RunReport(n_total=count_jobs(flow))
    store.connect()
    states.connect()
    errored: set[str] = set()
    stopped: set[str] = set()

    def notify(event: str, job: Job) -> None:
        if progress is not None:
            progress(event, job, report)

    def run_job(job: Job, parents: list[str]) -> bool:
        if stopped.intersection(parents):
            stopped.add(job.uuid)
            return True
        if errored.intersection(parents) and job.config.on_missing_references == OnMissing.ERROR:
            errored.add(job.uuid)
            report.skipped.append(job.name)
            _set_state(states, job, SKIPPED, error="a job it depends on failed")
            notify("skipped", job)
            return False
        if _is_completed(states, store, job):
            report.n_reused += 1
            notify("reused", job)
            return True

        notify("start", job)
        job_dir = _job_dir(workdir, job)
        _set_state(states, job, RUNNING, job_dir=job_dir)
        try:
            with contextlib.chdir(job_dir):
                response = job.run(store=store)
        except Exception as exc:  # a failed job must not stop independent jobs
            errored.add(job.uuid)
            message = f"{type(exc).__name__}: {exc}"
            (job_dir / "ctaflow_error.txt").write_text(traceback.format_exc())
            _set_state(states, job, FAILED, job_dir=job_dir, error=message)
            report.failed.append(
                {"uuid": job.uuid, "name": job.name, "stage": _stage(job), "error": message}
            )
            notify("failed", job)
            return False

        ok = _run_diversions(response)
        if response.stop_children:
            stopped.add(job.uuid)
        if ok:
            _set_state(states, job, COMPLETED, job_dir=job_dir)
            report.n_ran += 1
            notify("done", job)
        return ok

    def _run_diversions(response: Response) -> bool:
        ok = True
        for extra in (response.replace, response.detour, response.addition):
            if extra is not None:
                from jobflow.core.flow import get_flow

                extra_flow = get_flow(extra, allow_external_references=True)
                report.n_total += count_jobs(extra_flow)
                ok = run_graph(extra_flow) and ok
        return ok

    def run_graph(graph: Flow) -> bool:
        ok = True
        for job, parents in graph.iterflow():
            ok = run_job(job, parents) and ok
        return ok

    with workdir_lock(workdir):
        run_graph(flow)
    return report


def count_jobs(flow: Flow) -> int:
    """Number of jobs in a flow, sub-flows included."""
    from jobflow import Flow

    return sum(count_jobs(item) if isinstance(item, Flow) else 1 for item in flow.jobs)


def _stage(job: Job) -> str:
    return str((job.metadata or {}).get("stage", "misc"))


def _job_dir(workdir: Path, job: Job) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", job.name).strip("_")[:60] or "job"
    path = workdir / "jobs" / _stage(job) / f"{slug}-{job.uuid[:8]}-{job.index}"
    if path.exists():  # leftovers of an interrupted attempt
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def _is_completed(states: Store, store: JobStore, job: Job) -> bool:
    doc = states.query_one({"uuid": job.uuid, "index": job.index})
    if not doc or doc.get("state") != COMPLETED:
        return False
    return store.query_one({"uuid": job.uuid}, properties=["uuid"]) is not None


def _set_state(
    states: Store, job: Job, state: str, job_dir: Path | None = None, error: str | None = None
) -> None:
    meta = job.metadata or {}
    states.update(
        {
            "uuid": job.uuid,
            "index": job.index,
            "name": job.name,
            "state": state,
            "stage": meta.get("stage"),
            "campaign": meta.get("campaign"),
            "campaign_fingerprint": meta.get("campaign_fingerprint"),
            "composition": meta.get("composition"),
            "engine": meta.get("engine"),
            "job_dir": str(job_dir) if job_dir else None,
            "error": error,
            "pid": os.getpid(),
            "updated_at": datetime.now(UTC).isoformat(),
        },
        key=["uuid", "index"],
    )
