"""Hand a campaign's jobflow graph to jobflow-remote.

The flow goes to the project's queue database with ``jobflow_remote.submit_flow``; the project's
runner submits the jobs to its worker (SLURM, PBS, shell). Outputs go to the project's
``jobstore``, which must be the campaign's store (same database and collections, see
``launchpad/jobflow_remote_project.yaml``) so that ``ctaflow query`` and ``report`` read them.
A campaign's flow uuid is derived from its fingerprint, so submitting it again adds nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ctaflow.errors import BackendError

if TYPE_CHECKING:
    from jobflow import Flow


def load_project(project: str | None):
    """The jobflow-remote ``Project`` (None: jobflow-remote's default); errors name the fix."""
    try:
        from jobflow_remote.config import ConfigManager
        from jobflow_remote.config.base import ConfigError
    except ImportError:  # pragma: no cover - jobflow-remote is a dependency
        raise BackendError("jobflow-remote is not installed: pip install jobflow-remote") from None
    try:
        return ConfigManager().get_project(project)
    except ConfigError as exc:
        raise BackendError(
            f"jobflow-remote project {project or '(default)'}: {exc}; copy "
            "launchpad/jobflow_remote_project.yaml to ~/.jfremote/<name>.yaml and set "
            "execution.project"
        ) from None


def submit_to_jobflow_remote(flow: Flow, project: str | None, worker: str | None) -> list[str]:
    """Add ``flow`` to the project's queue (once per flow uuid); the db_ids added ([] if the
    flow is already there)."""
    from jobflow_remote import submit_flow

    proj = load_project(project)
    if worker is not None and worker not in proj.workers:
        raise BackendError(
            f"worker '{worker}' is not in jobflow-remote project {proj.name}; its workers: "
            f"{sorted(proj.workers)}"
        )
    if proj.get_job_controller().get_flows_info(flow_ids=[flow.uuid]):
        return []
    return list(submit_flow(flow, worker=worker, project=proj.name))


def flow_jobs(project: str | None, flow_uuid: str) -> list[dict[str, Any]]:
    """One row per job of the flow: db_id, name, stage, state, error."""
    jc = load_project(project).get_job_controller()
    return [
        {
            "db_id": info.db_id,
            "name": info.name,
            "stage": (info.metadata or {}).get("stage") or "-",
            "state": info.state.value,
            "error": (info.error or "").strip().splitlines()[-1] if info.error else None,
        }
        for info in jc.get_jobs_info(flow_ids=[flow_uuid])
    ]
