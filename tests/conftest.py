"""Shared fixtures: every test runs in its own temporary directory with a fresh store."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# before numpy is imported: see ctaflow.cli.main (oversubscribed BLAS threads are 8x slower here)
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import pytest

REPO = Path(__file__).resolve().parents[1]
CTAFLOW = str(Path(sys.executable).with_name("ctaflow"))


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (make test), the cluster tests run in one process, one after the
    other: they start Slurm and a MongoDB-protocol server of their own."""
    for item in items:
        if "tests/cluster/" in item.nodeid:
            item.add_marker(pytest.mark.xdist_group("cluster"))


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Run each test in a fresh temporary directory (nothing is written into the repository)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    # caches of this test alone: tests run in parallel processes (pytest-xdist)
    monkeypatch.setenv("CTAFLOW_MODEL_CACHE", str(tmp_path / "model-cache"))
    monkeypatch.setenv("CTAFLOW_CHECKPOINT_DIR", str(tmp_path / "md-checkpoints"))
    return tmp_path


@pytest.fixture
def workdir(tmp_path) -> Path:
    """A fresh campaign work directory."""
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def stores(workdir):
    """A fresh embedded JobStore and state store in ``workdir``."""
    from ctaflow.store import job_store, state_store

    jobs, states = job_store(None, workdir), state_store(None, workdir)
    jobs.connect()
    states.connect()
    return jobs, states


def write_campaign(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def subprocess_env() -> dict[str, str]:
    """Environment for child processes: the repository importable (tests.execution.toyjobs)."""
    env = dict(os.environ)
    env.pop("PMG_VASP_PSP_DIR", None)  # tests never use real potentials
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


def stored_output(store, uuid: str) -> dict:
    """A job's output as stored (a dict). jobflow resolves the output of a job that replaced
    itself (e.g. a relaxation with its minimum check) into the model object: serialise it back."""
    from monty.json import jsanitize

    output = store.get_output(uuid, load=True)
    return output if isinstance(output, dict) else jsanitize(output, strict=True, enum_values=True)
