"""Querying a campaign's results (the Python API behind ``ctaflow query``).

Every job output document carries ``metadata`` (campaign, campaign_fingerprint, stage,
composition, engine, settings_hash), so ordinary maggma/MongoDB queries select results::

    from ctaflow.query import open_results, find_outputs
    store = open_results("demo-run")
    rows = find_outputs(store, stage="relax", composition="Na3ClO")
    store.query_one({"metadata.stage": "relax", "output.converged": True})

Derived collections written by ``ctaflow build`` (one document per group, see
:mod:`ctaflow.builders.schemas`)::

    transport = open_derived("demo-run", "transport")
    transport.query({"species": "Na", "site_class": None, "engine": "mace:trained"})

Rows are compact: one per result (for a registered stage, only the outputs of its
``output_schema``, not the atomate2 task documents of its intermediate jobs), with the scalar
fields and the lists of scalars (``notes``, ``reasons``) of the result, its ``status`` beside
the identifying columns, and the readable name of a trained model (``engine_name``). ``fields``
picks columns (dotted paths reach into nested fields).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ctaflow.builders.base import StageBuilder, _without_blobs
from ctaflow.errors import CtaflowError
from ctaflow.model_names import ModelNames, trained_models
from ctaflow.stages.registry import STAGES, builders
from ctaflow.store import derived_store, job_store
from ctaflow.workdir import store_settings_of

if TYPE_CHECKING:
    from jobflow import JobStore
    from maggma.core import Store


def open_results(workdir: str | Path) -> JobStore:
    """The connected job store of a work directory, opened for reading and checked (an error if
    there is none, if a file of it is damaged or if its server does not answer)."""
    store = job_store(store_settings_of(workdir), workdir, create=False)
    store.connect()
    return store


def open_derived(workdir: str | Path, name: str) -> Store:
    """The connected derived collection ``name`` (relax, mlff, transport) of a work directory."""
    names = builders()
    if name not in names:
        raise CtaflowError(f"no derived collection '{name}'; choose from {', '.join(names)}")
    store = derived_store(store_settings_of(workdir), workdir, name, create=False)
    store.connect()
    return store


def build_criteria(
    stage: str | None = None,
    composition: str | None = None,
    engine: str | None = None,
    campaign: str | None = None,
) -> dict[str, Any]:
    """A MongoDB filter on job metadata; None arguments do not filter."""
    pairs = {"stage": stage, "composition": composition, "engine": engine, "campaign": campaign}
    return {f"metadata.{k}": v for k, v in pairs.items() if v is not None}


#: identifying columns of an output row, in this order, then the verdict
ID_FIELDS = ("stage", "name", "composition", "engine", "campaign", "uuid", "completed_at")
VERDICT_FIELDS = ("status", "reasons", "field_verdicts")
#: builder bookkeeping left out of compact derived rows (ask for it with ``fields``)
DERIVED_BOOKKEEPING = ("group_id", "builder", "state", "error", "skipped", "ctaflow_version")
_SCALAR = (int, float, str, bool)


def result_schemas() -> dict[str, str]:
    """Stage → class name of its result documents (the registry's ``output_schema``), in
    pipeline order."""
    return {
        name: spec.output_schema.__name__ for name, spec in STAGES.items() if spec.output_schema
    }


def not_a_result(stage: Any, output: Any) -> str | None:
    """Why an output of a stage's result schema is not one of its results, as the stage's
    builder decides (``StageBuilder.problem``, e.g. "a rattled copy of a minimum check"); None:
    it is one."""
    spec = STAGES.get(stage) if isinstance(stage, str) else None
    builder = spec.builder if spec is not None else None
    if builder is None or builder.problem is StageBuilder.problem or not isinstance(output, dict):
        return None
    try:
        model = spec.output_schema.model_validate(_without_blobs(output))
    except ValidationError:
        return None  # shown as stored; the builder reports why it cannot use it
    # problem() judges the output alone: called without connecting the builder's stores
    return builder.problem(object.__new__(builder), model)


def model_names(store: JobStore) -> ModelNames:
    """Readable names of the trained models in ``store`` (see :mod:`ctaflow.model_names`)."""
    stages = [name for name, spec in STAGES.items() if spec.provides == "model"]
    return ModelNames(trained_models(store, stages))


def compact(doc: dict[str, Any], skip: str = "@_") -> dict[str, Any]:
    """The scalar fields and lists of scalars of ``doc`` (keys starting with a character of
    ``skip`` left out); nested documents and lists of documents are not compact."""
    return {
        k: v
        for k, v in doc.items()
        if not k.startswith(tuple(skip))
        and (
            v is None
            or isinstance(v, _SCALAR)
            or (isinstance(v, list) and all(isinstance(x, _SCALAR) for x in v))
        )
    }


def pick(doc: dict[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` of ``doc`` (None where it is missing)."""
    value: Any = doc
    for key in path.split("."):
        if isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        elif isinstance(value, dict):
            value = value.get(key)
        else:
            return None
    return value


def select(rows: list[dict], docs: list[dict], fields: Sequence[str] | None) -> list[dict]:
    """``rows`` reduced to ``fields`` (a field a row lacks is read from its document by dotted
    path, so nested values can be asked for); all of each row without ``fields``."""
    if not fields:
        return rows
    return [
        {f: row[f] if f in row else pick(doc, f) for f in fields}
        for row, doc in zip(rows, docs, strict=True)
    ]


def find_outputs(
    store: JobStore,
    fields: Sequence[str] | None = None,
    results_only: bool = True,
    **filters: str | None,
) -> list[dict[str, Any]]:
    """Flat rows (metadata, verdict, then the compact output fields) for the matching job
    outputs, one per job (its latest run), sorted by pipeline stage and completion time.

    ``results_only``: for a registered stage keep only its result documents (the registry's
    ``output_schema``), not the task documents of the jobs that made them. ``fields``: the
    columns to give (identifying columns, output fields, dotted paths into the output).
    Structures and arrays are left out of compact rows; ask for them by ``fields`` or get them
    with ``store.query`` and ``properties=[...]``.
    """
    criteria = build_criteria(**filters)
    schemas = result_schemas()
    latest: dict[str, dict] = {}
    for doc in store.query(
        criteria, properties=["uuid", "index", "name", "metadata", "output", "completed_at"]
    ):
        meta = doc.get("metadata") or {}
        output = doc.get("output")
        wanted = schemas.get(meta.get("stage"))
        is_result = (
            isinstance(output, dict)
            and output.get("@class") == wanted
            and not not_a_result(meta.get("stage"), output)
        )
        if results_only and wanted and not is_result:
            continue
        seen = latest.get(doc["uuid"])
        if seen is None or (doc.get("index") or 0) > (seen.get("index") or 0):
            latest[doc["uuid"]] = doc
    order = {stage: n for n, stage in enumerate(schemas)}
    docs = sorted(
        latest.values(),
        key=lambda d: (
            order.get((d.get("metadata") or {}).get("stage"), len(order)),
            str((d.get("metadata") or {}).get("stage")),
            str(d.get("completed_at")),
        ),
    )
    names = model_names(store)
    rows = []
    for doc in docs:
        meta = doc.get("metadata") or {}
        output = doc.get("output") if isinstance(doc.get("output"), dict) else {}
        row: dict[str, Any] = {
            "stage": meta.get("stage"),
            "name": doc.get("name"),
            "composition": meta.get("composition"),
            "engine": meta.get("engine"),
            "campaign": meta.get("campaign"),
            "uuid": doc.get("uuid"),
            "completed_at": str(doc.get("completed_at")),
        }
        name = names.engine_name(row["engine"], row["campaign"])
        if name:  # beside the label (annotate below adds what is left: model_name)
            row = {
                **dict(list(row.items())[:4]),
                "engine_name": name,
                **dict(list(row.items())[4:]),
            }
        row.update({k: output[k] for k in VERDICT_FIELDS if k in output})
        row.update({k: v for k, v in compact(output).items() if k not in row})
        rows.append(row)
    names.annotate(rows)
    # a dotted field is looked up in the output first, then in the whole document (metadata.x)
    sources = [{**d, **d["output"]} if isinstance(d.get("output"), dict) else d for d in docs]
    return select(rows, sources, fields)


def find_derived(
    workdir: str | Path, name: str, fields: Sequence[str] | None = None, **filters: str | None
) -> list[dict[str, Any]]:
    """Flat rows of the derived collection ``name`` (see :func:`open_derived`): the verdict
    first, then the scalar fields and lists of scalars (``notes``, ``reasons``); filtered on
    ``composition`` (the campaign's, or a series member's ``formula``), ``engine`` and
    ``campaign``; successful documents only. ``fields``: see :func:`find_outputs`."""
    store = open_derived(workdir, name)
    criteria = {k: v for k, v in filters.items() if v is not None}
    if "composition" in criteria:
        formula = criteria.pop("composition")
        criteria["$or"] = [{"composition": formula}, {"formula": formula}]
    docs = sorted(
        store.query({**criteria, "state": "successful"}),
        key=lambda d: (str(d.get("campaign")), d["derived_id"]),
    )
    rows = []
    for doc in docs:
        row = {k: doc[k] for k in VERDICT_FIELDS if k in doc}
        row.update(
            {k: v for k, v in compact(doc, skip="_").items() if k not in DERIVED_BOOKKEEPING}
        )
        rows.append(row)
    model_names(open_results(workdir)).annotate(rows)
    return select(rows, docs, fields)


def builders_for(
    workdir: str | Path, names: Sequence[str] | None = None, query: dict | None = None
) -> list[StageBuilder]:
    """Builders reading the job store of ``workdir`` and writing its derived collections.

    The store configuration is the one ``ctaflow run`` recorded (embedded or MongoDB).
    ``names`` picks builders by collection name (default: all, in pipeline order); ``query``
    adds criteria on the job documents.
    """
    known = builders()
    unknown = sorted(set(names or ()) - set(known))
    if unknown:
        raise CtaflowError(f"unknown builder {', '.join(unknown)}; choose from {', '.join(known)}")
    settings = store_settings_of(workdir)
    tasks = job_store(settings, workdir, create=False)
    return [
        cls(tasks, derived_store(settings, workdir, name), query=query)
        for name, cls in known.items()
        if not names or name in names
    ]
