"""Jobs several stages share: the supercell of a given width, its defects and the substitution
series."""

from __future__ import annotations

from jobflow import job
from pymatgen.core import Structure

from ctaflow.jobs import result_job
from ctaflow.structures.defects import DefectSettings, make_defects
from ctaflow.structures.random_packing import random_packing
from ctaflow.structures.series import SeriesResult, substitution_series
from ctaflow.structures.supercell import make_supercell


@job
def supercell_job(structure: Structure, min_width_a: float) -> Structure:
    """The smallest supercell whose faces are at least ``min_width_a`` Å apart (see
    :func:`ctaflow.structures.supercell.make_supercell`)."""
    return make_supercell(structure, min_width_a)


@job
def defect_job(structure: Structure, settings: DefectSettings | None) -> Structure:
    """``structure`` with the charge-neutral defects of ``settings`` (none: unchanged); the
    chosen sites are recorded in ``properties["defects"]`` (see
    :func:`ctaflow.structures.defects.make_defects`). Stages apply it to their supercell."""
    if settings is None:
        return structure
    if not isinstance(settings, DefectSettings):
        settings = DefectSettings.model_validate(settings)
    return make_defects(structure, settings)


@job
def random_packing_job(structure: Structure, min_distance_fraction: float, seed: int) -> Structure:
    """The atoms of ``structure`` at random positions in its cell, the start of a melt (see
    :func:`ctaflow.structures.random_packing.random_packing`)."""
    return random_packing(structure, min_distance_fraction, seed)


@result_job(SeriesResult)
def series_job(structure: Structure, settings: dict) -> SeriesResult:
    """The substitution series of a supercell (see :mod:`ctaflow.structures.series`)."""
    return substitution_series(structure, **settings)
