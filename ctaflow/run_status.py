"""What ``ctaflow status`` shows for a locally run work directory: per stage, in pipeline order,
the job states, when the stage ran, and what its results are worth.

* Job states come from the state store (``ctaflow_jobs``) that the local runner writes. A job
  recorded RUNNING whose process (the ``pid`` the runner recorded) or whose runner (the pid in
  ``.ctaflow.lock``) is gone was interrupted: it is counted as ``INTERRUPTED``, not RUNNING.
  (Only meaningful on the machine that ran it, which is where local runs are looked at.)
* Times: first start (``started_at``) to last end (``updated_at`` of the finished jobs), and
  the CPU time of the stage's completed jobs (``cpu_s``, measured by the runner; with parallel
  jobs it can exceed the span).
* Results: the stage's result documents (the registry's ``output_schema``) and, when they carry
  a ``status``, how many are valid / flagged / excluded: a stage whose jobs all COMPLETED can
  still have no usable result, and this is where that shows. Results without a status of their
  own show the statuses of the items they hold (e.g. "samples: 6 unstable").
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

RUNNING, INTERRUPTED = "RUNNING", "INTERRUPTED"
#: job states as columns, in this order
STATES = ("COMPLETED", RUNNING, INTERRUPTED, "FAILED", "SKIPPED")
VERDICTS = ("valid", "flagged", "excluded")
#: statuses written by older checks, read as the three above
_ALIASES = {"ok": "valid"}


def pid_alive(pid: Any) -> bool:
    """Whether a process with this id exists on this machine (True when it cannot be told)."""
    if not isinstance(pid, int) or pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def runner_pid(workdir: str | Path) -> int | None:
    """The pid the last ``ctaflow run`` wrote into the work directory's lock file (None: none)."""
    try:
        text = (Path(workdir) / ".ctaflow.lock").read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


@dataclass
class StageStatus:
    """One stage's line of ``ctaflow status``."""

    stage: str
    jobs: Counter = field(default_factory=Counter)
    started: datetime | None = None
    ended: datetime | None = None
    n_results: int = 0
    verdicts: Counter = field(default_factory=Counter)
    items: Counter = field(default_factory=Counter)  # (list field, status) of held items
    cpu_s: float | None = None  # CPU seconds of its completed jobs (None: none recorded)

    @property
    def took_s(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return max(0.0, (self.ended - self.started).total_seconds())

    def jobs_text(self) -> str:
        """e.g. "2 COMPLETED, 1 INTERRUPTED" (states without jobs left out)."""
        return ", ".join(f"{self.jobs[s]} {s}" for s in STATES if self.jobs.get(s))

    def times_text(self) -> str:
        """e.g. "12-04 18:20:10 → 18:27:50 (7 min 40 s)"; "ended 12-04 18:20:10" without a
        recorded start (stores written before ``started_at`` existed)."""
        if self.started is None:
            return f"ended {local_time(self.ended)}" if self.ended else ""
        start = local_time(self.started)
        if self.ended is None:
            return f"{start} →"
        end = local_time(self.ended)
        if end[:5] == start[:5]:  # the same day
            end = end[6:]
        return f"{start} → {end} ({duration(self.took_s)})"

    def results_text(self) -> str:
        """e.g. "3 results: 0 valid, 0 flagged, 3 excluded"; "2 results"; "" without any."""
        if not self.n_results:
            return ""
        text = f"{self.n_results} result{'s' if self.n_results != 1 else ''}"
        if sum(self.verdicts.values()):
            parts = [f"{self.verdicts.get(v, 0)} {v}" for v in VERDICTS]
            unknown = self.n_results - sum(self.verdicts.get(v, 0) for v in VERDICTS)
            if unknown:
                parts.append(f"{unknown} without a status")
            text += ": " + ", ".join(parts)
        by_field: dict[str, list[str]] = {}
        for (name, status), n in sorted(self.items.items()):
            by_field.setdefault(name, []).append(f"{n} {status}")
        for name, counts in by_field.items():
            text += f"; {name}: {', '.join(counts)}"
        return text


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def stage_statuses(
    states: Iterable[Mapping[str, Any]],
    results: Iterable[tuple[str, Mapping[str, Any]]],
    order: Iterable[str],
    alive: Callable[[Any], bool] = pid_alive,
    runner: int | None = None,
) -> list[StageStatus]:
    """The status lines, in pipeline ``order`` (stages not in it after, by name).

    ``states``: state-store documents (``stage``, ``state``, ``pid``, ``started_at``,
    ``updated_at``); ``results``: (stage, output) per result document (its ``status``, else the
    statuses of the documents in its list fields, are counted); ``alive(pid)`` tells whether a
    process exists; ``runner``: the pid of the run that wrote the states.
    """
    lines: dict[str, StageStatus] = {}

    def line(stage: Any) -> StageStatus:
        name = str(stage or "-")
        return lines.setdefault(name, StageStatus(name))

    runner_gone = runner is not None and not alive(runner)
    for doc in states:
        item = line(doc.get("stage"))
        state = doc.get("state")
        if state == RUNNING and (runner_gone or not alive(doc.get("pid"))):
            state = INTERRUPTED
        item.jobs[state] += 1
        start = _time(doc.get("started_at"))
        if start and (item.started is None or start < item.started):
            item.started = start
        cpu = doc.get("cpu_s")
        if isinstance(cpu, int | float):
            item.cpu_s = (item.cpu_s or 0.0) + cpu
        end = _time(doc.get("updated_at")) if state not in (RUNNING, INTERRUPTED) else None
        if end and (item.ended is None or end > item.ended):
            item.ended = end
    for stage, output in results:
        item = line(stage)
        item.n_results += 1
        status = output.get("status")
        if isinstance(status, str):
            item.verdicts[_ALIASES.get(status, status)] += 1
            continue
        for name, value in output.items():
            if isinstance(value, list):
                for part in value:
                    if isinstance(part, dict) and isinstance(part.get("status"), str):
                        item.items[name, _ALIASES.get(part["status"], part["status"])] += 1
    rank = {name: n for n, name in enumerate(order)}
    return sorted(lines.values(), key=lambda s: (rank.get(s.stage, len(rank)), s.stage))


def duration(seconds: float | None) -> str:
    """``"2 h 05 min"``, ``"6 min 12 s"``, ``"4.2 s"``; empty for None."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def local_time(value: datetime | None) -> str:
    """A stored UTC time in this machine's time zone, month-day hour:minute:second (empty for
    None)."""
    return value.astimezone().strftime("%m-%d %H:%M:%S") if value else ""


def read_statuses(workdir: str | Path) -> list[StageStatus]:
    """The status lines of a locally run work directory (its state and job stores, read only)."""
    # lazy: the store layer loads maggma, the registry the makers (status starts without them
    # until it is asked about a local run)
    from ctaflow.query import not_a_result
    from ctaflow.stages.registry import STAGES
    from ctaflow.store import job_store, state_store
    from ctaflow.workdir import store_settings_of

    settings = store_settings_of(workdir)
    states = state_store(settings, workdir, create=False)
    states.connect()
    docs = list(states.query({}))
    jobs = job_store(settings, workdir, create=False)
    jobs.connect()
    schemas = {n: s.output_schema.__name__ for n, s in STAGES.items() if s.output_schema}
    latest: dict[str, tuple[int, str, dict]] = {}
    for doc in jobs.query(
        {"output.@class": {"$in": sorted(set(schemas.values()))}},
        properties=["uuid", "index", "metadata.stage", "output"],
    ):
        stage = (doc.get("metadata") or {}).get("stage")
        output = doc.get("output") or {}
        if schemas.get(stage) != output.get("@class") or not_a_result(stage, output):
            continue
        index = doc.get("index") or 0
        if doc["uuid"] not in latest or index > latest[doc["uuid"]][0]:
            latest[doc["uuid"]] = (index, stage, output)
    results = [(stage, output) for _, stage, output in latest.values()]
    return stage_statuses(docs, results, list(STAGES), runner=runner_pid(workdir))
