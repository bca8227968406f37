"""Supercells large enough for MD and defects, and minimum-image vectors in them."""

from __future__ import annotations

import math
from itertools import product

import numpy as np
from pymatgen.core import Lattice, Structure

_SHIFTS = np.array(sorted(product((-1, 0, 1), repeat=3), key=lambda v: sum(x * x for x in v)))


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


def minimum_image(
    lattice: Lattice, frac_from: np.ndarray, frac_to: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Shortest vector from ``frac_from`` to a periodic image of ``frac_to``.

    Returns the Cartesian vector (Å) and the fractional one. ``rint`` of the fractional difference
    is the minimum image only in orthogonal cells, so the 26 translations around it are searched
    too; that is exact unless the cell is strongly skewed (use a reduced cell).
    """
    df = np.asarray(frac_to, dtype=float) - np.asarray(frac_from, dtype=float)
    candidates = df - np.rint(df) + _SHIFTS
    cart = lattice.get_cartesian_coords(candidates)
    best = int(np.argmin(np.round(np.linalg.norm(cart, axis=1), 9)))
    return cart[best], candidates[best]
