"""Mobile-site classification on structures whose answer is known by construction."""

from __future__ import annotations

import math

import pytest
from pymatgen.core import Lattice, Structure

from ctaflow.errors import StructureError
from ctaflow.structures import demo_structure
from ctaflow.structures.sites import classify_sites, hops, migration_network


def channel_structure() -> Structure:
    """Tetragonal a = 10, c = 7 Å, built so the answer is known.

    - Na0, Na1 at (0, 0, 0) and (0, 0, 1/2): a channel along c with 3.5 Å hops whose straight
      path passes 3.54 Å from the nearest O -> 1D percolating, mobile.
    - Na2 at (1/2, 1/2, 1/4): no Na within 5 Å -> isolated, pillar.
    - Na3, Na4 at (1/2, 0, 0) and (1/2, 0, 1/2): 3.5 Å apart along c, but O sits on both hop
      midpoints (z = 1/4, 3/4) -> every hop blocked, pillar.
    """
    species = ["Na"] * 5 + ["O"] * 4
    coords = [
        [0, 0, 0],
        [0, 0, 0.5],
        [0.5, 0.5, 0.25],
        [0.5, 0, 0],
        [0.5, 0, 0.5],
        [0.5, 0, 0.25],
        [0.5, 0, 0.75],
        [0.25, 0.25, 0.25],
        [0.75, 0.25, 0.5],
    ]
    return Structure(Lattice.tetragonal(10.0, 7.0), species, coords)


def test_constructed_channel_pillar_and_blocked_sites():
    classified, network = classify_sites(channel_structure(), "Na")
    assert network.mobile_sites == [0, 1]
    assert network.pillar_sites == [2, 3, 4]
    assert (
        classified.site_properties["site_class"]
        == ["mobile"] * 2 + ["pillar"] * 3 + ["framework"] * 4
    )
    by_site = dict(zip(map(tuple, network.components), network.dimensions, strict=True))
    assert by_site[(0, 1)] == 1
    assert by_site[(2,)] == 0
    # the blocked pair: hops exist (3.5 Å) but are closed by O on the path
    blocked = [h for h in network.hops if {h.i, h.j} == {3, 4}]
    assert len(blocked) == 2
    assert all(not h.open and h.clearance_a == pytest.approx(0.0, abs=1e-8) for h in blocked)
    channel = [h for h in network.hops if {h.i, h.j} == {0, 1}]
    assert all(h.open and h.length_a == pytest.approx(3.5) for h in channel)
    assert channel[0].clearance_a == pytest.approx(math.hypot(2.5, 2.5), abs=1e-6)
    step = classified.properties["provenance"]["steps"][-1]
    assert step["step"] == "classify_sites"
    assert (step["hop_cutoff_a"], step["min_clearance_a"], step["min_dimension"]) == (4.0, 1.5, 1)


def test_rules_are_settable():
    s = channel_structure()
    # a window of at least 3.6 Å closes the channel (3.54 Å)
    assert migration_network(s, "Na", min_clearance=3.6).mobile_sites == []
    # hops shorter than 3.4 Å only: the 3.5 Å channel hop disappears
    assert migration_network(s, "Na", hop_cutoff=3.4).mobile_sites == []
    # O is not a blocker -> the Na3-Na4 chain percolates as well
    assert migration_network(s, "Na", blocking_species=[]).mobile_sites == [0, 1, 3, 4]
    # a 1D channel is not enough when 2D percolation is required
    assert migration_network(s, "Na", min_dimension=2).mobile_sites == []


def test_antiperovskite_na_is_3d_mobile_with_one_distinct_hop():
    s = demo_structure()
    network = migration_network(s, "Na")
    assert network.dimensions == [3]
    assert network.mobile_sites == [2, 3, 4]
    found = hops(s, "Na", max_length=4.0)
    # Na on 3c: each Na has 8 Na neighbours at a/sqrt(2); 3 x 8 / 2 = 12 hops, all equivalent
    assert len(found) == 1
    assert found[0].length_a == pytest.approx(s.lattice.a / math.sqrt(2))
    assert found[0].multiplicity == 12
    assert (found[0].start_label, found[0].end_label) == ("Na1", "Na1")
    end = s.lattice.get_cartesian_coords(found[0].end_frac)
    start = s.lattice.get_cartesian_coords(found[0].start_frac)
    assert float(((end - start) ** 2).sum() ** 0.5) == pytest.approx(found[0].length_a)


def test_unknown_species_and_disorder():
    with pytest.raises(StructureError, match=r"no Li sites in the structure \(elements: Na, O\)"):
        migration_network(channel_structure(), "Li")
    disordered = channel_structure()
    disordered.replace(0, {"Na": 0.5})
    with pytest.raises(StructureError, match="order the structure"):
        classify_sites(disordered, "Na")


def test_hops_match_pymatgen_analysis_diffusion():
    # one Na of a 2x1x1 antiperovskite replaced by Li: Na hops split into 4 classes
    from collections import Counter

    from pymatgen.analysis.diffusion.neb.full_path_mapper import MigrationGraph

    s = demo_structure().make_supercell([2, 1, 1], in_place=False)
    s.replace(2, "Li")
    found = hops(s, "Na", max_length=4.0)
    graph = MigrationGraph.with_distance(s, "Na", 4.0)
    theirs = Counter(d["hop_label"] for _, _, d in graph.m_graph.graph.edges(data=True))
    assert sorted(h.multiplicity for h in found) == sorted(theirs.values()) == [4, 4, 8, 8]
    assert sorted(round(h.length_a, 4) for h in found) == sorted(
        round(d["hop_distance"], 4) for d in graph.unique_hops.values()
    )
    # clearance on the straight path: 1.71 Å = a / (2 sqrt(2)) to O and Cl
    assert all(h.clearance_a == pytest.approx(s.lattice.b / (2 * math.sqrt(2))) for h in found)
