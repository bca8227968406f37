"""Time the builders on a copy of a campaign's store, and on that store cloned into N campaigns.

Run: ``python -m benchmarks.builder_times WORKDIR [N ...]`` (e.g. the work directory of
``make demo``). WORKDIR is copied to a temporary folder and never written. For each N the relax,
mlff and transport job documents are cloned into N campaigns (new uuids, campaign name suffixed;
one group per builder per campaign), then it prints, per builder: the first build, a second run
with nothing new, and a run after one new transport task. Nothing here is asserted.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

STAGES = ("relax", "mlff", "transport")


def _clone(workdir: Path, copies: int) -> int:
    from ctaflow.store import job_store

    store = job_store(None, workdir, create=False)
    store.connect()
    docs = [
        d
        for d in store.query({"metadata.stage": {"$in": list(STAGES)}})
        if isinstance(d.get("output"), dict)
    ]
    clones = []
    for i in range(1, copies):
        for doc in docs:
            meta = {**doc["metadata"], "campaign": f"{doc['metadata']['campaign']}-{i}"}
            clone = {k: v for k, v in doc.items() if k != "_id"}
            clones.append({**clone, "uuid": str(uuid.uuid4()), "metadata": meta})
    if clones:  # insert_many: MontyStore.update upserts one by one, each a full scan
        store.docs_store._collection.insert_many(clones)
    return len(docs) * copies


def _drop_derived(workdir: Path) -> None:
    from ctaflow.stages import builders
    from ctaflow.store import derived_store

    for name in builders():
        store = derived_store(None, workdir, name)
        store.connect()
        if store.count():  # MontyDB: deleting from a never-written collection raises
            store.remove_docs({})


def _run_all(workdir: Path) -> dict[str, tuple[float, int]]:
    from ctaflow.builders import run_builder
    from ctaflow.query import builders_for

    return {
        b.collection: (s.seconds, s.n_groups_built)
        for b in builders_for(workdir)
        for s in [run_builder(b)]
    }


def _add_transport_task(workdir: Path) -> None:
    from ctaflow.store import job_store

    store = job_store(None, workdir)  # writable: ``workdir`` is the temporary copy
    store.connect()
    doc = store.query_one({"metadata.stage": "transport", "output.@class": "TransportSummary"})
    doc.pop("_id")
    store.update({**doc, "uuid": str(uuid.uuid4()), "completed_at": datetime.now().isoformat()})


def measure(source: Path, copies: int) -> dict:
    """Builder times on a copy of ``source``'s store cloned into ``copies`` campaigns.

    Returns ``{"copies", "job_docs", "wall_s", "builders": {name: {"first": (s, groups),
    "again": (s, groups), "one_new": (s, groups)}}}``.
    """
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp) / "work"
        shutil.copytree(source / "store", workdir / "store")
        _drop_derived(workdir)
        n_docs = _clone(workdir, copies)
        start = time.perf_counter()
        first = _run_all(workdir)
        total = time.perf_counter() - start
        again = _run_all(workdir)
        _add_transport_task(workdir)
        one = _run_all(workdir)
    return {
        "copies": copies,
        "job_docs": n_docs,
        "wall_s": total,
        "builders": {
            name: {"first": first[name], "again": again[name], "one_new": one[name]}
            for name in first
        },
    }


def table_lines(result: dict) -> list[str]:
    rows = []
    copies, n_docs = result["copies"], result["job_docs"]
    for name, runs in result["builders"].items():
        cells = [
            f"{t:.2f} s ({n} groups)" for t, n in (runs["first"], runs["again"], runs["one_new"])
        ]
        rows.append(f"| {copies} | {n_docs} | {name} | " + " | ".join(cells) + " |")
    rows.append(f"| {copies} | {n_docs} | all (wall) | {result['wall_s']:.2f} s | | |")
    return rows


def main(argv: list[str]) -> None:
    source = Path(argv[0])
    sizes = [int(a) for a in argv[1:]] or [1, 10, 100]
    lines = [
        "| campaigns | job docs | builder | first build | second run | one new task |",
        "|---|---|---|---|---|---|",
    ]
    for n in sizes:
        lines += table_lines(measure(source, n))
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
