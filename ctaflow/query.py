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
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctaflow.builders.base import StageBuilder
from ctaflow.errors import CtaflowError
from ctaflow.stages.registry import builders
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


def find_outputs(store: JobStore, **filters: str | None) -> list[dict[str, Any]]:
    """Flat rows (metadata + scalar output fields) for the matching job outputs.

    Rows are sorted by stage and completion time. Non-scalar output fields (structures, arrays)
    are left out of rows; get them with ``store.query`` and ``properties=[...]``.
    """
    criteria = build_criteria(**filters)
    rows = []
    for doc in store.query(
        criteria, properties=["uuid", "name", "metadata", "output", "completed_at"]
    ):
        meta = doc.get("metadata") or {}
        row: dict[str, Any] = {
            "stage": meta.get("stage"),
            "name": doc.get("name"),
            "composition": meta.get("composition"),
            "engine": meta.get("engine"),
            "campaign": meta.get("campaign"),
            "uuid": doc.get("uuid"),
            "completed_at": str(doc.get("completed_at")),
        }
        output = doc.get("output")
        if isinstance(output, dict):
            row.update(
                {
                    k: v
                    for k, v in output.items()
                    if isinstance(v, (int, float, str, bool)) and not k.startswith("@")
                }
            )
        rows.append(row)
    return sorted(rows, key=lambda r: (str(r["stage"]), r["completed_at"]))


def find_derived(workdir: str | Path, name: str, **filters: str | None) -> list[dict[str, Any]]:
    """Flat rows (scalar fields) of the derived collection ``name`` (see :func:`open_derived`),
    filtered on ``composition`` (the campaign's, or a series member's ``formula``), ``engine``
    and ``campaign``; successful documents only."""
    store = open_derived(workdir, name)
    criteria = {k: v for k, v in filters.items() if v is not None}
    if "composition" in criteria:
        formula = criteria.pop("composition")
        criteria["$or"] = [{"composition": formula}, {"formula": formula}]
    rows = []
    for doc in store.query({**criteria, "state": "successful"}):
        rows.append(
            {
                k: v
                for k, v in doc.items()
                if isinstance(v, (int, float, str, bool)) and not k.startswith("_")
            }
        )
    return sorted(rows, key=lambda r: (str(r.get("campaign")), r["derived_id"]))


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
