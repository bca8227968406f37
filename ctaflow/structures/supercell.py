"""Supercells large enough for MD and defects."""

from __future__ import annotations

import math

import numpy as np
from pymatgen.core import Lattice, Structure


def perpendicular_widths(lattice: Lattice) -> np.ndarray:
    """Distances between opposite faces of the cell, Å (d_i = V / |a_j × a_k|)."""
    m = lattice.matrix
    volume = abs(np.linalg.det(m))
    return np.array(
        [volume / np.linalg.norm(np.cross(m[(i + 1) % 3], m[(i + 2) % 3])) for i in range(3)]
    )


def supercell_for_width(lattice: Lattice, min_width_a: float) -> tuple[int, int, int]:
    """Smallest diagonal repetition whose faces are all at least ``min_width_a`` apart.

    A sphere of diameter ``min_width_a`` then fits in the cell, so an atom is at least that far
    from its own periodic images — for any cell shape, not only orthogonal ones.
    """
    widths = perpendicular_widths(lattice)
    return tuple(max(1, math.ceil(round(min_width_a / w, 9))) for w in widths)


def make_supercell(structure: Structure, min_width_a: float) -> Structure:
    """Copy of ``structure`` repeated to ``supercell_for_width``; site properties are kept."""
    scaling = supercell_for_width(structure.lattice, min_width_a)
    supercell = structure.copy()
    supercell.make_supercell(scaling)
    supercell.properties = {
        **(structure.properties or {}),
        "supercell": {"scaling": list(scaling), "min_width_a": min_width_a},
    }
    return supercell
