"""The documents of the diffusion analysis (:mod:`ctaflow.analysis.transport`): the MCMC sampling
settings, an MSD curve, and D and σ of one species (or site class) in one run."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class SamplingSettings(BaseModel):
    """Settings of kinisi's MCMC (emcee) regression; seeded so results are reproducible."""

    n_samples: int = Field(1000, description="MCMC steps kept per walker (before thinning).")
    n_walkers: int = Field(32, description="emcee walkers.")
    n_burn: int = Field(500, description="Burn-in steps discarded.")
    n_thin: int = Field(10, description="Thinning of the kept chain.")
    seed: int = Field(0, description="Seed for kinisi/emcee (the global numpy state is restored).")
    cond_max: float = Field(1e16, description="Largest condition number of the MSD covariance.")


class MSDCurve(BaseModel):
    """Mean-squared displacement against time, for plotting (data only). MSD in Å², time in ps."""

    kind: Literal["tracer", "collective"] = Field(
        description="tracer: <|Δr_i|²> over ions; collective: <|Σ_i Δr_i|²>/N (charge MSD / N)."
    )
    species: str
    site_class: str | None = None
    n_ions: int
    time_ps: list[float]
    msd_a2: list[float]
    msd_std_a2: list[float] = Field(description="Standard error of the mean MSD (kinisi), Å².")
    n_independent_samples: list[float] = Field(description="kinisi's count of independent samples.")


class DiffusionResult(BaseModel):
    """Diffusion and conductivity of one species (optionally one site class) at one temperature.

    D in cm²/s, σ in S/cm, times in ps, volume in Å³. ``*_std_*`` is one standard deviation of the
    posterior samples, ``*_ci95_*`` the central 95 % credible interval.
    """

    species: str
    site_class: str | None = Field(None, description="Site class analysed (None: all of species).")
    temperature_k: float
    n_mobile_ions: int = Field(description="Number of ions whose displacements enter the MSD.")
    ionic_charge_e: float = Field(description="Charge per ion used for σ, units of e.")
    mean_volume_a3: float = Field(description="Cell volume averaged over frames, Å³.")
    number_density_per_cm3: float = Field(description="n = n_mobile_ions / mean volume, cm⁻³.")
    duration_ps: float
    frame_interval_fs: float
    n_frames: int
    fit_start_ps: float = Field(description="First time interval in the fit, ps.")
    fit_end_ps: float = Field(description="Last time interval in the fit, ps.")
    n_fit_points: int = Field(description="Time intervals inside the fit window.")
    msd_loglog_exponent: float = Field(
        description="Slope of log MSD vs log t over the fit window (1 = diffusive, 2 = ballistic)."
    )
    msd_intercept_a2: float = Field(
        description="Intercept of the linear MSD fit (posterior mean), Å²: vibration / cage size."
    )
    diffusivity_cm2_per_s: float = Field(description="Tracer D* (posterior mean), cm²/s.")
    diffusivity_std_cm2_per_s: float
    diffusivity_ci95_cm2_per_s: tuple[float, float]
    haven_ratio_assumed: float = Field(description="H_R used for conductivity_s_per_cm.")
    conductivity_s_per_cm: float = Field(description="σ = n q² D* / (k_B T H_R_assumed), S/cm.")
    conductivity_std_s_per_cm: float
    conductivity_ci95_s_per_cm: tuple[float, float]
    charge_diffusivity_cm2_per_s: float | None = Field(
        None, description="Collective (charge/jump) diffusion coefficient D_σ, cm²/s."
    )
    charge_diffusivity_std_cm2_per_s: float | None = None
    charge_diffusivity_ci95_cm2_per_s: tuple[float, float] | None = None
    haven_ratio_measured: float | None = Field(None, description="D*/D_σ (ratio of means).")
    haven_ratio_measured_std: float | None = Field(
        None,
        description="First-order std from the stated stds, D* and D_σ treated as independent "
        "(optimistic: kinisi's D_σ spread is too narrow for single runs, see module notes).",
    )
    conductivity_from_charge_diffusivity_s_per_cm: float | None = Field(
        None, description="σ = n q² D_σ / (k_B T): measured Haven ratio, S/cm."
    )
    conductivity_from_charge_diffusivity_std_s_per_cm: float | None = None
    drift_corrected: bool = Field(description="Mean displacement of the reference atoms removed.")
    n_drift_reference_atoms: int
    cell: Literal["fixed", "varying"]
    unwrapping: str = Field(description="How periodic images were removed.")
    method: str
    sampling: SamplingSettings
    software: dict[str, str] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
