"""The builders of a work directory, and running one the way maggma's serial runner does."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ctaflow.builders.barriers import BarrierBuilder
from ctaflow.builders.base import BuildStats, StageBuilder
from ctaflow.builders.formation import FormationEnergyBuilder
from ctaflow.builders.interfaces import InterfaceBuilder
from ctaflow.builders.mlff import MLFFBuilder
from ctaflow.builders.relax import RelaxBuilder
from ctaflow.builders.transport import TransportBuilder
from ctaflow.errors import CtaflowError

#: every builder, by the name of its derived collection, in the order they run
BUILDERS: dict[str, type[StageBuilder]] = {
    cls.collection: cls
    for cls in (
        RelaxBuilder,
        MLFFBuilder,
        TransportBuilder,
        FormationEnergyBuilder,
        BarrierBuilder,
    )
}
BUILDERS[InterfaceBuilder.collection] = InterfaceBuilder  # issue 10

ProgressCallback = Callable[[StageBuilder, int], None]


def builders_for(
    workdir: str | Path, names: Sequence[str] | None = None, query: dict | None = None
) -> list[StageBuilder]:
    """Builders reading the job store of ``workdir`` and writing its derived collections.

    The store configuration is the one ``ctaflow run`` recorded (embedded or MongoDB).
    ``names`` picks builders by collection name (default: all); ``query`` adds criteria on the
    job documents.
    """
    from ctaflow.query import store_settings_of
    from ctaflow.store import derived_store, job_store

    unknown = sorted(set(names or ()) - set(BUILDERS))
    if unknown:
        raise CtaflowError(
            f"unknown builder {', '.join(unknown)}; choose from {', '.join(BUILDERS)}"
        )
    settings = store_settings_of(workdir)
    tasks = job_store(settings, workdir, create=False)
    return [
        cls(tasks, derived_store(settings, workdir, name), query=query)
        for name, cls in BUILDERS.items()
        if not names or name in names
    ]


def run_builder(builder: StageBuilder, progress: ProgressCallback | None = None) -> BuildStats:
    """Run ``builder`` serially (as ``mrun`` does) and return what it did.

    ``progress(builder, n_done)`` is called after every processed group; ``builder.total`` is the
    number of groups to build once the first is known. The stores stay connected, so the same
    builder can run again (``builder.finalize()`` closes them, as ``mrun`` does at the end).
    """
    start = time.perf_counter()
    builder.connect()
    batch: list = []
    for done, item in enumerate(builder.get_items(), start=1):
        batch.append(builder.process_item(item))
        if len(batch) >= builder.chunk_size:
            builder.update_targets(batch)
            batch = []
        if progress is not None:
            progress(builder, done)
    builder.update_targets(batch)
    builder.stats.seconds = time.perf_counter() - start
    return builder.stats
