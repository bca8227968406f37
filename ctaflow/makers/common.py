"""Jobs several stages share: the supercell of a given width and the substitution series."""

from __future__ import annotations

from jobflow import job
from pymatgen.core import Structure

from ctaflow.jobs import result_job
from ctaflow.structures.series import SeriesResult, substitution_series
from ctaflow.structures.supercell import make_supercell


@job
def supercell_job(structure: Structure, min_width_a: float) -> Structure:
    """The smallest supercell whose faces are at least ``min_width_a`` Å apart (see
    :func:`ctaflow.structures.supercell.make_supercell`)."""
    return make_supercell(structure, min_width_a)


@result_job(SeriesResult)
def series_job(structure: Structure, settings: dict) -> SeriesResult:
    """The substitution series of a supercell (see :mod:`ctaflow.structures.series`)."""
    return substitution_series(structure, **settings)
