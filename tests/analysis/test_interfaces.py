"""Interfacial energy: the formula on numbers worked out by hand."""

from __future__ import annotations

import pytest

from ctaflow.analysis.interfaces import (
    EV_PER_A2_IN_J_PER_M2,
    interface_verdict,
    interfacial_energy,
    interfacial_energy_from_references,
    reference_uncertainty,
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


def test_reference_uncertainty_by_hand():
    # 40 electrolyte atoms whose bulk moved by 2 meV/atom under the anneal: 0.08 eV over two
    # interfaces of 82 Å² -> 0.08 / 164 eV/Å² = 7.815e-3 J/m²
    u = reference_uncertainty(-3.736, -3.738, 40, 82.0, 2)
    assert u == pytest.approx(0.08 / 164.0 * 16.02176634, rel=1e-9)
    assert reference_uncertainty(-3.738, -3.736, 40, 82.0, 2) == pytest.approx(u)  # |Δ|
    assert reference_uncertainty(-3.736, None, 40, 82.0) is None  # no annealed reference


def test_interface_verdict_flags_what_a_referee_would():
    assert interface_verdict(0.23, 0.001) == ("valid", [])
    assert interface_verdict(0.23, None) == ("valid", [])
    # the reference moved by more than a quarter of γ: the glass, not the interface, sets γ
    status, reasons = interface_verdict(0.007, 0.0078)
    assert status == "flagged" and "±0.0078 J/m²" in reasons[0] and "25%" in reasons[0]
    assert interface_verdict(0.04, 0.0099)[0] == "valid"  # just under 25 %
    assert interface_verdict(0.04, 0.0101)[0] == "flagged"
    # below the separated references
    status, reasons = interface_verdict(-0.0006, 0.0)
    assert status == "flagged" and "< 0" in reasons[0]
    # an unconverged relaxation is a reason of its own
    status, reasons = interface_verdict(0.3, 0.0, ["interface relaxation not converged"])
    assert status == "flagged" and reasons == ["interface relaxation not converged"]
