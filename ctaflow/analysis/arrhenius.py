"""Arrhenius fits of D(T) or σ(T) with uncertainties, and extrapolation (e.g. to 300 K).

Weighted least squares on ln y = ln A − E_a / (k_B T), with y = D (cm²/s) or y = σT (S K/cm), and
weights 1/var(ln y) = (y / std_y)². The parameter covariance is exact for this linear model; by
default it is inflated by the reduced χ² when the points scatter more than their error bars say
(Birge ratio), never deflated. Extrapolated values carry the full covariance (E_a and ln A are
strongly correlated); their uncertainty is symmetric in ln y, so the interval is asymmetric in y.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field
from scipy.constants import e as ELEMENTARY_CHARGE_C
from scipy.constants import k as BOLTZMANN_J_PER_K

from ctaflow.analysis.trajectory import TransportInputError
from ctaflow.analysis.transport import DiffusionResult

K_B_EV_PER_K = BOLTZMANN_J_PER_K / ELEMENTARY_CHARGE_C


class ArrheniusResult(BaseModel):
    """E_a, prefactor and an extrapolated value of an Arrhenius fit. Energies in eV, T in K.

    ``quantity="diffusivity"``: y = D in cm²/s, prefactor in cm²/s, extrapolated D in cm²/s.
    ``quantity="conductivity"``: y = σT in S K/cm, prefactor in S K/cm, extrapolated σ in S/cm.
    """

    quantity: Literal["diffusivity", "conductivity"]
    species: str | None = None
    site_class: str | None = None
    temperatures_k: list[float]
    values: list[float] = Field(description="D in cm²/s or σ in S/cm, as given.")
    values_std: list[float]
    activation_energy_ev: float
    activation_energy_std_ev: float
    prefactor_cm2_per_s: float | None = Field(None, description="D0 (quantity=diffusivity).")
    prefactor_s_k_per_cm: float | None = Field(None, description="A of σT (quantity=conductivity).")
    ln_prefactor_std: float = Field(description="Std of ln(prefactor).")
    correlation_ea_ln_prefactor: float
    extrapolation_temperature_k: float
    extrapolated_diffusivity_cm2_per_s: float | None = None
    extrapolated_conductivity_s_per_cm: float | None = None
    extrapolated_ln_std: float = Field(
        description="Std of the natural log of the extrapolated value."
    )
    extrapolated_interval_68: tuple[float, float] = Field(
        description="exp(ln y ± 1 std): the 68 % interval of the extrapolated value (same unit)."
    )
    extrapolated_std: float = Field(
        description="First-order std of the extrapolated value (same unit)."
    )
    chi2_reduced: float | None = Field(None, description="None with two temperatures.")
    covariance_scaled_by_chi2: bool
    method: str = (
        "weighted least squares of ln y against 1/T, weights (y/std)^2, analytic covariance"
    )


def _fit(
    temperatures_k: Sequence[float],
    y: np.ndarray,
    y_std: np.ndarray,
    scale_by_chi2: bool,
) -> tuple[np.ndarray, np.ndarray, float | None, bool]:
    """Return (beta=[ln A, E_a], cov, chi2_red, scaled) for ln y = ln A − E_a/(k_B T)."""
    t = np.asarray(temperatures_k, dtype=float)
    if t.shape != y.shape or y.shape != y_std.shape or t.ndim != 1:
        raise TransportInputError("temperatures, values and their std must be 1-D, same length.")
    if len(t) < 2 or len(np.unique(t)) < 2:
        raise TransportInputError("An Arrhenius fit needs at least two different temperatures.")
    if np.any(t <= 0) or np.any(y <= 0) or np.any(y_std <= 0):
        raise TransportInputError("Temperatures, values and their std must all be positive.")
    design = np.column_stack([np.ones_like(t), -1.0 / (K_B_EV_PER_K * t)])
    ln_y = np.log(y)
    weights = (y / y_std) ** 2  # 1 / var(ln y), first order
    normal = design.T @ (weights[:, None] * design)
    cov = np.linalg.inv(normal)
    beta = cov @ design.T @ (weights * ln_y)
    dof = len(t) - 2
    chi2_red = None
    scaled = False
    if dof > 0:
        chi2_red = float(np.sum(weights * (ln_y - design @ beta) ** 2) / dof)
        if scale_by_chi2 and chi2_red > 1.0:
            cov = cov * chi2_red
            scaled = True
    return beta, cov, chi2_red, scaled


def fit_arrhenius(
    temperatures_k: Sequence[float],
    values: Sequence[float],
    values_std: Sequence[float],
    quantity: Literal["diffusivity", "conductivity"] = "diffusivity",
    extrapolate_to_k: float = 300.0,
    scale_by_chi2: bool = True,
    species: str | None = None,
    site_class: str | None = None,
) -> ArrheniusResult:
    """Arrhenius fit of D(T) (cm²/s) or σ(T) (S/cm, fitted as σT) with 1-σ uncertainties.

    Parameters
    ----------
    temperatures_k, values, values_std
        Temperatures in K and the values with their standard deviations (same unit).
    quantity
        ``diffusivity``: ln D vs 1/T. ``conductivity``: ln(σT) vs 1/T (the Nernst–Einstein form).
    extrapolate_to_k
        Temperature of the extrapolated value (300 K: room temperature).
    scale_by_chi2
        Inflate the covariance by χ²_red when it exceeds 1 (needs ≥ 3 temperatures).
    """
    t = np.asarray(temperatures_k, dtype=float)
    v = np.asarray(values, dtype=float)
    v_std = np.asarray(values_std, dtype=float)
    y, y_std = (v, v_std) if quantity == "diffusivity" else (v * t, v_std * t)
    beta, cov, chi2_red, scaled = _fit(t, y, y_std, scale_by_chi2)
    ln_a, ea = float(beta[0]), float(beta[1])
    jac = np.array([1.0, -1.0 / (K_B_EV_PER_K * extrapolate_to_k)])
    ln_y_x = ln_a + jac[1] * ea
    ln_std = float(np.sqrt(jac @ cov @ jac))
    y_x = float(np.exp(ln_y_x))
    interval = (float(np.exp(ln_y_x - ln_std)), float(np.exp(ln_y_x + ln_std)))
    if quantity == "conductivity":  # back from σT to σ at the extrapolation temperature
        y_x /= extrapolate_to_k
        interval = (interval[0] / extrapolate_to_k, interval[1] / extrapolate_to_k)
    sd = np.sqrt(np.diag(cov))
    return ArrheniusResult(
        quantity=quantity,
        species=species,
        site_class=site_class,
        temperatures_k=t.tolist(),
        values=v.tolist(),
        values_std=v_std.tolist(),
        activation_energy_ev=ea,
        activation_energy_std_ev=float(sd[1]),
        prefactor_cm2_per_s=float(np.exp(ln_a)) if quantity == "diffusivity" else None,
        prefactor_s_k_per_cm=float(np.exp(ln_a)) if quantity == "conductivity" else None,
        ln_prefactor_std=float(sd[0]),
        correlation_ea_ln_prefactor=float(cov[0, 1] / (sd[0] * sd[1])),
        extrapolation_temperature_k=float(extrapolate_to_k),
        extrapolated_diffusivity_cm2_per_s=y_x if quantity == "diffusivity" else None,
        extrapolated_conductivity_s_per_cm=y_x if quantity == "conductivity" else None,
        extrapolated_ln_std=ln_std,
        extrapolated_interval_68=interval,
        extrapolated_std=y_x * ln_std,
        chi2_reduced=chi2_red,
        covariance_scaled_by_chi2=scaled,
    )


def arrhenius_from_results(
    results: Sequence[DiffusionResult],
    quantity: Literal["diffusivity", "conductivity"] = "diffusivity",
    **kwargs,
) -> ArrheniusResult:
    """:func:`fit_arrhenius` over :class:`DiffusionResult` documents of one species / site class.

    ``conductivity`` uses ``conductivity_s_per_cm`` (tracer D* with the stated assumed Haven ratio).
    """
    keys = {(r.species, r.site_class) for r in results}
    if len(keys) != 1:
        raise TransportInputError(f"Results mix species / site classes {sorted(map(str, keys))}.")
    species, site_class = keys.pop()
    if quantity == "diffusivity":
        values = [r.diffusivity_cm2_per_s for r in results]
        stds = [r.diffusivity_std_cm2_per_s for r in results]
    else:
        if len({r.haven_ratio_assumed for r in results}) != 1:
            raise TransportInputError("Results assume different Haven ratios; refit consistently.")
        values = [r.conductivity_s_per_cm for r in results]
        stds = [r.conductivity_std_s_per_cm for r in results]
    return fit_arrhenius(
        [r.temperature_k for r in results],
        values,
        stds,
        quantity=quantity,
        species=species,
        site_class=site_class,
        **kwargs,
    )
