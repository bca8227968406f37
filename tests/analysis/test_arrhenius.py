"""Arrhenius fits: exact data, noisy data, calibration of the stated uncertainty, σT variant."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.constants import e, k

from ctaflow.analysis.arrhenius import arrhenius_from_results, fit_arrhenius
from ctaflow.analysis.diffusion import DiffusionResult
from ctaflow.analysis.trajectory import TransportInputError
from ctaflow.analysis.transport import nernst_einstein_conductivity

K_EV = k / e  # 8.617333e-5 eV/K
EA, D0 = 0.25, 1e-3  # eV, cm²/s
TEMPS = np.array([500.0, 600.0, 700.0, 800.0, 900.0, 1000.0])


def arrhenius(t, ea=EA, d0=D0):
    return d0 * np.exp(-ea / (K_EV * np.asarray(t)))


def test_exact_data_recover_ea_prefactor_and_room_temperature_value():
    d = arrhenius(TEMPS)
    fit = fit_arrhenius(TEMPS, d, 0.1 * d)
    assert fit.activation_energy_ev == pytest.approx(EA, rel=1e-10)
    assert fit.prefactor_cm2_per_s == pytest.approx(D0, rel=1e-10)
    # D(300 K) = 1e-3 × exp(-0.25 / (8.617333e-5 × 300)) = 1e-3 × exp(-9.6704) = 6.314e-8 cm²/s
    assert fit.extrapolated_diffusivity_cm2_per_s == pytest.approx(6.314e-8, rel=1e-3)
    assert fit.extrapolated_diffusivity_cm2_per_s == pytest.approx(arrhenius(300.0), rel=1e-10)
    assert fit.chi2_reduced == pytest.approx(0.0, abs=1e-12)
    assert not fit.covariance_scaled_by_chi2
    # equal relative errors r: std(Ea) = r / sqrt(Σ (x - x̄)²) with x = 1/(k_B T)
    x = 1 / (K_EV * TEMPS)
    assert fit.activation_energy_std_ev == pytest.approx(0.1 / np.sqrt(np.sum((x - x.mean()) ** 2)))
    lo, hi = fit.extrapolated_interval_68
    assert lo < fit.extrapolated_diffusivity_cm2_per_s < hi
    assert fit.correlation_ea_ln_prefactor > 0.9  # E_a and ln D0 move together


def test_noisy_data_recover_ea_within_the_stated_uncertainty():
    rng = np.random.default_rng(4)
    d = arrhenius(TEMPS) * np.exp(rng.normal(0, 0.1, TEMPS.size))
    fit = fit_arrhenius(TEMPS, d, 0.1 * d)
    assert abs(fit.activation_energy_ev - EA) < 2 * fit.activation_energy_std_ev
    ln_err = abs(np.log(fit.extrapolated_diffusivity_cm2_per_s / arrhenius(300.0)))
    assert ln_err < 2 * fit.extrapolated_ln_std


def test_stated_uncertainty_is_calibrated():
    # 400 noisy data sets: |Ea_fit - Ea| < 1 std in ~68 % of them (binomial sd 2.3 %)
    rng = np.random.default_rng(0)
    inside = 0
    for _ in range(400):
        d = arrhenius(TEMPS) * np.exp(rng.normal(0, 0.1, TEMPS.size))
        fit = fit_arrhenius(TEMPS, d, 0.1 * d, scale_by_chi2=False)
        inside += abs(fit.activation_energy_ev - EA) < fit.activation_energy_std_ev
    assert 0.60 < inside / 400 < 0.76


def test_matches_pymatgen_fit_arrhenius_reference():
    # materialsvirtuallab/pymatgen-analysis-diffusion tests/pymatgen/analysis/diffusion/
    # test_analyzer.py::FuncTest.test_fit_arrhenius: unweighted ln D vs 1/T gives
    # Ea = 0.5, c = 12, std(Ea) = 0.000895566. Equal relative errors far below the scatter make
    # the weighted fit the unweighted one, and the χ² scaling turns the covariance into the
    # residual-based standard error.
    temps = np.array([300.0, 1000.0, 500.0])
    d = 12 * np.exp(-0.5 / (K_EV * temps)) * np.array([1.00601834013, 1.00803236262, 0.98609720824])
    fit = fit_arrhenius(temps, d, 1e-6 * d)
    assert fit.activation_energy_ev == pytest.approx(0.5, abs=5e-8)
    assert fit.prefactor_cm2_per_s == pytest.approx(12, abs=5e-7)
    assert fit.activation_energy_std_ev == pytest.approx(0.000895566, abs=5e-9)
    assert fit.covariance_scaled_by_chi2


def test_sigma_t_variant_gives_the_same_ea_and_the_nernst_einstein_room_temperature_sigma():
    d = arrhenius(TEMPS)
    sigma = np.array(
        [nernst_einstein_conductivity(di, 20, 1000.0, t) for di, t in zip(d, TEMPS, strict=True)]
    )
    fit = fit_arrhenius(TEMPS, sigma, 0.1 * sigma, quantity="conductivity")
    assert fit.quantity == "conductivity" and fit.prefactor_cm2_per_s is None
    assert fit.activation_energy_ev == pytest.approx(EA, rel=1e-10)
    # σT = (n q² / k_B) D: prefactor = 2e22 cm⁻³ × (1.602e-19 C)² / 1.381e-23 J/K × 1e-3 cm²/s
    assert fit.prefactor_s_k_per_cm == pytest.approx(2e22 * e**2 / k * D0, rel=1e-10)
    assert fit.extrapolated_conductivity_s_per_cm == pytest.approx(
        nernst_einstein_conductivity(arrhenius(300.0), 20, 1000.0, 300.0), rel=1e-10
    )


def test_two_temperatures_fit_exactly_without_chi2():
    fit = fit_arrhenius([500.0, 1000.0], arrhenius([500.0, 1000.0]), [1e-6, 1e-5])
    assert fit.activation_energy_ev == pytest.approx(EA, rel=1e-10)
    assert fit.chi2_reduced is None


def test_bad_input_is_refused():
    with pytest.raises(TransportInputError, match="two different temperatures"):
        fit_arrhenius([600.0, 600.0], [1e-6, 2e-6], [1e-7, 1e-7])
    with pytest.raises(TransportInputError, match="positive"):
        fit_arrhenius([500.0, 600.0], [1e-6, -2e-6], [1e-7, 1e-7])


def _result(species, temperature_k, d):
    return DiffusionResult.model_construct(
        species=species,
        site_class=None,
        temperature_k=temperature_k,
        diffusivity_cm2_per_s=d,
        diffusivity_std_cm2_per_s=0.1 * d,
        conductivity_s_per_cm=nernst_einstein_conductivity(d, 20, 1000.0, temperature_k),
        conductivity_std_s_per_cm=0.1 * nernst_einstein_conductivity(d, 20, 1000.0, temperature_k),
        haven_ratio_assumed=1.0,
    )


def test_fit_from_diffusion_results():
    results = [_result("Na", t, arrhenius(t)) for t in TEMPS]
    fit_d = arrhenius_from_results(results)
    fit_s = arrhenius_from_results(results, quantity="conductivity")
    assert fit_d.species == "Na"
    assert fit_d.activation_energy_ev == pytest.approx(EA, rel=1e-10)
    assert fit_s.activation_energy_ev == pytest.approx(EA, rel=1e-10)
    with pytest.raises(TransportInputError, match="mix"):
        arrhenius_from_results([*results, _result("Li", 700.0, 1e-6)])
