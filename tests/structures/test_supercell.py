"""Supercells by perpendicular width: hand-worked cubic and hexagonal cases."""

from __future__ import annotations

import pytest
from pymatgen.core import Lattice

from ctaflow.structures import demo_structure
from ctaflow.structures.supercell import make_supercell, perpendicular_widths, supercell_for_width


def test_cubic_by_hand():
    assert supercell_for_width(Lattice.cubic(4.5), 10.0) == (3, 3, 3)  # 10/4.5 = 2.2 -> 3
    assert supercell_for_width(Lattice.cubic(5.0), 10.0) == (2, 2, 2)  # exactly 2


def test_hexagonal_uses_face_distances_not_lengths():
    lattice = Lattice.hexagonal(22.1461, 12.6886)
    widths = perpendicular_widths(lattice)
    assert widths[0] == pytest.approx(22.1461 * 3**0.5 / 2)  # a·sin60° = 19.18 Å, not 22.15 Å
    assert widths[2] == pytest.approx(12.6886)
    # 20 Å: 20/19.18 = 1.04 -> 2 along a and b, 20/12.69 = 1.58 -> 2 along c
    assert supercell_for_width(lattice, 20.0) == (2, 2, 2)
    assert supercell_for_width(lattice, 19.0) == (1, 1, 2)


def test_site_meaning_survives():
    big = make_supercell(demo_structure(), 9.0)
    assert len(big) == 5 * 8
    assert big.site_properties["site_class"].count("mobile") == 24
    assert big.properties["provenance"]["experimental_structure"] is False
    assert big.properties["supercell"]["scaling"] == [2, 2, 2]
