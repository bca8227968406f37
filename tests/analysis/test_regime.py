"""Diffusive-regime verdicts, checked Arrhenius fits and the crystallinity check."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from ctaflow.analysis.arrhenius import K_B_EV_PER_K, checked_arrhenius
from ctaflow.analysis.diffusion import SamplingSettings
from ctaflow.analysis.regime import (
    DEFAULT_MIN_MSD_A2,
    MIN_CRYSTAL_ORDER,
    RegimeSettings,
    crystallinity_check,
    diffusive_regime,
    hop_length,
    reasons_of,
    regime_of,
)
from ctaflow.analysis.trajectory import MDTrajectory
from ctaflow.analysis.transport import analyse_diffusion_with_msd
from ctaflow.structures.demo import demo_structure

FAST = SamplingSettings(n_samples=300, n_burn=300, n_walkers=16)
HOP_A, FRAME_FS, N_FRAMES, N_WALKERS, BOX_A = 3.0, 10.0, 1000, 24, 12.0
MOVES = np.concatenate([np.eye(3), -np.eye(3)]) * HOP_A


def lattice_walk_trajectory(seed: int, hop_probability: float, temperature_k: float):
    """Na walkers hopping by 3 Å on a cubic lattice (probability per 10-fs frame), with 0.1 Å
    vibrations, and 16 vibrating Cl framework atoms. D = Γ a² / 6, Γ = p / Δt."""
    rng = np.random.default_rng(seed)
    sites = rng.integers(0, 4, (N_WALKERS, 3)) * HOP_A
    hops = rng.random((N_FRAMES - 1, N_WALKERS)) < hop_probability
    steps = MOVES[rng.integers(0, 6, (N_FRAMES - 1, N_WALKERS))] * hops[..., None]
    walkers = sites + np.concatenate([np.zeros((1, N_WALKERS, 3)), np.cumsum(steps, axis=0)])
    framework = np.broadcast_to(rng.uniform(0, BOX_A, (16, 3)), (N_FRAMES, 16, 3))
    positions = np.concatenate([walkers, framework], axis=1)
    positions = positions + rng.normal(0.0, 0.1, positions.shape)
    species = ("Na",) * N_WALKERS + ("Cl",) * 16
    return MDTrajectory(
        positions,
        np.eye(3) * BOX_A,
        species,
        FRAME_FS,
        temperature_k=temperature_k,
        positions_are_unwrapped=True,
    )


def vibrating_crystal_trajectory(seed: int = 0, sigma_a: float = 0.25, tau_fs: float = 50.0):
    """Every ion vibrates about its own site (Ornstein–Uhlenbeck, std ``sigma_a`` per axis,
    correlation time ``tau_fs``): a vacancy-free crystal at low T. MSD plateau 6 σ² = 0.375 Å²,
    the size the demo showed (0.36 Å² at 500 K)."""
    rng = np.random.default_rng(seed)
    n = N_WALKERS + 16
    phi = np.exp(-FRAME_FS / tau_fs)
    u = np.empty((N_FRAMES, n, 3))
    u[0] = rng.normal(0.0, sigma_a, (n, 3))
    noise = rng.normal(0.0, sigma_a * np.sqrt(1 - phi**2), (N_FRAMES, n, 3))
    for i in range(1, N_FRAMES):
        u[i] = phi * u[i - 1] + noise[i]
    sites = rng.uniform(0, BOX_A, (n, 3))
    species = ("Na",) * N_WALKERS + ("Cl",) * 16
    return MDTrajectory(
        sites + u,
        np.eye(3) * BOX_A,
        species,
        FRAME_FS,
        temperature_k=400.0,
        positions_are_unwrapped=True,
    )


def d_true_cm2_per_s(hop_probability: float) -> float:
    rate_per_fs = hop_probability / FRAME_FS
    return rate_per_fs * HOP_A**2 / 6 * 0.1  # Å²/fs → cm²/s


@pytest.fixture(scope="module")
def walk_700():
    return analyse_diffusion_with_msd(lattice_walk_trajectory(1, 0.01, 700.0), "Na", sampling=FAST)


@pytest.fixture(scope="module")
def crystal_400():
    return analyse_diffusion_with_msd(vibrating_crystal_trajectory(), "Na", sampling=FAST)


# --- one MSD curve ----------------------------------------------------------------------------


def test_verdicts_on_hand_made_curves():
    t = np.linspace(0.01, 10.0, 100)
    diffusive = diffusive_regime(t, 2.0 * t, 1.0, 10.0, hop_length_a=3.0)
    assert diffusive.status == "ok" and diffusive.reasons == []
    assert diffusive.loglog_slope == pytest.approx(1.0)
    assert diffusive.msd_end_a2 == pytest.approx(20.0)
    assert diffusive.min_msd_a2 == pytest.approx(9.0)
    assert diffusive.hops_per_ion == pytest.approx(20.0 / 9.0)
    # the same line stopped at MSD = 8 Å² (< a² = 9 Å²): too short a distance
    short = diffusive_regime(t, 0.8 * t, 1.0, 10.0, hop_length_a=3.0)
    assert short.status == "flagged" and len(short.reasons) == 1
    assert "8.00 Å² < 9.00 Å²" in short.reasons[0]
    # a plateau is caged; t² is ballistic (both far enough)
    caged = diffusive_regime(t, 20.0 + 0 * t, 1.0, 10.0, hop_length_a=3.0)
    assert caged.status == "flagged" and "caged" in caged.reasons[0]
    ballistic = diffusive_regime(t, 5.0 * t**2, 1.0, 10.0, hop_length_a=3.0)
    assert ballistic.loglog_slope == pytest.approx(2.0) and "ballistic" in ballistic.reasons[0]
    # without a hop length the floor applies; an explicit target wins over both
    assert diffusive_regime(t, 0.5 * t, 1.0, 10.0).min_msd_a2 == DEFAULT_MIN_MSD_A2
    explicit = RegimeSettings(min_msd_a2=30.0)
    assert diffusive_regime(t, 2.0 * t, 1.0, 10.0, hop_length_a=3.0, settings=explicit).status == (
        "flagged"
    )


def test_hop_length_of_the_antiperovskite_is_the_na_na_distance():
    structure = demo_structure()
    assert hop_length(structure, "Na") == pytest.approx(structure.lattice.a / np.sqrt(2))
    structure.make_supercell(2)
    assert hop_length(structure, "Na") == pytest.approx(structure.lattice.a / 2 / np.sqrt(2))


# --- through ctaflow's transport analysis ----------------------------------------------------


def test_random_walk_passes_and_gives_its_diffusivity(walk_700):
    result, curve = walk_700
    check = regime_of(result, curve, hop_length_a=HOP_A)
    assert check.status == "ok", check.reasons
    assert check.hops_per_ion > 5  # p = 0.01 per frame over 1000 frames: ~10 hops per walker
    d_true = d_true_cm2_per_s(0.01)  # 1e-3 / fs × 9 Å² / 6 = 1.5e-3 Å²/fs = 1.5e-4 cm²/s
    assert d_true == pytest.approx(1.5e-4)
    assert abs(result.diffusivity_cm2_per_s - d_true) < 3 * result.diffusivity_std_cm2_per_s


def test_vibrating_crystal_is_refused_with_its_reasons(crystal_400):
    result, curve = crystal_400
    check = regime_of(result, curve, hop_length_a=HOP_A)
    assert check.status == "flagged"
    assert check.msd_end_a2 == pytest.approx(6 * 0.25**2, rel=0.2)  # the vibrational plateau
    assert check.loglog_slope < 0.3
    assert len(check.reasons) == 2
    assert "have not left their sites" in check.reasons[0] and "caged" in check.reasons[1]
    assert result.diffusivity_cm2_per_s > 0  # the fit still returns a number: that is the point


def test_arrhenius_keeps_the_refused_point_out_with_its_reason(walk_700, crystal_400):
    results, reasons = [], []
    for result, curve in (crystal_400, walk_700):
        results.append(result)
        reasons.append(regime_of(result, curve, hop_length_a=HOP_A).reasons)
    one = checked_arrhenius(results, reasons)
    assert one.status == "not fitted" and one.fit is None and one.extrapolation is None
    assert one.used_temperatures_k == [700.0]
    assert [p.temperature_k for p in one.excluded] == [400.0]
    assert "have not left their sites" in one.excluded[0].reasons[0]
    assert "1 temperature(s) passed the checks, 3 needed" in one.reasons[0]


# --- Arrhenius selection by hand ------------------------------------------------------------


def point(t, d, rel=0.1, species="Na"):
    return SimpleNamespace(
        species=species,
        site_class=None,
        temperature_k=t,
        diffusivity_cm2_per_s=d,
        diffusivity_std_cm2_per_s=rel * d,
        conductivity_s_per_cm=1e3 * d,
        conductivity_std_s_per_cm=1e2 * d,
        haven_ratio_assumed=1.0,
    )


def arrhenius_d(t, ea=0.3, d0=1e-3):
    return d0 * np.exp(-ea / (K_B_EV_PER_K * t))


def test_checked_fit_recovers_the_activation_energy_from_passing_points_only():
    temps = [500.0, 600.0, 700.0, 800.0]
    points = [point(t, arrhenius_d(t)) for t in temps]
    points.append(point(400.0, 1e-2))  # a wild point, refused by its checks
    reasons = [[], [], [], [], ["MSD 0.36 Å² < 9 Å²"]]
    fit = checked_arrhenius(points, reasons)
    assert fit.status == "fitted" and fit.reasons == []
    assert fit.fit.activation_energy_ev == pytest.approx(0.3, rel=1e-9)
    assert fit.used_temperatures_k == temps
    assert fit.excluded[0].temperature_k == 400.0
    ext = fit.extrapolation
    assert ext.value == pytest.approx(arrhenius_d(300.0), rel=1e-9)
    assert ext.temperature_k == 300.0 and ext.fitted_range_k == (500.0, 800.0)
    assert "extrapolated" in ext.label and "outside the fitted range" in ext.label
    assert ext.interval_68[0] < ext.value < ext.interval_68[1]
    # the extrapolation 200 K below the data is less certain than the data (10 %)
    assert ext.ln_std > 0.1


def test_two_temperatures_need_an_explicit_minimum_and_are_labelled():
    points = [point(t, arrhenius_d(t)) for t in (500.0, 700.0)]
    assert checked_arrhenius(points, [[], []]).status == "not fitted"
    two = checked_arrhenius(points, [[], []], min_temperatures=2)
    assert two.status == "fitted" and "two-point fit" in two.reasons[0]
    assert two.fit.activation_energy_ev == pytest.approx(0.3, rel=1e-9)
    # a conductivity fit extrapolates σ in S/cm
    sigma = checked_arrhenius(points, [[], []], quantity="conductivity", min_temperatures=2)
    assert sigma.extrapolation.unit == "S/cm"


def test_an_activation_energy_within_its_error_of_zero_is_not_a_result():
    # D flat over 900-1100 K within its 30 % error bars (the demo's MACE: 9.7e-6, 1.31e-5 and
    # 8.9e-6 cm2/s): the fit gives E_a < its standard deviation, here negative
    temps, ds = (900.0, 1000.0, 1100.0), (9.7e-6, 1.31e-5, 8.9e-6)
    flat = checked_arrhenius(
        [point(t, d, rel=0.3) for t, d in zip(temps, ds, strict=True)], [[]] * 3
    )
    assert flat.status == "fitted"
    assert flat.fit.activation_energy_ev < flat.fit.activation_energy_std_ev
    assert flat.fit.activation_energy_ev < 0
    (why,) = flat.reasons
    assert "not resolved" in why and "negative" in why and "900–1100 K" in why
    # the same temperatures with 0.3 eV and 10 % error bars: resolved, no caveat
    clear = checked_arrhenius([point(t, arrhenius_d(t)) for t in temps], [[], [], []])
    assert clear.reasons == [] and clear.fit.activation_energy_ev == pytest.approx(0.3)
    # D falling with T (E_a = -0.3 eV, 10 % error bars): negative beyond its error, said so
    falling = checked_arrhenius([point(t, arrhenius_d(t, ea=-0.3)) for t in temps], [[]] * 3)
    assert falling.fit.activation_energy_ev == pytest.approx(-0.3)
    (why,) = falling.reasons
    assert "is negative: D falls as T rises" in why and "not resolved" not in why


def test_non_positive_diffusivity_is_excluded_with_a_reason():
    points = [point(t, arrhenius_d(t)) for t in (500.0, 600.0, 700.0)]
    points[0].diffusivity_cm2_per_s = -1e-9
    out = checked_arrhenius(points, [[], [], []])
    assert out.status == "not fitted"
    assert "not positive and finite" in out.excluded[0].reasons[0]


# --- crystallinity ---------------------------------------------------------------------------


def _displaced(structure, rng, u2_a2):
    from pymatgen.core import Structure

    disp = rng.normal(0.0, np.sqrt(u2_a2 / 3), (len(structure), 3))
    return Structure(
        structure.lattice,
        structure.species,
        structure.cart_coords + disp,
        coords_are_cartesian=True,
        site_properties=structure.site_properties,
    )


def test_crystallinity_threshold_separates_a_hot_crystal_from_a_disordered_cell():
    """The numbers behind MIN_CRYSTAL_ORDER (100 seeded frames per case)."""
    from pymatgen.core import Structure

    crystal = demo_structure()
    crystal.make_supercell(2)
    rng = np.random.default_rng(0)

    def orders(make):
        return np.array([crystal_check(make()).long_range_order for _ in range(100)])

    def crystal_check(frame):
        return crystallinity_check(crystal, frame)

    hot = orders(lambda: _displaced(crystal, rng, 0.2))
    melting = orders(lambda: _displaced(crystal, rng, 0.3))
    liquid = orders(lambda: _displaced(crystal, rng, 1.0))
    random = orders(
        lambda: Structure(crystal.lattice, crystal.species, rng.uniform(0, 1, (len(crystal), 3)))
    )
    assert np.all(hot >= MIN_CRYSTAL_ORDER)
    assert 0.45 < melting.mean() < 0.58
    assert np.mean(liquid < MIN_CRYSTAL_ORDER) > 0.95
    assert np.all(random < MIN_CRYSTAL_ORDER) and random.mean() < 0.1
    assert crystallinity_check(crystal, crystal).long_range_order == pytest.approx(1.0)


def test_crystallinity_check_reports_the_framework_and_its_reason():
    crystal = demo_structure()
    crystal.make_supercell(2)
    rng = np.random.default_rng(1)
    ok = crystallinity_check(crystal, [_displaced(crystal, rng, 0.1) for _ in range(3)])
    assert ok.status == "ok" and ok.species == ["Cl", "O"] and ok.n_frames == 3
    frac = crystal.frac_coords.copy()
    frac[[i for i, s in enumerate(crystal) if s.specie.symbol != "Na"]] = rng.uniform(0, 1, (16, 3))
    molten = crystal.copy()
    for i, f in enumerate(frac):
        molten.replace(i, crystal[i].species, f)
    bad = crystallinity_check(crystal, molten)
    assert bad.status == "flagged" and "melted or disordered" in bad.reason


def test_reasons_of_collects_flagged_checks_by_name():
    from ctaflow.analysis.md import segment_check

    t = np.linspace(0.01, 10.0, 100)
    md_ok, md_bad = segment_check(590.0, 600.0), segment_check(518.0, 600.0)
    regime = diffusive_regime(t, 0.1 * t, 1.0, 10.0, hop_length_a=3.0)
    crystal = demo_structure()
    order = crystallinity_check(crystal, crystal)
    assert reasons_of(md=md_ok, regime=None, crystal=order) == []
    got = reasons_of(md=md_bad, regime=regime, crystal=order)
    assert len(got) == 2
    assert got[0].startswith("md: mean temperature 518 K")
    assert got[1].startswith("regime: MSD at the end")
