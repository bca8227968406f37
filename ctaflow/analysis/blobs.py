"""Files (model weights, datasets) stored in the ``data`` store in parts below 16 MB each.

Jobs returning parts are ``@result_job``s (:mod:`ctaflow.jobs`): jobflow moves every ``part_b64``
value into the ``data`` store, one document per part (see :mod:`ctaflow.analysis.chunks`).
"""

from __future__ import annotations

import base64
import hashlib

from pydantic import BaseModel, Field

#: jobflow ``data=`` key that sends each part's content to the ``data`` store
PART_DATA_KEY = "part_b64"


class BlobPart(BaseModel):
    """One part of a file; each part is its own document in the ``data`` store."""

    name: str = Field(description="File name, e.g. mace.model or train.extxyz.")
    sha256: str = Field(description="sha256 of the whole file.")
    index: int
    n_parts: int
    size_bytes: int = Field(description="Size of the whole file.")
    part_b64: str = Field(description="This part, base64; one data-store document.")


def pack_file(data: bytes, name: str, max_part_mb: float = 8.0) -> list[BlobPart]:
    """Split ``data`` into base64 parts of at most ``max_part_mb`` (encoded)."""
    step = max(1, int(max_part_mb * 1e6 * 0.75))  # base64 inflates by 4/3
    digest = hashlib.sha256(data).hexdigest()
    chunks = [data[i : i + step] for i in range(0, len(data), step)] or [b""]
    return [
        BlobPart(
            name=name,
            sha256=digest,
            index=i,
            n_parts=len(chunks),
            size_bytes=len(data),
            part_b64=base64.b64encode(chunk).decode("ascii"),
        )
        for i, chunk in enumerate(chunks)
    ]


def unpack_file(parts: list[BlobPart | dict]) -> bytes:
    """The file from its parts (any order); the checksum must match."""
    parsed = sorted(
        (p if isinstance(p, BlobPart) else BlobPart.model_validate(p) for p in parts),
        key=lambda p: p.index,
    )
    if not parsed or [p.index for p in parsed] != list(range(parsed[0].n_parts)):
        raise ValueError("file parts are missing; the data store is incomplete")
    data = b"".join(base64.b64decode(p.part_b64) for p in parsed)
    if hashlib.sha256(data).hexdigest() != parsed[0].sha256:
        raise ValueError(f"{parsed[0].name}: checksum mismatch, the stored file is corrupt")
    return data
