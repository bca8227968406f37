"""Wall time per stage of a finished campaign, read from its work directory (nothing re-run).

Run: ``python -m benchmarks.demo_stages WORKDIR`` (e.g. the work directory of ``make demo``); the
runner (``python -m benchmarks --demo-workdir WORKDIR``) calls :func:`rows`.

Sources: ``ctaflow.log`` (jobflow's "Starting job" / "Finished job" lines, with timestamps) and
the local runner's per-job states (``ctaflow_jobs`` collection: uuid → stage and state, see
:mod:`ctaflow.execution.local`), read from a temporary copy of ``WORKDIR/store``: the work
directory is never written.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from benchmarks.report import Row, markdown_table

_LINE = re.compile(
    r"^(?P<t>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) jobflow\.core\.job INFO "
    r"(?P<what>Starting|Finished) job - (?P<name>.*) "
    r"\((?P<uuid>[0-9a-f-]{36})(?:, (?P<index>\d+))?\)$"
)


def job_intervals(log_text: str) -> list[dict]:
    """(uuid, index, name, start, end) of every job that finished, from jobflow's log lines.

    A job started more than once (a resumed campaign) counts from its last start before it
    finished.
    """
    started: dict[tuple[str, int], datetime] = {}
    done = []
    for line in log_text.splitlines():
        m = _LINE.match(line.strip())
        if not m:
            continue
        key = (m["uuid"], int(m["index"] or 1))
        t = datetime.strptime(m["t"], "%Y-%m-%d %H:%M:%S,%f")
        if m["what"] == "Starting":
            started[key] = t
        elif key in started:
            begin = started.pop(key)
            done.append(
                {"uuid": key[0], "index": key[1], "name": m["name"], "start": begin, "end": t}
            )
    return done


@contextmanager
def store_copy(workdir: Path) -> Iterator[Path]:
    """A temporary work directory holding a copy of ``workdir``'s store (the work directory
    itself is never opened, so a campaign running in it is not disturbed)."""
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(workdir / "store", Path(tmp) / "store")
        yield Path(tmp)


def job_stages(workdir: Path) -> dict[tuple[str, int], dict]:
    """(uuid, index) → run-state document, from a copy of the work directory's store."""
    from ctaflow.store import state_store

    with store_copy(workdir) as tmp:
        states = state_store(None, tmp, create=False)
        states.connect()
        docs = {
            (d["uuid"], int(d.get("index") or 1)): d
            for d in states.query(
                {}, properties=["uuid", "index", "stage", "state", "name", "cpu_s"]
            )
        }
        states.close()
    return docs


def stage_times(workdir: Path) -> dict:
    """Per stage: jobs, summed job wall time, CPU time of its jobs (None when the runner did not
    record it), span (first start → last end); campaign span."""
    log = workdir / "ctaflow.log"
    if not log.is_file():
        raise FileNotFoundError(f"{log} not found: not a ctaflow work directory")
    jobs = job_intervals(log.read_text(errors="replace"))
    if not jobs:
        raise ValueError(f"{log} has no finished jobs")
    states = job_stages(workdir)
    per: dict[str, dict] = defaultdict(
        lambda: {"jobs": 0, "job_s": 0.0, "cpu_s": None, "start": None, "end": None}
    )
    for j in jobs:
        doc = states.get((j["uuid"], j["index"]), {})
        p = per[str(doc.get("stage") or "unknown")]
        p["jobs"] += 1
        p["job_s"] += (j["end"] - j["start"]).total_seconds()
        if isinstance(doc.get("cpu_s"), int | float):
            p["cpu_s"] = (p["cpu_s"] or 0.0) + doc["cpu_s"]
        p["start"] = min(filter(None, (p["start"], j["start"])))
        p["end"] = max(filter(None, (p["end"], j["end"])))
    first = min(j["start"] for j in jobs)
    last = max(j["end"] for j in jobs)
    order = sorted(per, key=lambda s: per[s]["start"])
    return {
        "workdir": str(workdir),
        "campaign_s": (last - first).total_seconds(),
        "started": first.isoformat(),
        "n_jobs": len(jobs),
        "not_completed": sorted(
            f"{d.get('name')} ({d.get('state')})"
            for d in states.values()
            if d.get("state") != "COMPLETED"
        ),
        "stages": {
            s: {
                "jobs": per[s]["jobs"],
                "job_s": per[s]["job_s"],
                "cpu_s": per[s]["cpu_s"],
                "span_s": (per[s]["end"] - per[s]["start"]).total_seconds(),
            }
            for s in order
        },
    }


def precision_checks(workdir: Path) -> list[dict]:
    """The float32-vs-float64 check of every trained model in the work directory (the MLFF
    stage's and each active-learning retraining's, in run order), from a copy of its store:
    name of the training job, model checksum, and the check (:class:`PrecisionCheck` fields)."""
    from ctaflow.store import job_store

    with store_copy(workdir) as tmp:
        store = job_store(None, tmp, create=False)
        store.connect()
        docs = store.query(
            {"output.precision": {"$ne": None}},
            properties=["name", "completed_at", "output.precision", "output.model_sha256"],
        )
        found = [
            {
                "job": d["name"],
                "model_sha256": d["output"].get("model_sha256"),
                **d["output"]["precision"],
            }
            for d in sorted(docs, key=lambda d: str(d.get("completed_at")))
            if d["output"].get("precision")
        ]
        store.close()
    return found


def trained_model(workdir: str | Path) -> Path | None:
    """The MACE model a finished campaign's production MD ran on: the active-learning loop's
    final model, else the mlff stage's model (by checksum from ``report/report.json``, file in
    ``models/``, where ``ctaflow run`` writes trained models). None when there is none."""
    workdir = Path(workdir)
    report = workdir / "report" / "report.json"
    if not report.is_file():
        return None
    data = json.loads(report.read_text())
    records = data.get("active_learning") or data.get("mlff") or []
    shas = [r.get("model_sha256") for r in records if r.get("model_sha256")]
    if not shas:
        return None
    found = sorted((workdir / "models").glob(f"{shas[-1][:16]}-*.model"))
    return found[0] if found else None


def rows(workdir: str | Path | None, builders: bool = True) -> list[Row]:
    """Row 6: wall time per stage of the campaign in ``workdir`` (None: not measured)."""
    if workdir is None:
        return [
            Row(
                "6",
                "whole demo campaign, wall time per stage",
                None,
                details="pass --demo-workdir",
            )
        ]
    workdir = Path(workdir)
    t = stage_times(workdir)
    out = []
    for stage, s in t["stages"].items():
        cpu = "" if s["cpu_s"] is None else f"; CPU time of its jobs {s['cpu_s']:.0f} s"
        out.append(
            Row(
                "6",
                f"demo campaign, stage {stage}: time in its jobs ({s['jobs']} jobs)",
                s["job_s"],
                "s",
                None,
                f"span first start → last end {s['span_s']:.1f} s{cpu}",
                s,
            )
        )
    incomplete = t["not_completed"]
    out.append(
        Row(
            "6",
            f"demo campaign, all jobs (first start → last end, {t['n_jobs']} jobs)",
            t["campaign_s"],
            "s",
            None,
            f"{workdir} ({t['started']})"
            + (f"; not completed: {', '.join(incomplete)}" if incomplete else ""),
            {k: v for k, v in t.items() if k != "stages"},
        )
    )
    busy = sum(s["job_s"] for s in t["stages"].values())
    out.append(
        Row(
            "6",
            "demo campaign, job time / (2 workers × first start → last end)",
            busy / (2 * t["campaign_s"]),
            "",
            None,
            f"{busy:.0f} s of jobs in {t['campaign_s']:.0f} s: the share of the two worker "
            "processes' time spent in jobs",
        )
    )
    cpus = [s["cpu_s"] for s in t["stages"].values() if s["cpu_s"] is not None]
    if cpus:
        out.append(
            Row(
                "6",
                "demo campaign, CPU time of its jobs / (2 cores × first start → last end)",
                sum(cpus) / (2 * t["campaign_s"]),
                "",
                None,
                f"{sum(cpus):.0f} CPU s of jobs (their processes and the trainings they "
                f"waited for) in {t['campaign_s']:.0f} s: the cores' share spent computing "
                "jobs; the rest is idle cores, the runner and the OS",
            )
        )
    seen = set()
    for check in precision_checks(workdir):
        if check["model_sha256"] in seen:  # the same model, stored again by a later job
            continue
        seen.add(check["model_sha256"])
        energy = check["max_energy_diff_mev_per_atom"]
        rms = check["rms_force_diff_mev_per_a"]
        verdict = "yes" if check["float32_ok"] else "no"
        out.append(
            Row(
                "6",
                f"demo MACE, float32 vs float64 on the test split ({check['job']}, "
                f"{check['n_frames']} frames)",
                check["max_force_diff_mev_per_a"],
                "meV/Å",
                None,
                f"largest force-component difference; energy {energy:.2g} meV/atom, rms force "
                f"{rms:.2g} meV/Å; float32 for MD: {verdict} ({check['reason']})",
                check,
            )
        )
    if builders:
        from benchmarks.builder_times import measure

        b = measure(workdir, 1)
        out.append(
            Row(
                "6",
                "demo campaign, builders (ctaflow build), first build of all derived collections",
                b["wall_s"],
                "s",
                None,
                "; ".join(
                    f"{name} {r['first'][0]:.2f} s, again {r['again'][0]:.2f} s"
                    for name, r in b["builders"].items()
                )
                + " (on a copy of the store)",
                b,
            )
        )
    return out


if __name__ == "__main__":
    print(markdown_table(rows(sys.argv[1] if len(sys.argv) > 1 else None)))
