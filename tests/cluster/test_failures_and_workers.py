"""Failures on the cluster: a job that raises is FIZZLED and reported with its stage and error, a
job whose process dies (exit 3 under SLURM: what a walltime kill looks like to FireWorks) is found
by detect_lostruns; `ctaflow rerun` runs both again and the rest of the graph goes on. Two
concurrent rlaunch workers on one LaunchPad never run a job twice."""

from __future__ import annotations

import re
import subprocess
from collections import Counter

import pytest

from tests.cluster import fw, jobs
from tests.conftest import CTAFLOW, subprocess_env


@pytest.fixture
def ledger(tmp_path, monkeypatch):
    path = tmp_path / "ledger.txt"
    path.write_text("")
    monkeypatch.setenv("CTAFLOW_TEST_LEDGER", str(path))
    return path


def _setup(tmp_path, mongo_server, database, fingerprint):
    """LaunchPad + MongoDB job store + a work directory as 'ctaflow submit' leaves it."""
    from fireworks import LaunchPad

    from ctaflow.campaign.execution import StoreSettings
    from ctaflow.execution.fireworks import ConfiguredJobStore
    from ctaflow.workdir import write_run_info

    lp_file = fw.write_launchpad(tmp_path / "my_launchpad.yaml", mongo_server, database)
    store_file = fw.write_job_store(tmp_path / "jobflow.yaml", mongo_server, database)
    lp = LaunchPad.from_file(str(lp_file))
    lp.reset("", require_password=False)
    settings = StoreSettings(kind="mongodb", config_file=store_file)
    workdir = tmp_path / "work"
    write_run_info(
        workdir,
        {
            "campaign": "toy",
            "fingerprint": fingerprint,
            "store": settings.model_dump(mode="json"),
            "backend": "fireworks",
            "launchpad_file": str(lp_file),
        },
    )
    return lp, lp_file, ConfiguredJobStore.from_settings(settings, workdir), workdir


def ctaflow(*args):
    proc = subprocess.run(
        [CTAFLOW, *args], capture_output=True, text=True, env=subprocess_env(), timeout=300
    )
    assert proc.returncode == 0, f"ctaflow {args}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.mark.slow
def test_failed_and_lost_jobs_are_reported_and_rerun(
    tmp_path, cluster_env, mongo_server, database, ledger
):
    from fireworks import FWorker
    from fireworks.queue.queue_launcher import rapidfire

    from ctaflow.execution.fireworks import submit_to_fireworks

    lp, lp_file, store, workdir = _setup(tmp_path, mongo_server, database, "fp-failures")
    flaky_marker, dies_marker = tmp_path / "FLAKY", tmp_path / "DIES"
    flaky_marker.touch()
    dies_marker.touch()
    report = submit_to_fireworks(
        jobs.failing_flow(flaky_marker, dies_marker), lp, store, "toy", "fp-failures"
    )
    by_name = {lp.get_fw_by_id(i).name: i for i in report.fw_ids}
    launch_dir = tmp_path / "launches"
    launch_dir.mkdir()

    def queue_everything(expected: dict[str, str]):
        rapidfire(
            lp,
            FWorker(),
            fw.slurm_adapter(lp_file),
            launch_dir=str(launch_dir),
            reserve=True,
            sleep_time=1,
            timeout=120,
        )
        fw.wait_for(
            lambda: (
                {n: s for n, s in _named_states(lp, by_name).items() if n in expected} == expected
            ),
            90,
            f"states {expected}",
        )
        fw.wait_for(lambda: not cluster_env.run("squeue", "-h").strip(), 60, "an empty queue")

    queue_everything(
        {
            "start": "COMPLETED",
            "flaky": "FIZZLED",
            "after": "WAITING",
            "independent": "COMPLETED",
            "dies": "RUNNING",
        }
    )
    (dies_job,) = [t for t in fw.launch_timings(lp, [by_name["dies"]])]
    info = cluster_env.run("scontrol", "show", "job", dies_job["slurm_job_id"])
    assert "JobState=FAILED" in info and "ExitCode=3:0" in info  # SLURM saw the process die

    status = ctaflow("status", "-w", str(workdir), "--lost-after", "1")
    assert (
        f"FIZZLED compute/flaky (fw_id {by_name['flaky']}): RuntimeError: flaky job: FLAKY "
        "is present" in status
    )
    assert f"LOST compute/dies (fw_id {by_name['dies']}): RUNNING without a ping for 1 s" in status
    assert re.search(r"analyse\s+│\s+0\s+│\s+0\s+│\s+1\s+│\s+0", status)  # after: WAITING

    flaky_marker.unlink()  # the user fixes the cause, then reruns
    dies_marker.unlink()
    rerun = ctaflow("rerun", "-w", str(workdir), "--lost-after", "1")
    assert "2 fireworks set to run again" in rerun
    queue_everything({name: "COMPLETED" for name in by_name})

    runs = Counter(ledger.read_text().split())
    assert runs == {"start": 1, "independent": 1, "flaky": 2, "dies": 2, "after": 1}
    assert store.get_output(lp.get_fw_by_id(by_name["after"]).tasks[0]["job"].uuid) == 21
    status = ctaflow("status", "-w", str(workdir), "--lost-after", "1")
    assert "FIZZLED" not in status and "LOST" not in status


def _named_states(lp, by_name):
    states = fw.states(lp, by_name.values())
    return {name: states[fw_id] for name, fw_id in by_name.items()}


@pytest.mark.slow
def test_two_concurrent_workers_never_run_a_job_twice(tmp_path, mongo_server, database, ledger):
    from ctaflow.execution.fireworks import submit_to_fireworks

    lp, lp_file, store, _ = _setup(tmp_path, mongo_server, database, "fp-many")
    n = 24
    report = submit_to_fireworks(jobs.many_jobs(n), lp, store, "toy", "fp-many")
    assert len(report.fw_ids) == n
    env = subprocess_env()
    workers = []
    for i in range(2):
        (tmp_path / f"worker{i}").mkdir()
        workers.append(
            subprocess.Popen(
                [fw.RLAUNCH, "-l", str(lp_file), "rapidfire"],
                cwd=tmp_path / f"worker{i}",
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    for worker in workers:
        assert worker.wait(timeout=240) == 0

    runs = Counter(ledger.read_text().split())
    assert runs == {f"job{i:02d}": 1 for i in range(n)}  # every job exactly once
    assert set(fw.states(lp, report.fw_ids).values()) == {"COMPLETED"}
    launches = list(lp.launches.find({}, {"fw_id": 1, "launch_dir": 1}))
    assert sorted(x["fw_id"] for x in launches) == sorted(report.fw_ids)  # one launch each
    per_worker = Counter(x["launch_dir"].split("/")[-2] for x in launches)
    assert set(per_worker) == {"worker0", "worker1"}, per_worker  # both took work
    outputs = {store.get_output(lp.get_fw_by_id(i).tasks[0]["job"].uuid) for i in report.fw_ids}
    assert outputs == set(range(1, n + 1))
