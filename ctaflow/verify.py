"""Checking a whole store (``ctaflow verify``) and one job's outputs (before the runner reuses
them).

What is checked, for every job document in ``outputs``:

* the document decodes and matches its checksum (:mod:`ctaflow.store_check`);
* every ``blob_uuid`` reference in its output resolves to a document of the ``data`` store that
  belongs to this job and matches its checksum;
* every trajectory chunk matches ``arrays_sha256`` and holds its frames; the chunks of a
  trajectory cover frames 0…n−1 without a gap, n being the ``n_frames`` beside them;
* every file part matches ``part_sha256``; the parts of a file are all there once and together
  match the file's sha256;
* the output, its blobs put back, loads as its class (``@module``/``@class``: a pydantic model
  or an MSONable object), as a later job or the report would load it.

For the whole store also: every collection file is an intact SQLite file (``quick_check``), every
document of every collection (run states, derived collections) decodes and matches its
checksum, and every job recorded COMPLETED in ``ctaflow_jobs`` has its output document.

Everything here reads; nothing is written to the store.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctaflow.analysis.blobs import BlobIntegrityError, BlobPart, check_part_set, part_problem
from ctaflow.analysis.chunks import TrajectoryChunk
from ctaflow.errors import StoreError
from ctaflow.store import (
    DATA_COLLECTION,
    DATABASE_NAME,
    DERIVED_PREFIX,
    DOCS_COLLECTION,
    STATE_COLLECTION,
    derived_store,
    embedded_store_dir,
    job_store,
    state_store,
)
from ctaflow.store_check import (
    CHECKSUM_FIELD,
    COLLECTION_SUFFIX,
    checksum_problem,
    collection_file_problem,
    collection_path,
    describe_document,
    read_rows,
    read_rows_by_id,
    sqlite_problem,
)
from ctaflow.workdir import store_settings_of

if TYPE_CHECKING:
    from jobflow import JobStore

    from ctaflow.campaign.schema import StoreSettings

BlobFetcher = Callable[[list[str]], Mapping[str, dict]]
_CHUNK_KEYS = {"chunk_index", "start_frame", "n_frames", "chunk_arrays"}
_PART_KEYS = {"name", "sha256", "index", "n_parts", "part_b64"}


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a store: where (collection, job or document) and what."""

    collection: str
    subject: str
    what: str

    def __str__(self) -> str:
        return (
            f"{self.collection}: {self.subject}: {self.what}"
            if self.subject
            else (f"{self.collection}: {self.what}")
        )


@dataclass
class VerifyReport:
    """What :func:`verify_store` found."""

    workdir: Path
    kind: str = "embedded"
    problems: list[Problem] = field(default_factory=list)
    n_documents: dict[str, int] = field(default_factory=dict)
    n_jobs: int = 0
    n_blobs: int = 0
    n_without_checksum: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        read = ", ".join(f"{n} in {name}" for name, n in self.n_documents.items()) or "none"
        n = self.n_without_checksum
        unchecked = (
            f"; {n} document{'s have' if n > 1 else ' has'} no checksum (written before ctaflow "
            "stored one or by a builder's bulk insert): not compared"
            if n and self.kind == "embedded"
            else ""
        )
        verdict = (
            "no problems found"
            if self.ok
            else f"{len(self.problems)} problem{'s' if len(self.problems) > 1 else ''} found"
        )
        return (
            f"{self.workdir}: {verdict}; {self.n_jobs} job outputs and {self.n_blobs} blobs "
            f"checked; documents read: {read}{unchecked}"
        )


# --------------------------------------------------------------------------- one job
def check_job_outputs(
    store: JobStore, uuid: str, index: int | None = None, validate: bool = True
) -> list[Problem]:
    """Problems of one finished job's outputs (empty: safe to reuse).

    The local runner calls this before it reuses a job recorded COMPLETED; a job with problems
    is run again. Reads the job document and the blobs it refers to, nothing else (with the
    embedded store each read still scans its collection file: MontyDB has no indexes).
    """
    criteria: dict[str, Any] = {"uuid": uuid}
    if index is not None:
        criteria["index"] = index
    docs = list(_unchecked(store.docs_store, criteria))
    if not docs:
        return [Problem(DOCS_COLLECTION, uuid, "no output document")]
    doc = max(docs, key=lambda d: d.get("index", 0))
    data = store.additional_stores.get("data")

    def fetch(uuids: list[str]) -> dict[str, dict]:
        if data is None or not uuids:
            return {}
        found = _unchecked(data, {"blob_uuid": {"$in": uuids}})
        return {b["blob_uuid"]: b for b in found}

    return check_job_document(doc, fetch, validate=validate)


def check_job_document(doc: dict, fetch: BlobFetcher, validate: bool = True) -> list[Problem]:
    """Problems of one job document and its blobs; ``fetch(blob_uuids)`` returns the data-store
    documents found, by blob uuid."""
    subject = job_label(doc)
    problems = []
    damaged = checksum_problem(doc)
    if damaged:
        problems.append(Problem(DOCS_COLLECTION, subject, f"job document {damaged}"))
    output = doc.get("output")
    refs = [(path, ref) for path, ref in _walk(output) if _is_reference(ref)]
    blobs = fetch(list(dict.fromkeys(ref["blob_uuid"] for _, ref in refs))) if refs else {}
    resolved = copy.deepcopy(output)
    for path, ref in refs:
        label = _blob_label(output, path)
        blob = blobs.get(ref["blob_uuid"])
        if blob is None:
            problems.append(
                Problem(
                    DATA_COLLECTION,
                    subject,
                    f"{label}: blob {ref['blob_uuid']} is missing from the data store",
                )
            )
            continue
        owner = blob.get("job_uuid")
        if owner is not None and owner != doc.get("uuid"):
            problems.append(
                Problem(DATA_COLLECTION, subject, f"{label}: blob belongs to job {owner}")
            )
            continue
        problem = _content_problem(output, path, blob.get("data")) or _prefixed(
            "data document ", checksum_problem(blob)
        )
        if problem:
            problems.append(Problem(DATA_COLLECTION, subject, f"{label}: {problem}"))
        _put(resolved, path, blob.get("data"))
    blobs_ok = not problems
    problems += [Problem(DATA_COLLECTION, subject, p) for p in _set_problems(resolved, blobs_ok)]
    if validate and not problems:
        problem = _load_problem(resolved)
        if problem:
            problems.append(Problem(DOCS_COLLECTION, subject, problem))
    return problems


def job_label(doc: dict) -> str:
    """``name (uuid8)``, as the job folders are named."""
    return f"{doc.get('name') or 'job'} ({str(doc.get('uuid', '?'))[:8]})"


def _unchecked(store: Any, criteria: dict) -> Iterator[dict]:
    scan = getattr(store, "scan", None)
    return scan(criteria) if scan is not None else store.query(criteria)


def _is_reference(value: Any) -> bool:
    return isinstance(value, dict) and "blob_uuid" in value and "store" in value


def _walk(value: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """Every (path, value) below ``value``, depth first; references are not entered."""
    yield path, value
    if _is_reference(value):
        return
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, (*path, key))
    elif isinstance(value, list) and value and isinstance(value[0], (dict, list)):
        for i, item in enumerate(value):  # lists of numbers (coordinates) are not entered
            yield from _walk(item, (*path, i))


def _get(value: Any, path: tuple) -> Any:
    for key in path:
        value = value[key]
    return value


def _put(root: Any, path: tuple, item: Any) -> None:
    if path:
        _get(root, path[:-1])[path[-1]] = item


def _blob_label(output: Any, path: tuple) -> str:
    parent = _get(output, path[:-1]) if path else None
    if isinstance(parent, dict) and parent.keys() >= _CHUNK_KEYS:
        first = parent["start_frame"]
        last = first + parent["n_frames"] - 1
        where = ".".join(str(k) for k in path[:-2]) or "trajectory"
        return f"{where} chunk {parent['chunk_index']} (frames {first}–{last})"
    if isinstance(parent, dict) and parent.keys() >= _PART_KEYS:
        return f"{parent['name']} part {parent['index'] + 1} of {parent['n_parts']}"
    return "output." + ".".join(str(k) for k in path) if path else "output"


def _content_problem(output: Any, path: tuple, data: Any) -> str | None:
    """A chunk's or part's own checksum, checked on the blob's data."""
    parent = _get(output, path[:-1]) if path else None
    try:
        if isinstance(parent, dict) and parent.keys() >= _CHUNK_KEYS:
            return TrajectoryChunk.model_validate({**parent, "chunk_arrays": data}).problem()
        if isinstance(parent, dict) and parent.keys() >= _PART_KEYS:
            return part_problem(BlobPart.model_validate({**parent, "part_b64": data}))
    except ValueError as exc:  # pydantic: the data is not what a chunk or part holds
        return f"data has the wrong form ({str(exc).splitlines()[0]})"
    return None


def _prefixed(prefix: str, problem: str | None) -> str | None:
    return prefix + problem if problem else None


def _set_problems(resolved: Any, blobs_ok: bool) -> list[str]:
    """Chunks covering their trajectory, parts completing their file (blobs put back; the
    parts' bytes are hashed together only if every blob was found intact)."""
    problems = []
    for path, value in _walk(resolved):
        if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
            continue
        where = ".".join(str(k) for k in path) or "output"
        if all(v.keys() >= _CHUNK_KEYS for v in value):
            parent = _get(resolved, path[:-1]) if path else None
            n_frames = parent.get("n_frames") if isinstance(parent, dict) else None
            expected = 0
            for chunk in sorted(value, key=lambda c: c["start_frame"]):
                if chunk["start_frame"] != expected:
                    problems.append(
                        f"{where}: chunks miss frames {expected}…{chunk['start_frame'] - 1}"
                    )
                expected = chunk["start_frame"] + chunk["n_frames"]
            if isinstance(n_frames, int) and expected != n_frames:
                problems.append(f"{where}: chunks hold {expected} frames, not {n_frames}")
        elif all(v.keys() >= _PART_KEYS for v in value):
            problems += _file_problems(value, hash_content=blobs_ok)
    return problems


def _file_problems(parts: list[dict], hash_content: bool) -> list[str]:
    try:
        meta = [{**p, "part_b64": ""} for p in parts]  # the set, whatever the blobs hold
        check_part_set(sorted((BlobPart.model_validate(p) for p in meta), key=lambda p: p.index))
        if not hash_content:
            return []
        parsed = sorted((BlobPart.model_validate(p) for p in parts), key=lambda p: p.index)
        data = b"".join(base64.b64decode(p.part_b64) for p in parsed)
    except (BlobIntegrityError, ValueError) as exc:
        return [str(exc).splitlines()[0]]
    if hashlib.sha256(data).hexdigest() != parsed[0].sha256:
        return [f"{parsed[0].name}: the parts together do not match the file's checksum"]
    return []


def _load_problem(output: Any) -> str | None:
    """Whether an output, blobs put back, loads as its class (None: it does, or has none)."""
    if not isinstance(output, dict) or "@class" not in output:
        return None
    from monty.json import MontyDecoder

    try:
        MontyDecoder().process_decoded(output)
    except Exception as exc:  # any failure to load is the finding
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"output does not load as {output['@class']} ({type(exc).__name__}: {first})"
    return None


# --------------------------------------------------------------------------- whole store
def verify_store(workdir: str | Path, settings: StoreSettings | None = None) -> VerifyReport:
    """Check every collection of a work directory's store (see the module docstring).

    ``settings`` defaults to what ``ctaflow run`` recorded in the work directory.
    """
    workdir = Path(workdir)
    settings = settings if settings is not None else store_settings_of(workdir)
    report = VerifyReport(workdir, kind=settings.kind if settings is not None else "embedded")
    if report.kind == "mongodb":
        _verify_stores(workdir, settings, report)
    else:
        _verify_embedded(workdir, report)
    return report


def _verify_embedded(workdir: Path, report: VerifyReport) -> None:
    root = embedded_store_dir(workdir)
    if not (root / "monty.storage.cfg").is_file():
        raise StoreError(
            f"no ctaflow store in '{workdir}' (expected {root}); pass the --workdir used with "
            "'ctaflow run'"
        )
    db_dir = root / DATABASE_NAME
    names = {DOCS_COLLECTION, DATA_COLLECTION, STATE_COLLECTION}
    names |= {p.name.removesuffix(COLLECTION_SUFFIX) for p in db_dir.glob(f"*{COLLECTION_SUFFIX}")}
    readable = {}
    for name in sorted(names):
        path = collection_path(db_dir, name)
        problem = collection_file_problem(path, deep=True)
        if problem:
            report.problems.append(Problem(name, "", f"file '{path}' {problem}"))
        readable[name] = path.is_file() and not (
            problem and problem.startswith(("is empty", "is not", "has no"))
        )

    def rows(name: str) -> Iterator[tuple[int, dict]]:
        path = collection_path(db_dir, name)
        if not readable[name]:
            return
        n = 0
        try:
            for rowid, doc, problem in read_rows(path):
                n += 1
                if problem:
                    report.problems.append(Problem(name, f"row {rowid}", problem))
                else:
                    yield rowid, doc
        except sqlite3.DatabaseError as exc:
            report.problems.append(
                Problem(
                    name, "", f"reading stopped after {n} documents: file {sqlite_problem(exc)}"
                )
            )
        finally:
            report.n_documents[name] = n

    blob_rows = {}
    for rowid, doc in rows(DATA_COLLECTION):
        _count_checksum(doc, report)
        if "blob_uuid" in doc:
            blob_rows[doc["blob_uuid"]] = rowid
    data_path = collection_path(db_dir, DATA_COLLECTION)

    def fetch(uuids: list[str]) -> dict[str, dict]:
        wanted = [blob_rows[u] for u in uuids if u in blob_rows]
        if not wanted:
            return {}
        try:
            found = read_rows_by_id(data_path, wanted)
        except sqlite3.DatabaseError:
            return {}  # reported when the file was read
        return {d["blob_uuid"]: d for d in found.values() if "blob_uuid" in d}

    jobs = [doc for _, doc in rows(DOCS_COLLECTION)]
    _check_jobs(jobs, fetch, report)
    _check_states((doc for _, doc in rows(STATE_COLLECTION)), jobs, report)
    for name in sorted(n for n in names if n.startswith(DERIVED_PREFIX)):
        _check_plain(name, (doc for _, doc in rows(name)), report)


def _verify_stores(workdir: Path, settings: StoreSettings, report: VerifyReport) -> None:
    """The same checks through the maggma stores (MongoDB: the server keeps its own checksums
    of its files, so only documents and references are checked)."""
    store = job_store(settings, workdir, create=False)
    data = store.additional_stores.get("data")

    def fetch(uuids: list[str]) -> dict[str, dict]:
        found = _unchecked(data, {"blob_uuid": {"$in": uuids}}) if data is not None else []
        return {b["blob_uuid"]: b for b in found}

    jobs = list(_unchecked(store.docs_store, {}))
    report.n_documents[DOCS_COLLECTION] = len(jobs)
    _check_jobs(jobs, fetch, report)
    states = list(_unchecked(state_store(settings, workdir, create=False), {}))
    report.n_documents[STATE_COLLECTION] = len(states)
    _check_states(states, jobs, report)
    database = store.docs_store._collection.database
    for name in sorted(database.list_collection_names()):
        if name.startswith(DERIVED_PREFIX):
            derived = derived_store(settings, workdir, name.removeprefix(DERIVED_PREFIX), False)
            _check_plain(name, _unchecked(derived, {}), report)


def _check_jobs(jobs: list[dict], fetch: BlobFetcher, report: VerifyReport) -> None:
    for doc in jobs:
        _count_checksum(doc, report)
        report.n_jobs += 1
        report.n_blobs += sum(1 for _, ref in _walk(doc.get("output")) if _is_reference(ref))
        report.problems += check_job_document(doc, fetch)


def _check_states(states: Iterable[dict], jobs: list[dict], report: VerifyReport) -> None:
    outputs = {(d.get("uuid"), d.get("index")) for d in jobs}
    for doc in states:
        _count_checksum(doc, report)
        subject = job_label(doc)
        problem = checksum_problem(doc)
        if problem:
            report.problems.append(Problem(STATE_COLLECTION, subject, f"run state {problem}"))
        elif doc.get("state") == "COMPLETED" and (doc.get("uuid"), doc.get("index")) not in outputs:
            report.problems.append(
                Problem(
                    STATE_COLLECTION,
                    subject,
                    "recorded COMPLETED but its output document is missing (the next 'ctaflow "
                    "run' runs it again)",
                )
            )


def _check_plain(name: str, docs: Iterable[dict], report: VerifyReport) -> None:
    n = 0
    for doc in docs:
        n += 1
        _count_checksum(doc, report)
        problem = checksum_problem(doc)
        if problem:
            report.problems.append(Problem(name, describe_document(doc), f"document {problem}"))
    report.n_documents.setdefault(name, n)


def _count_checksum(doc: dict, report: VerifyReport) -> None:
    if CHECKSUM_FIELD not in doc:
        report.n_without_checksum += 1
