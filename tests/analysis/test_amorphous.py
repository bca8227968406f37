"""Melt–quench checks and ΔE statistics against hand calculations and constructed structures."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from ctaflow.analysis.amorphous import (
    accumulated_msd,
    bragg_order,
    checks_from_runs,
    delta_e_stats,
    formation_energy_per_atom,
    ground_state_warning,
    network_species,
    radial_distribution,
    sample_status,
    structure_factor,
)


def rocksalt(n: int = 3) -> Structure:
    cell = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    return cell * (n, n, n)


def scrambled(structure: Structure, seed: int = 0) -> Structure:
    """The same atoms at uniformly random fractional positions (no long-range order)."""
    rng = np.random.default_rng(seed)
    return Structure(structure.lattice, structure.species, rng.random((len(structure), 3)))


def test_structure_factor_of_a_perfect_lattice_is_n_at_bragg_and_zero_between():
    frac = np.array([[i / 4, j / 4, k / 4] for i in range(4) for j in range(4) for k in range(4)])
    s = structure_factor(frac, np.array([[4, 0, 0], [1, 0, 0], [4, 4, 0]]))
    assert s == pytest.approx([64.0, 0.0, 64.0], abs=1e-9)


def test_bragg_order_is_one_for_the_crystal_and_small_without_order():
    crystal = rocksalt()
    assert bragg_order(crystal, crystal, ["Cl"]) == pytest.approx(1.0)
    rng = np.random.default_rng(1)
    shaken = crystal.copy()
    for i in range(len(shaken)):  # thermal-like noise keeps the order (Debye-Waller < 1)
        shaken.translate_sites([i], rng.normal(0, 0.1, 3), frac_coords=False)
    assert 0.8 < bragg_order(crystal, shaken, ["Cl"]) < 1.0
    glass = scrambled(crystal)
    # 108 Cl at random: S(h) ≈ 1 against 108 at the crystal's reflections
    assert bragg_order(crystal, glass, ["Cl"]) < 0.05


def test_bragg_order_ignores_a_uniform_strain_of_the_cell():
    crystal = rocksalt(2)
    strained = crystal.copy()
    strained.apply_strain([0.03, -0.02, 0.05])
    assert bragg_order(crystal, strained, ["Na", "Cl"]) == pytest.approx(1.0)


def test_bragg_order_needs_the_same_atoms():
    with pytest.raises(ValueError, match="different numbers"):
        bragg_order(rocksalt(2), rocksalt(1), ["Cl"])


def test_accumulated_msd_sums_segment_displacements_by_hand():
    # atom 0 moves +1 Å in x in segment 1, then +2 Å in y in segment 2 (jump between ignored)
    seg1 = np.zeros((3, 2, 3))
    seg1[-1, 0] = [1.0, 0, 0]
    seg2 = np.full((2, 2, 3), 50.0)  # wrapped start: only last − first counts
    seg2[-1, 0] += [0, 2.0, 0]
    # atom 0: |(1, 2, 0)|² = 5; atom 1 did not move -> MSD over both = 2.5; over atom 0 alone 5
    assert accumulated_msd([seg1, seg2], [0, 1]) == pytest.approx(2.5)
    assert accumulated_msd([seg1, seg2], [0]) == pytest.approx(5.0)


def test_delta_e_stats_match_a_hand_calculation():
    # crystal −4.000 eV/atom; samples −3.990, −3.980, −3.970 -> ΔE 10, 20, 30 meV/atom
    stats = delta_e_stats(-4.0, [-3.99, -3.98, -3.97])
    assert stats.n_samples == 3
    assert stats.mean_mev_per_atom == pytest.approx(20.0)
    assert stats.stderr_mev_per_atom == pytest.approx(10.0 / np.sqrt(3))  # std(ddof=1) = 10
    assert stats.min_mev_per_atom == pytest.approx(10.0)
    assert stats.n_below_crystal == 0
    assert ground_state_warning(stats, "CHGNet") is None
    assert delta_e_stats(-4.0, []).mean_mev_per_atom is None


def test_a_crystal_above_its_glasses_is_called_out_not_reported_as_a_finding():
    stats = delta_e_stats(-4.0, [-4.01, -4.02, -3.99])
    assert stats.mean_mev_per_atom == pytest.approx(-20.0 / 3)  # (−10 − 20 + 10) / 3
    warning = ground_state_warning(stats, "mace:demo")
    assert "not a good ground state" in warning and "mace:demo" in warning
    mild = ground_state_warning(delta_e_stats(-4.0, [-4.001, -3.95, -3.96]), "CHGNet")
    assert mild.startswith("1 of 3 amorphous samples lie below")


def test_formation_energy_by_hand():
    # Na2O: E = −13 eV for 3 atoms; μ_Na = −1.3, μ_O = −4.9 -> (−13 + 2.6 + 4.9) / 3 = −1.8333
    mu = {"Na": -1.3, "O": -4.9}
    assert formation_energy_per_atom(-13.0, "Na2O", mu) == pytest.approx(-5.5 / 3)
    with pytest.raises(ValueError, match=r"\['Cl'\]"):
        formation_energy_per_atom(-1.0, "NaCl", mu)


def test_network_species_defaults_to_framework_sites():
    s = rocksalt(1)
    assert network_species(s) == ["Na"] or network_species(s) == ["Cl"]  # 1:1, either
    s.add_site_property(
        "site_class", ["mobile" if sp.symbol == "Na" else "framework" for sp in s.species]
    )
    assert network_species(s) == ["Cl"]
    assert network_species(s, ["Na"]) == ["Na"]
    with pytest.raises(ValueError, match=r"\['Si'\] are not in NaCl"):
        network_species(s, ["Si"])


def test_checks_flag_a_quench_that_never_melted_and_pass_a_disordered_one():
    crystal = rocksalt(2)
    still = np.repeat(crystal.cart_coords[None], 5, axis=0)
    cold = checks_from_runs(crystal, crystal, [still, still], 300.0, 300.0, ["Cl"], 2.0, 0.25)
    assert cold.melted is False and cold.amorphous is False and cold.stable is True
    assert sample_status(cold)[0] == "not melted"

    rng = np.random.default_rng(3)
    walked = still.copy()
    walked[-1] += rng.normal(0, 2.0, walked[-1].shape)  # MSD ≈ 3 · 4 = 12 Å²
    hot = checks_from_runs(crystal, crystal, [walked], 3000.0, 3000.0, ["Cl"], 2.0, 0.25)
    assert hot.melt_msd_a2 > 6.0 and hot.melted is True
    assert sample_status(hot)[0] == "not amorphous"  # melted, but the relaxed cell is the crystal


def test_overlapping_atoms_make_a_sample_unstable():
    crystal = rocksalt(1)
    bad = crystal.copy()
    bad.translate_sites([0], bad[1].coords - bad[0].coords + [0.3, 0, 0], frac_coords=False)
    still = np.repeat(crystal.cart_coords[None], 2, axis=0)
    checks = checks_from_runs(crystal, bad, [still], 3000.0, 3000.0, ["Cl"], 2.0, 0.25)
    assert checks.stable is False and checks.closest_pair_a < 0.5
    assert sample_status(checks)[0] == "unstable"


def test_rdf_of_rocksalt_integrates_to_six_nearest_neighbours_at_half_the_lattice_constant():
    structure = rocksalt(2)
    rdf = radial_distribution(structure, r_max_a=5.0, dr_a=0.1)
    r, g = np.array(rdf.r_a), np.array(rdf.g)
    assert r[np.nonzero(g)[0][0]] == pytest.approx(2.82, abs=0.06)  # first shell: a / 2
    density = len(structure) / structure.volume
    shell = 4 * np.pi * r**2 * 0.1
    assert np.sum((density * g * shell)[r < 3.3]) == pytest.approx(6.0, rel=0.02)
