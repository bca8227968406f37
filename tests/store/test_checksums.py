"""Checksums written with every blob and document, compared when they are read back."""

from __future__ import annotations

import datetime

import numpy as np
import pytest

from ctaflow.analysis.blobs import BlobIntegrityError, BlobPart, pack_file, unpack_file
from ctaflow.analysis.chunks import TrajectoryChunk, arrays_digest, chunk_trajectory, join_chunks
from ctaflow.errors import StoreError
from ctaflow.store_check import CHECKSUM_FIELD, checksum_problem, document_sha256
from tests.store.jobs import frames


def _flip_b64(text: str, at: int = 5) -> str:
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1 :]


def test_chunks_carry_a_checksum_that_catches_one_changed_character():
    chunks = chunk_trajectory(frames(), max_chunk_mb=0.0005)
    assert len(chunks) == 4 and all(c.arrays_sha256 for c in chunks)
    assert chunks[1].arrays_sha256 == arrays_digest(chunks[1].chunk_arrays)
    docs = [c.model_dump() for c in chunks]  # as the job document and data store hold them
    docs[2]["chunk_arrays"]["energies_ev"]["b64"] = _flip_b64(
        docs[2]["chunk_arrays"]["energies_ev"]["b64"]
    )
    with pytest.raises(BlobIntegrityError, match=r"trajectory chunk 2 \(frames 6–8\): checksum"):
        join_chunks(docs)
    with pytest.raises(StoreError):  # the command line prints it as one message
        join_chunks(docs)


def test_chunks_written_before_checksums_still_load():
    arrays = frames()
    old = [c.model_dump(exclude={"arrays_sha256"}) for c in chunk_trajectory(arrays, 0.0005)]
    assert TrajectoryChunk.model_validate(old[0]).arrays_sha256 is None
    back = join_chunks(old, n_frames=12)
    assert back["positions_a"].tobytes() == arrays["positions_a"].tobytes()


def test_missing_last_chunk_and_short_array_are_errors():
    chunks = chunk_trajectory(frames(), max_chunk_mb=0.0005)
    with pytest.raises(BlobIntegrityError, match="hold 9 frames, not 12"):
        join_chunks(chunks[:3], n_frames=12)  # contiguous, but the end is gone
    short = chunks[0].model_copy(deep=True)
    short.arrays_sha256 = None  # an old chunk: only the shape check can see it
    short.chunk_arrays["energies_ev"]["b64"] = short.chunk_arrays["energies_ev"]["b64"][:-4]
    assert "holds 28 base64 characters, not the 32 of [3]" in short.problem()


def test_parts_carry_their_own_checksum_and_name_the_damaged_part():
    data = bytes(range(256)) * 40
    parts = pack_file(data, "toy.model", max_part_mb=0.004)  # 3000-byte parts
    assert len(parts) == 4 and len({p.part_sha256 for p in parts}) == 4
    bad = [p.model_copy() for p in parts]
    bad[2].part_b64 = _flip_b64(bad[2].part_b64, 10)
    with pytest.raises(BlobIntegrityError, match="toy.model: part 3 of 4: checksum mismatch"):
        unpack_file(bad)
    with pytest.raises(ValueError, match=r"file parts are missing \(part 2 of 4\)"):
        unpack_file(parts[:1] + parts[2:])
    old = [BlobPart.model_validate(p.model_dump(exclude={"part_sha256"})) for p in parts]
    assert unpack_file(old) == data  # written before part checksums: the file's sum decides


def test_document_checksum_survives_the_store_round_trip(stores):
    """Floats, -0.0, big and small ints, datetimes (BSON keeps milliseconds), nested keys in
    any order: read back, the document matches its checksum; one changed float does not."""
    jobs, _ = stores
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.UTC)
    doc = {
        "uuid": "u1",
        "index": 1,
        "output": {"z": [1.0 / 3, -0.0, 1e-310], "a": {"n": 2**62, "b": True, "when": when}},
        "metadata": {"stage": "toy"},
    }
    jobs.docs_store.update(doc)
    stored = jobs.docs_store.query_one({"uuid": "u1"})
    assert stored[CHECKSUM_FIELD] == document_sha256(stored)
    assert checksum_problem(stored) is None
    assert stored["output"]["a"]["when"] == datetime.datetime(2026, 1, 2, 3, 4, 5, 678000)
    stored["output"]["z"][0] = np.nextafter(1.0 / 3, 1.0)  # the smallest change of a float
    assert checksum_problem(stored) == "was changed after it was written (checksum mismatch)"


def test_projected_queries_are_checked_and_project_as_montydb_does(stores):
    from maggma.stores import MontyStore

    jobs, _ = stores
    for i in range(3):
        jobs.docs_store.update(
            {"uuid": f"u{i}", "index": 1, "output": {"e": -1.0 * i, "chunks": [{"k": i}, {"k": 0}]}}
        )
    checked = jobs.docs_store
    plain = MontyStore(
        checked.collection_name,
        database_path=checked.database_path,
        database_name=checked.database_name,
        storage="sqlite",
    )
    plain.connect()
    for properties in (["uuid", "output.e"], ["output.chunks.k"], {"output": 1}):
        criteria = {"output.e": {"$lte": -1.0}}
        mine = list(checked.query(criteria, properties=properties, sort={"uuid": 1}))
        theirs = list(plain.query(criteria, properties=properties, sort={"uuid": 1}))
        assert mine == theirs and len(mine) == 2
