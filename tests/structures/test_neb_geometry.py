"""Minimum-image hop geometry and the choice of the concerted pair (issue #22), checked by hand
on the Na3OCl demo cell: a0 the cubic lattice parameter, Na on the face centres, nearest Na-Na
hop a0/√2 along <110>."""

from __future__ import annotations

from itertools import product

import numpy as np
import pytest
from pymatgen.core import Lattice

from ctaflow.errors import StructureError
from ctaflow.structures import demo_structure
from ctaflow.structures.neb_paths import (
    concerted_hop,
    concerted_partner,
    hop_in_cell,
    interpolate_band,
    minimum_image,
    select_hops,
    vacancy_hop,
)
from ctaflow.structures.sites import classify_sites
from ctaflow.structures.supercell import make_supercell

A0 = 4.84  # Å, lattice parameter of the demo prototype


@pytest.fixture(scope="module")
def host():
    return classify_sites(demo_structure(), "Na")[0]


def _site_at(structure, frac):
    """Index of the site at fractional position ``frac`` (mod 1)."""
    d = structure.frac_coords - np.asarray(frac)
    d -= np.rint(d)
    (n,) = np.flatnonzero(np.linalg.norm(d, axis=1) < 1e-6)
    return int(n)


def test_minimum_image_agrees_with_a_brute_force_search_in_a_skewed_cell():
    lattice = Lattice.from_parameters(5.0, 6.0, 7.0, 70, 110, 60)  # triclinic, not reduced
    rng = np.random.default_rng(0)
    translations = np.array(list(product(range(-3, 4), repeat=3)))
    for _ in range(200):
        a, b = rng.uniform(-1.5, 2.5, size=(2, 3))
        cart, frac = minimum_image(lattice, a, b)
        brute = lattice.get_cartesian_coords(b - a - np.rint(b - a) + translations)
        assert np.linalg.norm(cart) == pytest.approx(np.linalg.norm(brute, axis=1).min())
        assert np.allclose(lattice.get_cartesian_coords(frac), cart)
        assert np.allclose(np.rint(b - a - frac), b - a - frac, atol=1e-9)  # frac ≡ b - a


def _swapped_host(host, a0_li: float):
    """The host as a relaxed Li host would come back: Li on the Na sites, a smaller cell, and
    one fractional coordinate wrapped (Na2 at y = 0 written as 1 - 1e-7)."""
    li = host.copy()
    li.lattice = Lattice.cubic(a0_li)
    for n in (2, 3, 4):
        f = li[n].frac_coords.copy()
        if n == 3:
            f[1] = (f[1] - 1e-7) % 1.0
        li.replace(n, "Li", f, properties=dict(li[n].properties))
    return li


def test_a_hop_replayed_on_a_swapped_host_is_measured_by_the_minimum_image(host):
    """The 6.18 Å vs 2.77 Å case of issue #22, rebuilt: the hop is chosen on the Na host
    (CHGNet a0 = 4.5354 Å) and replayed on a Li host (a0 = 3.91 Å) whose Na2 site came back
    wrapped to y = 0.9999999; main's ``band_ends`` measured ``j + end_image - i``."""
    na = host.copy()
    na.scale_lattice(4.5354**3)
    reference = make_supercell(na, 8.0)  # 2x2x2, 9.07 Å
    (hop,) = select_hops(reference, "Na", 4.0, 1)
    a0 = 3.91
    li = _swapped_host(host, a0)
    li.make_supercell(reference.properties["supercell"]["scaling"])
    i = li[hop.start_index].frac_coords
    j = li[hop.end_index].frac_coords + np.array(hop.end_image)
    inline = np.linalg.norm(li.lattice.get_cartesian_coords(j - i))
    # the wrapped site sits one unit-cell vector (a0 along y) off: (a0/2, ±a0/2 + a0, 0)
    assert inline == pytest.approx(a0 * np.sqrt(2.5), abs=1e-5)  # 6.18 Å: the bug on main
    assert inline == pytest.approx(6.182, abs=1e-3)
    measured = hop_in_cell(li, hop)
    assert measured.length_a == pytest.approx(a0 / np.sqrt(2), abs=1e-5)  # 2.765 Å
    assert measured.end_image == (0, -1, 0)  # the image that is nearest in this host
    assert (measured.start_index, measured.end_index) == (hop.start_index, hop.end_index)
    assert hop_in_cell(li, measured) == measured  # idempotent
    # the band built from the recorded hop moves the ion by a0/√2, not to a periodic image
    path = vacancy_hop(li, hop)
    assert path.hop.length_a == pytest.approx(a0 / np.sqrt(2), abs=1e-5)
    assert path.displacement_a == pytest.approx([a0 / np.sqrt(2)], abs=1e-5)
    (n,) = path.moving
    cart = np.linalg.norm(path.end[n].coords - path.start[n].coords)
    assert cart == pytest.approx(a0 / np.sqrt(2), abs=1e-5)  # Cartesian too, not 6.18 Å
    assert path.end[n].distance(li[hop.end_index]) < 1e-6  # onto the vacant site j


def test_a_hop_that_no_longer_names_a_nearest_neighbour_pair_is_refused(host):
    sc = make_supercell(host, 12.0)  # 3x3x3: 14.52 Å wide
    (hop,) = select_hops(sc, "Na", 4.0, 1)
    moved = sc.copy()  # site j one a0 further along z: |(a0/2, -a0/2, a0)| = 5.93 Å, not 3.42
    f = moved[hop.end_index].frac_coords + np.array([0, 0, 1 / 3])
    moved.replace(hop.end_index, "Na", f, properties=dict(moved[hop.end_index].properties))
    with pytest.raises(StructureError, match=r"5\.93 Å long in this host but 3\.42 Å"):
        hop_in_cell(moved, hop)


def test_a_hop_as_long_as_half_the_cell_is_refused(host):
    (hop,) = select_hops(host, "Na", 4.0, 1)  # the 5-atom cell: 4.84 Å wide, hop 3.42 Å
    assert hop.length_a == pytest.approx(A0 / np.sqrt(2))
    with pytest.raises(StructureError, match="shorter than half the cell"):
        hop_in_cell(host, hop)


# --------------------------------------------------------------------------- concerted pair
def test_the_straight_chain_spans_too_much_of_the_2x2x2_cell(host):
    sc = make_supercell(host, 8.0)  # 2x2x2: 9.68 Å wide
    (hop,) = select_hops(sc, "Na", 4.0, 1)
    i, j = hop.start_index, hop.end_index
    # by hand: i at (0, 1/4, 1/4), j at (1/4, 0, 1/4) (fractions of the 2a0 cell); the straight
    # continuation k = i - (j - i) = (-1/4, 1/2, 1/4) ≡ (3/4, 1/2, 1/4)
    assert np.allclose(sc[i].frac_coords, [0, 0.25, 0.25])
    assert np.allclose(sc[j].frac_coords, [0.25, 0, 0.25])
    k = _site_at(sc, [0.75, 0.5, 0.25])
    g = concerted_partner(sc, hop, 4.0)
    assert g.path_sites == [k, i, j]
    assert g.k_to_i_a == pytest.approx(A0 / np.sqrt(2)) and g.i_to_j_a == g.k_to_i_a
    assert g.angle_kij_deg == pytest.approx(180.0)
    assert g.span_a == pytest.approx(A0 * np.sqrt(2))  # 6.84 Å
    assert g.min_width_a == pytest.approx(2 * A0)  # 9.68 Å: span/width = 0.707
    # k and j are half a cell apart along x and y: the chain's own j, at k + (a0, -a0, 0), and
    # the image at k + (-a0, -a0, 0) are equally near k
    df = sc[j].frac_coords - sc[k].frac_coords
    chain, other = (sc.lattice.get_cartesian_coords(df + s) for s in ([1, 0, 0], [0, 0, 0]))
    assert chain == pytest.approx([A0, -A0, 0]) and other == pytest.approx([-A0, -A0, 0])
    assert np.linalg.norm(other) == pytest.approx(g.span_a)
    # the pair keeps its separation (a0/2, -a0/2, 0); nearest image of it: (a0/2 - 2a0, -a0/2, 0)
    assert g.closest_image_approach_a == pytest.approx(A0 * np.sqrt(2.5))  # 7.65 Å
    assert not g.fits and g.width_needed_a == pytest.approx(2 * A0 * np.sqrt(2))  # 13.69 Å
    with pytest.raises(StructureError, match=r"at least 13\.69 Å wide"):
        concerted_hop(sc, hop, 4.0)
    # not strict (a campaign with grow_cell_for_concerted: false): built, and it says so
    path = concerted_hop(sc, hop, 4.0, strict=False)
    assert path.concerted == g and path.path_sites == [k, i, j]
    assert "at least 13.69 Å wide" in path.concerted.too_small(len(sc))


@pytest.fixture(scope="module")
def cell3(host):
    return make_supercell(host, 12.0)  # 3x3x3: 135 atoms, 14.52 Å wide


def test_the_straight_chain_fits_the_3x3x3_cell_and_moves_two_ions_in_step(cell3):
    (hop,) = select_hops(cell3, "Na", 4.0, 1)
    i, j = hop.start_index, hop.end_index
    third = 1 / 3
    assert np.allclose(cell3[i].frac_coords, [0, third / 2, third / 2])
    assert np.allclose(cell3[j].frac_coords, [third / 2, 0, third / 2])
    k = _site_at(cell3, [1 - third / 2, third, third / 2])  # i - (j - i)
    g = concerted_partner(cell3, hop, 4.0)
    assert g.path_sites == [k, i, j] == [102, 54, 81]
    assert g.span_a == pytest.approx(A0 * np.sqrt(2))
    assert g.min_width_a == pytest.approx(3 * A0)  # span/width = 0.471 < 1/2
    assert g.closest_image_approach_a == pytest.approx(A0 * np.sqrt(6.5))  # (a0/2 - 3a0, -a0/2)
    assert g.fits

    path = concerted_hop(cell3, hop, 4.0)
    assert path.concerted == g
    assert path.path_sites == [k, i, j]
    lead, follower = path.moving
    assert (lead, follower) == (i, k - 1)  # indices after removing j (i < j < k)
    assert len(path.start) == 134 and path.start.composition["Na"] == 80
    moved = [n for n in range(134) if path.start[n].distance(path.end[n]) > 1e-6]
    assert moved == sorted(path.moving)
    hop_vector = np.array([A0 / 2, -A0 / 2, 0.0])
    for n, site in ((lead, j), (follower, i)):
        # each ion moves by the same vector (a0/2, -a0/2, 0): in step, same direction
        assert path.end[n].coords - path.start[n].coords == pytest.approx(hop_vector)
        assert path.end[n].distance(cell3[site]) < 1e-6
    assert path.displacement_a == pytest.approx([A0 / np.sqrt(2)] * 2)
    # the end has its vacancy at k: no Na left on that site
    assert min(s.distance(cell3[k]) for s in path.end) > 1.0


def test_the_interpolated_chain_moves_both_ions_at_once(cell3):
    (hop,) = select_hops(cell3, "Na", 4.0, 1)
    path = concerted_hop(cell3, hop, 4.0)
    images = interpolate_band(path.start, path.end, 3, method="linear", min_distance_a=1.5)
    for n, image in enumerate(images):
        for m in path.moving:  # straight line: each ion a quarter of the hop per image
            assert image[m].distance(images[0][m]) == pytest.approx(n / 4 * A0 / np.sqrt(2))
