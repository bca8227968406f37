"""Electrolyte | bcc-metal interface builder: stoichiometry, strain, geometry, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ctaflow.errors import StructureError
from ctaflow.structures import demo_structure
from ctaflow.structures.interfaces import (
    amorphous_slab,
    bcc_lattice_estimate,
    build_interface,
    principal_strains,
)

A_EL = 4.5354  # Na3OCl lattice parameter, Å (CHGNet-relaxed value, used here as given input)
A_LI = 3.4093  # bcc Li, Å (idem)
A_NA = 4.2068  # bcc Na, Å (idem)


@pytest.fixture
def electrolyte():
    s = demo_structure()
    s.scale_lattice(A_EL**3)
    return s


def _li_on_001(electrolyte, **kw):
    args = dict(
        metal_lattice_a=A_LI,
        metal_miller=(1, 0, 0),
        electrolyte_thickness_a=5.0,
        metal_thickness_a=4.0,
        max_strain_pct=6.0,
        max_area_a2=30.0,
    )
    return build_interface(electrolyte, "Li", **{**args, **kw})


def test_strain_is_the_hand_computed_mismatch_and_within_the_limit(electrolyte):
    b = _li_on_001(electrolyte)
    # only match under 30 Å²: the 1x1 electrolyte cell on Li(100) rotated 45°, whose in-plane
    # vectors are sqrt(2) a_Li long; isotropic strain a_el / (sqrt(2) a_Li) - 1 = -5.93 %
    hand = abs(A_EL / (math.sqrt(2) * A_LI) - 1.0) * 100.0
    assert b.strain_pct == pytest.approx(hand, abs=1e-6)
    assert b.match.principal_strains_pct == pytest.approx((-hand, -hand), abs=1e-6)
    assert b.strain_pct <= 6.0
    assert b.area_a2 == pytest.approx(A_EL**2, rel=1e-9)  # the electrolyte is not strained
    assert b.metal_lattice_a == A_LI


def test_builder_keeps_stoichiometry_and_counts_the_metal(electrolyte):
    b = _li_on_001(electrolyte, electrolyte_thickness_a=8.0, max_area_a2=90.0)
    s = b.structure
    parts = s.site_properties["interface_part"]
    el = [i for i, p in enumerate(parts) if p == "electrolyte"]
    metal = [i for i, p in enumerate(parts) if p == "metal"]
    assert len(el) + len(metal) == len(s)
    assert b.n_electrolyte_atoms == len(el) and b.n_metal_atoms == len(metal)
    # whole Na3OCl formula units (5 atoms each), counted element by element
    n_fu = b.n_formula_units
    assert b.electrolyte_counts == {"Na": 3 * n_fu, "O": n_fu, "Cl": n_fu}
    assert len(el) == 5 * n_fu
    assert all(s[i].specie.symbol == "Li" for i in metal)
    # Li(100) oriented cell: 2 atoms per a_Li² per stacking period a_Li
    assert len(metal) % 2 == 0 and len(b.metal_reference) == len(metal)
    assert b.n_interfaces == 2 and b.strain_pct <= 6.0
    # site meaning survives: metal sites are classed, electrolyte Na keep their class
    classes = s.site_properties["site_class"]
    assert {classes[i] for i in metal} == {"metal"}
    assert {classes[i] for i in el if s[i].specie.symbol == "Na"} == {"mobile"}


def test_periodic_stack_has_the_gap_at_both_interfaces(electrolyte):
    gap = 2.3
    b = _li_on_001(electrolyte, gap_a=gap)
    s = b.structure
    z = s.cart_coords[:, 2]
    parts = np.array(s.site_properties["interface_part"])
    z_el, z_m = z[parts == "electrolyte"], z[parts == "metal"]
    assert z_m.min() - z_el.max() == pytest.approx(gap, abs=1e-6)
    assert z_el.min() + s.lattice.c - z_m.max() == pytest.approx(gap, abs=1e-6)
    assert s.lattice.c == pytest.approx(np.ptp(z_el) + np.ptp(z_m) + 2 * gap, abs=1e-6)


def test_vacuum_gives_one_interface(electrolyte):
    b = _li_on_001(electrolyte, gap_a=2.0, vacuum_a=12.0)
    assert b.n_interfaces == 1
    z = b.structure.cart_coords[:, 2]
    assert b.structure.lattice.c - np.ptp(z) == pytest.approx(12.0, abs=1e-6)


def test_strained_metal_reference_is_bulk_with_the_interface_strain(electrolyte):
    b = _li_on_001(electrolyte)
    ref = b.metal_reference
    assert ref.lattice.abc[:2] == pytest.approx(b.structure.lattice.abc[:2])
    # in-plane: sqrt(2) a_Li compressed to a_el; along the normal the bulk period a_Li (2 cells)
    assert ref.lattice.c == pytest.approx(2 * A_LI, abs=1e-6)
    assert ref.volume / len(ref) == pytest.approx(A_EL**2 * A_LI / 4, rel=1e-6)
    d = ref.distance_matrix + np.eye(len(ref)) * 99
    assert d.min() > 2.5  # bcc Li nearest neighbours ~3 Å: no overlapping periodic images


def test_principal_strains_are_frame_independent():
    f = np.array([[1.0, 0, 0], [0, 2.0, 0]])
    rot = np.array([[0.6, 0.8, 0], [-0.8, 0.6, 0], [0, 0, 1]])
    s = np.array([[1.1, 0, 0], [0, 1.8, 0]]) @ rot.T
    assert sorted(principal_strains(f, s)) == pytest.approx([-0.1, 0.1])


def test_amorphous_cut_keeps_every_atom_and_cuts_at_the_widest_gap():
    s = demo_structure()
    s.scale_lattice(A_EL**3)
    s.make_supercell([2, 2, 2])
    s.perturb(0.3, seed=1)
    slab = amorphous_slab(s, repeats=1)
    assert slab.composition == s.composition
    assert slab.lattice.alpha == pytest.approx(90) and slab.lattice.beta == pytest.approx(90)
    b = build_interface(
        s,
        "Na",
        phase="amorphous",
        metal_lattice_a=A_NA,
        metal_miller=(1, 0, 0),
        metal_thickness_a=4.0,
        max_strain_pct=5.0,
        max_area_a2=100.0,
    )
    assert b.n_formula_units == 8 and b.miller is None and b.termination == "amorphous cut"


def test_bad_input_gives_one_clear_error(electrolyte):
    with pytest.raises(StructureError, match="Li, Na, K, Rb, Cs"):
        build_interface(electrolyte, "Mg")
    with pytest.raises(StructureError, match="not all 0"):
        build_interface(electrolyte, "Li", miller=(0, 0, 0))
    with pytest.raises(StructureError, match="raise max_strain_pct or max_area_a2"):
        _li_on_001(electrolyte, max_strain_pct=3.0)
    with pytest.raises(StructureError, match="termination 5 does not exist"):
        _li_on_001(electrolyte, termination=5)


def test_lattice_estimate_is_from_the_metallic_radius():
    # pymatgen metallic radius of Na 1.86 Å -> a = 4 r / sqrt(3) = 4.2955 Å
    assert bcc_lattice_estimate("Na") == pytest.approx(4 * 1.86 / math.sqrt(3), rel=1e-6)
