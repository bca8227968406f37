"""A killed MLIP MD segment resumes from its last checkpoint and ends on the uninterrupted
trajectory: the same final positions and cell, bit for bit, and the same stored frames."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from ase.md.langevin import Langevin
from ase.md.nose_hoover_chain import MTKNPT

from ctaflow.engines.md_restart import CHECKPOINT_ENV, _Policy, segment_fingerprint
from tests.conftest import REPO, subprocess_env
from tests.engines import md_restart_run as segment

INTEGRATOR = {"nvt": Langevin, "npt": MTKNPT}


@pytest.fixture
def checkpoints(tmp_path, monkeypatch):
    root = tmp_path / "checkpoints"
    monkeypatch.setenv(CHECKPOINT_ENV, str(root))
    return root


@pytest.fixture(scope="module")
def uninterrupted():
    """Each ensemble's segment run through without checkpoints (the reference)."""
    return {ensemble: segment.run(ensemble, checkpoint_every=0) for ensemble in INTEGRATOR}


class Killed(BaseException):
    """Stands for a kill: not an Exception, so nothing on the way catches it."""


def _count_steps(monkeypatch, integrator, kill_at: int | None = None) -> dict[str, int]:
    """Count the integrator's steps; raise :class:`Killed` in step ``kill_at``."""
    counter = {"steps": 0}
    original = integrator.step

    def step(self, *args, **kwargs):
        counter["steps"] += 1
        if counter["steps"] == kill_at:
            raise Killed
        return original(self, *args, **kwargs)

    monkeypatch.setattr(integrator, "step", step)
    return counter


def _assert_same(result, reference):
    assert set(result) == set(reference)
    for key, value in reference.items():
        assert np.array_equal(result[key], value), key
    assert len(reference["frames_times_fs"]) == segment.N_STEPS // segment.SAMPLE_EVERY + 1


@pytest.mark.parametrize("ensemble", ["nvt", "npt"])
def test_killed_segment_resumes_on_the_uninterrupted_trajectory(
    ensemble, checkpoints, uninterrupted, monkeypatch
):
    integrator = INTEGRATOR[ensemble]
    with monkeypatch.context() as patch:
        _count_steps(patch, integrator, kill_at=27)  # checkpoints at steps 10 and 20
        with pytest.raises(Killed):
            segment.run(ensemble, checkpoint_every=10)
    (folder,) = checkpoints.iterdir()
    assert sorted(p.name for p in folder.iterdir()) == [
        "frames-000000000-000000003.npz",  # steps 0, 5, 10
        "frames-000000003-000000005.npz",  # steps 15, 20
        "state.npz",
    ]
    with np.load(folder / "state.npz") as state:
        assert json.loads(str(state["meta"]))["nsteps"] == 20
    counter = _count_steps(monkeypatch, integrator)
    resumed = segment.run(ensemble, checkpoint_every=10)
    assert counter["steps"] == segment.N_STEPS - 20  # from the checkpoint, not from step 0
    _assert_same(resumed, uninterrupted[ensemble])
    assert not folder.exists()  # a finished segment leaves no checkpoint


def test_a_damaged_checkpoint_is_ignored_and_the_segment_runs_from_its_start(
    checkpoints, uninterrupted, monkeypatch
):
    with monkeypatch.context() as patch:
        _count_steps(patch, Langevin, kill_at=27)
        with pytest.raises(Killed):
            segment.run("nvt", checkpoint_every=10)
    (folder,) = checkpoints.iterdir()
    (folder / "state.npz").write_bytes((folder / "state.npz").read_bytes()[:100])
    counter = _count_steps(monkeypatch, Langevin)
    _assert_same(segment.run("nvt", checkpoint_every=10), uninterrupted["nvt"])
    assert counter["steps"] == segment.N_STEPS


@pytest.mark.slow
def test_sigkilled_process_resumes_in_a_new_process(tmp_path, checkpoints, uninterrupted):
    env = {**subprocess_env(), CHECKPOINT_ENV: str(checkpoints)}
    command = [sys.executable, "-m", "tests.engines.md_restart_run", str(tmp_path / "out.npz")]
    first = subprocess.Popen([*command, "nvt", "10"], cwd=REPO, env=env, stderr=subprocess.DEVNULL)
    try:
        nsteps = _wait_for_checkpoint(checkpoints, first, at_least=10)
        os.kill(first.pid, signal.SIGKILL)
    finally:
        first.wait(timeout=60)
    assert first.returncode == -signal.SIGKILL and nsteps < segment.N_STEPS
    assert not (tmp_path / "out.npz").exists()
    second = subprocess.run(
        [*command, "nvt", "10"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert second.returncode == 0, second.stderr
    with np.load(tmp_path / "out.npz") as out:
        _assert_same(dict(out), uninterrupted["nvt"])
    assert list(checkpoints.iterdir()) == []


def test_the_local_runner_resumes_a_killed_segment(
    workdir, stores, checkpoints, uninterrupted, monkeypatch
):
    """Through ``run_flow``: the rerun gets a new job folder (the old one is deleted) and still
    resumes, as the checkpoint lives outside it."""
    from jobflow import Flow

    from ctaflow.analysis.chunks import join_chunks
    from ctaflow.execution.local import run_flow

    jobs, states = stores
    job = segment.maker("nvt", checkpoint_every=10).make(segment.cell())
    with monkeypatch.context() as patch:
        _count_steps(patch, Langevin, kill_at=27)
        with pytest.raises(Killed):
            run_flow(Flow([job]), jobs, states, workdir, workers=1)
    (job_dir,) = (workdir / "jobs").glob("*/*")
    (job_dir / "leftover").write_text("of the killed attempt")
    counter = _count_steps(monkeypatch, Langevin)
    again = segment.maker("nvt", checkpoint_every=10).make(segment.cell())
    again.set_uuid(job.uuid)
    report = run_flow(Flow([again]), jobs, states, workdir, workers=1)
    assert report.ok and report.n_ran == 1
    assert counter["steps"] == segment.N_STEPS - 20
    assert not (job_dir / "leftover").exists()
    frames = join_chunks(jobs.get_output(job.uuid, load=True)["trajectory"])
    reference = uninterrupted["nvt"]
    assert np.array_equal(frames["positions_a"], reference["frames_positions_a"])
    assert np.array_equal(frames["velocities_a_per_fs"], reference["frames_velocities_a_per_fs"])


def _wait_for_checkpoint(root, process, at_least: int) -> int:
    """The step of the first checkpoint of ``process`` at or after ``at_least``."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        for state in root.glob("*/state.npz"):
            try:
                with np.load(state) as data:
                    nsteps = json.loads(str(data["meta"]))["nsteps"]
            except Exception:  # being replaced
                continue
            if nsteps >= at_least:
                return nsteps
        time.sleep(0.02)
    raise AssertionError("no checkpoint appeared while the segment ran")


def test_fingerprint_is_that_of_the_job_not_of_a_maker_that_ran():
    maker = segment.maker("npt", checkpoint_every=10)
    before = segment_fingerprint(maker, segment.cell())
    maker.run_ase(segment.cell())  # atomate2 adds schedule values to the maker
    assert segment_fingerprint(maker, segment.cell()) == before
    other = segment.maker("npt", checkpoint_every=10)
    other.seed = segment.SEED + 1
    assert segment_fingerprint(other, segment.cell()) != before


def test_automatic_checkpoints_cost_at_most_one_percent():
    policy = _Policy(every=None, interval_s=60.0)
    policy.last = time.perf_counter() - 120.0  # two minutes since the last checkpoint
    assert policy.due(step=7)
    policy.cost_s = 2.0  # a 2 s write waits 200 s: 1 % of the time
    assert not policy.due(step=7)
    assert _Policy(every=10, interval_s=1e9).due(step=30)
    assert not _Policy(every=10, interval_s=0.0).due(step=31)
