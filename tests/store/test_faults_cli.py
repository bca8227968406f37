"""Each damage found in issue #27, made on a copy of a small work directory, seen from the
command line: one message naming the file and what to do, exit status 1, no traceback, no file
changed; ``ctaflow verify`` lists the damage."""

from __future__ import annotations

import json
import struct
import subprocess
import sys

import pytest

from tests.conftest import CTAFLOW, subprocess_env
from tests.store.conftest import collection_file, snapshot
from tests.store.jobs import frames

RELAX_ONLY = """\
name: small
structure: {source: demo}
engines:
  labeller: {kind: mlip}
stages:
  relax: {fmax_ev_per_a: 0.02}
"""


def ctaflow(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CTAFLOW, *map(str, args)],
        capture_output=True,
        text=True,
        env={**subprocess_env(), **(env or {})},
        timeout=600,
    )


def refused(proc: subprocess.CompletedProcess) -> str:
    """The one error line of a refused command (and that it is just that)."""
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def verify_lines(work) -> list[str]:
    proc = ctaflow("verify", "-w", work)
    assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert "problem" in lines[-1] and "found" in lines[-1]  # the summary
    return lines[:-1]


def flip_float(path, name: str, value: float) -> None:
    """Change one mantissa byte of the BSON double ``name: value`` inside an SQLite file."""
    raw = bytearray(path.read_bytes())
    needle = name.encode() + b"\x00" + struct.pack("<d", value)
    at = raw.find(needle)
    assert at > 0 and raw.count(needle) == 1
    raw[at + len(name) + 1 + 2] ^= 0x40
    path.write_bytes(raw)


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        ("empty", "is empty (0 bytes)"),
        ("garbage", "is not an SQLite database"),
        ("other table", "has no 'documents' table"),
    ],
)
def test_damaged_outputs_file_is_one_message_and_is_not_written(work, damage, problem):
    path = collection_file(work, "outputs")
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "garbage":
        path.write_bytes(bytes(range(256)) * 20)
    else:
        import sqlite3

        path.unlink()
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE other (a)")
    before = snapshot(work)
    line = refused(ctaflow("query", "-w", work))
    assert f"store file '{path}' {problem}" in line
    assert "restore it from a copy" in line and f"'ctaflow verify -w {work}'" in line
    assert snapshot(work) == before  # no fresh SQLite header, no rewritten configuration
    lines = verify_lines(work)
    assert lines[0].startswith(f"outputs: file '{path}' {problem}")
    # the run states still say the three jobs completed: their outputs are gone
    assert sum("recorded COMPLETED but its output document is missing" in x for x in lines) == 3
    assert snapshot(work) == before


@pytest.mark.slow  # four commands, one of them a refused 'run' (~20 s on a busy machine)
def test_truncated_data_store_is_noticed(work, tmp_path):
    path = collection_file(work, "outputs_data")
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.truncate(size // 2)
    before = snapshot(work)
    for command in ("query", "report"):
        line = refused(ctaflow(command, "-w", work))
        assert f"store file '{path}' is truncated ({size // 2:,} of {size:,} bytes)" in line
    campaign = tmp_path / "small.yaml"
    campaign.write_text(RELAX_ONLY)
    assert "is truncated" in refused(ctaflow("run", campaign, "-w", work))
    assert snapshot(work) == before  # the refused run wrote nothing, not even its pid
    lines = verify_lines(work)
    assert lines[0] == f"outputs_data: file '{path}' is truncated ({size // 2:,} of {size:,} bytes)"
    missing = [x for x in lines if "is missing from the data store" in x]
    assert {x.split(": ")[1] for x in missing} >= {"segment (68a37006)", "model file (ed53ffb5)"}
    assert any(
        x.startswith("outputs_data: segment (68a37006): trajectory chunk 0 (frames 0–2)")
        for x in missing
    )


def test_changed_float_in_outputs_is_not_served(work):
    from ctaflow.query import find_outputs, open_results

    (summary,) = [r for r in find_outputs(open_results(work)) if r["name"] == "summary"]
    flip_float(collection_file(work, "outputs"), "energy_range_ev", summary["energy_range_ev"])
    before = snapshot(work)
    line = refused(ctaflow("query", "-w", work, "--format", "json"))
    assert "outputs.collection' holds a damaged document, summary (7a8a8ddc-" in line
    assert "which was changed after it was written (checksum mismatch)" in line
    assert verify_lines(work) == [
        "outputs: summary (7a8a8ddc): job document was changed after it was written "
        "(checksum mismatch)"
    ]
    assert snapshot(work) == before


def test_changed_byte_in_a_trajectory_chunk_is_found(work):
    path = collection_file(work, "outputs_data")
    energies = frames()["energies_ev"]
    raw = bytearray(path.read_bytes())
    # the base64 text of frames 3-5's energies (chunk 1) inside the data store
    from ctaflow.analysis.chunks import encode_array

    text = encode_array(energies[3:6])["b64"].encode()
    at = raw.find(text)
    assert at > 0
    raw[at + 5] = ord("A") if raw[at + 5] != ord("A") else ord("B")
    path.write_bytes(raw)
    assert verify_lines(work) == [
        "outputs_data: segment (68a37006): trajectory chunk 1 (frames 3–5): checksum mismatch, "
        "the stored arrays are corrupt"
    ]


def test_refused_second_run_changes_nothing(work, tmp_path):
    campaign = tmp_path / "small.yaml"
    campaign.write_text(RELAX_ONLY)
    holder = subprocess.Popen(  # another process holds the lock, as a running 'ctaflow run'
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time\n"
            "h = open(sys.argv[1], 'a+'); fcntl.flock(h, fcntl.LOCK_EX)\n"
            "print('locked', flush=True); time.sleep(600)",
            str(work / ".ctaflow.lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = snapshot(work)
        line = refused(ctaflow("run", campaign, "-w", work))
        assert "another ctaflow run" in line and f"is using '{work}'" in line
        assert snapshot(work) == before  # run info, effective campaign, log, store: untouched
    finally:
        holder.kill()
        holder.wait()
    info = json.loads((work / "ctaflow-run.json").read_text())
    assert info["campaign"] == "toy"  # still the run whose results are in the store


@pytest.mark.slow  # five commands (~20 s on a busy machine)
def test_unreachable_mongodb_changes_nothing(work, tmp_path, closed_port):
    config = tmp_path / "jobflow.yaml"
    config.write_text(
        f"""JOB_STORE:
  docs_store: {{type: MongoStore, host: 127.0.0.1, port: {closed_port}, database: x,
               collection_name: outputs, mongoclient_kwargs: {{serverSelectionTimeoutMS: 300}}}}
  additional_stores:
    data: {{type: GridFSStore, host: 127.0.0.1, port: {closed_port}, database: x,
           collection_name: outputs_data, mongoclient_kwargs: {{serverSelectionTimeoutMS: 300}}}}
"""
    )
    campaign = tmp_path / "mongo.yaml"
    campaign.write_text(RELAX_ONLY + f"store: {{kind: mongodb, config_file: {config}}}\n")
    before = snapshot(work)
    line = refused(ctaflow("run", campaign, "-w", work))
    assert f"MongoDB server 127.0.0.1:{closed_port} (store.config_file '{config}')" in line
    assert "did not answer within" in line and "check that it is running" in line
    assert snapshot(work) == before
    assert ctaflow("query", "-w", work).returncode == 0  # the embedded results still answer
    # a work directory whose run recorded that server: query and status say the same
    elsewhere = tmp_path / "mongo-work"
    elsewhere.mkdir()
    store = {"kind": "mongodb", "config_file": str(config)}
    (elsewhere / "ctaflow-run.json").write_text(json.dumps({"store": store}))
    for command in ("query", "status", "verify"):
        assert "did not answer within" in refused(ctaflow(command, "-w", elsewhere))


@pytest.fixture
def closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
