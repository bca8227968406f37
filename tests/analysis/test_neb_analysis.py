"""Barrier analysis checked against a band whose energy and forces are known in closed form."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from ctaflow.analysis.neb import barrier_profile, improved_tangents

L = 10.0  # Å, box edge; one atom hops by d along x
A = 0.3  # eV, barrier height of E(x) = A sin²(πx/d)
D = 2.0  # Å, hop length


def _band(xs, y_force_at_top=0.0):
    lattice = Lattice.cubic(L)
    images = [
        Structure(lattice, ["Na", "Cl"], [[x, 0, 0], [5.0, 5.0, 5.0]], coords_are_cartesian=True)
        for x in xs
    ]
    energies = [A * np.sin(np.pi * x / D) ** 2 for x in xs]
    forces = []
    for x in xs[1:-1]:
        fx = -A * np.pi / D * np.sin(2 * np.pi * x / D)  # -dE/dx
        fy = y_force_at_top if np.isclose(x, D / 2) else 0.0
        forces.append([[fx, fy, 0.0], [0.0, 0.0, 0.0]])
    return images, energies, forces


def test_symmetric_band_worked_by_hand():
    xs = [0.0, 0.5, 1.0, 1.5, 2.0]
    images, energies, forces = _band(xs)
    p = barrier_profile(images, energies, forces, fmax_ev_per_a=0.05)
    assert p.forward_barrier_ev == pytest.approx(A)
    assert p.backward_barrier_ev == pytest.approx(A)
    assert p.reaction_energy_ev == pytest.approx(0.0)
    assert p.reaction_coordinate_a == pytest.approx(xs)  # one atom moves: r = x
    # tangent force = -dE/dx: -A π/D sin(2πx/D) = ∓0.4712 eV/Å at x = 0.5, 1.5, 0 on top
    assert p.tangent_forces_ev_per_a == pytest.approx([0, -A * np.pi / D, 0, A * np.pi / D, 0])
    assert p.highest_image == 2
    assert p.max_force_highest_image_ev_per_a == pytest.approx(0.0, abs=1e-12)
    assert p.converged and p.ends_are_lowest and p.image_below_ends_ev == 0.0
    # the Hermite spline with exact slopes reproduces the sine closely between the images
    x = np.asarray(p.spline_r_a)
    assert np.max(np.abs(np.asarray(p.spline_energy_ev) - A * np.sin(np.pi * x / D) ** 2)) < 0.01
    assert p.spline_forward_barrier_ev == pytest.approx(A, abs=1e-9)


def test_perpendicular_force_on_the_climbing_image_means_not_converged():
    images, energies, forces = _band([0.0, 0.5, 1.0, 1.5, 2.0], y_force_at_top=0.2)
    p = barrier_profile(images, energies, forces, fmax_ev_per_a=0.05)
    assert p.max_force_highest_image_ev_per_a == pytest.approx(0.2)
    assert not p.converged
    p = barrier_profile(images, energies, forces, fmax_ev_per_a=0.05, engine_converged=False)
    assert not p.engine_converged and not p.converged


def test_force_along_the_path_on_the_climbing_image_is_inverted():
    # the top image sits off the maximum at x = 0.8: the true force pushes it back up hill
    xs = [0.0, 0.4, 0.8, 1.6, 2.0]
    images, energies, forces = _band(xs)
    p = barrier_profile(images, energies, forces, fmax_ev_per_a=0.05)
    fx = -A * np.pi / D * np.sin(2 * np.pi * 0.8 / D)
    assert p.highest_image == 2
    assert p.max_force_highest_image_ev_per_a == pytest.approx(abs(fx))  # |F - 2(F·τ)τ| = |F|
    assert not p.converged
    assert p.forward_barrier_ev < A < p.spline_forward_barrier_ev + 0.02


def test_improved_tangent_at_a_maximum_leans_towards_the_higher_neighbour():
    d = [np.array([[1.0, 0.0, 0.0]]), np.array([[0.0, 1.0, 0.0]])]  # τ− along x, τ+ along y
    (t,) = improved_tangents(d, np.array([0.0, 1.0, 0.5]))
    # E_next (0.5) > E_prev (0): τ = τ+ ΔVmax + τ− ΔVmin = 1·(0,1) + 0.5·(1,0), normalised
    assert t[0] == pytest.approx([0.5 / np.sqrt(1.25), 1 / np.sqrt(1.25), 0.0])


def test_band_with_mismatched_lengths_is_refused():
    images, energies, forces = _band([0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="forces for the intermediate images"):
        barrier_profile(images, energies, forces + forces, fmax_ev_per_a=0.05)


def test_an_image_below_the_end_points_is_flagged():
    images, energies, forces = _band([0.0, 0.5, 1.0, 1.5, 2.0])
    energies[1] = -0.05  # the band found a lower state than the relaxed start
    p = barrier_profile(images, energies, forces, fmax_ev_per_a=0.05)
    assert p.image_below_ends_ev == pytest.approx(0.05)
    assert not p.ends_are_lowest
