"""Relaxation summary: hand-checked numbers."""

from __future__ import annotations

import pytest
from pymatgen.core import Lattice, Structure

from ctaflow.analysis.relax import max_force, summarise_relaxation


def test_max_force_is_the_largest_norm():
    assert max_force([[3.0, 4.0, 0.0], [0.0, 0.0, 1.0]]) == pytest.approx(5.0)
    assert max_force([]) == 0.0


def test_summary_units_convergence_and_carried_site_meaning():
    initial = Structure(
        Lattice.cubic(4.0),
        ["Na", "Cl"],
        [[0, 0, 0], [0.5, 0.5, 0.5]],
        site_properties={"site_class": ["mobile", "framework"]},
        properties={"provenance": {"source": "test"}},
    )
    final = Structure(Lattice.cubic(4.2), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    result = summarise_relaxation(
        initial,
        final,
        -7.0,
        [[0.0, 0.03, 0.04], [0.0, 0.0, 0.0]],
        0.05,
        {"engine": "x"},
        initial_energy_ev=-6.5,
    )
    assert result.energy_per_atom_ev == pytest.approx(-3.5)
    assert result.max_force_ev_per_a == pytest.approx(0.05)
    assert result.converged  # 0.05 <= 0.05
    assert result.volume_a3 == pytest.approx(4.2**3)
    assert result.initial_volume_a3 == pytest.approx(64.0)
    assert result.structure.site_properties["site_class"] == ["mobile", "framework"]
    assert result.structure_provenance == {"source": "test"}
    tighter = summarise_relaxation(initial, final, -7.0, [[0, 0.03, 0.04], [0, 0, 0]], 0.049, {})
    assert not tighter.converged
