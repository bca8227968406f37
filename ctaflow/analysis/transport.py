"""Ion transport from MD: MSD → diffusion coefficients → Nernst–Einstein conductivity.

Which library does what
-----------------------
* **kinisi** computes the mean-squared displacement (every time origin, framework drift removed),
  its covariance between time intervals, and the Bayesian (MCMC) regression that gives the tracer
  diffusion coefficient D* and the collective ("jump", charge) diffusion coefficient D_σ with
  credible intervals. ctaflow does not re-implement the estimator.
* ctaflow builds kinisi's parser directly from arrays (:class:`~ctaflow.analysis.trajectory.
  MDTrajectory`), so every displacement over a lag of ``k`` frames is exactly ``r(t+k) - r(t)``.
  kinisi's file parsers prepend a copy of frame 0, which makes one time origin per lag one frame
  short; the test suite pins the MSD used here against a direct numpy calculation.
* ctaflow converts D to σ (Nernst–Einstein), states the Haven ratio used, and records how every
  number was obtained.

Haven ratio: ``conductivity_s_per_cm`` is σ = n q² D* / (k_B T H_R) with ``haven_ratio_assumed``
(default 1, i.e. uncorrelated ions). With ``collective=True`` the charge diffusion coefficient, the
measured Haven ratio H_R = D*/D_σ and σ from D_σ are reported as well; their statistics are much
poorer (one collective displacement per time origin instead of one per ion), and kinisi's stated
spread of D_σ is too narrow: on 20 seeded uncorrelated random walks (40 ions, 1000 frames, true
H_R = 1) the measured H_R spanned 0.63–2.33 (16–84 %) and the error of D_σ was 2.5 stated std (rms).
The tracer D* was close to calibrated on such walks (rms error 1.3 stated std over 40 walks).

Cells: a fixed cell (any shape) is exact. For a varying (NPT) cell, unwrapped positions are used as
given (exact); wrapped positions are unwrapped by kinisi with the per-frame cells (TOR scheme for
orthorhombic cells, minimum-image fractional increments times the current cell otherwise). That
convention is not unique: for walkers moving independently of a cell breathing by ±2 %, the MSD
from wrapped positions differed from the Cartesian walk by up to 4 % (orthorhombic) and 7 %
(triclinic). Give unwrapped positions when the engine writes them. The number density uses the
cell volume averaged over the frames. Every atom in every frame is held in memory (about 200 bytes
per atom and frame for non-orthorhombic cells): subsample long runs (``MDTrajectory.subsample``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pymatgen.core import Element
from scipy.constants import e as ELEMENTARY_CHARGE_C
from scipy.constants import k as BOLTZMANN_J_PER_K

from ctaflow.analysis.diffusion import DiffusionResult, MSDCurve, SamplingSettings
from ctaflow.analysis.provenance import software_versions
from ctaflow.analysis.trajectory import MDTrajectory, TransportInputError

TRANSPORT_PACKAGES = ("ctaflow", "kinisi", "scipp", "emcee", "numpy", "pymatgen")
A2_PER_FS_TO_CM2_PER_S = 0.1  # 1 Å²/fs = 1e-16 cm² / 1e-15 s


#: below this MSD (Å²) at the end of the fit window, results are flagged as "no hops seen"
MIN_MSD_FOR_TRANSPORT_A2 = 1.0


def nernst_einstein_conductivity(
    diffusivity_cm2_per_s: float,
    n_ions: float,
    volume_a3: float,
    temperature_k: float,
    charge_e: float = 1.0,
    haven_ratio: float = 1.0,
) -> float:
    """σ in S/cm = n q² D / (k_B T H_R), with n = n_ions / volume.

    Parameters
    ----------
    diffusivity_cm2_per_s
        Tracer D* (then ``haven_ratio`` is the assumed H_R) or charge D_σ (then use H_R = 1).
    n_ions, volume_a3
        Number of carriers in the cell and the cell volume in Å³.
    temperature_k
        Temperature in K.
    charge_e
        Carrier charge in units of e.
    haven_ratio
        H_R = D*/D_σ.
    """
    if temperature_k <= 0 or volume_a3 <= 0 or haven_ratio <= 0:
        raise TransportInputError("temperature, volume and Haven ratio must be positive.")
    n_per_cm3 = n_ions / (volume_a3 * 1e-24)
    q_c = charge_e * ELEMENTARY_CHARGE_C
    return (
        n_per_cm3
        * q_c**2
        * diffusivity_cm2_per_s
        / (BOLTZMANN_J_PER_K * temperature_k * haven_ratio)
    )


def msd_loglog_exponent(time: np.ndarray, msd: np.ndarray) -> float:
    """Least-squares slope of ln MSD against ln t (points with t > 0 and MSD > 0)."""
    t, m = np.asarray(time, dtype=float), np.asarray(msd, dtype=float)
    ok = (t > 0) & (m > 0)
    if ok.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(t[ok]), np.log(m[ok]), 1)[0])


def default_charge(species: str) -> float:
    """The unique common oxidation state of ``species`` (Li, Na → +1); raise if ambiguous."""
    states = Element(species).common_oxidation_states
    if len(states) != 1:
        raise TransportInputError(
            f"{species} has common oxidation states {states}; pass charge_e explicitly."
        )
    return float(states[0])


def _lag_frames(n_frames: int, n_time_intervals: int) -> np.ndarray:
    """About ``n_time_intervals`` integer lags spread evenly from 1 frame to the full run."""
    lags = np.unique(np.round(np.linspace(1, n_frames - 1, n_time_intervals)).astype(int))
    return lags[lags >= 1]


def _kinisi_parser(traj: MDTrajectory, indices: np.ndarray, drift: np.ndarray, lags: np.ndarray):
    """A kinisi Parser built from arrays (no duplicated first frame), and how it unwraps."""
    import scipp as sc
    from kinisi.parser import Parser

    class _ArrayParser(Parser):
        """kinisi parser for arrays already in memory (indices are given, never looked up)."""

        def get_indices(self, structure, specie):  # pragma: no cover - indices are explicit
            raise NotImplementedError

        def get_drift_indices(self, structure, specie_indices):  # pragma: no cover
            raise NotImplementedError

    if traj.positions_are_unwrapped:
        # Continuous positions: express them in one fixed cell so kinisi's minimum-image step is a
        # no-op and the Cartesian displacements are used exactly, even if the real cell varies.
        cell = traj.lattice_per_frame[0]
        frac = traj.positions_a @ np.linalg.inv(cell)
        cells = np.broadcast_to(cell, (traj.n_frames, 3, 3))
        unwrapping = "positions given unwrapped; displacements used as given"
    else:
        frac = traj.fractional_positions()
        cells = traj.lattice_per_frame
        unwrapping = "kinisi minimum-image unwrapping between consecutive frames, per-frame cells"
    step = sc.scalar(float(traj.frame_interval_fs), unit="fs")
    parser = _ArrayParser(
        coords=sc.array(dims=["time", "particle", "dimension"], values=frac),
        latt=sc.array(
            dims=["time", "dimension1", "dimension2"], values=np.array(cells), unit="angstrom"
        ),
        time_step=step,
        step_skip=sc.scalar(1),
        dt=sc.array(dims=["time interval"], values=lags * float(traj.frame_interval_fs), unit="fs"),
        specie_indices=sc.array(dims=["particle"], values=np.asarray(indices, dtype=np.int64)),
        drift_indices=sc.array(dims=["particle"], values=np.asarray(drift, dtype=np.int64)),
    )
    # kinisi derives integer lags by float division and truncation; make them exact.
    if not np.array_equal(parser.dt_index.values, lags):
        parser.dt_index = sc.array(dims=["time interval"], values=lags)
    return parser, unwrapping


def _posterior(values: np.ndarray) -> tuple[float, float, tuple[float, float]]:
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(np.mean(values)), float(np.std(values, ddof=1)), (float(lo), float(hi))


def _fit(analyzer, kind: str, start_fs: float, end_fs: float, sampling: SamplingSettings):
    """kinisi's regression over [start_fs, end_fs]: D samples (cm²/s), mean intercept (Å²)."""
    import scipp as sc

    full = analyzer._dg
    times = full["da"].coords["time interval"].values
    keep = int(np.searchsorted(times, end_fs * (1 + 1e-9), side="right"))
    analyzer._dg = sc.DataGroup({**full, "da": full["da"]["time interval", :keep]})
    kwargs = {
        "cond_max": sampling.cond_max,
        "n_samples": sampling.n_samples,
        "n_walkers": sampling.n_walkers,
        "n_burn": sampling.n_burn,
        "n_thin": sampling.n_thin,
        "progress": False,
        "random_state": np.random.RandomState(sampling.seed),
    }
    state = np.random.get_state()  # kinisi seeds the global generator; leave it as we found it
    try:
        if kind == "tracer":
            analyzer.diffusion(sc.scalar(start_fs, unit="fs"), **kwargs)
            samples = analyzer.D
        else:
            analyzer.jump_diffusion(sc.scalar(start_fs, unit="fs"), **kwargs)
            samples = analyzer.D_J
        intercept = sc.to_unit(analyzer.intercept, "angstrom^2").values
    finally:
        np.random.set_state(state)
        analyzer._dg = full
    return sc.to_unit(samples, "cm^2/s").values, float(np.mean(intercept))


def _msd_curve(dg, kind: str, species: str, site_class: str | None, n: int) -> MSDCurve:
    da = dg["da"]
    return MSDCurve(
        kind=kind,
        species=species,
        site_class=site_class,
        n_ions=n,
        time_ps=(da.coords["time interval"].values / 1000.0).tolist(),
        msd_a2=da.values.tolist(),
        msd_std_a2=np.sqrt(da.variances).tolist(),
        n_independent_samples=np.asarray(da.coords["n_samples"].values, dtype=float).tolist(),
    )


def analyse_diffusion_with_msd(
    traj: MDTrajectory,
    species: str,
    temperature_k: float | None = None,
    site_class: str | None = None,
    *,
    fit_start_ps: float | None = None,
    fit_end_ps: float | None = None,
    n_time_intervals: int = 100,
    collective: bool = False,
    charge_e: float | None = None,
    haven_ratio_assumed: float = 1.0,
    drift_reference: list[int] | None = None,
    sampling: SamplingSettings | None = None,
) -> tuple[DiffusionResult, MSDCurve]:
    """Tracer (and optionally collective) diffusion of ``species`` and the Nernst–Einstein σ.

    Parameters
    ----------
    traj
        The trajectory.
    species, site_class
        Ions analysed: every atom of ``species``, or only those in ``site_class``.
    temperature_k
        Temperature for σ, K (default: ``traj.temperature_k``).
    fit_start_ps, fit_end_ps
        Fit window of the MSD, ps. Defaults: 10 % of the run and the whole run. The start should be
        past the ballistic / caged regime (check ``msd_loglog_exponent`` ≈ 1).
    n_time_intervals
        Number of time intervals (lags, spread evenly over the run) at which the MSD is evaluated.
    collective
        Also fit the collective MSD: charge diffusivity, measured Haven ratio, σ from D_σ.
    charge_e
        Ion charge in e (default: the unique common oxidation state, e.g. +1 for Li and Na).
    haven_ratio_assumed
        H_R used with D* for ``conductivity_s_per_cm`` (1: uncorrelated ions).
    drift_reference
        Atom indices whose mean displacement is removed (default: all atoms of other species).
    sampling
        MCMC settings (seeded).

    Returns
    -------
    The :class:`DiffusionResult` and the tracer :class:`MSDCurve` (bulky: for the data store).
    """
    from kinisi.diffusion_analyzer import DiffusionAnalyzer
    from kinisi.displacement import calculate_msd, calculate_mstd
    from kinisi.jump_diffusion_analyzer import JumpDiffusionAnalyzer

    sampling = sampling or SamplingSettings()
    temperature_k = temperature_k if temperature_k is not None else traj.temperature_k
    if temperature_k is None or temperature_k <= 0:
        raise TransportInputError(
            "No temperature: pass temperature_k (K) or set it on the trajectory."
        )
    indices = traj.indices(species, site_class)
    if len(indices) == 0:
        raise TransportInputError(f"No atoms of {species!r} in site class {site_class!r}.")
    if collective and len(indices) < 2:
        raise TransportInputError("The collective MSD needs at least two ions.")
    if drift_reference is None:
        drift_reference = [i for i, s in enumerate(traj.species) if s != species]
    charge = default_charge(species) if charge_e is None else float(charge_e)

    duration_fs = (traj.n_frames - 1) * traj.frame_interval_fs
    start_fs = 0.1 * duration_fs if fit_start_ps is None else fit_start_ps * 1000.0
    end_fs = duration_fs if fit_end_ps is None else min(fit_end_ps * 1000.0, duration_fs)
    lags = _lag_frames(traj.n_frames, n_time_intervals)
    times = lags * traj.frame_interval_fs
    in_window = times[(times >= start_fs * (1 - 1e-9)) & (times <= end_fs * (1 + 1e-9))]
    if len(in_window) < 3:
        raise TransportInputError(
            f"Only {len(in_window)} time intervals in the fit window [{start_fs / 1000:.4g}, "
            f"{end_fs / 1000:.4g}] ps; widen the window or raise n_time_intervals."
        )

    parser, unwrapping = _kinisi_parser(traj, indices, np.asarray(drift_reference), lags)
    tracer = DiffusionAnalyzer(parser)
    tracer._dg = calculate_msd(parser, progress=False)  # what kinisi's from_* constructors do
    curve = _msd_curve(tracer._dg, "tracer", species, site_class, len(indices))
    d_samples, intercept = _fit(tracer, "tracer", start_fs, end_fs, sampling)
    d_mean, d_std, d_ci = _posterior(d_samples)

    volume = traj.mean_volume_a3
    per_d = nernst_einstein_conductivity(1.0, len(indices), volume, temperature_k, charge)
    sigma_factor = per_d / haven_ratio_assumed
    t_fit = np.asarray(curve.time_ps) * 1000.0
    window = (t_fit >= start_fs * (1 - 1e-9)) & (t_fit <= end_fs * (1 + 1e-9))
    notes = []
    exponent = msd_loglog_exponent(t_fit[window], np.asarray(curve.msd_a2)[window])
    if not 0.8 <= exponent <= 1.2:
        notes.append(
            f"MSD log-log slope in the fit window is {exponent:.2f}, not ~1: not (yet) a clean "
            "diffusive regime (caged or immobile ions, ballistic motion, short run or a window "
            "that starts too early); D from the linear fit may be biased."
        )
    msd_end = float(np.asarray(curve.msd_a2)[window][-1]) if window.any() else 0.0
    if msd_end < MIN_MSD_FOR_TRANSPORT_A2:
        notes.append(
            f"MSD at the end of the fit window is {msd_end:.2f} Å² "
            f"< {MIN_MSD_FOR_TRANSPORT_A2} Å²: the ions have not left their sites (one hop of "
            "~3 Å by every ion gives ~9 Å²); D and σ describe vibrations in the run, "
            "not long-range transport."
        )

    extra: dict = {}
    if collective:
        jump = JumpDiffusionAnalyzer(parser)
        jump._dg = calculate_mstd(parser, 1, None, progress=False)
        dj_samples, _ = _fit(jump, "collective", start_fs, end_fs, sampling)
        dj_mean, dj_std, dj_ci = _posterior(dj_samples)
        h_r = d_mean / dj_mean
        h_std = abs(h_r) * float(np.hypot(d_std / d_mean, dj_std / dj_mean))
        extra = {
            "charge_diffusivity_cm2_per_s": dj_mean,
            "charge_diffusivity_std_cm2_per_s": dj_std,
            "charge_diffusivity_ci95_cm2_per_s": dj_ci,
            "haven_ratio_measured": h_r,
            "haven_ratio_measured_std": h_std,
            "conductivity_from_charge_diffusivity_s_per_cm": per_d * dj_mean,
            "conductivity_from_charge_diffusivity_std_s_per_cm": per_d * dj_std,
        }
        notes.append(
            f"Charge diffusivity from one run (stated relative std {dj_std / dj_mean:.0%}); "
            "kinisi's collective intervals were found too narrow on synthetic walks, so the "
            "measured Haven ratio is indicative only: use longer or repeated runs."
        )

    result = DiffusionResult(
        species=species,
        site_class=site_class,
        temperature_k=float(temperature_k),
        n_mobile_ions=len(indices),
        ionic_charge_e=charge,
        mean_volume_a3=volume,
        number_density_per_cm3=len(indices) / (volume * 1e-24),
        duration_ps=duration_fs / 1000.0,
        frame_interval_fs=traj.frame_interval_fs,
        n_frames=traj.n_frames,
        fit_start_ps=float(in_window[0]) / 1000.0,
        fit_end_ps=float(in_window[-1]) / 1000.0,
        n_fit_points=len(in_window),
        msd_loglog_exponent=exponent,
        msd_intercept_a2=intercept,
        diffusivity_cm2_per_s=d_mean,
        diffusivity_std_cm2_per_s=d_std,
        diffusivity_ci95_cm2_per_s=d_ci,
        haven_ratio_assumed=haven_ratio_assumed,
        conductivity_s_per_cm=sigma_factor * d_mean,
        conductivity_std_s_per_cm=sigma_factor * d_std,
        conductivity_ci95_s_per_cm=(sigma_factor * d_ci[0], sigma_factor * d_ci[1]),
        drift_corrected=len(drift_reference) > 0,
        n_drift_reference_atoms=len(drift_reference),
        cell="fixed" if traj.constant_cell else "varying",
        unwrapping=unwrapping,
        method=(
            "kinisi Bayesian regression of the MSD (all time origins, covariance-weighted, "
            "emcee posterior); D = slope / 6; σ by Nernst–Einstein"
        ),
        sampling=sampling,
        software=software_versions(TRANSPORT_PACKAGES),
        notes=notes,
        **extra,
    )
    return result, curve


def analyse_diffusion(traj: MDTrajectory, species: str, **kwargs) -> DiffusionResult:
    """:func:`analyse_diffusion_with_msd` without the MSD curve (same arguments)."""
    return analyse_diffusion_with_msd(traj, species, **kwargs)[0]


def analyse_by_site_class(traj: MDTrajectory, species: str, **kwargs) -> list[DiffusionResult]:
    """D and σ of ``species`` as a whole and of each site class it occupies (same arguments).

    Every class is referenced to the same frame (drift of the other species removed), so the
    results are comparable; σ of a class is its partial tracer conductivity.
    """
    results = [analyse_diffusion(traj, species, **kwargs)]
    if traj.site_classes is None:
        return results
    classes = sorted({traj.site_classes[i] for i in traj.indices(species)})
    results += [analyse_diffusion(traj, species, site_class=c, **kwargs) for c in classes]
    return results


def msd_curve(
    traj: MDTrajectory,
    species: str,
    site_class: str | None = None,
    *,
    kind: Literal["tracer", "collective"] = "tracer",
    n_time_intervals: int = 100,
    lag_frames: list[int] | None = None,
    drift_reference: list[int] | None = None,
) -> MSDCurve:
    """MSD (Å²) against time (ps) of ``species`` / ``site_class``, for plotting; no fit.

    ``lag_frames`` picks the time intervals in frames (default: ``n_time_intervals`` spread evenly
    over the run). kinisi's count of independent samples assumes the largest lag spans the run.
    """
    from kinisi.displacement import calculate_msd, calculate_mstd

    indices = traj.indices(species, site_class)
    if len(indices) == 0:
        raise TransportInputError(f"No atoms of {species!r} in site class {site_class!r}.")
    if drift_reference is None:
        drift_reference = [i for i, s in enumerate(traj.species) if s != species]
    if lag_frames is None:
        lags = _lag_frames(traj.n_frames, n_time_intervals)
    else:
        lags = np.unique(np.asarray(lag_frames, dtype=int))
        if lags[0] < 1 or lags[-1] > traj.n_frames - 1:
            raise TransportInputError(f"lag_frames must lie in [1, {traj.n_frames - 1}].")
    parser, _ = _kinisi_parser(traj, indices, np.asarray(drift_reference), lags)
    if kind == "tracer":
        dg = calculate_msd(parser, progress=False)
    else:
        dg = calculate_mstd(parser, 1, None, progress=False)
    return _msd_curve(dg, kind, species, site_class, len(indices))
