"""Checks of the embedded store's files and documents, shared by the store and ``ctaflow verify``.

The embedded store is a folder of SQLite files, one per collection (``<name>.collection``, each
with one table ``documents`` of BSON documents, written by MontyDB). SQLite keeps no checksums of
its data, so damage shows up in three ways, each checked here without writing to the file:

* **the file itself**: emptied, overwritten, cut short (the page count in the SQLite header says
  how long the file must be), or with its table gone -- :func:`collection_file_problem`;
* **a document that no longer decodes** (its BSON is cut or garbled);
* **a document whose values changed** (a flipped byte inside a float decodes to another float):
  every document written through :class:`ctaflow.store.CheckedMontyStore` carries the sha256 of
  its content in ``_sha256`` (:func:`document_sha256`), compared on every read
  (:func:`checksum_problem`). Documents written before that field existed have none and cannot
  be checked this way.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

#: document field holding the sha256 of the rest of the document
CHECKSUM_FIELD = "_sha256"
#: fields left out of the checksum: the database's own id and the checksum itself
_UNHASHED = ("_id", CHECKSUM_FIELD)

SQLITE_MAGIC = b"SQLite format 3\x00"
TABLE = "documents"  # montydb.storage.sqlite.SQLITE_RECORD_TABLE
COLLECTION_SUFFIX = ".collection"  # montydb.storage.sqlite.SQLITE_DB_EXT


# --------------------------------------------------------------------------- documents
def document_sha256(doc: dict[str, Any]) -> str:
    """sha256 of a document as the store keeps it: its BSON encoding without ``_id`` and
    ``_sha256``.

    BSON, not JSON, because it is what the embedded store holds: a value that survives the round
    trip (float bits, int, datetime at millisecond precision, bytes) hashes the same before
    writing and after reading, and BSON keeps the order of keys (MontyDB stores the document it
    is given, adding only ``_id``). Keys are not sorted: that would cost a Python-level walk of
    every list (0.75 s for a 1,000-frame, 400-atom coordinate list against 0.12 s to encode it).
    """
    import bson

    return hashlib.sha256(
        bson.encode({k: v for k, v in doc.items() if k not in _UNHASHED})
    ).hexdigest()


def checksum_problem(doc: dict[str, Any]) -> str | None:
    """What is wrong with a document read back (None: matches its checksum, or has none)."""
    expected = doc.get(CHECKSUM_FIELD)
    if expected is None:
        return None
    try:
        actual = document_sha256(doc)
    except Exception as exc:  # a value that no longer encodes is damage too
        return f"cannot be checked ({type(exc).__name__}: {exc})"
    if actual != expected:
        return "was changed after it was written (checksum mismatch)"
    return None


def describe_document(doc: dict[str, Any]) -> str:
    """A short name for a document in messages: job name and uuid, blob uuid, derived id."""
    if "blob_uuid" in doc:
        job = f" of job {str(doc['job_uuid'])[:8]}" if doc.get("job_uuid") else ""
        return f"blob {doc['blob_uuid']}{job}"
    if "uuid" in doc:
        name = f"{doc['name']} " if doc.get("name") else ""
        return f"{name}({doc['uuid']}, index {doc.get('index', '?')})"
    for key in ("derived_id", "_id"):
        if key in doc:
            return f"{key} {doc[key]}"
    return "a document"


# --------------------------------------------------------------------------- files
def collection_path(db_dir: Path, collection: str) -> Path:
    """The SQLite file of one collection in an embedded database folder."""
    return Path(db_dir) / f"{collection}{COLLECTION_SUFFIX}"


def connect_read_only(path: Path) -> sqlite3.Connection:
    """An SQLite connection that cannot change ``path`` nor create it.

    ``mode=rw`` (not ``mode=ro``) so that SQLite still removes the WAL side files on close
    (a ``mode=ro`` connection leaves ``-wal`` and ``-shm`` files behind); ``query_only``
    refuses every write through it.
    """
    conn = sqlite3.connect(f"file:{quote(str(Path(path).resolve()))}?mode=rw", uri=True)
    conn.execute("PRAGMA query_only=1")
    return conn


def collection_file_problem(path: Path, deep: bool = False) -> str | None:
    """What is wrong with one collection file, read-only (None: nothing found).

    A missing file is not a problem here (MontyDB creates a collection's file on its first
    write). ``deep`` adds SQLite's ``quick_check`` of every page (reads the whole file).
    """
    path = Path(path)
    if not path.exists():
        return None
    size = path.stat().st_size
    if size == 0:
        return "is empty (0 bytes)"
    with open(path, "rb") as handle:
        header = handle.read(100)
    if len(header) < 100 or not header.startswith(SQLITE_MAGIC):
        return "is not an SQLite database (its first bytes are not an SQLite header)"
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    n_pages = int.from_bytes(header[28:32], "big")
    wal = path.with_name(path.name + "-wal")
    writing = wal.is_file() and wal.stat().st_size > 0  # mid-checkpoint the header runs ahead
    valid = header[92:96] == header[24:28]  # the header's page count is up to date
    if valid and not writing and size < n_pages * page_size:
        return f"is truncated ({size:,} of {n_pages * page_size:,} bytes)"
    try:
        with contextlib.closing(connect_read_only(path)) as conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
            if TABLE not in tables:
                return f"has no '{TABLE}' table (it was emptied or replaced by another file)"
            if deep:
                rows = [row[0] for row in conn.execute("PRAGMA quick_check(3)")]
                if rows != ["ok"]:
                    return f"is damaged (SQLite quick_check: {'; '.join(rows)})"
    except sqlite3.DatabaseError as exc:
        return sqlite_problem(exc)
    return None


def sqlite_problem(exc: BaseException) -> str:
    """An SQLite (or BSON) error as the end of a sentence about a store file."""
    text = str(exc).strip() or type(exc).__name__
    known = {
        "database disk image is malformed": "is damaged (SQLite: database disk image is malformed)",
        "file is not a database": "is not an SQLite database (SQLite: file is not a database)",
        f"no such table: {TABLE}": f"has no '{TABLE}' table (it was emptied or replaced)",
        "database is locked": "is locked by another process (SQLite: database is locked)",
        "attempt to write a readonly database": "was opened for reading only",
    }
    for key, phrase in known.items():
        if key in text:
            return phrase
    return f"cannot be read ({type(exc).__name__}: {text.splitlines()[0]})"


def damage_message(path: Path, problem: str, workdir: Path | None = None) -> str:
    """One line: which store file, what is wrong with it, what to do."""
    path = Path(path)
    name = path.name.removesuffix(COLLECTION_SUFFIX)
    where = f" -w {workdir}" if workdir is not None else ""
    if problem.startswith("is locked"):
        return f"store file '{path}' {problem}: wait for it to finish and try again"
    if name.startswith("derived_"):
        fix = f"move it away and run 'ctaflow build{where}' to rebuild it from the job outputs"
    else:
        fix = (
            "restore it from a copy of the work directory, or move it away and run 'ctaflow "
            "run' again to recompute the jobs it held"
        )
    return f"store file '{path}' {problem}: {fix}; 'ctaflow verify{where}' lists every problem"


def read_rows(path: Path, batch: int = 64):
    """Every row of a collection file as ``(rowid, document or None, problem or None)``,
    read-only, one document decoded at a time (a damaged document does not hide the others).

    Raises ``sqlite3.DatabaseError`` if the table itself cannot be walked to the end.
    """
    import bson

    with contextlib.closing(connect_read_only(path)) as conn:
        cursor = conn.execute(f"SELECT rowid, v FROM {TABLE}")
        while rows := cursor.fetchmany(batch):
            for rowid, value in rows:
                try:
                    raw = value if isinstance(value, bytes) else str(value).encode("latin-1")
                    yield rowid, bson.decode(raw), None
                except Exception as exc:  # any decoding failure is damage
                    yield rowid, None, f"does not decode ({type(exc).__name__}: {exc})"


def read_rows_by_id(path: Path, rowids: list[int]) -> dict[int, dict]:
    """Documents of the given rows (rows that do not decode are left out)."""
    import bson

    found: dict[int, dict] = {}
    with contextlib.closing(connect_read_only(path)) as conn:
        for start in range(0, len(rowids), 500):
            part = rowids[start : start + 500]
            marks = ",".join("?" * len(part))
            query = f"SELECT rowid, v FROM {TABLE} WHERE rowid IN ({marks})"
            for rowid, value in conn.execute(query, part):
                with contextlib.suppress(Exception):
                    found[rowid] = bson.decode(value)
    return found
