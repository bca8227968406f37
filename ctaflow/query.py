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

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctaflow.errors import StoreError

if TYPE_CHECKING:
    from jobflow import JobStore
    from maggma.core import Store

    from ctaflow.campaign.schema import StoreSettings

RUN_INFO = "ctaflow-run.json"


def write_run_info(workdir: Path, info: dict[str, Any]) -> None:
    """Remember how a work directory's store is configured (no credentials: only a path)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / RUN_INFO).write_text(json.dumps(info, indent=2, default=str))


def store_settings_of(workdir: str | Path) -> StoreSettings | None:
    """The store settings recorded by ``ctaflow run`` in ``workdir`` (None: embedded)."""
    from pydantic import ValidationError

    from ctaflow.campaign.schema import StoreSettings

    info = run_info(workdir)
    if not info:
        return None
    try:
        return StoreSettings.model_validate(info.get("store", {}))
    except ValidationError as exc:
        raise StoreError(
            f"'{Path(workdir) / RUN_INFO}' records no usable store section "
            f"({exc.errors()[0]['msg']}): restore it from a copy, or run 'ctaflow run' again"
        ) from None


def run_info(workdir: str | Path) -> dict[str, Any]:
    """What ``ctaflow run`` / ``ctaflow submit`` recorded in ``workdir`` ({} if nothing)."""
    path = Path(workdir) / RUN_INFO
    if not path.is_file():
        return {}
    try:
        info = json.loads(path.read_text())
    except (ValueError, OSError) as exc:
        raise StoreError(
            f"'{path}' cannot be read ({exc}): restore it from a copy, or run 'ctaflow run' "
            "again with the same campaign file"
        ) from None
    if not isinstance(info, dict):
        raise StoreError(f"'{path}' is not a JSON object: restore it from a copy")
    return info


def open_results(workdir: str | Path) -> JobStore:
    """The connected job store of a work directory, opened for reading and checked (an error if
    there is none, if a file of it is damaged or if its server does not answer)."""
    from ctaflow.store import job_store

    store = job_store(store_settings_of(workdir), workdir, create=False)
    store.connect()
    return store


def open_derived(workdir: str | Path, name: str) -> Store:
    """The connected derived collection ``name`` (relax, mlff, transport) of a work directory."""
    from ctaflow.builders.run import BUILDERS
    from ctaflow.errors import CtaflowError
    from ctaflow.store import derived_store

    if name not in BUILDERS:
        raise CtaflowError(f"no derived collection '{name}'; choose from {', '.join(BUILDERS)}")
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
