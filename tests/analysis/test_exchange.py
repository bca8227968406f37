"""Exchange tracker on a trajectory built by hand: Li hopping onto former mobile / pillar Na
sites of the Na-rich block, and the framework disorder measure."""

from __future__ import annotations

import numpy as np
import pytest

from ctaflow.analysis.exchange import exchange_series
from ctaflow.errors import StructureError
from ctaflow.structures import demo_structure
from ctaflow.structures.exchange import stacked_exchange_cell
from ctaflow.structures.series import substitute_sites

A = 4.5


def _blocks():
    na = demo_structure()
    na.scale_lattice(A**3)
    classes = list(na.site_properties["site_class"])
    classes[2] = "pillar"  # Cl, O, Na(pillar), Na(mobile), Na(mobile)
    na.add_site_property("site_class", classes)
    li = substitute_sites(na, (2, 3, 4), "Li")
    return na, li


def test_stack_keeps_blocks_and_site_meaning():
    na, li = _blocks()
    stack = stacked_exchange_cell(na, li)
    assert len(stack) == 10 and stack.lattice.c == pytest.approx(2 * A)
    assert stack.site_properties["block"] == ["A"] * 5 + ["B"] * 5
    assert stack.site_properties["host_species"][7:] == ["Na"] * 3  # Li on former Na sites
    assert [s.specie.symbol for s in stack][7:] == ["Li"] * 3
    z = stack.cart_coords[:, 2]
    assert z[:5].max() < A <= z[5:].min()  # block A below block B
    with pytest.raises(StructureError, match="same supercell"):
        big = li.copy()
        big.make_supercell([2, 1, 1])
        stacked_exchange_cell(na, big)


def test_tracker_counts_li_on_former_mobile_and_pillar_sites():
    na, li = _blocks()
    stack = stacked_exchange_cell(na, li)
    cell = stack.lattice.matrix
    p0 = stack.cart_coords
    species = [s.specie.symbol for s in stack]
    # indices: block A Cl0 O1 Na2(pillar) Na3(mobile) Na4(mobile); block B Cl5 O6 Li7 Li8 Li9
    f1 = p0.copy()
    f1[[3, 8]] = p0[[8, 3]]  # Li8 onto the mobile site of Na3, Na3 onto Li8's old site
    f1[8] += [0.3, 0.0, 0.0]  # 0.3 Å off the site: still within the 1.2 Å cutoff
    f1[[0, 1, 5, 6]] += [0.1, 0.1, 0.0]  # the whole framework drifts: no disorder
    f2 = f1.copy()
    f2[[2, 9]] = p0[[9, 2]]  # Li9 onto the pillar site of Na2, Na2 away
    f2[9] -= [0.0, 0.0, 0.2]
    f2[4] += [0.0, 0.0, 1.9]  # Na4 leaves its mobile site (1.9 Å > cutoff, no other A site near)
    f2[0] += [0.2, 0.0, 0.0]  # block A's Cl moves by 0.2 Å: disorder
    positions = np.array([p0, f1, f2])
    cells = np.repeat(cell[None], 3, axis=0)
    series = exchange_series(
        positions, cells, np.array([0.0, 50.0, 100.0]), stack.site_properties, species
    )
    assert series.n_sites == {"mobile": 2, "pillar": 1}
    assert series.li_on_sites["mobile"] == [0, 1, 1]
    assert series.li_on_sites["pillar"] == [0, 0, 1]
    assert series.li_on_sites["none"] == [3, 2, 1]  # the other Li of block B
    assert series.na_on_sites["mobile"] == [2, 1, 0]
    assert series.na_on_sites["pillar"] == [1, 1, 0]
    # frame 2 framework displacements from frame 0: Cl0 (0.3, 0.1, 0), others (0.1, 0.1, 0);
    # minus the mean (0.15, 0.1, 0): Cl0 0.15 Å, three others 0.05 Å -> mean 0.075 Å
    assert series.framework_mean_displacement_a == pytest.approx([0.0, 0.0, 0.075], abs=1e-9)
    assert series.times_fs == [0.0, 50.0, 100.0]


def test_tracker_uses_the_minimum_image():
    na, li = _blocks()
    stack = stacked_exchange_cell(na, li)
    cell = stack.lattice.matrix
    p0 = stack.cart_coords
    f1 = p0.copy()
    f1[[0, 1, 5, 6]] += cell[0]  # a whole lattice vector: nothing moved
    series = exchange_series(
        np.array([p0, f1]),
        np.repeat(cell[None], 2, axis=0),
        np.array([0.0, 10.0]),
        stack.site_properties,
        [s.specie.symbol for s in stack],
    )
    assert series.framework_mean_displacement_a == pytest.approx([0.0, 0.0], abs=1e-9)
