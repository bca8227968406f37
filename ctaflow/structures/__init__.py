"""Where structures come from: files, the built-in demo, validation, ordering of partial
occupancy, substitution series, mobile-site analysis and symmetry-constrained search."""

from ctaflow.structures.demo import demo_structure
from ctaflow.structures.io import load_structure, read_structure_file
from ctaflow.structures.order import order_structure
from ctaflow.structures.search import search_structures
from ctaflow.structures.series import substitution_series
from ctaflow.structures.sites import classify_sites, hops, migration_network
from ctaflow.structures.validate import validate_structure

__all__ = [
    "classify_sites",
    "demo_structure",
    "hops",
    "load_structure",
    "migration_network",
    "order_structure",
    "read_structure_file",
    "search_structures",
    "substitution_series",
    "validate_structure",
]
