"""Where structures come from: files, the built-in demo, validation."""

from ctaflow.structures.demo import demo_structure
from ctaflow.structures.io import load_structure, read_structure_file
from ctaflow.structures.validate import validate_structure

__all__ = ["demo_structure", "load_structure", "read_structure_file", "validate_structure"]
