"""MD segments reach their targets: running means, equilibration time, segment verdicts."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from ctaflow.analysis.md import (
    MDTolerances,
    blocked_stderr,
    check_segment_arrays,
    equilibrated_at,
    running_mean,
    segment_check,
)


def test_running_means_by_hand():
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    times = np.array([0.0, 10.0, 20.0, 30.0, 40.0])
    assert running_mean(values).tolist() == [1.0, 1.5, 2.0, 2.5, 3.0]
    # trailing 20 fs: frames with t_i > t − 20 → (1), (1,2), (2,3), (3,4), (4,5)
    assert running_mean(values, times, 20.0).tolist() == [1.0, 1.5, 2.5, 3.5, 4.5]


def test_equilibrated_at_an_exponential_approach_matches_the_hand_calculation():
    # T(t) = T0 (1 − ½ e^{−t/τ}): the start-up transient of a thermostat after equipartition.
    # Frames every 5 fs; trailing window 100 fs = frames t−95 … t, so the window mean is
    # T0 (1 − ½ e^{−t/τ} S) with S = mean_k e^{5k/τ}, k = 0 … 19. Within 10 %:
    # ½ e^{−t/τ} S ≤ 0.1  ⇔  t ≥ τ ln(5 S).
    tau, t0 = 100.0, 600.0
    times = np.arange(0.0, 1000.0 + 1, 5.0)
    temps = t0 * (1 - 0.5 * np.exp(-times / tau))
    s = np.mean(np.exp(5.0 * np.arange(20) / tau))
    expected = np.ceil(tau * np.log(5 * s) / 5.0) * 5.0
    assert equilibrated_at(times, temps, t0) == expected
    assert 200.0 < expected < 230.0
    # a stricter tolerance takes longer; a run shorter than the window never qualifies
    assert equilibrated_at(times, temps, t0, tolerances=MDTolerances(temperature_rel=0.02)) > 300
    assert equilibrated_at(times[:20], temps[:20], t0) is None


def test_equilibrated_at_needs_the_pressure_too_for_npt():
    times = np.arange(0.0, 500.0 + 1, 5.0)
    temps = np.full_like(times, 600.0)
    pressures = np.where(times < 300.0, 1.4, 0.0)  # volume relaxes at 300 fs
    assert equilibrated_at(times, temps, 600.0) == 100.0  # first full window
    got = equilibrated_at(times, temps, 600.0, pressures_gpa=pressures, target_pressure_gpa=0.0)
    # the 100-fs trailing mean of P falls below 0.5 GPa once < 5/14 of the window is at 1.4 GPa:
    # frames 300 … t are at 0 GPa; window of 20 frames → ≥ 13 at 0 → t ≥ 360 fs
    assert got == 360.0


@pytest.mark.parametrize(
    ("mean_t", "target_t", "status"),
    [
        (373.0, 600.0, "flagged"),  # demo equilibration at 600 K
        (518.0, 600.0, "flagged"),  # demo production at 600 K (−13.7 %)
        (449.0, 500.0, "flagged"),  # −10.2 %
        (455.0, 500.0, "ok"),  # −9 %
        (640.0, 600.0, "ok"),
    ],
)
def test_segment_check_temperature(mean_t, target_t, status):
    check = segment_check(mean_t, target_t)
    assert check.status == status
    assert check.temperature_deviation_rel == pytest.approx((mean_t - target_t) / target_t)
    assert bool(check.reasons) == (status == "flagged")


def test_segment_check_pressure_of_the_demo_npt_segments_is_flagged():
    check = segment_check(590.0, 600.0, 1.35, 1e-4, std_pressure_gpa=0.4)
    assert check.status == "flagged"
    assert len(check.reasons) == 1 and "1.35 GPa" in check.reasons[0]
    assert "std 0.40 GPa" in check.reasons[0]
    assert segment_check(590.0, 600.0, 0.3, 1e-4).status == "ok"
    # NVT: no pressure target, a pressure is not judged
    assert segment_check(590.0, 600.0, 1.35, None).status == "ok"


def test_check_segment_arrays_of_a_ramp_uses_the_mean_target():
    times = np.arange(0.0, 1000.0 + 1, 5.0)
    target = 600.0 - 100.0 * times / times[-1]  # cooling 600 → 500 K
    rng = np.random.default_rng(0)
    temps = target + rng.normal(0.0, 20.0, times.shape)
    check = check_segment_arrays(times, temps, 600.0, 500.0)
    assert check.target_temperature_k == pytest.approx(550.0)
    assert check.final_target_temperature_k == 500.0
    assert check.status == "ok"
    assert check.equilibrated_at_fs == 100.0
    # a drift to 400 K against a constant 600 K target: mean 500 K (−17 %), and no time after
    # which the rest of the run averages within 10 % of 600 K
    drifting = 600.0 - 200.0 * times / times[-1] + rng.normal(0.0, 20.0, times.shape)
    held = check_segment_arrays(times, drifting, 600.0)
    assert held.status == "flagged" and held.equilibrated_at_fs is None
    assert held.final_temperature_k == pytest.approx(410.0, abs=15.0)


def test_blocked_stderr_of_correlated_noise():
    # AR(1) x_t = φ x_{t−1} + ε: the standard error of the mean is σ_x/√n · √((1+φ)/(1−φ))
    rng = np.random.default_rng(1)
    phi, n = 0.9, 2**14
    eps = rng.normal(size=n)
    x = np.empty(n)
    x[0] = eps[0] / np.sqrt(1 - phi**2)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + eps[i]
    exact = np.std(x) / np.sqrt(n) * np.sqrt((1 + phi) / (1 - phi))
    assert blocked_stderr(x) == pytest.approx(exact, rel=0.25)
    white = rng.normal(size=n)
    assert blocked_stderr(white) == pytest.approx(1 / np.sqrt(n), rel=0.25)
    assert blocked_stderr(x) > 3 * np.std(x) / np.sqrt(n)  # naive error is 4.4× too small


def _langevin_from_lattice(n_steps: int, t_init: float, target: float = 600.0):
    """32-atom EMT Cu from the perfect lattice, velocities at t_init, Langevin 10 / ps."""
    from ase import units
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

    atoms = bulk("Cu", cubic=True).repeat(2)
    atoms.calc = EMT()
    rng = np.random.default_rng(0)
    MaxwellBoltzmannDistribution(atoms, temperature_K=t_init, rng=rng, force_temp=True)
    Stationary(atoms)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        dyn = Langevin(
            atoms, units.fs, temperature_K=target, friction=10e-3 / units.fs, rng=rng, fixcm=False
        )
    temps = []
    dyn.attach(lambda: temps.append(atoms.get_temperature()), interval=5)
    dyn.run(n_steps)
    return np.arange(len(temps)) * 5.0, np.array(temps)


def test_a_100_fs_segment_from_the_lattice_misses_its_target_as_in_the_demo():
    # Equipartition: half the kinetic energy given at t = 0 goes into the potential energy of
    # the harmonic-like crystal within a quarter period, and Langevin restores it only over
    # 1/γ = 100 fs. The demo's 100-fs segments averaged this transient.
    times, temps = _langevin_from_lattice(100, 600.0)
    assert temps[0] == pytest.approx(600.0)
    assert temps[4:].min() < 0.7 * 600.0  # fell towards T/2 within 20–100 fs
    short = check_segment_arrays(times, temps, 600.0)
    assert short.status == "flagged" and short.mean_temperature_k < 540.0
    assert short.equilibrated_at_fs is None
    # given 600 fs, the same start settles: the transient ends, the rest averages on target
    times, temps = _langevin_from_lattice(600, 600.0)
    long = check_segment_arrays(times, temps, 600.0)
    assert long.equilibrated_at_fs is not None and long.equilibrated_at_fs <= 400.0
    after = times >= long.equilibrated_at_fs
    assert abs(temps[after].mean() - 600.0) < 0.1 * 600.0


def test_check_md_result_of_a_stored_npt_segment_and_round_trip():
    from pymatgen.core import Lattice, Structure

    from ctaflow.analysis.chunks import chunk_trajectory
    from ctaflow.analysis.md import MDResult, check_md_result

    n = 21  # 100 fs, 5-fs frames, as the demo's NPT segments
    times = np.arange(n) * 5.0
    temps = 600.0 * (1 - 0.5 * np.exp(-times / 100.0))  # the equipartition dip, recovering
    stresses = np.zeros((n, 3, 3))
    stresses[:, [0, 1, 2], [0, 1, 2]] = -1.35  # compressive: P = −tr σ / 3 = +1.35 GPa
    lattice = Lattice.cubic(9.0)
    arrays = {
        "positions_a": np.zeros((n, 1, 3)),
        "cells_a": np.repeat(lattice.matrix[None], n, axis=0),
        "temperatures_k": temps,
        "stresses_gpa": stresses,
        "times_fs": times,
    }
    md = MDResult(
        segment="equilibrate",
        ensemble="npt",
        thermostat="test",
        temperature_start_k=600.0,
        temperature_end_k=600.0,
        pressure_gpa=1e-4,
        timestep_fs=1.0,
        n_steps=100,
        sample_every=5,
        n_frames=n,
        duration_ps=0.1,
        seed=0,
        mean_temperature_k=float(temps.mean()),
        std_temperature_k=float(temps.std()),
        mean_pressure_gpa=1.35,
        mean_volume_a3=729.0,
        final_volume_a3=729.0,
        mean_density_g_per_cm3=1.0,
        final_structure=Structure(lattice, ["Na"], [[0, 0, 0]]),
        trajectory=chunk_trajectory(arrays),
    )
    check = check_md_result(md)
    assert check.status == "flagged" and len(check.reasons) == 2
    assert check.mean_pressure_gpa == pytest.approx(1.35)
    assert check.std_pressure_gpa == pytest.approx(0.0)
    assert check.mean_temperature_k == pytest.approx(temps.mean())
    assert check.equilibrated_at_fs is None  # 100 fs: one window, still in the transient
    stored = md.model_copy(update={"target_check": check})
    again = MDResult.model_validate(stored.model_dump())
    assert again.target_check == check
