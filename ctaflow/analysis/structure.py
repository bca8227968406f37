"""The record of a campaign's starting structure: symmetry, provenance and site classes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from ctaflow.analysis.provenance import software_versions


class StructureRecord(BaseModel):
    """A campaign's starting structure. Lengths in Å, volume in Å³."""

    formula: str
    n_atoms: int
    structure: Structure
    space_group: str = Field(description="Space group symbol (number) at symprec 0.01 Å.")
    volume_a3: float
    provenance: dict[str, Any] = Field(
        description="Where the structure comes from; 'experimental_structure' false for models."
    )
    site_classes: dict[str, int] = Field(
        default_factory=dict, description="Number of sites per site_class (mobile, framework...)."
    )
    software: dict[str, str] = Field(default_factory=dict)


def describe_structure(structure: Structure) -> StructureRecord:
    """Pure function: the record of a structure (symmetry, provenance, site classes)."""
    sga = SpacegroupAnalyzer(structure, symprec=0.01)
    classes: dict[str, int] = {}
    for value in structure.site_properties.get("site_class", []):
        classes[value] = classes.get(value, 0) + 1
    return StructureRecord(
        formula=structure.composition.reduced_formula,
        n_atoms=len(structure),
        structure=structure,
        space_group=f"{sga.get_space_group_symbol()} ({sga.get_space_group_number()})",
        volume_a3=float(structure.volume),
        provenance=dict((structure.properties or {}).get("provenance", {})),
        site_classes=classes,
        software=software_versions(),
    )
