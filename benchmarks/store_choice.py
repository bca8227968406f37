"""Measure candidate embedded stores for ctaflow's default JobStore.

Run: ``python -m benchmarks.store_choice [N]``. Prints one Markdown table with, per store:
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
            "n_found": len(found),
            "second_process_count": second or out.stderr.strip().splitlines()[-1],
            "size_mb": _du(Path(d)),
        }


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
