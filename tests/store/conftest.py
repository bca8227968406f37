"""A small work directory built once per session through the real runner and store, copied by
each test that damages it."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def pristine(tmp_path_factory) -> Path:
    """A finished toy run: job documents, chunk and part blobs, run states, run info."""
    from ctaflow.execution.local import run_flow
    from ctaflow.store import job_store, state_store
    from ctaflow.workdir import write_run_info
    from tests.store.jobs import toy_flow

    workdir = tmp_path_factory.mktemp("pristine") / "work"
    # one worker: the tests find documents by their place in the files, which two workers
    # finishing in either order would change
    report = run_flow(
        toy_flow(), job_store(None, workdir), state_store(None, workdir), workdir, workers=1
    )
    assert report.ok and report.n_ran == 3
    write_run_info(workdir, {"campaign": "toy", "store": {"kind": "embedded"}})
    return workdir


@pytest.fixture
def work(pristine, tmp_path) -> Path:
    """A fresh copy of the pristine work directory (mtimes preserved)."""
    copy = tmp_path / "copy"
    shutil.copytree(pristine, copy)
    return copy


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``root``: sha256 of its bytes and its mtime (ns)."""
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def collection_file(workdir: Path, name: str) -> Path:
    return workdir / "store" / "ctaflow" / f"{name}.collection"
