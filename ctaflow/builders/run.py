"""Running a builder the way maggma's serial runner (``mrun``) does."""

from __future__ import annotations

import time
from collections.abc import Callable

from ctaflow.builders.base import BuildStats, StageBuilder

ProgressCallback = Callable[[StageBuilder, int], None]


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
