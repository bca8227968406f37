"""The local runner's per-job states (``ctaflow_jobs``: one document per job uuid and index),
which ``ctaflow status`` reads and a resumed run trusts."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctaflow.verify import check_job_outputs

if TYPE_CHECKING:
    from jobflow import Job, JobStore
    from maggma.core import Store

logger = logging.getLogger(__name__)

COMPLETED, FAILED, RUNNING, SKIPPED = "COMPLETED", "FAILED", "RUNNING", "SKIPPED"


def completed_state(
    states: Store, store: JobStore, job: Job, rerun: list[str]
) -> dict[str, Any] | None:
    """The recorded state of a job recorded COMPLETED whose outputs are intact (document and
    blobs readable, checksums right, output valid): then it is reused; None otherwise (a damaged
    one runs again, and ``rerun`` gets why)."""
    doc = states.query_one({"uuid": job.uuid, "index": job.index})
    if not doc or doc.get("state") != COMPLETED:
        return None
    problems = check_job_outputs(store, job.uuid)
    if problems:
        why = "; ".join(p.what for p in problems)
        logger.warning("rerunning %s (%s): %s", job.name, job.uuid, why)
        rerun.append(f"{job.name}: {why}")
        return None
    return doc


def set_state(
    states: Store,
    job: Job,
    state: str,
    job_dir: Path | None = None,
    error: str | None = None,
    pid: int | None = None,
    stop_children: bool = False,
    cpu_s: float | None = None,
) -> None:
    """Record a job's state; ``pid``: the process that ran it (default: this one). The time it
    became RUNNING stays in ``started_at`` (``ctaflow status`` shows each stage's times);
    ``stop_children``: it finished asking to stop its children (a resumed run does so too);
    ``cpu_s``: CPU seconds the job used (its process and the processes it waited for; the
    job alone, without the jobs it added)."""
    meta = job.metadata or {}
    now = datetime.now(UTC).isoformat()
    before = states.query_one({"uuid": job.uuid, "index": job.index}, ["started_at"]) or {}
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
            "pid": pid or os.getpid(),
            "started_at": now if state == RUNNING else before.get("started_at"),
            "updated_at": now,
            "stop_children": stop_children,
            "cpu_s": cpu_s,
        },
        key=["uuid", "index"],
    )
