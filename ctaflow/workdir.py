"""A work directory's own files: the lock that keeps one run per directory, and the run record
(``ctaflow-run.json``: the campaign, its fingerprint and the store settings, no credentials) that
``query``, ``status``, ``report`` and ``verify`` read."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ctaflow.campaign.execution import StoreSettings
from ctaflow.errors import CtaflowError, StoreError

RUN_INFO = "ctaflow-run.json"


def write_run_info(workdir: Path, info: dict[str, Any]) -> None:
    """Remember how a work directory's store is configured (no credentials: only a path)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / RUN_INFO).write_text(json.dumps(info, indent=2, default=str))


def run_info(workdir: str | Path) -> dict[str, Any]:
    """What ``ctaflow run`` / ``ctaflow submit`` recorded in ``workdir`` ({} if nothing)."""
    path = Path(workdir) / RUN_INFO
    if not path.is_file():
        return {}
    try:
        info = json.loads(path.read_text())
    except (ValueError, OSError) as exc:
        raise StoreError(
            f"'{path}' cannot be read ({exc}): restore it from a copy, or run 'ctaflow run' "
            "again with the same campaign file"
        ) from None
    if not isinstance(info, dict):
        raise StoreError(f"'{path}' is not a JSON object: restore it from a copy")
    return info


@contextlib.contextmanager
def workdir_lock(workdir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``workdir`` for the duration of a run."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / ".ctaflow.lock"
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            raise CtaflowError(
                f"another ctaflow run (pid {owner}) is using '{workdir}'; wait for it to finish "
                "or use another --workdir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def store_settings_of(workdir: str | Path) -> StoreSettings | None:
    """The store settings recorded by ``ctaflow run`` in ``workdir`` (None: embedded)."""
    info = run_info(workdir)
    if not info:
        return None
    try:
        return StoreSettings.model_validate(info.get("store", {}))
    except ValidationError as exc:
        raise StoreError(
            f"'{Path(workdir) / RUN_INFO}' records no usable store section "
            f"({exc.errors()[0]['msg']}): restore it from a copy, or run 'ctaflow run' again"
        ) from None
