"""Job stores from configuration.

* ``embedded`` (default): maggma ``MontyStore`` collections in an SQLite file under
  ``WORKDIR/store`` -- persistent, no server, readable by a second process. Job outputs go to
  ``outputs``; bulky objects (trajectories, datasets, model files) to the ``data`` additional
  store (``outputs_data``); ctaflow's own per-job run states to ``ctaflow_jobs``; the derived
  collections of the builders (:mod:`ctaflow.builders`) to ``derived_<name>``. Every document
  written carries a checksum that every read compares (:class:`CheckedMontyStore`).
* ``mongodb``: a jobflow-style ``JOB_STORE`` specification read from a YAML file (typically a
  ``MongoStore`` for documents and a ``GridFSStore`` for ``data``). Credentials stay in that file or
  in the environment variables it names; ctaflow never writes or logs them. Run states and derived
  collections go to the same database as the job documents.

Opening a store that exists (``create=False``: query, status, report, verify) never writes to it,
and every failure to open or read it -- a damaged file, an unreachable server, refused
credentials -- is one :class:`~ctaflow.errors.StoreError` naming the file or server, what is wrong
and what to do.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maggma.stores import MontyStore

from ctaflow.errors import StoreError
from ctaflow.store_check import (
    CHECKSUM_FIELD,
    checksum_problem,
    collection_file_problem,
    collection_path,
    connect_read_only,
    damage_message,
    describe_document,
    document_sha256,
    sqlite_problem,
)
from ctaflow.store_index import KeyIndex, plain_value, sort_documents
from ctaflow.store_mongo import connect_checked, mongo_spec, side_store_spec
from ctaflow.workdir import workdir_lock, write_run_info

if TYPE_CHECKING:
    from jobflow import JobStore
    from maggma.core import Store

    from ctaflow.campaign.execution import StoreSettings

DATABASE_NAME = "ctaflow"
DOCS_COLLECTION = "outputs"
DATA_COLLECTION = "outputs_data"
STATE_COLLECTION = "ctaflow_jobs"
DERIVED_PREFIX = "derived_"
#: the files that make a folder a MontyDB repository (montydb.configure)
_MONTY_FILES = ("monty.storage.cfg", ".monty.storage")


def embedded_store_dir(workdir: str | Path) -> Path:
    """Folder holding the embedded database of a work directory."""
    return Path(workdir) / "store"


class CheckedMontyStore(MontyStore):
    """A ``MontyStore`` that checksums what it writes, checks what it reads, and reports any
    failure of its SQLite file as one :class:`StoreError` naming the file.

    * ``update`` adds ``_sha256`` (:func:`ctaflow.store_check.document_sha256`) to each document;
      ``query`` compares it for every document it returns, projected or not (MontyDB reads whole
      documents anyway and projects in Python, so this costs one hash per document). A mismatch
      is a StoreError.
    * ``read_only=True``: the file is checked before it is first read, MontyDB's configuration
      files are not rewritten, and the SQLite connections cannot write (``query_only``, no
      ``journal_mode`` pragma); ``update``/``remove_docs`` are errors.
    """

    def __init__(
        self,
        collection_name: str,
        database_path: str | None = None,
        database_name: str = "db",
        storage: str = "sqlite",
        storage_kwargs: dict | None = None,
        client_kwargs: dict | None = None,
        read_only: bool = False,
        **kwargs: Any,
    ):
        super().__init__(
            collection_name,
            database_path=database_path,
            database_name=database_name,
            storage=storage,
            storage_kwargs=storage_kwargs,
            client_kwargs=client_kwargs,
            **kwargs,
        )
        self.read_only = read_only
        self._index: KeyIndex | None = None

    @property
    def file(self) -> Path:
        return collection_path(Path(self.database_path) / self.database_name, self.collection_name)

    @property
    def workdir(self) -> Path:
        return Path(self.database_path).parent

    def _damaged(self, problem: str) -> StoreError:
        return StoreError(damage_message(self.file, problem, self.workdir))

    @contextlib.contextmanager
    def _reporting(self) -> Iterator[None]:
        """Turn SQLite and BSON failures into one StoreError naming the file."""
        import bson.errors

        try:
            yield
        except (sqlite3.Error, bson.errors.BSONError, OSError) as exc:
            raise self._damaged(sqlite_problem(exc)) from None

    def connect(self, force_reset: bool = False) -> None:
        if self._coll is not None and not force_reset:
            return
        problem = collection_file_problem(self.file)
        if problem:  # never read nor write a damaged file through MontyDB
            raise self._damaged(problem)
        with self._reporting():
            from montydb import MontyClient

            folder = Path(self.database_path)
            missing = [n for n in _MONTY_FILES if not (folder / n).is_file()]
            if missing and not self.read_only:
                super().connect(force_reset=force_reset)  # a new store: MontyDB writes its files
                return
            if missing:
                raise StoreError(
                    f"store folder '{folder}' lacks {', '.join(missing)}: restore the work "
                    "directory from a copy, or run 'ctaflow run' again in a new one"
                )
            # an existing store: MontyDB reads its configuration (maggma's connect rewrites it)
            client = MontyClient(self.database_path, **self.client_kwargs)
            if self.read_only:
                _read_only_engine(client)
            self._coll = client[self.database_name][self.collection_name]

    def query(
        self,
        criteria: dict | None = None,
        properties: dict | list | None = None,
        sort: dict | None = None,
        hint: dict | None = None,
        skip: int = 0,
        limit: int = 0,
        **kwargs: Any,
    ) -> Iterator[dict]:
        """As ``MontyStore.query``; every document is checked against its checksum first. A
        query that fixes the store's key field reads only the matching rows (:class:`KeyIndex`)."""
        projector = _projector(criteria, properties)
        with self._reporting():
            found = self._by_key(criteria, sort, hint, skip, limit, kwargs)
            if found is None:
                found = super().query(criteria, None, sort, hint, skip, limit, **kwargs)
            for doc in found:
                problem = checksum_problem(doc)
                if problem:
                    raise self._damaged(
                        f"holds a damaged document, {describe_document(doc)}, which {problem}"
                    )
                yield projector(doc) if projector else doc

    def _key_index(self) -> KeyIndex:
        if self._index is None:
            self.connect()
            self._index = KeyIndex(self.file, self.key, self._coll.codec_options)
        return self._index

    def _by_key(self, criteria, sort, hint, skip, limit, kwargs) -> list[dict] | None:
        """The documents a query asks for, found through the key index; None when the query
        does not fix the key field to one value or a ``$in`` list, or asks for more than filter,
        sort, skip and limit."""
        wanted = (criteria or {}).get(self.key)
        if isinstance(wanted, dict) and list(wanted) == ["$in"]:
            values = list(wanted["$in"])
        else:
            values = [wanted]
        if not criteria or not all(map(plain_value, values)) or hint or kwargs:
            return None
        from montydb.engine.queries import QueryFilter

        match = QueryFilter(criteria)
        index = self._key_index()
        docs = [d for v in dict.fromkeys(values) for d in index.documents(v) if match(d)]
        try:
            docs = sort_documents(docs, sort)
        except TypeError:  # values MontyDB orders by type rules ctaflow does not mirror
            return None
        docs = docs[skip:]
        return docs[:limit] if limit else docs

    def scan(self, criteria: dict | None = None) -> Iterator[dict]:
        """Whole documents, not checked (for ``ctaflow verify``, which reports each problem)."""
        with self._reporting():
            found = self._by_key(criteria, None, None, 0, 0, {})
            yield from super().query(criteria) if found is None else found

    def count(self, criteria: dict | None = None, hint: dict | None = None) -> int:
        with self._reporting():
            return super().count(criteria, hint)

    def distinct(self, field: str, criteria: dict | None = None, all_exist: bool = False) -> list:
        with self._reporting():
            return super().distinct(field, criteria, all_exist)

    def update(self, docs: list[dict] | dict, key: list | str | None = None) -> None:
        from monty.json import jsanitize

        self._refuse_if_read_only()
        docs = docs if isinstance(docs, list) else [docs]
        checked = []
        for doc in docs:
            doc = jsanitize(doc, allow_bson=True)  # as MongoStore.update does, before hashing
            doc[CHECKSUM_FIELD] = document_sha256(doc)
            checked.append(doc)
        keys = [key or self.key] if not isinstance(key, list) else key
        with self._reporting():
            fast = self.key in keys and not self.validator and self._coll is not None
            fast = fast and all(plain_value(d.get(self.key)) for d in checked)
            if fast and self._key_index().upsert(checked, keys):
                return
            super().update(checked, key)  # MontyDB makes the table of a new collection

    def remove_docs(self, criteria: dict) -> None:
        self._refuse_if_read_only()
        with self._reporting():
            super().remove_docs(criteria)

    def _refuse_if_read_only(self) -> None:
        if self.read_only:
            raise StoreError(f"store file '{self.file}' was opened for reading only")


def _projector(criteria: dict | None, properties: dict | list | None):
    """MontyDB's own projection, applied to a whole document after its checksum was checked."""
    if not properties:
        return None
    from montydb.engine.project import Projector
    from montydb.engine.queries import QueryFilter

    spec = {p: 1 for p in properties} if isinstance(properties, list) else dict(properties)
    qfilter = QueryFilter(criteria or {})
    projector = Projector(spec, qfilter)

    def project(doc: dict) -> dict:
        qfilter(doc)  # the positional operator ($) projects what the filter matched
        walker = qfilter.fieldwalker
        projector(walker)
        return walker.doc

    return project


def _read_only_engine(client: Any) -> None:
    """Swap the SQLite engine of a MontyDB client for one that cannot write.

    MontyDB opens a connection per operation and sets ``journal_mode=WAL`` on each, which
    writes the header of a file that is not in WAL mode (and creates an empty file into a fresh
    SQLite database); reading needs neither.
    """
    from montydb.storage.sqlite import SQLiteKVEngine

    storage = client._storage
    if not isinstance(getattr(storage, "_conn", None), SQLiteKVEngine):
        return

    class ReadOnlyEngine(SQLiteKVEngine):
        def _connect(self, db_file, wconcern=None):
            conn = connect_read_only(Path(db_file))
            conn.text_factory = str
            return contextlib.closing(conn)

    storage._conn = ReadOnlyEngine(storage._config)


def _monty(collection: str, db_dir: Path, key: str, read_only: bool) -> CheckedMontyStore:
    return CheckedMontyStore(
        collection,
        read_only=read_only,
        database_path=str(db_dir),
        database_name=DATABASE_NAME,
        storage="sqlite",
        key=key,
    )


def job_store(settings: StoreSettings | None, workdir: str | Path, create: bool = True) -> JobStore:
    """The jobflow ``JobStore`` (docs + ``data``) for a campaign's work directory.

    Parameters
    ----------
    settings
        Store section of the campaign (None means embedded).
    workdir
        The campaign work directory; the embedded database lives in ``workdir/store``.
    create
        If False, the store must exist and is opened, connected and checked for reading only
        (``query``, ``status``, ``report``, ``verify``): a mistyped directory is not silently
        created, a damaged file or an unreachable server is a StoreError here, and nothing is
        written to the store.
    """
    from jobflow import JobStore

    if settings is not None and settings.kind == "mongodb":
        try:
            store = JobStore.from_dict_spec(mongo_spec(settings))
        except (TypeError, ValueError, KeyError) as exc:
            raise StoreError(f"{settings.config_file}: not a usable JOB_STORE: {exc}") from None
    else:
        db_dir = _embedded_dir(workdir, create)
        store = JobStore(
            _monty(DOCS_COLLECTION, db_dir, "uuid", not create),
            additional_stores={"data": _monty(DATA_COLLECTION, db_dir, "blob_uuid", not create)},
        )
    if not create:
        connect_checked(store, settings)
    return store


def state_store(settings: StoreSettings | None, workdir: str | Path, create: bool = True) -> Store:
    """The collection of ctaflow run states (one document per job uuid) next to the job store."""
    return _side_collection(settings, workdir, STATE_COLLECTION, "uuid", create)


def derived_store(
    settings: StoreSettings | None, workdir: str | Path, name: str, create: bool = True
) -> Store:
    """The derived collection ``derived_<name>`` of a builder, next to the job store.

    Embedded: in the same MontyDB database as the job outputs. MongoDB: in the database of the
    ``docs_store`` of the JOB_STORE specification. Documents are keyed by ``derived_id`` and
    time-stamped in ``last_updated`` (see :mod:`ctaflow.builders`).
    """
    return _side_collection(settings, workdir, DERIVED_PREFIX + name, "derived_id", create)


def _side_collection(
    settings: StoreSettings | None, workdir: str | Path, collection: str, key: str, create: bool
) -> Store:
    """A collection of its own in the database of the job documents."""
    if settings is not None and settings.kind == "mongodb":
        import maggma.stores

        docs = side_store_spec(settings)
        store_type = getattr(maggma.stores, docs.get("type", "MongoStore"), None)
        if store_type is None:
            raise StoreError(f"docs_store type '{docs.get('type')}' is not a maggma store")
        params = {k: v for k, v in docs.items() if k != "type"}
        store = store_type(**{**params, "collection_name": collection, "key": key})
    else:
        store = _monty(collection, _embedded_dir(workdir, create), key, not create)
    if not create:
        connect_checked(store, settings)
    return store


def _embedded_dir(workdir: str | Path, create: bool) -> Path:
    db_dir = embedded_store_dir(workdir)
    if not create:
        if not (db_dir / "monty.storage.cfg").is_file():
            raise StoreError(
                f"no ctaflow store in '{workdir}' (expected {db_dir}); pass the --workdir used "
                "with 'ctaflow run'"
            )
        return db_dir
    db_dir.mkdir(parents=True, exist_ok=True)
    return db_dir


def check_embedded_files(workdir: str | Path, deep: bool = False) -> None:
    """Raise a StoreError for the first damaged file among the job outputs, data and run states
    of a work directory (nothing is opened for writing; missing files are fine)."""
    db_dir = embedded_store_dir(workdir) / DATABASE_NAME
    for collection in (DOCS_COLLECTION, DATA_COLLECTION, STATE_COLLECTION):
        path = collection_path(db_dir, collection)
        problem = collection_file_problem(path, deep=deep)
        if problem:
            raise StoreError(damage_message(path, problem, Path(workdir)))


@dataclass
class RunStores:
    """The connected stores of a run opened by :func:`open_run`."""

    jobs: JobStore
    states: Store
    _lock: contextlib.ExitStack = field(default_factory=contextlib.ExitStack, repr=False)

    def release_lock(self) -> None:
        """Give the work directory's lock back before :func:`open_run` ends (idempotent)."""
        self._lock.close()


@contextlib.contextmanager
def open_run(
    workdir: str | Path,
    settings: StoreSettings | None,
    run_info: dict[str, Any],
    files: dict[str, str] | None = None,
) -> Iterator[RunStores]:
    """Take the lock of ``workdir``, open and check its stores, then record the run.

    The order is the point: a run that is refused -- another run holds the lock, a store file
    is damaged, the MongoDB server does not answer or refuses the credentials -- raises before
    anything in the work directory is written (the stores are checked read-only before the
    lock is taken, and again under it), so the results of earlier runs stay reachable
    (``ctaflow-run.json`` still describes their store). Only then are ``run_info``
    (:func:`ctaflow.workdir.write_run_info`) and ``files`` (name -> text, e.g.
    ``campaign.effective.yaml``) written.

    The lock is held until the block ends; the runner must not take it again in the same
    process (``fcntl.flock`` locks of two open files conflict even within one process).
    """
    workdir = Path(workdir)
    _check_before_lock(workdir, settings)
    opened = None
    lock = contextlib.ExitStack()
    with lock:
        lock.enter_context(workdir_lock(workdir))  # writes its pid into .ctaflow.lock
        jobs = job_store(settings, workdir)  # connecting checks the files again, under the lock
        states = state_store(settings, workdir)
        connect_checked(jobs, settings)
        connect_checked(states, settings)
        write_run_info(workdir, run_info)
        for name, text in (files or {}).items():
            (workdir / name).write_text(text)
        opened = RunStores(jobs, states, lock.pop_all())
    with opened._lock:
        yield opened


def _check_before_lock(workdir: Path, settings: StoreSettings | None) -> None:
    """Read-only checks before the lock is taken (taking it writes the lock file): damaged
    store files, an unreachable server. A problem seen while another run holds the lock may be
    that run writing, so the lock is reported instead."""
    try:
        if settings is not None and settings.kind == "mongodb":
            connect_checked(job_store(settings, workdir, create=False), settings)
            connect_checked(state_store(settings, workdir, create=False), settings)
        elif (embedded_store_dir(workdir) / "monty.storage.cfg").is_file():
            check_embedded_files(workdir)
    except StoreError:
        if _lock_is_held(workdir):
            with workdir_lock(workdir):  # raises the "another ctaflow run" message
                pass
        raise


def _lock_is_held(workdir: Path) -> bool:
    """Whether another process holds the lock of ``workdir`` (:func:`ctaflow.workdir.workdir_lock`),
    found without writing anything."""
    import fcntl

    path = workdir / ".ctaflow.lock"
    if not path.is_file():
        return False
    with open(path) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False
