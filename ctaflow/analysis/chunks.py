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

Each chunk carries the sha256 of its encoded arrays (``arrays_sha256``) in the job document, while
the arrays themselves sit in the ``data`` store: a chunk cut short, changed or swapped there is
caught when it is read back (:meth:`TrajectoryChunk.check`, called by :func:`join_chunks` and
:meth:`TrajectoryChunk.array`). Chunks written before the field existed have None and load as
before.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from ctaflow.analysis.blobs import BlobIntegrityError

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


def _encoding_problem(encoded: Any, n_frames: int) -> str | None:
    """What is wrong with one encoded array of ``n_frames`` frames (None: nothing), judged from
    its dtype, shape and base64 length without decoding it."""
    try:
        itemsize = np.dtype(encoded["dtype"]).itemsize
        shape = [int(n) for n in encoded["shape"]]
        n_chars = len(encoded["b64"])
    except (KeyError, TypeError, ValueError) as exc:
        return f"is not an encoded array ({type(exc).__name__}: {exc})"
    n_bytes = int(np.prod(shape)) * itemsize
    if n_chars != 4 * -(-n_bytes // 3):
        return f"holds {n_chars} base64 characters, not the {4 * -(-n_bytes // 3)} of {shape}"
    if not shape or shape[0] != n_frames:
        return f"has shape {shape}, not {n_frames} frames"
    return None


#: jobflow ``data=`` key that sends each chunk's arrays to the ``data`` store
CHUNK_DATA_KEY = "chunk_arrays"


def arrays_digest(chunk_arrays: dict[str, dict[str, Any]]) -> str:
    """sha256 of encoded arrays: of their canonical JSON (sorted keys, no spaces), which is
    exactly what the data store holds (dtype strings, shapes and base64 text)."""
    text = json.dumps(chunk_arrays, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class TrajectoryChunk(BaseModel):
    """Frames ``start_frame … start_frame + n_frames − 1`` of a trajectory."""

    chunk_index: int
    start_frame: int
    n_frames: int
    n_atoms: int
    arrays_sha256: str | None = Field(
        None,
        description="sha256 of chunk_arrays (arrays_digest); None: written before chunks had one.",
    )
    chunk_arrays: dict[str, dict[str, Any]] = Field(
        description="Encoded per-frame arrays (see FRAME_ARRAYS); one data-store document."
    )

    @property
    def label(self) -> str:
        last = self.start_frame + self.n_frames - 1
        return f"trajectory chunk {self.chunk_index} (frames {self.start_frame}–{last})"

    def problem(self) -> str | None:
        """What is wrong with the arrays (None: they match their checksum and hold
        ``n_frames`` frames each)."""
        if (
            self.arrays_sha256 is not None
            and arrays_digest(self.chunk_arrays) != self.arrays_sha256
        ):
            return "checksum mismatch, the stored arrays are corrupt"
        for name, encoded in self.chunk_arrays.items():
            problem = _encoding_problem(encoded, self.n_frames)
            if problem:
                return f"array {name} {problem}"
        return None

    def check(self) -> None:
        """Raise :class:`BlobIntegrityError` naming the chunk if :meth:`problem` finds one."""
        problem = self.problem()
        if problem:
            raise BlobIntegrityError(f"{self.label}: {problem}")

    def array(self, name: str) -> np.ndarray:
        self.check()
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
        encoded = {name: encode_array(a[start:stop]) for name, a in arrays.items()}
        chunks.append(
            TrajectoryChunk(
                chunk_index=index,
                start_frame=start,
                n_frames=stop - start,
                n_atoms=n_atoms,
                arrays_sha256=arrays_digest(encoded),
                chunk_arrays=encoded,
            )
        )
    return chunks


def join_chunks(
    chunks: list[TrajectoryChunk | dict], n_frames: int | None = None
) -> dict[str, np.ndarray]:
    """Per-frame arrays from chunks (in any order); checks that no frame is missing, that every
    chunk matches its checksum and, given ``n_frames`` (e.g. ``MDResult.n_frames``), that the
    last chunks are there too."""
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
            raise BlobIntegrityError(
                f"trajectory chunks miss frames {expected}…{chunk.start_frame - 1}"
            )
        chunk.check()
        expected += chunk.n_frames
    if n_frames is not None and expected != n_frames:
        raise BlobIntegrityError(
            f"trajectory chunks hold {expected} frames, not {n_frames}: the last chunks are missing"
        )
    names = parsed[0].chunk_arrays.keys() if parsed else []
    return {
        name: np.concatenate([decode_array(c.chunk_arrays[name]) for c in parsed]) for name in names
    }
