"""Electrolyte | electrolyte stacks for ion-exchange MD (study: Na5SmSi4O12 | Li5SmSi4O12).

:func:`stacked_exchange_cell` puts a Na-rich and a Li-rich member of the substitution series on
top of each other along ``c``. Both blocks share one in-plane lattice (the mean of the two, so a
mismatch is split evenly between them) and keep their own ``c``; the stack is periodic, so there
are two electrolyte | electrolyte interfaces per cell. Sites keep ``label``, ``site_class`` and
``host_species`` and gain ``block`` (``"A"`` = first / Na-rich, ``"B"`` = second / Li-rich), which
the exchange tracker uses to find the former Na sites of the Na-rich block.
"""

from __future__ import annotations

import numpy as np
from pymatgen.core import Lattice, Structure

from ctaflow.errors import StructureError
from ctaflow.structures._common import derived_provenance

#: site properties carried into the stack
STACK_PROPERTIES = ("label", "site_class", "host_species")


def stacked_exchange_cell(
    first: Structure, second: Structure, max_in_plane_mismatch_pct: float = 5.0
) -> Structure:
    """``first`` (block A, bottom) and ``second`` (block B, top) stacked along ``c``.

    Both must have ``c`` normal to ``a`` and ``b`` (orthogonal stacking; the demo and hexagonal
    settings do) and in-plane cells within ``max_in_plane_mismatch_pct`` of each other (members
    of one series built on the same supercell are).
    """
    for name, s in (("first", first), ("second", second)):
        alpha, beta = s.lattice.angles[:2]
        if abs(alpha - 90) > 1e-3 or abs(beta - 90) > 1e-3:
            raise StructureError(
                f"the {name} block has c not normal to a, b (alpha={alpha:.2f}, beta={beta:.2f});"
                " stack cells whose c is the stacking normal"
            )
        missing = [k for k in STACK_PROPERTIES if k not in s.site_properties]
        if missing:
            raise StructureError(
                f"the {name} block lacks site properties {missing}; use members of the "
                "substitution series (ctaflow.structures.series)"
            )
    la, lb = first.lattice, second.lattice
    mismatch = 100 * np.abs(np.array(la.abc[:2]) / np.array(lb.abc[:2]) - 1).max()
    if mismatch > max_in_plane_mismatch_pct or abs(la.gamma - lb.gamma) > 1.0:
        raise StructureError(
            f"in-plane cells differ by {mismatch:.1f} % (gamma {la.gamma:.1f} vs {lb.gamma:.1f});"
            " stack members of one substitution series (same supercell)"
        )
    a, b = (la.matrix[0] + lb.matrix[0]) / 2, (la.matrix[1] + lb.matrix[1]) / 2
    normal = np.cross(a, b) / np.linalg.norm(np.cross(a, b))
    c_a, c_b = la.c, lb.c
    lattice = Lattice([a, b, normal * (c_a + c_b)])
    frac_a = first.frac_coords % 1.0
    frac_b = second.frac_coords % 1.0
    frac_a[:, 2] *= c_a / (c_a + c_b)
    frac_b[:, 2] = (c_a + frac_b[:, 2] * c_b) / (c_a + c_b)
    props = {k: [*first.site_properties[k], *second.site_properties[k]] for k in STACK_PROPERTIES}
    props["block"] = ["A"] * len(first) + ["B"] * len(second)
    out = Structure(
        lattice,
        [*first.species, *second.species],
        np.vstack([frac_a, frac_b]),
        site_properties=props,
    )
    out.properties = {
        "provenance": derived_provenance(
            first,
            {
                "step": "exchange_stack",
                "first": first.composition.reduced_formula,
                "second": second.composition.reduced_formula,
                "in_plane_mismatch_pct": float(mismatch),
            },
        )
    }
    return out
