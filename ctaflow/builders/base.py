"""The part every ctaflow builder shares: select one stage's job outputs, group them on their
metadata, and rebuild only the groups whose tasks changed.

Incremental building
--------------------
maggma's stock builders cannot be used as they are: ``Store.newer_in`` and the ``GroupBuilder`` /
``MapBuilder`` ``ensure_indexes`` call ``index_information``, which MontyDB does not implement
(``NotImplementedError`` on the embedded store); ``GroupBuilder`` only notices *new* task uuids
(its ``newer_in`` call compares the target against the source, so a task re-run under the same
uuid is never rebuilt); and a group here yields several documents (one per species and site
class, per composition of a series, ...). So :class:`StageBuilder` does what maggma's exhaustive
``newer_in`` does, one level up: every derived document records the tasks of its group as
(uuid, index, completed_at) in ``tasks``; a group is rebuilt when that set differs from the job
store's (a new task, a re-run task, a task gone), and left alone otherwise. The comparison is by
equality of jobflow's ``completed_at`` strings, so clocks of different workers do not matter.
Finding the changed groups costs one query of (uuid, index, completed_at, metadata) over the
stage's job documents and one of ``tasks`` over the derived collection. Documents of a group
whose every task has left the job store stay (nothing is deleted that no rebuild replaces).
Documents keep maggma's conventions: a key (``derived_id``), a ``last_updated`` datetime (newest
``completed_at`` of the group, so derived collections can feed further builders) and ``state``
/ ``error`` when the builder itself failed on a group.

Bad tasks
---------
A job that raised leaves no output document (jobflow writes outputs only on success); its
failure is in the run states (``ctaflow status``). An output whose content does not validate
against the stage's schema, or that :meth:`StageBuilder.problem` rejects (e.g. an unconverged
NEB), is listed in ``skipped`` with the reason; the group is still built from the other tasks.
A group with no usable task still gets one document (sub-keys None) that carries the reasons.
"""

from __future__ import annotations

import logging
import traceback
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from maggma.core import Builder, Store
from maggma.stores import MontyStore
from maggma.utils import grouper
from monty.json import jsanitize
from pydantic import BaseModel, ValidationError

from ctaflow.analysis.provenance import source_fingerprint
from ctaflow.builders.schemas import GROUP_KEYS, DerivedDoc, SkippedTask, TaskRef
from ctaflow.settings import stable_hash

logger = logging.getLogger(__name__)


@dataclass
class Task:
    """A job output of the stage, validated against the stage's output schema."""

    uuid: str
    index: int
    completed_at: str
    metadata: dict[str, Any]
    output: Any

    def skip(self, reason: str) -> SkippedTask:
        return SkippedTask(uuid=self.uuid, reason=reason)


@dataclass
class BuildStats:
    """What one run of a builder did."""

    n_tasks: int = 0
    n_groups: int = 0
    n_groups_built: int = 0
    n_docs_written: int = 0
    n_docs_removed: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class StageBuilder(Builder):
    """Job outputs of one stage → one derived collection, grouped on the job metadata.

    Subclasses set the class attributes and implement :meth:`derive` (select and call the
    analysis functions); everything else (grouping, incremental rebuilds, skipped tasks, keys and
    time stamps) is here.

    Parameters
    ----------
    tasks
        The job store (a jobflow ``JobStore``, or any maggma store of job output documents).
    derived
        The derived collection (key ``derived_id``), e.g. from :func:`ctaflow.store.derived_store`.
    query
        Extra criteria on the job documents (e.g. ``{"metadata.campaign": "demo"}``).
    retry_failed
        Also rebuild groups whose documents have ``state`` failed although their tasks did not
        change (maggma's option of the same name).
    chunk_size
        Groups written per ``update_targets`` call.
    """

    #: ``metadata.stage`` of the job outputs read
    stage: ClassVar[str]
    #: pydantic schema of the outputs read; outputs whose ``@class`` is another are ignored
    output_schema: ClassVar[type[BaseModel]]
    #: schema of the derived documents
    document: ClassVar[type[DerivedDoc]]
    #: derived collection name (``derived_<collection>``)
    collection: ClassVar[str]
    #: fields of :attr:`document` that tell apart the documents of one group
    sub_keys: ClassVar[tuple[str, ...]] = ()
    group_keys: ClassVar[tuple[str, ...]] = GROUP_KEYS

    def __init__(
        self,
        tasks: Store,
        derived: Store,
        query: dict | None = None,
        retry_failed: bool = False,
        chunk_size: int = 20,
    ):
        self.tasks = tasks
        self.derived = derived
        self.query = query or {}
        self.retry_failed = retry_failed
        self.stats = BuildStats()
        super().__init__(sources=[tasks], targets=[derived], chunk_size=chunk_size)

    # ------------------------------------------------------------------ what subclasses write
    @abstractmethod
    def derive(self, tasks: list[Task]) -> list[dict[str, Any]]:
        """Documents of one group from its usable tasks (pure: no store access).

        Return one dict per sub-key value with the builder-specific fields of :attr:`document`;
        each may also carry ``task_uuids``, ``skipped`` (list of :class:`SkippedTask`) and
        ``notes``. The common fields are filled in by the base class.
        """

    def problem(self, output: BaseModel) -> str | None:
        """Why a validated output must not be used (None: use it). Override per stage."""
        return None

    # ------------------------------------------------------------------ maggma Builder API
    @property
    def criteria(self) -> dict[str, Any]:
        return {
            "metadata.stage": self.stage,
            "output.@class": self.output_schema.__name__,
            **self.query,
        }

    def get_items(self):
        """Yield one item per group whose tasks differ from those its documents were built from."""
        self.stats = BuildStats()
        self._ensure_indexes()
        groups = self._groups()
        built = self._built_signatures(list(groups))
        dirty = [gid for gid, group in groups.items() if built.get(gid) != group["signature"]]
        self.stats.n_groups = len(groups)
        self.total = len(dirty)
        logger.info(
            "%s: %d tasks in %d groups, %d to build",
            type(self).__name__,
            self.stats.n_tasks,
            len(groups),
            len(dirty),
        )
        # one query per chunk of groups: MontyDB has no indexes, every query scans the collection
        for chunk in grouper(dirty, self.chunk_size):
            wanted = {(r.uuid, r.index): gid for gid in chunk for r in groups[gid]["refs"]}
            by_group: dict[str, list[dict]] = {gid: [] for gid in chunk}
            for doc in self.tasks.query(
                {**self.criteria, "uuid": {"$in": sorted({uuid for uuid, _ in wanted})}},
                properties=["uuid", "index", "completed_at", "metadata", "output"],
            ):
                gid = wanted.get((doc["uuid"], doc.get("index", 1)))
                if gid is not None:
                    by_group[gid].append(doc)
            for gid in chunk:
                yield {
                    "group_id": gid,
                    "values": groups[gid]["values"],
                    "refs": [r.model_dump() for r in groups[gid]["refs"]],
                    "docs": by_group[gid],
                }

    def process_item(self, item: dict[str, Any]) -> dict[str, Any]:
        """Validate the group's outputs, call :meth:`derive`, add the common fields."""
        refs = [TaskRef.model_validate(r) for r in item["refs"]]
        common = {
            "group_id": item["group_id"],
            "builder": type(self).__name__,
            **item["values"],
            "tasks": refs,
            "last_updated": max(_parse_time(r.completed_at) for r in refs),
            "built_at": datetime.now(UTC),
            "ctaflow_source": source_fingerprint(),
        }
        tasks, skipped = self._validated(item["docs"])
        notes = [
            f"job metadata has no {key}: tasks that differ in it are grouped together"
            for key, value in item["values"].items()
            if value is None
        ]
        try:
            parts = self.derive(tasks) or [{}]
            docs = [self._document(common, part, skipped, notes) for part in parts]
        except Exception as exc:  # a bug or unforeseen data must not stop the other groups
            logger.error("%s failed on group %s:\n%s", type(self).__name__, item["values"], exc)
            error = f"{type(exc).__name__}: {exc}"
            logger.debug(traceback.format_exc())
            docs = [
                self._document({**common, "state": "failed", "error": error}, {}, skipped, notes)
            ]
        return {"group_id": item["group_id"], "docs": docs}

    def update_targets(self, items: list[dict[str, Any]]) -> None:
        """Replace the documents of the rebuilt groups (sub-keys that no longer arise go)."""
        if not items:
            return
        group_ids = [item["group_id"] for item in items]
        docs = [doc for item in items for doc in item["docs"]]
        fresh = {doc["derived_id"] for doc in docs}
        old = {
            d["derived_id"]
            for d in self.derived.query({"group_id": {"$in": group_ids}}, properties=["derived_id"])
        }
        stale = sorted(old - fresh)
        if isinstance(self.derived, MontyStore):
            # no indexes: every upsert scans the collection (quadratic); delete + bulk insert.
            # (delete_many on a collection never written raises "no such table")
            if old:
                self.derived.remove_docs({"group_id": {"$in": group_ids}})
            self.derived._collection.insert_many([jsanitize(d, allow_bson=True) for d in docs])
        else:
            self.derived.update(docs, key="derived_id")
            if stale:
                self.derived.remove_docs({"derived_id": {"$in": stale}})
        self.stats.n_groups_built += len(items)
        self.stats.n_docs_written += len(docs)
        self.stats.n_docs_removed += len(stale)

    # ------------------------------------------------------------------ helpers
    def _ensure_indexes(self) -> None:
        """Indexes on MongoDB; MontyDB has none (``index_information`` is not implemented)."""
        for store, fields in (
            (self.tasks, ("uuid", "metadata.stage")),
            (self.derived, ("derived_id", "group_id")),
        ):
            try:
                for field in fields:
                    store.ensure_index(field)
            except NotImplementedError:
                continue

    def _groups(self) -> dict[str, dict[str, Any]]:
        """Group id → grouping-key values, task refs and their signature (light projection)."""
        properties = ["uuid", "index", "completed_at", *(f"metadata.{k}" for k in self.group_keys)]
        latest: dict[str, dict] = {}
        for doc in self.tasks.query(self.criteria, properties=properties):
            current = latest.get(doc["uuid"])
            if current is None or doc.get("index", 1) > current.get("index", 1):
                latest[doc["uuid"]] = doc
        self.stats.n_tasks = len(latest)
        groups: dict[str, dict[str, Any]] = {}
        for doc in latest.values():
            meta = doc.get("metadata") or {}
            values = {key: meta.get(key) for key in self.group_keys}
            group = groups.setdefault(
                stable_hash(values, length=16), {"values": values, "refs": []}
            )
            group["refs"].append(
                TaskRef(
                    uuid=doc["uuid"],
                    index=doc.get("index", 1),
                    completed_at=str(doc.get("completed_at")),
                )
            )
        for group in groups.values():
            group["refs"].sort(key=lambda r: (r.completed_at, r.uuid))
            group["signature"] = _signature(r.model_dump() for r in group["refs"])
        return groups

    def _built_signatures(self, group_ids: list[str]) -> dict[str, frozenset | None]:
        """Group id → the task signature its documents were built from (None: rebuild, also
        when other ctaflow code built them)."""
        found: dict[str, list[dict]] = {}
        for doc in self.derived.query(
            {"group_id": {"$in": group_ids}},
            properties=["group_id", "tasks", "state", "ctaflow_source"],
        ):
            found.setdefault(doc["group_id"], []).append(doc)
        signatures: dict[str, frozenset | None] = {}
        code = source_fingerprint()
        for gid, docs in found.items():
            sigs = {_signature(d.get("tasks") or []) for d in docs}
            failed = self.retry_failed and any(d.get("state") == "failed" for d in docs)
            other_code = any(d.get("ctaflow_source") != code for d in docs)
            usable = len(sigs) == 1 and not failed and not other_code
            signatures[gid] = sigs.pop() if usable else None
        return signatures

    def _validated(self, docs: list[dict]) -> tuple[list[Task], list[SkippedTask]]:
        tasks, skipped = [], []
        name = self.output_schema.__name__
        for doc in sorted(docs, key=lambda d: (str(d.get("completed_at")), d["uuid"])):
            try:
                output = self.output_schema.model_validate(_without_blobs(doc.get("output")))
            except ValidationError as exc:
                skipped.append(SkippedTask(uuid=doc["uuid"], reason=_invalid(name, exc)))
                continue
            problem = self.problem(output)
            if problem:
                skipped.append(SkippedTask(uuid=doc["uuid"], reason=problem))
                continue
            tasks.append(
                Task(
                    uuid=doc["uuid"],
                    index=doc.get("index", 1),
                    completed_at=str(doc.get("completed_at")),
                    metadata=doc.get("metadata") or {},
                    output=output,
                )
            )
        return tasks, skipped

    def _document(
        self,
        common: dict[str, Any],
        part: dict[str, Any],
        skipped: list[SkippedTask],
        notes: list[str],
    ) -> dict[str, Any]:
        sub = {key: part.get(key) for key in self.sub_keys}
        derived_id = stable_hash(
            {"builder": self.collection, "group": common["group_id"], "sub": sub}, length=16
        )
        doc = self.document.model_validate(
            {
                **common,
                **part,
                "derived_id": derived_id,
                "skipped": [*skipped, *part.get("skipped", [])],
                "notes": [*notes, *part.get("notes", [])],
            }
        )
        return doc.model_dump()


def latest_per(
    tasks: list[Task], key: Callable[[Task], Any]
) -> list[tuple[Task, list[SkippedTask]]]:
    """The most recently completed task for each value of ``key``, with the earlier ones as
    skipped ("superseded"): for stages where a re-run replaces the previous result."""
    by_key: dict[Any, list[Task]] = {}
    for task in tasks:
        by_key.setdefault(key(task), []).append(task)
    picked = []
    for group in by_key.values():
        group.sort(key=lambda t: (t.completed_at, t.uuid))
        latest = group[-1]
        picked.append(
            (latest, [t.skip(f"superseded by the newer task {latest.uuid}") for t in group[:-1]])
        )
    return picked


def _without_blobs(value: Any) -> Any:
    """``value`` with every jobflow ``data``-store reference (a dict with ``blob_uuid``) replaced
    by the string ``"data-store:<uuid>"``: builders never need the bulky content (trajectory
    chunks, model parts), and loading it would read megabytes per task."""
    if isinstance(value, dict):
        if "blob_uuid" in value:
            return f"data-store:{value['blob_uuid']}"
        return {k: _without_blobs(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_blobs(v) for v in value]
    return value


def _signature(refs) -> frozenset:
    return frozenset((r["uuid"], r["index"], r["completed_at"]) for r in refs)


def _parse_time(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return datetime.min


def _invalid(name: str, exc: ValidationError) -> str:
    problems = [
        f"{'.'.join(str(p) for p in err['loc']) or 'output'}: {err['msg']}" for err in exc.errors()
    ]
    more = f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""
    return f"output is not a valid {name}: " + "; ".join(problems[:5]) + more
