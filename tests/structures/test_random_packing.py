"""The random start of a melt: random positions in the crystal's cell, no close pairs."""

from __future__ import annotations

import numpy as np
import pytest

from ctaflow.analysis.amorphous import bragg_order
from ctaflow.structures.demo import demo_structure
from ctaflow.structures.random_packing import pair_minima, random_packing


@pytest.fixture(scope="module")
def crystal():
    cell = demo_structure()  # Na3OCl, a0 = 4.84 Å: Na–O a/2, Na–Na and Na–Cl a/√2, O–O a
    cell.make_supercell([2, 2, 2])
    for site in cell:
        site.properties["site_class"] = "mobile" if site.specie.symbol == "Na" else "framework"
    return cell


def test_pair_minima_are_the_fraction_of_the_crystals_shortest_distances(crystal):
    a = crystal.lattice.a / 2
    limits = pair_minima(crystal, 0.5)
    assert limits["Na", "O"] == pytest.approx(0.5 * a / 2)
    assert limits["O", "Na"] == limits["Na", "O"]
    assert limits["Na", "Na"] == pytest.approx(0.5 * a / np.sqrt(2))
    assert limits["Na", "Cl"] == pytest.approx(0.5 * a / np.sqrt(2))
    assert limits["O", "O"] == pytest.approx(0.5 * a)
    assert limits["O", "Cl"] == pytest.approx(0.5 * a * np.sqrt(3) / 2)


def test_every_pair_keeps_its_distance_and_every_atom_its_properties(crystal):
    packed = random_packing(crystal, 0.7, seed=3)
    assert packed.lattice == crystal.lattice
    assert packed.composition == crystal.composition
    assert packed.site_properties == crystal.site_properties  # atom by atom, in order
    limits = pair_minima(crystal, 0.7)
    d = packed.distance_matrix
    symbols = [s.specie.symbol for s in packed]
    for i in range(len(packed)):
        for j in range(i):
            assert d[i, j] >= limits[symbols[i], symbols[j]] - 1e-9
    step = packed.properties["provenance"]["steps"][-1]
    assert step["step"] == "random_packing" and step["seed"] == 3
    assert packed.properties["provenance"]["experimental_structure"] is False


def test_the_packing_has_no_crystalline_order_and_a_seed_repeats_it(crystal):
    framework = ["O", "Cl"]
    packed = random_packing(crystal, 0.7, seed=3)
    # Bragg order of the anions at the crystal's reflections: 1 for the crystal, ~1/N at random
    assert bragg_order(crystal, crystal, framework) == pytest.approx(1.0)
    assert bragg_order(crystal, packed, framework) < 0.25
    again = random_packing(crystal, 0.7, seed=3)
    other = random_packing(crystal, 0.7, seed=4)
    assert np.array_equal(again.frac_coords, packed.frac_coords)
    assert not np.allclose(other.frac_coords, packed.frac_coords)


def test_a_fraction_too_large_to_pack_says_which_setting_to_lower(crystal):
    with pytest.raises(ValueError, match="random_min_distance_fraction"):
        random_packing(crystal, 0.99, seed=0)
    with pytest.raises(ValueError, match="between 0 and 1"):
        random_packing(crystal, 1.2, seed=0)
