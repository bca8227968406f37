"""Interfacial energy: the formula on numbers worked out by hand."""

from __future__ import annotations

import pytest

from ctaflow.analysis.interfaces import (
    EV_PER_A2_IN_J_PER_M2,
    interfacial_energy,
    interfacial_energy_from_references,
)


def test_unit_conversion_is_ev_per_a2_to_j_per_m2():
    # 1 eV = 1.602176634e-19 J, 1 Å² = 1e-20 m²
    assert pytest.approx(1.602176634e-19 / 1e-20) == EV_PER_A2_IN_J_PER_M2


def test_gamma_matches_a_hand_calculation():
    # 50 electrolyte atoms at -3.8 eV/atom = -190.0 eV; 32 metal atoms at -1.85 eV/atom = -59.2 eV
    # bulk sum -249.2 eV; interface cell -248.0 eV -> excess +1.2 eV
    # periodic stack: two interfaces of 100 Å² -> 1.2 / 200 = 0.006 eV/Å² = 0.0961306 J/m²
    gamma = interfacial_energy_from_references(-248.0, 50, -3.8, 32, -1.85, 100.0, 2)
    assert gamma == pytest.approx(0.006 * 16.02176634, rel=1e-12)
    assert gamma == pytest.approx(0.09613059804, rel=1e-9)
    # one interface (cell with vacuum): twice as much per area
    assert interfacial_energy(-248.0, [-190.0, -59.2], 100.0, 1) == pytest.approx(0.19226119608)


def test_gamma_sign_and_bad_input():
    # an interface cell below its bulk references binds: negative γ
    assert interfacial_energy(-250.0, [-190.0, -59.2], 100.0) < 0
    with pytest.raises(ValueError, match="area"):
        interfacial_energy(-1.0, [-1.0], 0.0)
    with pytest.raises(ValueError, match="n_interfaces"):
        interfacial_energy(-1.0, [-1.0], 1.0, 3)
