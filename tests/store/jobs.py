"""Small jobs whose outputs hold every kind of stored blob: a chunked trajectory (like an MD
segment), a file in parts (like a trained model) and a plain result that reads the trajectory
back (like the transport analysis)."""

from __future__ import annotations

import numpy as np
from jobflow import Flow, job
from pydantic import BaseModel

from ctaflow.analysis.blobs import PART_DATA_KEY, BlobPart, pack_file, unpack_file
from ctaflow.analysis.chunks import CHUNK_DATA_KEY, TrajectoryChunk, chunk_trajectory, join_chunks
from ctaflow.flows.uids import deterministic_uids

N_FRAMES, N_ATOMS, MODEL_BYTES = 12, 4, 5000


class Segment(BaseModel):
    """Stand-in for MDResult: frames in chunks, a scalar beside them."""

    n_frames: int
    mean_energy_ev: float
    trajectory: list[TrajectoryChunk]


class ModelFile(BaseModel):
    """Stand-in for a trained model: a file in parts."""

    n_bytes: int
    model: list[BlobPart]


def frames(seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "positions_a": rng.normal(size=(N_FRAMES, N_ATOMS, 3)),
        "energies_ev": rng.normal(size=N_FRAMES) - 10.0,
    }


def model_bytes(seed: int = 2) -> bytes:
    return np.random.default_rng(seed).bytes(MODEL_BYTES)


@job(data=[CHUNK_DATA_KEY])
def segment(seed: int) -> Segment:
    arrays = frames(seed)
    return Segment(
        n_frames=N_FRAMES,
        mean_energy_ev=float(arrays["energies_ev"].mean()),
        trajectory=chunk_trajectory(arrays, max_chunk_mb=0.0005),  # 3 frames a chunk
    )


@job(data=[PART_DATA_KEY])
def model_file(seed: int) -> ModelFile:
    return ModelFile(n_bytes=MODEL_BYTES, model=pack_file(model_bytes(seed), "toy.model", 0.002))


@job
def summarize(seg: Segment, model: ModelFile) -> dict:
    arrays = join_chunks(seg.trajectory, seg.n_frames)
    return {
        "mean_energy_ev": float(arrays["energies_ev"].mean()),
        "energy_range_ev": float(np.ptp(arrays["energies_ev"])),
        "model_bytes": len(unpack_file(model.model)),
    }


def toy_flow() -> Flow:
    with deterministic_uids("store-tests"):
        seg = segment(1)
        seg.name = "segment"
        model = model_file(2)
        model.name = "model file"
        summary = summarize(seg.output, model.output)
        summary.name = "summary"
        flow = Flow([seg, model, summary])
    flow.update_metadata({"stage": "toy", "campaign": "toy"})
    return flow
