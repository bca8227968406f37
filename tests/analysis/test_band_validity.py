"""Which bands give a barrier (issue #22, rule 2), and how many images a path needs. Bands are
built in closed form: one Na moving along x with E(x) known and forces = -dE/dx."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from ctaflow.analysis.neb import (
    assess_band,
    barrier_profile,
    images_for_path,
    separate_maxima,
)

A = 0.3  # eV
D = 2.0  # Å, hop length
FMAX = 0.05


def _profile(energy, slope, xs, y_force_at_top=0.0, engine_converged=True):
    """barrier_profile of one Na at x (Å) in a 10 Å box, E = energy(x), F_x = -slope(x)."""
    lattice = Lattice.cubic(10.0)
    images = [
        Structure(lattice, ["Na", "Cl"], [[x, 0, 0], [5, 5, 5]], coords_are_cartesian=True)
        for x in xs
    ]
    inner = xs[1:-1]
    top = inner[int(np.argmax([energy(x) for x in inner]))]
    forces = [[[-slope(x), y_force_at_top * (x == top), 0.0], [0, 0, 0]] for x in inner]
    return barrier_profile(
        images, [energy(x) for x in xs], forces, FMAX, engine_converged=engine_converged
    )


def _single(x):
    return A * np.sin(np.pi * x / D) ** 2


def _single_slope(x):
    return A * np.pi / D * np.sin(2 * np.pi * x / D)


def _double(x):  # two hops of D/2 one after the other: maxima at D/4, 3D/4, minimum 0 at D/2
    return A * np.sin(2 * np.pi * x / D) ** 2


def _double_slope(x):
    return 2 * A * np.pi / D * np.sin(4 * np.pi * x / D)


X5 = list(np.linspace(0, D, 5))


def test_a_converged_band_between_checked_minima_is_valid():
    v = assess_band(_profile(_single, _single_slope, X5), True, True)
    assert v.status == "valid" and v.reasons == []
    assert v.barrier_ev == v.forward_barrier_ev == pytest.approx(A)
    assert v.backward_barrier_ev == pytest.approx(A)
    assert v.reaction_energy_ev == pytest.approx(0.0)
    assert v.kind == "single" and v.n_maxima == 1 and v.n_maxima_spline == 1
    assert v.intermediate_minimum_ev is None


def test_a_caveat_flags_a_band_that_passed_every_check_and_keeps_its_barrier():
    caveat = "concerted chain 1->2->3 spans 56% of the face width"
    v = assess_band(_profile(_single, _single_slope, X5), True, True, caveats=[caveat])
    assert v.status == "flagged" and v.reasons == [caveat]
    assert v.barrier_ev == pytest.approx(A)
    # a failed check still excludes: the caveat is added to its reasons
    v = assess_band(_profile(_single, _single_slope, X5), None, True, caveats=[caveat])
    assert v.status == "excluded" and v.reasons[-1] == caveat and v.barrier_ev is None


@pytest.mark.parametrize(
    ("start", "end", "says"),
    [
        (None, True, "start point was not checked"),
        (True, False, "end point is not a minimum"),
    ],
)
def test_end_points_that_did_not_pass_the_minimum_check_give_no_barrier(start, end, says):
    v = assess_band(_profile(_single, _single_slope, X5), start, end)
    assert v.status == "excluded" and v.barrier_ev is None and v.forward_barrier_ev is None
    assert len(v.reasons) == 1 and says in v.reasons[0]


def test_an_unconverged_climbing_image_gives_no_barrier():
    p = _profile(_single, _single_slope, X5, y_force_at_top=0.2)
    v = assess_band(p, True, True)
    assert v.status == "excluded" and v.barrier_ev is None
    assert v.reasons == [
        "the climbing image keeps a force of 0.200 eV/Å > fmax 0.05 eV/Å: it is not at the saddle"
    ]
    p = _profile(_single, _single_slope, X5, engine_converged=False)
    assert assess_band(p, True, True).reasons == [
        "the NEB optimiser did not converge within its steps"
    ]


def test_an_image_below_the_end_points_gives_no_barrier():
    def dipped(x):  # a well of 0.05 eV half way between the end points
        return -0.05 * np.sin(np.pi * x / D) ** 2

    def dipped_slope(x):
        return -0.05 * np.pi / D * np.sin(2 * np.pi * x / D)

    v = assess_band(_profile(dipped, dipped_slope, X5), True, True)
    assert v.status == "excluded" and v.barrier_ev is None
    assert any("0.050 eV below the lower end point" in r for r in v.reasons)
    assert any("highest point of the band is the start point" in r for r in v.reasons)


def test_a_band_that_only_goes_down_has_no_barrier_not_a_zero_barrier():
    # main's Na concerted band: stored converged with forward_barrier_ev 0.0
    def down(x):
        return -0.06 * x / D

    def down_slope(x):
        return -0.06 / D  # 0.03 eV/Å < fmax: converged as far as forces go

    p = _profile(down, down_slope, X5)
    assert p.converged and p.ends_are_lowest
    assert p.forward_barrier_ev == 0.0  # max E - E_start with the start highest: main's 0.0
    v = assess_band(p, True, True)
    assert v.status == "excluded" and v.barrier_ev is None
    assert v.reasons == ["the highest point of the band is the start point: no saddle inside"]
    assert v.n_maxima == 0


def test_two_hops_one_after_the_other_are_labelled_sequential():
    xs = list(np.linspace(0, D, 9))  # images at D/8 steps: both maxima and the dip on images
    v = assess_band(_profile(_double, _double_slope, xs), True, True)
    assert v.kind == "sequential" and v.n_maxima == 2 and v.n_maxima_spline == 2
    assert v.intermediate_minimum_ev == pytest.approx(A)  # maxima A, minimum 0 at D/2
    assert v.status == "flagged" and v.barrier_ev == pytest.approx(A)
    (reason,) = v.reasons
    assert reason.startswith("two maxima on the images separated by a minimum 0.300 eV deep")


def test_a_dip_between_two_images_is_seen_on_the_spline():
    # images at D/3 and 2D/3 of the double hump: E = 0.75 A at both, slopes ∓s with
    # |s| = 2Aπ/D·|sin(4π/3)| = 2Aπ/D·√3/2; between them the Hermite cubic with end
    # values y and slopes -s, +s over h = D/3 is y + h s (t² - t), lowest at t = 1/2: y - h s/4
    xs = [0.0, D / 3, 2 * D / 3, D]
    p = _profile(_double, _double_slope, xs)
    v = assess_band(p, True, True)
    assert v.n_maxima == 1  # two equal images, no image between them
    assert v.n_maxima_spline == 2 and v.kind == "sequential"
    s = 2 * A * np.pi / D * np.sqrt(3) / 2
    half_way = p.spline_energy_ev[len(p.spline_energy_ev) // 2]  # sample at r = D/2
    assert p.spline_r_a[len(p.spline_r_a) // 2] == pytest.approx(D / 2)
    assert half_way == pytest.approx(0.75 * A - (D / 3) * s / 4)
    # the images sit on the flanks, so the climbing image is not at a saddle either
    assert v.status == "excluded" and "climbing image keeps a force" in v.reasons[0]
    assert "two maxima on the spline profile" in v.reasons[-1]


def test_shallow_dips_merge_into_one_maximum():
    assert separate_maxima([0, 1.0, 0.5, 1.0, 0], 0.4) == ([1, 3], 0.5)
    assert separate_maxima([0, 1.0, 0.5, 1.0, 0], 0.6) == ([1], None)  # equal: first kept
    assert separate_maxima([0, 0.9, 0.8, 1.0, 0], 0.2) == ([3], None)  # the higher kept
    assert separate_maxima([0, 1, 1, 0], 0.01) == ([1], None)  # a flat top is one maximum
    assert separate_maxima([1, 0.5, 0], 0.01) == ([], None)  # the ends are never maxima


# --------------------------------------------------------------------------- images per path
@pytest.mark.parametrize(
    ("length_a", "expected"),
    [
        (2.765, 5),  # Li hop: 2.765 × 1.5 = 4.15 → 5
        (3.207, 5),  # Na hop: 4.81 → 5
        (2 * 2.765, 9),  # Li straight chain, two ions: 8.30 → 9
        (2 * 3.207, 11),  # Na straight chain: 9.62 → 10 → odd 11
        (1.0, 3),  # 1.5 → 2, below min_images
    ],
)
def test_images_follow_the_path_length_and_are_odd(length_a, expected):
    assert images_for_path(length_a) == expected


def test_images_for_path_exact_products_and_limits():
    assert images_for_path(0.1 * 3, images_per_a=10, min_images=1) == 3  # 3.0000000000000004
    assert images_for_path(2.0, images_per_a=2.0) == 5  # 4 → odd 5
    with pytest.raises(ValueError, match="needs 11 images .* more than max_images=9"):
        images_for_path(6.414, max_images=9)
    with pytest.raises(ValueError, match="must be positive"):
        images_for_path(0.0)
