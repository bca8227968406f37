"""The rattle-and-relax minimum check (issue #22, rule 1): seeded rattles and the verdict,
checked by hand on the 5-atom Na3OCl demo cell."""

from __future__ import annotations

import numpy as np
import pytest

from ctaflow.analysis.minimum import assess_minimum, displacements_a, rattle, space_group
from ctaflow.structures import demo_structure
from ctaflow.structures.supercell import make_supercell


@pytest.fixture(scope="module")
def cell():
    return make_supercell(demo_structure(), 12.0)  # 3x3x3, 135 atoms


def test_rattle_is_seeded_keeps_the_cell_and_the_sites(cell):
    a, b, c = (rattle(cell, 0.1, seed) for seed in (0, 0, 1))
    assert np.array_equal(a.cart_coords, b.cart_coords)
    assert not np.allclose(a.cart_coords, c.cart_coords)
    assert a.lattice == cell.lattice and a.species == cell.species
    assert a.site_properties == cell.site_properties and a.labels == cell.labels
    assert a.properties["provenance"]["steps"][-1] == {
        "step": "rattle",
        "amplitude_a": 0.1,
        "seed": 0,
        "distribution": "gaussian",
    }
    assert a.properties["supercell"] == cell.properties["supercell"]


def test_gaussian_rattle_has_the_asked_spread_and_no_net_shift(cell):
    d = rattle(cell, 0.1, 3).cart_coords - cell.cart_coords
    assert np.allclose(d.mean(axis=0), 0.0, atol=1e-12)  # no rigid translation
    # 405 components of N(0, 0.1²): the sample standard deviation is within 10 % of 0.1
    assert d.std() == pytest.approx(0.1, rel=0.1)


def test_uniform_rattle_stays_within_the_amplitude(cell):
    d = np.linalg.norm(rattle(cell, 0.1, 3, "uniform").cart_coords - cell.cart_coords, axis=1)
    # lengths uniform on [0, 0.1] Å, less the mean shift (|mean| ≤ 0.1/√135 ≈ 0.009 Å)
    assert d.max() <= 0.1 + 0.1 / np.sqrt(len(cell))
    assert d.mean() == pytest.approx(0.05, abs=0.01)
    with pytest.raises(ValueError, match="gaussian' or 'uniform'"):
        rattle(cell, 0.1, 0, "normal")


def _displaced(structure, index, dz_a):
    out = structure.copy()
    out.translate_sites([index], [0, 0, dz_a], frac_coords=False, to_unit_cell=False)
    return out


def test_a_lower_structure_found_by_a_rattle_means_not_a_minimum():
    cubic = demo_structure()  # Pm-3m: Cl 1a, O 1b, Na 3c
    # the Na at (1/2, 1/2, 0) moved 0.3 Å along z: the 4-fold axis through it and O and the
    # mirrors containing z survive, the horizontal mirror does not: P4mm (99)
    lower = _displaced(cubic, 4, 0.3)
    check = assess_minimum(cubic, -10.0, [cubic, lower], [-10.005, -10.2])
    assert not check.is_minimum
    assert check.lowest_trial == 1 and check.lowest_energy_ev == -10.2
    assert check.energy_drop_ev == pytest.approx(0.2)
    assert check.energy_drop_ev_per_atom == pytest.approx(0.04)
    # net translation removed: the Na moved 0.3 - 0.3/5 = 0.24 Å, the other four -0.06 Å
    assert check.max_displacement_a == pytest.approx(0.24)
    assert check.most_displaced_atom == 4
    assert check.rms_displacement_a == pytest.approx(np.sqrt((0.24**2 + 4 * 0.06**2) / 5))
    assert (check.space_group_before, check.space_group_number_before) == ("Pm-3m", 221)
    assert (check.space_group_after, check.space_group_number_after) == ("P4mm", 99)
    # point group orders: m-3m 48, 4mm 8 (one primitive cell: no extra translations)
    assert (check.symmetry_operations_before, check.symmetry_operations_after) == (48, 8)
    assert check.symmetry_lowered


def test_drops_within_the_tolerance_mean_a_minimum_and_keep_the_symmetry_at_0p1_a():
    cubic = demo_structure()
    nearby = [rattle(cubic, 0.005, seed) for seed in (0, 1)]  # relaxation noise, 5 mÅ
    check = assess_minimum(cubic, -10.0, nearby, [-9.998, -10.004])
    assert check.is_minimum and check.energy_drop_ev == pytest.approx(0.004)
    assert check.tolerance_ev == 0.01
    assert check.space_group_after == "Pm-3m"  # at symprec 0.1 Å the noise is not a distortion
    assert not check.symmetry_lowered
    assert space_group(nearby[1], symprec_a=1e-3) == ("P1", 1)  # at 1 mÅ every atom counts
    strict = assess_minimum(cubic, -10.0, nearby, [-9.998, -10.004], tolerance_ev=0.001)
    assert not strict.is_minimum


def test_displacements_use_the_minimum_image():
    cubic = demo_structure()
    wrapped = _displaced(cubic, 2, -cubic.lattice.c + 0.1)  # 0.1 Å up, written a cell lower
    d = displacements_a(cubic, wrapped)
    assert np.linalg.norm(d[2]) == pytest.approx(0.1 - 0.1 / 5)


def test_one_energy_per_trial():
    cubic = demo_structure()
    with pytest.raises(ValueError, match="one energy per re-relaxed rattle"):
        assess_minimum(cubic, 0.0, [cubic], [0.0, 1.0])
