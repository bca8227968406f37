"""Trajectories split into chunks small enough for any document store.

MongoDB refuses documents over 16 MB; a 1,000-frame, 400-atom trajectory with forces is larger
than that as JSON. ctaflow therefore stores MD trajectories as a list of
:class:`TrajectoryChunk` objects, each holding a contiguous block of frames with its arrays
base64-encoded (exact float64 round trip, ~4/3 of the binary size), and each small enough
(``max_chunk_mb``) to be its own document in the ``data`` store.

Jobs that return chunks are ``@result_job``s (:mod:`ctaflow.jobs`): jobflow then moves the value of
every ``chunk_arrays`` key into the ``data`` store, one document per chunk, and leaves a
reference in the job's document. (jobflow matches classes only for MSONable objects, not for
pydantic models, so the key is what makes this work.)
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

#: per-frame arrays a trajectory may carry, with their units
FRAME_ARRAYS = {
    "positions_a": "Cartesian positions, Å (unwrapped as the integrator produced them)",
    "cells_a": "cell vectors (rows), Å",
    "energies_ev": "potential energy, eV",
    "forces_ev_per_a": "forces, eV/Å",
    "stresses_gpa": "stress tensor (3×3, positive = tensile, as ASE), GPa",
    "velocities_a_per_fs": "velocities, Å/fs",
    "temperatures_k": "instantaneous kinetic temperature, K",
    "times_fs": "simulation time of the frame, fs",
}


def encode_array(array: np.ndarray) -> dict[str, Any]:
    """Exact, JSON-safe encoding of an array (dtype, shape, base64 bytes)."""
    array = np.ascontiguousarray(array)
    return {
        "dtype": array.dtype.str,
        "shape": list(array.shape),
        "b64": base64.b64encode(array.tobytes()).decode("ascii"),
    }


def decode_array(data: dict[str, Any]) -> np.ndarray:
    """Inverse of :func:`encode_array`."""
    raw = base64.b64decode(data["b64"])
    return np.frombuffer(raw, dtype=np.dtype(data["dtype"])).reshape(data["shape"]).copy()


#: jobflow ``data=`` key that sends each chunk's arrays to the ``data`` store
CHUNK_DATA_KEY = "chunk_arrays"


class TrajectoryChunk(BaseModel):
    """Frames ``start_frame … start_frame + n_frames − 1`` of a trajectory."""

    chunk_index: int
    start_frame: int
    n_frames: int
    n_atoms: int
    chunk_arrays: dict[str, dict[str, Any]] = Field(
        description="Encoded per-frame arrays (see FRAME_ARRAYS); one data-store document."
    )

    def array(self, name: str) -> np.ndarray:
        return decode_array(self.chunk_arrays[name])


def frames_per_chunk(bytes_per_frame: int, max_chunk_mb: float) -> int:
    """How many frames fit in one chunk (base64 inflates by 4/3; keep 10 % headroom)."""
    budget = max_chunk_mb * 1e6 * 0.9 / (4 / 3)
    return max(1, int(budget // max(1, bytes_per_frame)))


def chunk_trajectory(
    arrays: dict[str, np.ndarray], max_chunk_mb: float = 8.0
) -> list[TrajectoryChunk]:
    """Split per-frame arrays (first axis = frame) into chunks of at most ``max_chunk_mb``."""
    unknown = set(arrays) - set(FRAME_ARRAYS)
    if unknown:
        raise ValueError(
            f"unknown trajectory arrays {sorted(unknown)}; known: {list(FRAME_ARRAYS)}"
        )
    n_frames = {len(a) for a in arrays.values()}
    if len(n_frames) != 1:
        raise ValueError(f"arrays disagree on the number of frames: {sorted(n_frames)}")
    (total,) = n_frames
    n_atoms = int(arrays["positions_a"].shape[1]) if "positions_a" in arrays else 0
    per_frame = sum(a[0].nbytes for a in arrays.values()) if total else 1
    step = frames_per_chunk(per_frame, max_chunk_mb)
    chunks = []
    for index, start in enumerate(range(0, total, step)):
        stop = min(start + step, total)
        chunks.append(
            TrajectoryChunk(
                chunk_index=index,
                start_frame=start,
                n_frames=stop - start,
                n_atoms=n_atoms,
                chunk_arrays={name: encode_array(a[start:stop]) for name, a in arrays.items()},
            )
        )
    return chunks


def join_chunks(chunks: list[TrajectoryChunk | dict]) -> dict[str, np.ndarray]:
    """Per-frame arrays from chunks (in any order); checks that no frame is missing."""
    parsed = sorted(
        (
            c if isinstance(c, TrajectoryChunk) else TrajectoryChunk.model_validate(c)
            for c in chunks
        ),
        key=lambda c: c.start_frame,
    )
    expected = 0
    for chunk in parsed:
        if chunk.start_frame != expected:
            raise ValueError(f"trajectory chunks miss frames {expected}…{chunk.start_frame - 1}")
        expected += chunk.n_frames
    names = parsed[0].chunk_arrays.keys() if parsed else []
    return {name: np.concatenate([c.array(name) for c in parsed]) for name in names}
