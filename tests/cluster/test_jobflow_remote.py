"""The same small campaign through jobflow-remote: ``ctaflow submit --backend jobflow-remote``
(``submit_flow``), the project's runner started and stopped by the test, a local worker with the
SLURM scheduler (qtoolkit), queue and job store on the MongoDB stand-in; results read back with
``ctaflow query``."""

from __future__ import annotations

import contextlib
import json
import logging
import re

import pytest
import yaml

from tests.cluster import fw
from tests.conftest import REPO

CAMPAIGN = """\
name: small-jfremote
structure: {source: demo}
engines:
  labeller: {kind: mlip}
stages:
  # no minimum check: its rattled re-relaxations are added while the flow runs
  relax: {fmax_ev_per_a: 0.05, max_steps: 60, minimum: {enabled: false}}
execution: {backend: jobflow-remote, project: ctaflowtest, worker: cluster}
store: {kind: mongodb, config_file: jobflow.yaml}
"""


def write_project(folder, server, database, work_dir):
    """The project template with its CHANGE ME values filled in for the local SLURM."""
    project = yaml.safe_load((REPO / "launchpad" / "jobflow_remote_project.yaml").read_text())
    project["name"] = "ctaflowtest"
    worker = project["workers"]["cluster"]
    for key in ("host", "user"):
        worker.pop(key)
    worker.update(type="local", work_dir=str(work_dir), pre_run="export OMP_NUM_THREADS=1")
    worker["resources"] = {
        "partition": "debug",
        "nodes": 1,
        "ntasks": 1,
        "cpus_per_task": 1,
        "time": "00:10:00",
    }
    stores = [
        project["queue"]["store"],
        project["jobstore"]["docs_store"],
        project["jobstore"]["additional_stores"]["data"],
    ]
    for store in stores:
        store.update(host=server.host, port=server.port, database=database)
        store.pop("username")
        store.pop("password")
    project["queue"]["store"]["database"] = f"{database}_queue"
    project["runner"] = {
        "delay_checkout": 1,
        "delay_check_run_status": 1,
        "delay_advance_status": 1,
        "delay_refresh_limited": 5,
        "delay_update_batch": 5,
    }
    folder.mkdir()
    (folder / "ctaflowtest.yaml").write_text(yaml.safe_dump(project))


@pytest.mark.slow
def test_campaign_through_jobflow_remote_on_slurm(
    tmp_path, cluster_env, mongo_server, database, monkeypatch
):
    import jobflow_remote
    from jobflow_remote.jobs.runner import Runner

    folder = tmp_path / "jfremote"
    write_project(folder, mongo_server, database, tmp_path / "jobs")
    monkeypatch.setenv("JFREMOTE_PROJECTS_FOLDER", str(folder))
    monkeypatch.setenv("JFREMOTE_PROJECT", "ctaflowtest")
    monkeypatch.setattr(jobflow_remote.SETTINGS, "projects_folder", str(folder))
    monkeypatch.setattr(jobflow_remote.SETTINGS, "project", "ctaflowtest")
    fw.write_job_store(tmp_path / "jobflow.yaml", mongo_server, database)
    (tmp_path / "campaign.yaml").write_text(CAMPAIGN)

    from ctaflow.execution.jobflow_remote import load_project

    load_project("ctaflowtest").get_job_controller().reset()  # like 'jf admin reset'
    out = fw.ctaflow("submit", "campaign.yaml", "-w", "work", cwd=tmp_path)
    assert "3 jobs added to jobflow-remote" in out
    assert "nothing added" in fw.ctaflow("submit", "campaign.yaml", "-w", "work", cwd=tmp_path)

    with logging_restored():
        Runner(project_name="ctaflowtest").run_all_jobs(max_seconds=240)

    status = fw.ctaflow("status", "-w", "work", cwd=tmp_path)
    assert re.search(r"relax\s+│\s+2", status) and re.search(r"structure\s+│\s+1", status)
    assert "COMPLETED" in status and "FAILED" not in status
    run_info = json.loads((tmp_path / "work" / "ctaflow-run.json").read_text())
    from ctaflow.execution.jobflow_remote import flow_jobs

    jobs = flow_jobs("ctaflowtest", run_info["flow_uuid"])
    assert [j["state"] for j in jobs] == ["COMPLETED"] * 3
    jc = load_project("ctaflowtest").get_job_controller()
    for job in jc.get_jobs_info(flow_ids=[run_info["flow_uuid"]]):  # each ran as a SLURM job
        slurm_id = job.remote.process_id
        assert slurm_id, job
        info = cluster_env.run("scontrol", "show", "job", str(slurm_id))
        assert "JobState=COMPLETED" in info and "ExitCode=0:0" in info

    rows = json.loads(
        fw.ctaflow("query", "-w", "work", "--all-outputs", "--format", "json", cwd=tmp_path)
    )
    names = {(r["stage"], r["name"]) for r in rows}
    assert names == {
        ("structure", "structure"),
        ("relax", "relax (mlip:CHGNet-0.3.0)"),
        ("relax", "relax summary"),
    }
    (summary,) = [r for r in rows if r["name"] == "relax summary"]
    assert summary["energy_ev"] < summary["initial_energy_ev"]


@contextlib.contextmanager
def logging_restored():
    """jobflow-remote's Runner calls ``logging.config.dictConfig`` with
    ``disable_existing_loggers=True``, which silenced every logger created before it (e.g.
    ``ctaflow.structures.order``) for the rest of the pytest session; put them back."""
    loggers = {
        name: lg
        for name, lg in logging.root.manager.loggerDict.items()
        if isinstance(lg, logging.Logger)
    }
    disabled = {name: lg.disabled for name, lg in loggers.items()}
    handlers, level = list(logging.root.handlers), logging.root.level
    try:
        yield
    finally:
        for name, lg in logging.root.manager.loggerDict.items():
            if isinstance(lg, logging.Logger):
                lg.disabled = disabled.get(name, False)
        logging.root.handlers[:] = handlers
        logging.root.setLevel(level)
