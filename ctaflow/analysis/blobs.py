"""Files (model weights, datasets) stored in the ``data`` store in parts below 16 MB each.

Jobs returning parts are ``@result_job``s (:mod:`ctaflow.jobs`): jobflow moves every ``part_b64``
value into the ``data`` store, one document per part (see :mod:`ctaflow.analysis.chunks`).

The checksums stay in the job document while the bytes go to the ``data`` store, so a part that
was cut short, changed or swapped in the data store is caught when it is read back: each part
carries the sha256 of its own bytes (``part_sha256``, which names the damaged part) beside the
sha256 of the whole file (``sha256``). Parts written before ``part_sha256`` existed have None
there and are checked by the whole-file sum only.
"""

from __future__ import annotations

import base64
import hashlib

from pydantic import BaseModel, Field

from ctaflow.errors import StoreError

#: jobflow ``data=`` key that sends each part's content to the ``data`` store
PART_DATA_KEY = "part_b64"


class BlobIntegrityError(StoreError, ValueError):
    """A stored blob (file part, trajectory chunk) is missing or does not match its checksum.

    A :class:`~ctaflow.errors.StoreError` (the command line prints it as one message) and a
    ``ValueError`` (what these checks raised before they had a class of their own).
    """


class BlobPart(BaseModel):
    """One part of a file; each part is its own document in the ``data`` store."""

    name: str = Field(description="File name, e.g. mace.model or train.extxyz.")
    sha256: str = Field(description="sha256 of the whole file.")
    part_sha256: str | None = Field(
        None, description="sha256 of this part's bytes (None: written before parts had one)."
    )
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
            part_sha256=hashlib.sha256(chunk).hexdigest(),
            part_b64=base64.b64encode(chunk).decode("ascii"),
        )
        for i, chunk in enumerate(chunks)
    ]


def part_problem(part: BlobPart) -> str | None:
    """What is wrong with one part's bytes (None: valid base64 matching ``part_sha256``)."""
    try:
        data = base64.b64decode(part.part_b64, validate=True)
    except ValueError:
        return "not valid base64, the stored file is corrupt"
    if part.part_sha256 is not None and hashlib.sha256(data).hexdigest() != part.part_sha256:
        return "checksum mismatch, the stored file is corrupt"
    return None


def part_bytes(part: BlobPart) -> bytes:
    """The bytes of one part, checked against its own checksum when it has one."""
    problem = part_problem(part)
    if problem:
        raise BlobIntegrityError(f"{part.name}: part {part.index + 1} of {part.n_parts}: {problem}")
    return base64.b64decode(part.part_b64)


def check_part_set(parts: list[BlobPart]) -> None:
    """Raise :class:`BlobIntegrityError` unless ``parts`` are parts 1…n of one file, once each."""
    if not parts:
        raise BlobIntegrityError("a stored file has no parts; the data store is incomplete")
    first = parts[0]
    if any(p.sha256 != first.sha256 or p.n_parts != first.n_parts for p in parts):
        raise BlobIntegrityError(f"{first.name}: parts of different files are mixed")
    have = sorted(p.index for p in parts)
    if have != list(range(first.n_parts)):
        missing = sorted(set(range(first.n_parts)) - set(have))
        numbers = ", ".join(str(i + 1) for i in missing)
        raise BlobIntegrityError(
            f"{first.name}: file parts are missing (part {numbers} of {first.n_parts}); the data "
            "store is incomplete"
            if missing
            else f"{first.name}: file parts are stored more than once"
        )


def unpack_file(parts: list[BlobPart | dict]) -> bytes:
    """The file from its parts (any order); every part and the whole file must match their
    checksums, and no part may be missing."""
    parsed = sorted(
        (p if isinstance(p, BlobPart) else BlobPart.model_validate(p) for p in parts),
        key=lambda p: p.index,
    )
    check_part_set(parsed)
    data = b"".join(part_bytes(p) for p in parsed)
    if len(data) != parsed[0].size_bytes or hashlib.sha256(data).hexdigest() != parsed[0].sha256:
        raise BlobIntegrityError(f"{parsed[0].name}: checksum mismatch, the stored file is corrupt")
    return data
