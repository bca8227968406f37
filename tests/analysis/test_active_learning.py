"""Committee deviation, trust window and stopping rule, worked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from ctaflow.analysis.active_learning import (
    force_deviation,
    select_in_window,
    stop_reason,
    trust_classes,
)


def test_force_deviation_by_hand():
    # two members that disagree by ±1 eV/Å on atom 0 and agree on atom 1: σ = 1
    a = [[1.0, 0.0, 0.0], [0.5, 0.5, 0.5]]
    b = [[-1.0, 0.0, 0.0], [0.5, 0.5, 0.5]]
    assert force_deviation(np.array([a, b])) == pytest.approx(1.0)
    # three members, one off by 3 eV/Å in z: mean 1, squared spreads 1, 4, 1 -> sqrt(2)
    zero = np.zeros((1, 3))
    off = np.array([[0.0, 0.0, 3.0]])
    assert force_deviation(np.array([zero, off, zero])) == pytest.approx(np.sqrt(2.0))
    # the largest atom counts, not the average
    forces = np.zeros((2, 3, 3))
    forces[0, 2, 1], forces[1, 2, 1] = 0.2, -0.2
    assert force_deviation(forces) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="K >= 2"):
        force_deviation(np.zeros((1, 4, 3)))


def test_only_frames_inside_the_window_are_selected_and_capped():
    deviations = [0.01, 0.05, 0.10, 0.20, 0.25, 0.30, 0.049]
    assert trust_classes(deviations, 0.05, 0.25) == {"accurate": 2, "candidate": 3, "failed": 2}
    assert select_in_window(deviations, 0.05, 0.25, cap=10, seed=0) == [1, 2, 3]
    capped = select_in_window(deviations, 0.05, 0.25, cap=2, seed=3)
    assert len(capped) == 2 and set(capped) <= {1, 2, 3}
    assert capped == select_in_window(deviations, 0.05, 0.25, cap=2, seed=3)  # seeded
    rng = np.random.default_rng(5)
    many = rng.uniform(0.0, 0.5, 400)
    picked = select_in_window(many, 0.1, 0.3, cap=25, seed=1)
    assert len(picked) == 25 and all(0.1 <= many[i] < 0.3 for i in picked)
    with pytest.raises(ValueError, match="lower < upper"):
        select_in_window(deviations, 0.3, 0.1, cap=2, seed=0)


def test_stopping_rule():
    assert stop_reason(0.02, 5, 0.05, 0, 3).startswith("converged: 2.0 %")
    assert stop_reason(0.5, 5, 0.05, 3, 3) == "reached max_iterations = 3"
    assert "nothing to label" in stop_reason(0.5, 0, 0.05, 1, 3)
    assert stop_reason(0.5, 5, 0.05, 1, 3) is None
