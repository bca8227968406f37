"""Session fixtures: a one-node SLURM cluster and the MongoDB wire-protocol stand-in, started once
for the cluster tests and stopped by PID. A failed install or start fails the test that asked for
it (never a skip)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.cluster import mongo, slurm
from tests.conftest import REPO

TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="session")
def local_slurm():
    """A running one-node SLURM (packages installed first if absent; timings in TIMINGS)."""
    try:
        TIMINGS["slurm_install_s"] = slurm.ensure_installed()
    except slurm.ClusterError as exc:
        pytest.fail(f"cannot install SLURM for the cluster tests: {exc}", pytrace=False)
    root = Path(tempfile.mkdtemp(prefix="ctaflow-slurm-"))
    start = time.monotonic()
    try:
        cluster = slurm.start(root)
    except slurm.ClusterError as exc:
        pytest.fail(f"cannot start the local SLURM: {exc}", pytrace=False)
    TIMINGS["slurm_start_s"] = time.monotonic() - start
    yield cluster
    cluster.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory):
    """A running ``secantusd-py`` on a free port (storage in a temporary folder)."""
    start = time.monotonic()
    try:
        server = mongo.start(tmp_path_factory.mktemp("secantus") / "db")
    except slurm.ClusterError as exc:
        pytest.fail(f"cannot start the MongoDB stand-in: {exc}", pytrace=False)
    TIMINGS["mongo_start_s"] = time.monotonic() - start
    yield server
    server.stop()


@pytest.fixture
def database(mongo_server, request):
    """A database name of its own for each test."""
    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:40]
    yield name
    with mongo_server.client() as client:
        client.drop_database(name)


@pytest.fixture
def cluster_env(local_slurm, monkeypatch):
    """This process and its children see the local SLURM and can import the repository."""
    monkeypatch.setenv("SLURM_CONF", str(local_slurm.conf))
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    import fireworks.queue.queue_launcher as queue_launcher

    # FireWorks waits 5 s after each sbatch "for the queue to update"; the local one is instant
    monkeypatch.setattr(queue_launcher, "QUEUE_UPDATE_INTERVAL", 0)
    return local_slurm


def pytest_terminal_summary(terminalreporter):
    if TIMINGS:
        terminalreporter.write_line(
            "cluster fixtures: " + ", ".join(f"{k} {v:.1f}" for k, v in TIMINGS.items())
        )


def pytest_configure(config):
    # FireWorks' load_object imports FireWorks' own test modules while looking up a class by
    # its _fw_name; they use this marker, which --strict-markers would reject
    config.addinivalue_line("markers", "mongodb: FireWorks' own tests (imported by load_object)")
