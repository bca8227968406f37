"""What a report reads (stored job outputs and derived collections, never physics) and how a
stage declares its section."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ctaflow.model_names import ModelNames, trained_models

if TYPE_CHECKING:
    from jobflow import JobStore
    from maggma.core import Store
    from pydantic import BaseModel


class ReportData:
    """Read access for the report sections.

    ``store`` is the connected job store; ``derived`` maps a derived collection's name (see
    :func:`ctaflow.stages.builders`) to its connected store; ``model_stages`` names the stages
    that provide a trained model, in pipeline order (for :attr:`model_names`).
    """

    def __init__(
        self, store: JobStore, derived: Mapping[str, Store], model_stages: Sequence[str] = ()
    ) -> None:
        self.store = store
        self.derived_stores = dict(derived)
        self.model_stages = tuple(model_stages)

    @cached_property
    def model_names(self) -> ModelNames:
        """Readable names of the trained models (see :mod:`ctaflow.model_names`)."""
        stages = self.model_stages
        return ModelNames(trained_models(self.store, stages) if stages else [])

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


#: a figure as a section gives it: PNG bytes, or PNG bytes and its caption
Figure = bytes | tuple[bytes, str]


@dataclass(frozen=True)
class ReportSection:
    """How a stage appears in the report.

    ``records(data)`` turns stored documents into flat records with units in the keys
    (report.json under ``key``); the Markdown/HTML section is ``title``, a table of ``columns``
    (or ``markdown(records)`` instead), ``extra(records)`` lines after it, ``notes(records)`` and
    ``figures(records, data)`` (file name → PNG bytes, or → (PNG bytes, caption)).

    Verdicts: a record with ``status`` ("valid" | "flagged" | "excluded") and ``reasons``
    (list[str]) gets a status column, its reasons under the table and, when excluded, its
    numbers struck through (:func:`ctaflow.report.format.table`); a figure should draw only
    :func:`ctaflow.report.format.drawable` records. Column headers come from the field names
    (:func:`ctaflow.report.labels.label`).

    Captions: every figure has one: the caption given with it, else ``captions(records)[name]``,
    else the section title.
    """

    key: str
    title: str
    records: Callable[[ReportData], list[dict[str, Any]]]
    columns: tuple[str, ...] = ()
    markdown: Callable[[list[dict[str, Any]]], list[str]] | None = None
    extra: Callable[[list[dict[str, Any]]], list[str]] | None = None
    notes: Callable[[list[dict[str, Any]]], list[str]] | None = None
    figures: Callable[[list[dict[str, Any]], ReportData], dict[str, Figure]] | None = None
    captions: Callable[[list[dict[str, Any]]], dict[str, str]] | None = None
    always: bool = False  # shown (empty) even when the campaign did not run the stage

    def captioned_figures(
        self, records: list[dict[str, Any]], data: ReportData
    ) -> dict[str, tuple[bytes, str]]:
        """The section's figures, each with its caption (see the class docstring)."""
        if self.figures is None or not records:
            return {}
        given = self.captions(records) if self.captions is not None else {}
        out = {}
        for name, figure in self.figures(records, data).items():
            png, caption = figure if isinstance(figure, tuple) else (figure, None)
            out[name] = (png, caption or given.get(name) or self.title)
        return out
