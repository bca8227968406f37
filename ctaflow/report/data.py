"""What a report reads (stored job outputs and derived collections, never physics) and how a
stage declares its section."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobflow import JobStore
    from maggma.core import Store
    from pydantic import BaseModel


class ReportData:
    """Read access for the report sections.

    ``store`` is the connected job store; ``derived`` maps a derived collection's name (see
    :func:`ctaflow.stages.builders`) to its connected store.
    """

    def __init__(self, store: JobStore, derived: Mapping[str, Store]) -> None:
        self.store = store
        self.derived_stores = dict(derived)

    def outputs(self, stage: str, schema: type[BaseModel]) -> list[dict[str, Any]]:
        """Job documents of ``stage`` whose output is a ``schema`` (uuid, metadata, output)."""
        return list(
            self.store.query(
                {"metadata.stage": stage, "output.@class": schema.__name__},
                properties=["uuid", "metadata", "output", "completed_at"],
            )
        )

    def derived(self, name: str) -> list[dict[str, Any]]:
        """Successful documents of one derived collection, in a stable order."""
        store = self.derived_stores.get(name)
        docs = store.query({"state": "successful"}) if store is not None else []
        return sorted(docs, key=lambda d: (str(d.get("campaign")), d["derived_id"]))


@dataclass(frozen=True)
class ReportSection:
    """How a stage appears in the report.

    ``records(data)`` turns stored documents into flat records with units in the keys
    (report.json under ``key``); the Markdown/HTML section is ``title``, a table of ``columns``
    (or ``markdown(records)`` instead), ``extra(records)`` lines after it, ``notes(records)`` and
    ``figures(records, data)`` (file name → PNG bytes).
    """

    key: str
    title: str
    records: Callable[[ReportData], list[dict[str, Any]]]
    columns: tuple[str, ...] = ()
    markdown: Callable[[list[dict[str, Any]]], list[str]] | None = None
    extra: Callable[[list[dict[str, Any]]], list[str]] | None = None
    notes: Callable[[list[dict[str, Any]]], list[str]] | None = None
    figures: Callable[[list[dict[str, Any]], ReportData], dict[str, bytes]] | None = None
    always: bool = False  # shown (empty) even when the campaign did not run the stage
