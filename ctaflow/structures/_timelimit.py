"""A wall-clock limit for pymatgen's ordering search (used by :mod:`ctaflow.structures.order`)."""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager

logger = logging.getLogger(__name__)


class DeadlineExceeded(Exception):
    """The ordering search passed its deadline (args[0]: the step it was in)."""


class Deadline:
    """A wall-clock deadline ``seconds`` from now (never, for ``None``)."""

    def __init__(self, seconds: float | None):
        self.end = None if seconds is None else time.monotonic() + seconds

    def check(self, step: str) -> None:
        if self.end is not None and time.monotonic() > self.end:
            raise DeadlineExceeded(step)


_PATCH_LOCK = threading.Lock()


@contextmanager
def ewald_deadline(deadline: Deadline):
    """Let pymatgen's Ewald branch and bound check ``deadline`` at every node it visits.

    ``OrderDisorderedStructureTransformation`` builds an ``EwaldMinimizer`` from its module's
    namespace and has no time limit of its own; for the duration of the block that name is a
    subclass whose recursion checks the deadline first (a lock keeps two threads from swapping
    it at once). The search itself is pymatgen's, unchanged. ``_recurse`` is a private method
    of pymatgen (2026.10): without it the search runs without a limit and a warning says so.
    """
    import pymatgen.transformations.standard_transformations as standard

    with _PATCH_LOCK:
        base = standard.EwaldMinimizer
        if not callable(getattr(base, "_recurse", None)):
            logger.warning(
                "this pymatgen's EwaldMinimizer has no _recurse method: the ordering search "
                "runs without the max_enumeration_s limit"
            )
            yield
            return

        class _TimedEwaldMinimizer(base):
            def _recurse(self, *args, **kwargs):
                deadline.check("the Ewald branch and bound")
                return super()._recurse(*args, **kwargs)

        standard.EwaldMinimizer = _TimedEwaldMinimizer
        try:
            yield
        finally:
            standard.EwaldMinimizer = base
