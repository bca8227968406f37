"""An MD segment whose SLURM job hits its time limit resumes from its checkpoint when the firework
runs again, and ends on the uninterrupted trajectory.

The segment's firework goes through FireWorks' SLURM adapter (reservation mode, one batch job):
first with ``--time=1`` (one minute, Slurm's smallest limit) for a segment that takes longer, so
Slurm kills the job at its walltime and the firework is left RUNNING, as after any walltime
kill; ``lpad rerun_fws`` (here ``LaunchPad.rerun_fw``) and a second batch job with time to spare
finish it. The job script exports ``CTAFLOW_CHECKPOINT_DIR`` in ``pre_rocket``, as a cluster
user would: FireWorks runs each launch in a new launcher folder.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from tests.cluster import fw
from tests.engines import md_restart_run as segment

N_STEPS = 3000  # about two minutes of this 10-atom CHGNet MD: longer than the first job's limit
EVERY = 100


@pytest.mark.slow
def test_md_killed_at_the_slurm_time_limit_resumes_from_its_checkpoint(
    tmp_path, cluster_env, mongo_server, database
):
    from fireworks import FWorker, LaunchPad
    from fireworks.queue.queue_launcher import launch_rocket_to_queue
    from jobflow import Flow

    from ctaflow.campaign.execution import StoreSettings
    from ctaflow.execution.fireworks import ConfiguredJobStore, submit_to_fireworks
    from ctaflow.store import job_store

    lp_file = fw.write_launchpad(tmp_path / "my_launchpad.yaml", mongo_server, database)
    config = fw.write_job_store(tmp_path / "jobflow.yaml", mongo_server, database)
    lp = LaunchPad.from_file(str(lp_file))
    lp.reset("", require_password=False)
    settings = StoreSettings(kind="mongodb", config_file=config)
    work = tmp_path / "work"
    job = segment.maker("nvt", checkpoint_every=EVERY, n_steps=N_STEPS).make(segment.cell())
    submitted = submit_to_fireworks(
        Flow([job]), lp, ConfiguredJobStore.from_settings(settings, work), "restart", "fp-restart"
    )
    (fw_id,) = submitted.fw_ids

    checkpoints = tmp_path / "checkpoints"
    pre_rocket = f"export OMP_NUM_THREADS=1\nexport CTAFLOW_CHECKPOINT_DIR={checkpoints}"
    launches = tmp_path / "launches"
    launches.mkdir()

    def launch(walltime: str) -> str:
        adapter = fw.slurm_adapter(lp_file)
        adapter.update(walltime=walltime, pre_rocket=pre_rocket)
        launch_rocket_to_queue(
            lp, FWorker(), adapter, str(launches), reserve=True, create_launcher_dir=True
        )
        newest = max(lp.launches.find({"fw_id": fw_id}), key=lambda d: d["launch_id"])
        return next(h["reservation_id"] for h in newest["state_history"] if "reservation_id" in h)

    first = launch("00:01:00")
    reference = segment.run("nvt", checkpoint_every=0, n_steps=N_STEPS)  # while SLURM runs
    info = fw.wait_for(lambda: _ended(cluster_env, first), 400, f"SLURM job {first} to end")
    assert "JobState=TIMEOUT" in info, info
    assert fw.states(lp, [fw_id])[fw_id] == "RUNNING"  # lost, as after any walltime kill
    (folder,) = checkpoints.iterdir()
    with np.load(folder / "state.npz") as state:
        killed_at = json.loads(str(state["meta"]))["nsteps"]
    assert 0 < killed_at < N_STEPS and killed_at % EVERY == 0

    lp.rerun_fw(fw_id)
    second = launch("00:10:00")
    fw.wait_for(lambda: fw.states(lp, [fw_id])[fw_id] == "COMPLETED", 600, "the rerun")
    info = fw.wait_for(lambda: _ended(cluster_env, second), 120, f"SLURM job {second} to end")
    assert "JobState=COMPLETED" in info
    (log,) = launches.glob(f"*/*-{second}.error")  # <job name>-<SLURM job id>.error
    assert re.search(rf"MD resumed at step {killed_at}\b", log.read_text())
    assert not folder.exists()

    store = job_store(settings, work, create=False)
    store.connect()
    resumed = segment.outputs(store.get_output(job.uuid, load=True))
    assert set(resumed) == set(reference)
    for key, value in reference.items():
        assert np.array_equal(resumed[key], value), key
    assert len(reference["frames_times_fs"]) == N_STEPS // segment.SAMPLE_EVERY + 1


def _ended(cluster, job_id: str) -> str | None:
    info = cluster.run("scontrol", "show", "job", job_id)
    return None if re.search(r"JobState=(PENDING|RUNNING|COMPLETING|CONFIGURING)", info) else info
