"""Deterministic job uuids, so that a rebuilt campaign flow finds its finished jobs in the store.

jobflow gives every Job and Flow a random uuid when it is created. ctaflow builds each stage
inside :func:`deterministic_uids` with a seed derived from the stage's settings, its engine, its
inputs, the ctaflow version and its source code
(:func:`~ctaflow.analysis.provenance.source_fingerprint`); rebuilding the same
campaign then gives the same uuids, and the local runner can skip jobs whose outputs are already
stored. Changing anything that feeds a stage changes its seed, so stale results are never reused.

Why the source code: the uuids are numbered in the order a stage creates its jobs. A code change
that adds a job (e.g. one more reference relaxation) shifts the numbers of the jobs after it,
and a resumed work directory then handed those jobs the outputs of others (measured: a summary
job received an atomate2 task document where it expected a relaxation, an interface energy job
an interface build). The version string alone does not change between commits.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

NAMESPACE = uuid.UUID("5b0f6a38-95d4-4f4e-9b89-2f0c3f7d1c11")


@contextmanager
def deterministic_uids(seed: str) -> Iterator[None]:
    """Within the block, new jobflow Jobs/Flows get uuid5(NAMESPACE, f"{seed}:{n}")."""
    import jobflow.core.flow as flow_module
    import jobflow.core.job as job_module

    counter = itertools.count()

    def _next(id_type: str | None = None) -> str:
        return str(uuid.uuid5(NAMESPACE, f"{seed}:{next(counter)}"))

    saved = job_module.suid, flow_module.suid
    job_module.suid = flow_module.suid = _next
    try:
        yield
    finally:
        job_module.suid, flow_module.suid = saved
