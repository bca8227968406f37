"""Trajectory chunks: exact round trip and every document under the 16 MB limit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ctaflow.analysis.chunks import (
    CHUNK_DATA_KEY,
    TrajectoryChunk,
    chunk_trajectory,
    decode_array,
    encode_array,
    frames_per_chunk,
    join_chunks,
)

MB16 = 16 * 1024 * 1024


def _big(n_frames=1000, n_atoms=400, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "positions_a": rng.normal(size=(n_frames, n_atoms, 3)) * 10,
        "forces_ev_per_a": rng.normal(size=(n_frames, n_atoms, 3)),
        "velocities_a_per_fs": rng.normal(size=(n_frames, n_atoms, 3)) * 0.01,
        "cells_a": np.repeat(np.eye(3)[None] * 20.0, n_frames, axis=0),
        "energies_ev": rng.normal(size=n_frames),
        "temperatures_k": rng.uniform(250, 350, size=n_frames),
        "times_fs": np.arange(n_frames, dtype=float),
    }


def test_encoding_is_exact_for_awkward_values():
    a = np.array([np.pi, -0.0, 1e-310, np.inf, 1 / 3], dtype=float)
    back = decode_array(json.loads(json.dumps(encode_array(a))))
    assert back.tobytes() == a.tobytes()


def test_1000_frames_400_atoms_round_trip_bit_for_bit_in_small_documents():
    arrays = _big()
    chunks = chunk_trajectory(arrays, max_chunk_mb=8.0)
    sizes = [len(json.dumps(c.model_dump())) for c in chunks]
    assert max(sizes) < MB16 and max(sizes) < 8e6
    # 1000 × 400 × 3 × 3 float64 + small arrays ≈ 28.8 MB raw: more than one chunk is needed
    assert len(chunks) >= 4
    back = join_chunks([json.loads(json.dumps(c.model_dump())) for c in reversed(chunks)])
    for name, array in arrays.items():
        assert back[name].tobytes() == array.tobytes(), name


def test_frames_per_chunk_by_hand():
    # 8 MB budget, 90 % headroom, base64 4/3: 8e6 * 0.9 * 3/4 = 5.4e6 bytes -> 5400 frames of 1000 B
    assert frames_per_chunk(1000, 8.0) == 5400
    assert frames_per_chunk(10**9, 8.0) == 1


def test_missing_frames_and_bad_arrays_are_errors():
    chunks = chunk_trajectory(_big(50, 4), max_chunk_mb=0.001)
    with pytest.raises(ValueError, match="miss frames"):
        join_chunks(chunks[:1] + chunks[2:])
    with pytest.raises(ValueError, match="unknown trajectory arrays"):
        chunk_trajectory({"pos": np.zeros((2, 1, 3))})
    with pytest.raises(ValueError, match="disagree on the number of frames"):
        chunk_trajectory({"positions_a": np.zeros((2, 1, 3)), "energies_ev": np.zeros(3)})
    assert isinstance(chunks[0], TrajectoryChunk)


def test_long_trajectory_round_trips_through_the_job_store(stores):
    """1000 frames × 400 atoms through a job whose output keeps chunks in the data store."""
    from jobflow import job, run_locally

    jobs, _ = stores
    arrays = _big()

    @job(data=[CHUNK_DATA_KEY])
    def produce():
        return {"trajectory": chunk_trajectory(arrays, max_chunk_mb=8.0)}

    j = produce()
    run_locally(j, store=jobs, log=False, ensure_success=True)
    data_store = jobs.additional_stores["data"]
    sizes = [len(json.dumps(d, default=str)) for d in data_store.query({"job_uuid": j.uuid})]
    assert len(sizes) >= 4 and max(sizes) < MB16
    main_doc = jobs.docs_store.query_one({"uuid": j.uuid})
    assert len(json.dumps(main_doc, default=str)) < 100_000  # only references in the document
    back = join_chunks(jobs.get_output(j.uuid, load=True)["trajectory"])
    for name, array in arrays.items():
        assert back[name].tobytes() == array.tobytes(), name
