"""Ion-exchange tracking on a hand-made trajectory."""

from __future__ import annotations

import numpy as np

from ctaflow.analysis.sites import assign_sites, track_site_occupancy


def test_nearest_site_with_periodic_images_and_cutoff():
    cell = np.eye(3) * 10.0
    sites = np.array([[0.0, 0.0, 0.0], [5.0, 5.0, 5.0]])
    atoms = np.array([[9.8, 0.1, 0.0], [5.5, 5.0, 5.0], [2.5, 2.5, 2.5]])
    # 9.8 Å is 0.2 Å from site 0 through the boundary; the last atom is 4.3 Å from both sites
    assert assign_sites(atoms, cell, sites, cutoff_a=1.0).tolist() == [0, 1, -1]


def test_li_moving_from_a_mobile_to_a_pillar_site_is_counted():
    cell = np.repeat((np.eye(3) * 10.0)[None], 3, axis=0)
    sites = np.array([[1.0, 1.0, 1.0], [6.0, 6.0, 6.0], [1.0, 6.0, 1.0]])
    classes = ["mobile", "mobile", "pillar"]
    species = ["Li", "Na", "O"]
    li_path = [[1.0, 1.0, 1.0], [1.0, 3.5, 1.0], [1.0, 6.1, 1.0]]  # mobile -> between -> pillar
    positions = np.array([[li, [6.0, 6.0, 6.0], [3.0, 3.0, 8.0]] for li in li_path])
    occ = track_site_occupancy(
        positions,
        cell,
        species,
        sites,
        classes,
        np.array([0, 10, 20]),
        cutoff_a=1.0,
        track={"Li", "Na"},
    )
    assert occ.counts["Li"] == {"mobile": [1, 0, 0], "pillar": [0, 0, 1], "none": [0, 1, 0]}
    assert occ.counts["Na"]["mobile"] == [1, 1, 1]
    assert "O" not in occ.counts
