"""The structure stage: record the validated starting structure and its provenance."""

from __future__ import annotations

from dataclasses import dataclass

from jobflow import Maker
from pymatgen.core import Structure

from ctaflow.analysis.structure import StructureRecord, describe_structure
from ctaflow.jobs import result_job


@dataclass
class StructureRecordMaker(Maker):
    """Store the starting structure of a campaign as a queryable document."""

    name: str = "structure"

    @result_job(StructureRecord)
    def make(self, structure: Structure) -> StructureRecord:
        """Record ``structure`` (already validated at the campaign edge)."""
        return describe_structure(structure)
