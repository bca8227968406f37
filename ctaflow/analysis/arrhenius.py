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

from ctaflow.analysis.diffusion import DiffusionResult
from ctaflow.analysis.trajectory import TransportInputError

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


# --------------------------------------------------------------------------- checked fits
#: Fewest temperatures for an activation energy. Two points always lie on a line: the fit has
#: no degree of freedom left to test Arrhenius behaviour (χ² undefined, so scatter beyond the
#: error bars cannot inflate the uncertainty). Three is the smallest set with such a test.
MIN_ARRHENIUS_TEMPERATURES = 3


class ExcludedPoint(BaseModel):
    """A result kept out of an Arrhenius fit, with why."""

    temperature_k: float
    reasons: list[str]


class Extrapolation(BaseModel):
    """A value extrapolated beyond the fitted temperatures, with its propagated uncertainty."""

    label: str = Field(description="Says that this is an extrapolation, from where to where.")
    temperature_k: float
    fitted_range_k: tuple[float, float]
    value: float = Field(description="D in cm²/s or σ in S/cm (see quantity).")
    unit: str
    interval_68: tuple[float, float] = Field(description="exp(ln y ± 1 std), same unit.")
    ln_std: float = Field(description="Std of ln(value), from the full fit covariance.")


class CheckedArrhenius(BaseModel):
    """An Arrhenius fit over the points that passed their checks (or why there is none)."""

    status: Literal["fitted", "not fitted"]
    quantity: Literal["diffusivity", "conductivity"]
    species: str | None = None
    site_class: str | None = None
    min_temperatures: int
    used_temperatures_k: list[float]
    excluded: list[ExcludedPoint] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list, description="Why not fitted, or caveats.")
    fit: ArrheniusResult | None = None
    extrapolation: Extrapolation | None = None


def checked_arrhenius(
    results: Sequence[DiffusionResult],
    reasons: Sequence[Sequence[str]],
    quantity: Literal["diffusivity", "conductivity"] = "diffusivity",
    min_temperatures: int = MIN_ARRHENIUS_TEMPERATURES,
    extrapolate_to_k: float = 300.0,
    **kwargs,
) -> CheckedArrhenius:
    """:func:`arrhenius_from_results` over the results whose ``reasons`` are empty.

    Parameters
    ----------
    results
        Diffusion results of one species / site class (any number of temperatures).
    reasons
        For each result, why it must stay out of the fit (empty: it passed). Collect them from
        :func:`ctaflow.analysis.regime.diffusive_regime`, the MD segment check and the
        crystallinity check; a non-positive or non-finite D is added here.
    min_temperatures
        Fewest distinct temperatures for an activation energy (default 3, see
        ``MIN_ARRHENIUS_TEMPERATURES``; 2 gives a line through two points, flagged as such).
    extrapolate_to_k
        Temperature of the labelled extrapolation (300 K: room temperature).
    """
    if len(results) != len(reasons):
        raise TransportInputError(f"{len(results)} results but {len(reasons)} lists of reasons.")
    keys = {(r.species, r.site_class) for r in results}
    if len(keys) > 1:
        raise TransportInputError(f"Results mix species / site classes {sorted(map(str, keys))}.")
    species, site_class = keys.pop() if keys else (None, None)
    used, excluded = [], []
    for result, why in zip(results, reasons, strict=True):
        why = list(why)
        d, d_std = result.diffusivity_cm2_per_s, result.diffusivity_std_cm2_per_s
        if not (np.isfinite(d) and np.isfinite(d_std) and d > 0 and d_std > 0):
            why.append(f"D = {d:.3g} ± {d_std:.3g} cm²/s is not positive and finite")
        if why:
            excluded.append(ExcludedPoint(temperature_k=result.temperature_k, reasons=why))
        else:
            used.append(result)
    temps = sorted({r.temperature_k for r in used})
    out = CheckedArrhenius(
        status="not fitted",
        quantity=quantity,
        species=species,
        site_class=site_class,
        min_temperatures=min_temperatures,
        used_temperatures_k=temps,
        excluded=excluded,
    )
    if len(temps) < max(2, min_temperatures):
        out.reasons.append(
            f"{len(temps)} temperature(s) passed the checks, {max(2, min_temperatures)} needed "
            f"for an activation energy ({len(excluded)} point(s) excluded, see 'excluded')"
        )
        return out
    if len(temps) == 2:
        out.reasons.append(
            "two-point fit: the line passes through both points, Arrhenius behaviour untested"
        )
    fit = arrhenius_from_results(
        used, quantity=quantity, extrapolate_to_k=extrapolate_to_k, **kwargs
    )
    lo, hi = min(temps), max(temps)
    value = (
        fit.extrapolated_diffusivity_cm2_per_s
        if quantity == "diffusivity"
        else fit.extrapolated_conductivity_s_per_cm
    )
    where = "inside" if lo <= extrapolate_to_k <= hi else "outside"
    out.status, out.fit = "fitted", fit
    ea, ea_std = fit.activation_energy_ev, fit.activation_energy_std_ev
    if ea < -ea_std:
        out.reasons.append(
            f"E_a = {ea:.3f} ± {ea_std:.3f} eV is negative: D falls as T rises over "
            f"{lo:.0f}–{hi:.0f} K, which thermally activated hopping does not do (look at the "
            "runs: melting, a phase change, too few hops); neither E_a nor the extrapolation is a "
            "result"
        )
    elif ea <= ea_std:
        out.reasons.append(
            f"E_a = {ea:.3f} ± {ea_std:.3f} eV is not resolved: within one standard deviation of "
            f"zero{' and negative' if ea < 0 else ''}, D does not rise measurably over "
            f"{lo:.0f}–{hi:.0f} K (run longer for smaller error bars, or widen the range); neither "
            "E_a nor the extrapolation is a result"
        )
    out.extrapolation = Extrapolation(
        label=(
            f"extrapolated from the fit over {lo:g}–{hi:g} K to {extrapolate_to_k:g} K "
            f"({where} the fitted range); the interval propagates the fit covariance only and "
            "assumes the same mechanism at all temperatures"
        ),
        temperature_k=float(extrapolate_to_k),
        fitted_range_k=(float(lo), float(hi)),
        value=float(value),
        unit="cm²/s" if quantity == "diffusivity" else "S/cm",
        interval_68=fit.extrapolated_interval_68,
        ln_std=fit.extrapolated_ln_std,
    )
    return out
