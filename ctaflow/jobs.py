"""The decorator of every ctaflow job that stores a result document.

``@result_job(Schema)`` is jobflow's ``@job`` with the output schema declared (references into the
output are checked against it when the flow is built: ``job.output.final_structure`` on an
:class:`~ctaflow.analysis.md.MDResult` works, a misspelt field fails at build time, not in the
middle of a campaign) and with the bulky parts of any output sent to the ``data`` store: the
arrays of trajectory chunks (:data:`~ctaflow.analysis.chunks.CHUNK_DATA_KEY`) and the parts of
stored files (:data:`~ctaflow.analysis.blobs.PART_DATA_KEY`), each its own document below
MongoDB's 16 MB limit.
"""

from __future__ import annotations

from typing import Any

from jobflow import job
from pydantic import BaseModel

from ctaflow.analysis.blobs import PART_DATA_KEY
from ctaflow.analysis.chunks import CHUNK_DATA_KEY

#: output keys whose values go to the ``data`` additional store
BULKY_KEYS = [CHUNK_DATA_KEY, PART_DATA_KEY]


def result_job(schema: type[BaseModel], **kwargs: Any):
    """``@job(output_schema=schema, data=BULKY_KEYS, **kwargs)``."""
    return job(output_schema=schema, data=BULKY_KEYS, **kwargs)
