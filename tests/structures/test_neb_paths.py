"""NEB end points and bands: what moves, and how close interpolated images bring atoms."""

from __future__ import annotations

import numpy as np
import pytest

from ctaflow.errors import StructureError
from ctaflow.structures import demo_structure
from ctaflow.structures.neb_paths import (
    check_cell_for_path,
    concerted_hop,
    interpolate_band,
    select_hops,
    vacancy_hop,
)
from ctaflow.structures.sites import classify_sites
from ctaflow.structures.supercell import make_supercell


@pytest.fixture(scope="module")
def supercell():
    host, _ = classify_sites(demo_structure(), "Na")
    return make_supercell(host, 8.0)  # 2x2x2, 40 atoms, 24 Na


@pytest.fixture(scope="module")
def supercell3():
    """3x3x3, 135 atoms: the smallest demo cell a straight concerted chain fits (14.5 Å wide)."""
    host, _ = classify_sites(demo_structure(), "Na")
    return make_supercell(host, 12.0)


def _moved(a, b, tol=1e-6):
    """Indices whose minimum-image distance between two structures exceeds ``tol`` (Å)."""
    return [n for n in range(len(a)) if a[n].distance(b[n]) > tol]


def test_shortest_hop_is_the_face_centre_to_face_centre_hop(supercell):
    (hop,) = select_hops(supercell, "Na", 4.0, 1)
    a = supercell.lattice.a / 2  # the 2x2x2 supercell: a0 = a/2
    assert hop.length_a == pytest.approx(a / np.sqrt(2), abs=1e-6)  # (1/2,1/2,0)-type, a0/√2
    assert hop.multiplicity == 96  # 24 Na x 8 neighbours / 2
    with pytest.raises(StructureError, match="lower stages.neb.n_hops"):
        select_hops(supercell, "Na", 4.0, 2)


def test_vacancy_hop_moves_one_ion_by_the_hop_length(supercell):
    (hop,) = select_hops(supercell, "Na", 4.0, 1)
    path = vacancy_hop(supercell, hop)
    assert len(path.start) == len(supercell) - 1
    assert path.start.composition["Na"] == 23
    assert _moved(path.start, path.end) == path.moving == [hop.start_index]  # index below j
    (i,) = path.moving
    assert path.start[i].distance(path.end[i]) == pytest.approx(hop.length_a, abs=1e-6)
    # the end point is the vacancy at i: the moved ion sits where the removed one was
    removed = supercell[hop.end_index]
    assert path.end[i].distance(removed) < 1e-6
    steps = path.start.properties["provenance"]["steps"]
    assert steps[-1]["step"] == "neb_vacancy" and steps[-1]["removed_site"] == hop.end_index


def test_concerted_band_moves_exactly_the_two_chosen_ions(supercell3):
    supercell = supercell3
    (hop,) = select_hops(supercell, "Na", 4.0, 1)
    single = vacancy_hop(supercell, hop)
    path = concerted_hop(supercell, hop, 4.0)
    # same start as the single hop of the segment, so the two barriers are comparable
    assert path.start.species == single.start.species
    assert np.allclose(path.start.frac_coords, single.start.frac_coords)
    assert sorted(_moved(path.start, path.end)) == sorted(path.moving)
    assert len(path.moving) == 2
    lead, follower = path.moving
    _, i, j = path.path_sites
    # i goes to j, k goes to where i was, each by one hop length
    assert path.end[lead].distance(supercell[j]) < 1e-6
    assert path.end[follower].distance(supercell[i]) < 1e-6
    for n in path.moving:
        assert path.start[n].distance(path.end[n]) == pytest.approx(hop.length_a, abs=1e-6)
    images = interpolate_band(path.start, path.end, 3, min_distance_a=1.5)
    assert len(images) == 5
    travel = [images[0][n].distance(images[-1][n]) for n in range(len(images[0]))]
    assert sorted(np.flatnonzero(np.array(travel) > 1e-6)) == sorted(path.moving)
    for image in images[1:-1]:  # both ions are on their way in every intermediate image
        for n in path.moving:
            assert 0.2 < image[n].distance(images[0][n]) < hop.length_a - 0.2


@pytest.mark.parametrize("method", ["idpp", "linear"])
def test_interpolated_images_keep_atoms_apart(supercell3, method):
    (hop,) = select_hops(supercell3, "Na", 4.0, 1)
    path = concerted_hop(supercell3, hop, 4.0)
    threshold = 1.5
    images = interpolate_band(path.start, path.end, 5, method=method, min_distance_a=threshold)
    for image in images:
        d = image.distance_matrix + np.eye(len(image)) * 1e9
        assert d.min() >= threshold
    assert images[1].site_properties["site_class"] == path.start.site_properties["site_class"]


def test_a_band_through_another_atom_is_refused(supercell):
    (hop,) = select_hops(supercell, "Na", 4.0, 1)
    start = supercell.copy()
    end = supercell.copy()
    i, j = hop.start_index, hop.end_index  # two Na swap places head on: they meet half way
    pi, pj = start[i].coords.copy(), start[j].coords.copy()
    end.replace(i, end[i].species, pj, coords_are_cartesian=True)
    end.replace(j, end[j].species, pi, coords_are_cartesian=True)
    with pytest.raises(StructureError, match=r"linear image 2 puts atoms .* apart \(< 1.0 Å\)"):
        interpolate_band(start, end, 3, method="linear", min_distance_a=1.0)


def test_cell_must_be_twice_as_wide_as_a_hop():
    host, _ = classify_sites(demo_structure(), "Na")
    with pytest.raises(StructureError, match="min_image_distance_a to at least twice"):
        check_cell_for_path(host, 4.0)  # 4.8 Å cell, 4 Å hops
