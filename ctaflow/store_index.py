"""Key lookups in a MontyDB SQLite collection without decoding the whole collection.

MontyDB answers every query, and maggma's ``update`` (one ``replace_one`` per document), by
reading and decoding every document of the collection. The embedded store's ``outputs_data``
holds tens of MB of trajectories and datasets, so resolving one job reference cost about 1.4 s
on the demo's store and a job with 24 inputs waited a minute (issue 26). :class:`KeyIndex`
remembers, per process, which SQLite row (MontyDB's ``k``, the encoded ``_id``) holds which value
of the store's key field; a query that fixes the key field to one value decodes only those rows,
and an update writes each document into the row of the document it replaces.

The index follows other writers: before each use it reads the row keys (not the documents) and
decodes only rows it has not seen; rows that vanished are forgotten. A row whose key field is
changed in place by another process is not noticed -- neither maggma nor jobflow does that (both
replace documents by their key).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ctaflow.store_check import connect_read_only

TABLE = "documents"  # montydb.storage.sqlite.SQLITE_RECORD_TABLE
_UPSERT = f"INSERT INTO [{TABLE}] (v, k) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v=excluded.v"
_CHUNK = 500  # row keys per SELECT ... IN (...)


def plain_value(value: Any) -> bool:
    """A value a key lookup can match by equality (not an operator document, list or None)."""
    return isinstance(value, str | int | float) and not isinstance(value, bool)


class KeyIndex:
    """Row keys of a MontyDB SQLite collection file by the value of one document field."""

    def __init__(self, file: Path, field: str, codec_options: Any):
        self.file = Path(file)
        self.field = field
        self.codec_options = codec_options
        self._rows: dict[Any, tuple[Any, Any]] = {}  # row key -> (field value, _id)
        self._by_value: dict[Any, set[Any]] = {}

    @contextlib.contextmanager
    def _connection(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        if write:  # never creates the file (MontyDB does, with its table)
            conn = sqlite3.connect(f"file:{quote(str(self.file.resolve()))}?mode=rw", uri=True)
        else:
            conn = connect_read_only(self.file)
        conn.execute("PRAGMA busy_timeout = 60000")  # another process may be writing
        try:
            with conn:
                yield conn
        finally:
            conn.close()

    def _decode(self, raw: Any) -> dict:
        from montydb.types import bson

        return bson.document_decode(raw, codec_options=self.codec_options)

    def _remember(self, row: Any, doc: dict) -> None:
        self._forget(row)
        value = doc.get(self.field)
        self._rows[row] = (value, doc.get("_id"))
        if plain_value(value):
            self._by_value.setdefault(value, set()).add(row)

    def _forget(self, row: Any) -> None:
        old = self._rows.pop(row, None)
        if old is not None and old[0] in self._by_value:
            self._by_value[old[0]].discard(row)

    def sync(self) -> None:
        """Catch up with rows written or removed since the last call (by anyone)."""
        if not self.file.is_file():
            self._rows.clear()
            self._by_value.clear()
            return
        with self._connection() as conn:
            rows = {r[0] for r in conn.execute(f"SELECT k FROM [{TABLE}]")}
            for gone in self._rows.keys() - rows:
                self._forget(gone)
            new = list(rows - self._rows.keys())
            for start in range(0, len(new), _CHUNK):
                chunk = new[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                sql = f"SELECT k, v FROM [{TABLE}] WHERE k IN ({marks})"
                for row, raw in conn.execute(sql, chunk):
                    self._remember(row, self._decode(raw))

    def documents(self, value: Any) -> list[dict]:
        """Every document whose field equals ``value``, decoded, in no particular order."""
        self.sync()
        rows = list(self._by_value.get(value, ()))
        if not rows:
            return []
        with self._connection() as conn:
            marks = ",".join("?" * len(rows))
            sql = f"SELECT v FROM [{TABLE}] WHERE k IN ({marks})"
            return [self._decode(raw) for (raw,) in conn.execute(sql, rows)]

    def has_table(self) -> bool:
        """Whether the collection file exists with its table (MontyDB creates both lazily)."""
        if not self.file.is_file():
            return False
        with self._connection() as conn:
            sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
            return conn.execute(sql, (TABLE,)).fetchone() is not None

    def upsert(self, docs: Iterable[dict], keys: list[str]) -> bool:
        """Write each document in place of the stored one with equal ``keys`` fields (which
        must include the index field), or as a new document: what maggma's ``update`` does
        with ``replace_one(..., upsert=True)``, in one transaction. False (nothing written)
        when the collection has no table yet."""
        from montydb.types import bson

        if not self.has_table():
            return False
        params, batch = [], {}  # batch: key values -> _id of a document earlier in this call
        for doc in docs:
            ident = tuple(doc[k] for k in keys)
            same = [
                d for d in self.documents(doc[self.field]) if all(d.get(k) == doc[k] for k in keys)
            ]
            doc = dict(doc)
            if ident in batch:  # written twice in one call: the last one stays, as in maggma
                doc["_id"] = batch[ident]
            else:
                doc["_id"] = same[0]["_id"] if same else doc.get("_id", bson.ObjectId())
            batch[ident] = doc["_id"]
            raw = bson.document_encode(doc, check_keys=False, codec_options=self.codec_options)
            params.append((raw, bson.id_encode(doc["_id"]), doc))
        with self._connection(write=True) as conn:
            conn.executemany(_UPSERT, [(raw, row) for raw, row, _ in params])
        for _, row, doc in params:
            self._remember(row, doc)
        return True


def sort_documents(docs: list[dict], sort: dict | None) -> list[dict]:
    """``docs`` in a query's ``sort`` order ({field: 1 or -1}, dotted fields allowed): missing
    and None first, then numbers, then strings, as MongoDB orders them; TypeError for values of
    other types."""
    docs = list(docs)
    for field, direction in reversed(list((sort or {}).items())):
        sign = direction if isinstance(direction, int) else direction.value
        docs.sort(key=lambda doc, f=field: _order(doc, f), reverse=sign < 0)
    return docs


def _order(doc: dict, field: str) -> tuple:
    value: Any = doc
    for part in field.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        raise TypeError("booleans")
    if isinstance(value, int | float):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    raise TypeError(type(value).__name__)
