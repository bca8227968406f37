"""Measure candidate embedded stores for ctaflow's default JobStore.

Run: ``python -m benchmarks.store_choice [N]``. The runner (``python -m benchmarks``) uses
:func:`rows`: the embedded store only, plus a chunked trajectory written and read back
(:func:`trajectory_roundtrip`). Standalone, prints one Markdown table with, per store:
bulk insert of N task-like documents, 20 single-document updates (one per finished job, as
jobflow writes them), query latency on a metadata field, a second process reading the data,
and size on disk. No timing here is asserted anywhere; it informs the choice of default.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.report import Row

STORES = {
    "MontyStore(sqlite)": (
        "from maggma.stores import MontyStore\n"
        "s = MontyStore('outputs', database_path=r'{d}', database_name='ctaflow', storage='sqlite')"
    ),
    "JSONStore": (
        "from maggma.stores import JSONStore\n"
        "s = JSONStore(r'{d}/outputs.json', read_only=False, key='uuid')"
    ),
}


def _doc(i: int) -> dict:
    return {
        "uuid": f"job-{i:06d}",
        "index": 1,
        "name": "relax",
        "metadata": {
            "stage": ["relax", "md", "neb"][i % 3],
            "composition": f"Na{5 - i % 5}Li{i % 5}",
        },
        "output": {"energy_ev": -1.0 * i, "forces": [[0.01 * i, 0.0, 0.0]] * 40},
    }


def _du(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def measure(label: str, make: str, n: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        ns: dict = {}
        exec(make.format(d=d), ns)
        store = ns["s"]
        store.key = "uuid"
        store.connect()
        docs = [_doc(i) for i in range(n)]
        t0 = time.perf_counter()
        if hasattr(store, "database_path"):
            # MontyStore.update upserts one document at a time, each a full scan (montydb has no
            # indexes): O(N^2) for a bulk load. Load through insert_many; single updates below.
            store._collection.insert_many(docs)
        else:
            store.update(docs, key="uuid")
        bulk = time.perf_counter() - t0
        t0 = time.perf_counter()
        for i in range(n, n + 20):
            store.update(_doc(i), key="uuid")
        single = (time.perf_counter() - t0) / 20
        t0 = time.perf_counter()
        for _ in range(10):
            found = list(store.query({"metadata.stage": "neb"}, properties=["uuid"]))
        query = (time.perf_counter() - t0) / 10
        t0 = time.perf_counter()
        for i in range(0, n, max(1, n // 10)):
            store.query_one({"uuid": f"job-{i:06d}"}, properties=["uuid"])
        query_one = (time.perf_counter() - t0) / len(range(0, n, max(1, n // 10)))
        store.close()
        reader = (
            make.format(d=d)
            + "\ns.key = 'uuid'\ns.connect()\nprint(s.count({'metadata.stage': 'neb'}))"
        )
        out = subprocess.run([sys.executable, "-c", reader], capture_output=True, text=True)
        second = out.stdout.strip()
        return {
            "store": label,
            "bulk_insert_s": bulk,
            "single_update_ms": single * 1e3,
            "query_ms": query * 1e3,
            "query_one_ms": query_one * 1e3,
            "n_found": len(found),
            "second_process_count": second or out.stderr.strip().splitlines()[-1],
            "size_mb": _du(Path(d)),
        }


def _bson_mb(doc: dict) -> float:
    """Size of a document as MongoDB would store it (BSON), MB."""
    import bson

    return len(bson.encode({k: v for k, v in doc.items() if k != "_id"})) / 1e6


def trajectory_roundtrip(n_frames: int = 1000, n_atoms: int = 400, seed: int = 0) -> dict:
    """Write and read back an MD trajectory as ctaflow's MD job does: chunked
    (:func:`ctaflow.analysis.chunks.chunk_trajectory`), serialised by jobflow's ``jsanitize``, and
    saved with ``JobStore.update(..., save={"data": [CHUNK_DATA_KEY]})`` into the embedded
    store, whose ``data`` store gets one document per chunk; read with ``load=True`` and joined.
    """
    import numpy as np
    from jobflow import JobStore
    from monty.json import jsanitize

    from ctaflow.analysis.chunks import CHUNK_DATA_KEY, chunk_trajectory, join_chunks
    from ctaflow.store import job_store

    rng = np.random.default_rng(seed)
    f, a = n_frames, n_atoms
    arrays = {
        "positions_a": rng.random((f, a, 3)) * 20,
        "cells_a": np.repeat(np.eye(3)[None] * 20, f, axis=0),
        "energies_ev": rng.random(f),
        "forces_ev_per_a": rng.normal(size=(f, a, 3)),
        "stresses_gpa": rng.normal(size=(f, 3, 3)),
        "velocities_a_per_fs": rng.normal(size=(f, a, 3)) * 0.01,
        "temperatures_k": rng.random(f) * 600,
        "times_fs": np.arange(f) * 10.0,
    }
    raw_mb = sum(x.nbytes for x in arrays.values()) / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        store: JobStore = job_store(None, tmp)
        store.connect()
        t0 = time.perf_counter()
        chunks = chunk_trajectory(arrays)
        output = jsanitize({"trajectory": chunks}, strict=True, enum_values=True, allow_bson=True)
        store.update(
            {"uuid": "bench-traj", "index": 1, "output": output, "metadata": {}},
            key=["uuid", "index"],
            save={"data": [CHUNK_DATA_KEY]},
        )
        write = time.perf_counter() - t0
        t0 = time.perf_counter()
        doc = store.query_one({"uuid": "bench-traj"}, load=True)
        back = join_chunks(doc["output"]["trajectory"])
        read = time.perf_counter() - t0
        for name, array in arrays.items():
            if not np.array_equal(back[name], array):
                raise AssertionError(f"trajectory array {name} changed in the round trip")
        data_docs = list(store.additional_stores["data"].query({}))
        task_doc = store.docs_store.query_one({"uuid": "bench-traj"})
        sizes = [_bson_mb(d) for d in data_docs] + [_bson_mb(task_doc)]
        store.close()
        disk_mb = _du(Path(tmp))
    return {
        "frames": f,
        "atoms": a,
        "raw_mb": raw_mb,
        "write_s": write,
        "read_s": read,
        "n_chunks": len(chunks),
        "n_data_docs": len(data_docs),
        "largest_doc_mb": max(sizes),
        "task_doc_mb": sizes[-1],
        "unchunked_mb": raw_mb * 4 / 3,
        "disk_mb": disk_mb,
    }


def key_lookup(n_blobs: int = 60, blob_mb: float = 0.5, n_lookups: int = 10) -> dict:
    """Lookups by key in an embedded ``data`` collection of ``n_blobs`` blobs of ``blob_mb`` MB
    (the demo's ``outputs_data`` holds ~35 MB in ~140 blobs): ctaflow's key index
    (:mod:`ctaflow.store_index`) against MontyDB's scan, and one blob update each way."""
    import numpy as np
    from maggma.stores import MontyStore

    from ctaflow.store import job_store

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as d:
        data = job_store(None, d).additional_stores["data"]
        data.connect()
        n_atoms = int(blob_mb * 1e6 / 8 / 3 / 10)  # 10 frames of positions, as nested lists
        blobs = [
            {"blob_uuid": f"b{i:04d}", "data": rng.random((10, n_atoms, 3)).tolist()}
            for i in range(n_blobs)
        ]
        data.update(blobs[:1], key="blob_uuid")  # MontyDB makes the table
        data.update(blobs[1:], key="blob_uuid")
        wanted = [f"b{i:04d}" for i in rng.choice(n_blobs, n_lookups, replace=False)]
        t0 = time.perf_counter()
        data.query_one({"blob_uuid": wanted[0]})  # builds the index
        first_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for w in wanted:
            data.query_one({"blob_uuid": w})
        indexed_s = (time.perf_counter() - t0) / n_lookups
        t0 = time.perf_counter()
        for w in wanted:
            next(MontyStore.query(data, {"blob_uuid": w}))
        scan_s = (time.perf_counter() - t0) / n_lookups
        t0 = time.perf_counter()
        data.update(blobs[3], key="blob_uuid")
        update_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        MontyStore.update(data, blobs[4], key="blob_uuid")
        update_scan_s = time.perf_counter() - t0
        return {
            "n_blobs": n_blobs,
            "total_mb": n_blobs * blob_mb,
            "index_build_s": first_s,
            "indexed_ms": indexed_s * 1e3,
            "scan_ms": scan_s * 1e3,
            "update_ms": update_s * 1e3,
            "update_scan_ms": update_scan_s * 1e3,
        }


def rows(n_docs: int = 10_000) -> list[Row]:
    """Row 5: trajectory write/read (MB/s), largest document, query latency over task docs."""
    t = trajectory_roundtrip()
    small = measure("MontyStore(sqlite)", STORES["MontyStore(sqlite)"], n_docs // 10)
    q = measure("MontyStore(sqlite)", STORES["MontyStore(sqlite)"], n_docs)
    q["at_tenth"] = small
    k = key_lookup()
    traj = f"{t['frames']}-frame, {t['atoms']}-atom trajectory ({t['raw_mb']:.1f} MB of float64)"
    return [
        Row(
            "5",
            f"store: lookup by key in a {k['total_mb']:.0f} MB data collection, MontyDB scan / "
            "ctaflow key index",
            k["scan_ms"] / k["indexed_ms"],
            "x",
            (">", 10.0),
            f"{k['scan_ms']:.0f} ms scanned vs {k['indexed_ms']:.1f} ms indexed per lookup (index "
            f"built in {k['index_build_s']:.2f} s, once per process); one blob update "
            f"{k['update_scan_ms']:.0f} ms by maggma's replace_one vs {k['update_ms']:.0f} ms in "
            "place",
            k,
        ),
        Row(
            "5",
            f"store: write {traj}",
            t["raw_mb"] / t["write_s"],
            "MB/s",
            None,
            f"{t['write_s']:.2f} s: chunk + base64 + jsanitize + JobStore.update into the "
            f"embedded store (MontyDB/SQLite), {t['n_chunks']} chunks in the data store",
            t,
        ),
        Row(
            "5",
            f"store: read {traj}",
            t["raw_mb"] / t["read_s"],
            "MB/s",
            None,
            f"{t['read_s']:.2f} s: query_one(load=True) + join_chunks; bit-identical arrays",
            t,
        ),
        Row(
            "5",
            "store: largest document written (BSON)",
            t["largest_doc_mb"],
            "MB",
            ("<", 16.0),
            f"the same trajectory in one document would be {t['unchunked_mb']:.0f} MB; task "
            f"document {t['task_doc_mb'] * 1e3:.1f} kB",
            t,
        ),
        Row(
            "5",
            f"store: query latency over {n_docs:,} task documents (metadata field, "
            f"{q['n_found']} hits)",
            q["query_ms"],
            "ms",
            None,
            f"one document by uuid {q['query_one_ms']:.1f} ms; one job-document update "
            f"{q['single_update_ms']:.1f} ms; bulk insert {q['bulk_insert_s']:.1f} s; "
            f"{q['size_mb']:.1f} MB on disk; a 2nd process counts {q['second_process_count']}; "
            f"at {n_docs // 10:,} documents: query {small['query_ms']:.1f} ms, by uuid "
            f"{small['query_one_ms']:.1f} ms, update {small['single_update_ms']:.1f} ms (montydb "
            "has no indexes: every query and update scans the collection)",
            q,
        ),
    ]


def main(n: int = 10_000) -> None:
    rows = [measure(k, v, n) for k, v in STORES.items()]
    print(f"{n} documents, python {sys.version.split()[0]}, {os.cpu_count()} cores\n")
    print("| store | bulk insert (s) | one update (ms) | query (ms) | found | 2nd process | MB |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['store']} | {r['bulk_insert_s']:.2f} | {r['single_update_ms']:.1f} | "
            f"{r['query_ms']:.1f} | {r['n_found']} | {r['second_process_count']} | "
            f"{r['size_mb']:.1f} |"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
