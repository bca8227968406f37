"""Supercells in which partial occupancies become whole numbers of atoms.

Sites are grouped the way pymatgen's ``OrderDisorderedStructureTransformation`` groups them:
same species and occupancies (``Composition.almost_equals``) and, with ``group_by="label"``, the
same ``label`` site property. A supercell of ``k`` cells is valid when every group holds a whole
number of atoms of every species (within ``atom_tolerance``).

Hand-worked example: occupancy 1/3 on a one-site orbit needs ``k = 3``; occupancy 2/3 on a
three-site orbit needs ``k = 1`` (2 atoms on 3 sites); 0.5 on a one-site orbit needs ``k = 2``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

import numpy as np
from pymatgen.core import Composition

from ctaflow.errors import StructureError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pymatgen.core import Structure

GroupBy = Literal["label", "species"]


def ordering_groups(structure: Structure, group_by: GroupBy = "label") -> list[list[int]]:
    """Indices of the disordered sites, grouped as the ordering transformation will order them."""
    labels = structure.site_properties.get("label") if group_by == "label" else None
    groups: list[list[int]] = []
    exemplars: list[int] = []
    for idx, site in enumerate(structure):
        if site.is_ordered:
            continue
        for g, ex in enumerate(exemplars):
            same_label = labels is None or labels[idx] == labels[ex]
            if same_label and site.species.almost_equals(structure[ex].species):
                groups[g].append(idx)
                break
        else:
            groups.append([idx])
            exemplars.append(idx)
    return groups


def group_totals(structure: Structure, groups: list[list[int]]) -> list[dict[str, float]]:
    """Total occupancy per species string of every group."""
    out = []
    for group in groups:
        total = sum((structure[i].species for i in group), Composition())
        out.append({str(sp): float(v) for sp, v in total.items()})
    return out


def required_multiplicity(
    structure: Structure,
    group_by: GroupBy = "label",
    atom_tolerance: float = 0.05,
    max_multiplicity: int = 64,
) -> int:
    """Smallest number of cells for which every ordering group holds whole atoms.

    Parameters
    ----------
    structure
        Structure with partial occupancies.
    group_by
        ``"label"`` or ``"species"``, see the module docstring.
    atom_tolerance
        Largest deviation from a whole number of atoms accepted per group and species (CIF
        occupancies such as 0.333 are rounded within it).
    max_multiplicity
        Give up above this size.

    Raises
    ------
    StructureError
        When no multiplicity up to ``max_multiplicity`` works.
    """
    totals = group_totals(structure, ordering_groups(structure, group_by))
    for k in range(1, max_multiplicity + 1):
        if all(
            abs(k * v - round(k * v)) <= atom_tolerance for group in totals for v in group.values()
        ):
            return k
    worst = ", ".join(f"{sp} {v:.4g}" for group in totals for sp, v in group.items())
    raise StructureError(
        f"no supercell of up to {max_multiplicity} cells makes the partial occupancies whole "
        f"numbers of atoms (atoms per group in one cell: {worst}); round the occupancies in the "
        "file to simple fractions (e.g. 0.333 -> 1/3), or raise max_multiplicity / atom_tolerance"
    )


def diagonal_supercell(structure: Structure, multiplicity: int) -> list[int]:
    """The diagonal supercell ``[a, b, c]`` with ``a·b·c = multiplicity`` closest to a cube.

    The perpendicular widths (distances between opposite faces) of every factorisation are
    sorted; the largest smallest width wins, then the largest second-smallest, and so on; exact
    ties go to the first in lexicographic order. For a cubic cell, 4 gives ``[1, 2, 2]``.
    """
    best, best_widths = [multiplicity, 1, 1], (-1.0, -1.0, -1.0)
    for a in range(1, multiplicity + 1):
        if multiplicity % a:
            continue
        for b in range(1, multiplicity // a + 1):
            if (multiplicity // a) % b:
                continue
            c = multiplicity // (a * b)
            widths = _widths(structure.lattice.matrix * np.array([[a], [b], [c]]))
            if _better(widths, best_widths):
                best, best_widths = [a, b, c], widths
    return best


def _widths(matrix: np.ndarray) -> tuple[float, ...]:
    volume = abs(np.linalg.det(matrix))
    return tuple(
        sorted(
            volume / np.linalg.norm(np.cross(matrix[(i + 1) % 3], matrix[(i + 2) % 3]))
            for i in range(3)
        )
    )


def _better(widths: tuple[float, ...], best: tuple[float, ...], tol: float = 1e-6) -> bool:
    for w, b in zip(widths, best, strict=True):
        if w > b + tol:
            return True
        if w < b - tol:
            return False
    return False


def as_matrix(supercell: Sequence[int] | Sequence[Sequence[int]]) -> list[list[int]]:
    """``[a, b, c]`` or a 3x3 integer matrix as a 3x3 list (raises on a singular matrix)."""
    arr = np.array(supercell, dtype=int)
    if arr.shape == (3,):
        arr = np.diag(arr)
    if arr.shape != (3, 3) or round(abs(np.linalg.det(arr))) < 1:
        raise StructureError(
            f"supercell {supercell!r} is not a scaling [a, b, c] or a 3x3 integer matrix with "
            "non-zero determinant; give e.g. supercell=[2, 2, 1]"
        )
    return arr.tolist()


def n_orderings(structure: Structure, groups: list[list[int]]) -> int:
    """Number of labelled orderings (product of multinomials over the groups)."""
    total = 1
    for group, counts in zip(groups, group_totals(structure, groups), strict=True):
        remaining = len(group)
        for v in counts.values():
            n = round(v)
            total *= math.comb(remaining, n)
            remaining -= n
    return total
