"""Is a diffusion coefficient long-range transport, and did the crystal stay a crystal?

A linear fit of any MSD curve gives a number called D. It describes ion transport only when the
ions have left their sites during the fit window. Two checks on the tracer MSD decide that:

* **Distance**: the MSD at the end of the fit window must reach ``a²``, the square of the hop
  length (the shortest distance between two sites of the species). For a hop mechanism
  ``MSD = n_hops · a² / n_ions``, so ``MSD ≥ a²`` means at least as many hops were seen as there
  are ions analysed (≥ ~20 in a 40-atom cell): D then has a counting error of ≲ 1/√n_hops ≈ 20 %.
  Vibrations alone give a plateau of a few tenths of Å² (0.36 and 0.62 Å² for Na at 500 / 600 K
  in the demo), far below a² ≈ 6–16 Å² of 2.5–4 Å hops. Without a hop length, 4 Å² (a 2 Å hop,
  shorter than any alkali–alkali site distance) is the floor.
* **Shape**: the log–log slope of the MSD in the fit window must be 1 ± 0.25. A caged ion gives
  a slope near 0 (plateau), ballistic motion 2. Measured on lattice random walks (24 walkers,
  3 Å hops, 1000 frames, 0.15 Å vibrations, window from 10 % of the run, 40 seeds for each of
  1, 2, 5 and 20 hops per walker): the slope has a std of 0.07–0.09 and ranged over 0.79–1.23,
  so ±0.25 is ~3 std. It also leaves room for the bias of a vibrational offset b in
  ``MSD = 6Dt + b`` (local slope ``6Dt / (6Dt + b)``).

Crystallinity: a production temperature is usable for a crystal's transport only if the crystal
did not melt or amorphise. :func:`crystallinity_check` compares the Bragg long-range order
(:func:`ctaflow.analysis.amorphous.bragg_order`) of the framework atoms in the last frame with
the starting crystal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field
from pymatgen.core import Structure

from ctaflow.analysis.amorphous import bragg_order, network_species
from ctaflow.analysis.diffusion import DiffusionResult, MSDCurve
from ctaflow.analysis.transport import msd_loglog_exponent

#: MSD floor (Å²) without a known hop length: the square of a 2 Å hop
DEFAULT_MIN_MSD_A2 = 4.0


class RegimeSettings(BaseModel):
    """Thresholds of :func:`diffusive_regime` (see the module docstring for the reasoning)."""

    min_msd_a2: float | None = Field(
        None,
        gt=0,
        description="MSD the fit window must reach, Å² (None: hop_length_a², else 4 Å²).",
    )
    slope_tolerance: float = Field(
        0.25, gt=0, lt=1, description="Allowed |log-log slope − 1| in the fit window."
    )


class RegimeCheck(BaseModel):
    """Verdict on one MSD curve: ``ok`` if D describes long-range transport, else ``flagged``."""

    status: Literal["ok", "flagged"]
    reasons: list[str] = Field(default_factory=list)
    species: str | None = None
    site_class: str | None = None
    temperature_k: float | None = None
    fit_start_ps: float
    fit_end_ps: float
    msd_end_a2: float = Field(description="MSD at the end of the fit window, Å².")
    min_msd_a2: float
    hop_length_a: float | None = None
    loglog_slope: float = Field(description="Slope of ln MSD vs ln t in the fit window.")
    slope_tolerance: float
    hops_per_ion: float | None = Field(
        None, description="MSD_end / a²: hops seen per ion analysed (if the hop length is known)."
    )


def diffusive_regime(
    time_ps: Sequence[float],
    msd_a2: Sequence[float],
    fit_start_ps: float,
    fit_end_ps: float,
    *,
    hop_length_a: float | None = None,
    settings: RegimeSettings | None = None,
    species: str | None = None,
    site_class: str | None = None,
    temperature_k: float | None = None,
) -> RegimeCheck:
    """Whether the MSD in ``[fit_start_ps, fit_end_ps]`` describes long-range diffusion.

    Parameters
    ----------
    time_ps, msd_a2
        The MSD curve (time intervals in ps, MSD in Å²).
    fit_start_ps, fit_end_ps
        The window D was fitted in.
    hop_length_a
        Hop length of the species, Å (:func:`hop_length`); sets the MSD target to its square.
    settings
        Thresholds (defaults: module docstring).
    species, site_class, temperature_k
        Recorded in the verdict.
    """
    st = settings or RegimeSettings()
    t = np.asarray(time_ps, dtype=float)
    m = np.asarray(msd_a2, dtype=float)
    window = (t >= fit_start_ps * (1 - 1e-9)) & (t <= fit_end_ps * (1 + 1e-9))
    if st.min_msd_a2 is not None:
        target = st.min_msd_a2
    elif hop_length_a is not None:
        target = hop_length_a**2
    else:
        target = DEFAULT_MIN_MSD_A2
    reasons = []
    if window.sum() < 2:
        msd_end, slope = (float(m[window][-1]) if window.any() else float("nan")), float("nan")
        reasons.append(f"{int(window.sum())} MSD points in the fit window: no regime check")
    else:
        msd_end = float(m[window][-1])
        slope = msd_loglog_exponent(t[window], m[window])
    origin = "the squared hop length" if st.min_msd_a2 is None and hop_length_a else "the floor"
    if not msd_end >= target:
        reasons.append(
            f"MSD at the end of the fit window is {msd_end:.2f} Å² < {target:.2f} Å² ({origin}): "
            "the ions have not left their sites, D describes vibrations, not transport (run "
            "longer or hotter, or add carriers: vacancies / interstitials)"
        )
    if not abs(slope - 1.0) <= st.slope_tolerance:
        kind = "caged / sub-diffusive" if slope < 1 else "ballistic / super-diffusive"
        reasons.append(
            f"log-log slope of the MSD in the fit window is {slope:.2f}, not 1 ± "
            f"{st.slope_tolerance:g} ({kind}): not a diffusive regime"
        )
    return RegimeCheck(
        status="flagged" if reasons else "ok",
        reasons=reasons,
        species=species,
        site_class=site_class,
        temperature_k=temperature_k,
        fit_start_ps=float(fit_start_ps),
        fit_end_ps=float(fit_end_ps),
        msd_end_a2=msd_end,
        min_msd_a2=float(target),
        hop_length_a=hop_length_a,
        loglog_slope=slope,
        slope_tolerance=st.slope_tolerance,
        hops_per_ion=None if not hop_length_a else msd_end / hop_length_a**2,
    )


def regime_of(
    result: DiffusionResult,
    curve: MSDCurve,
    hop_length_a: float | None = None,
    settings: RegimeSettings | None = None,
) -> RegimeCheck:
    """:func:`diffusive_regime` of a transport result and its tracer MSD curve."""
    return diffusive_regime(
        curve.time_ps,
        curve.msd_a2,
        result.fit_start_ps,
        result.fit_end_ps,
        hop_length_a=hop_length_a,
        settings=settings,
        species=result.species,
        site_class=result.site_class,
        temperature_k=result.temperature_k,
    )


def hop_length(structure: Structure, species: str, site_class: str | None = "mobile") -> float:
    """Shortest distance (Å) between two sites of ``species`` (of ``site_class`` when the
    structure has site classes and some site of the species is in it): the hop length.
    """
    idx = [i for i, s in enumerate(structure) if s.specie.symbol == species]
    classes = structure.site_properties.get("site_class")
    if site_class is not None and classes is not None:
        chosen = [i for i in idx if classes[i] == site_class]
        idx = chosen or idx
    if not idx:
        raise ValueError(f"no {species} sites in {structure.composition.reduced_formula}")
    frac = structure.frac_coords[idx]
    dist = structure.lattice.get_all_distances(frac, frac)
    dist[np.diag_indices_from(dist)] = np.inf
    shortest = float(dist.min())
    if not np.isfinite(shortest):  # one site: its distance to its own periodic image
        shortest = float(min(structure.lattice.abc))
    return shortest


# --------------------------------------------------------------------------- crystallinity


class CrystallinityCheck(BaseModel):
    """Whether the framework kept the crystal's long-range order during production."""

    status: Literal["ok", "flagged"]
    reason: str = ""
    species: list[str] = Field(description="Framework elements whose order is measured.")
    long_range_order: float = Field(
        description="Bragg order of the final frame(s) relative to the start (≈1 crystal, ≈1/N "
        "none)."
    )
    n_frames: int = Field(1, description="Frames averaged.")
    min_long_range_order: float


#: Smallest Bragg order of a crystal, for one frame of the demo's 16 framework atoms. Measured on
#: Gaussian thermal displacements (tests/analysis/test_regime.py): ⟨u²⟩ = 0.2 Å² gives 0.64
#: (1st percentile 0.48), ⟨u²⟩ = 0.3 Å² (Lindemann ratio ≈ 0.13 at 4.2 Å framework distances,
#: i.e. at melting) 0.51 (0.35), ⟨u²⟩ = 1 Å² 0.20 (99th percentile 0.34), random positions 0.06.
#: 0.35 passes a hot crystal below melting in ≥ 99 % of frames and flags a disordered one; the
#: amorphous stage calls ≤ 0.25 amorphous.
MIN_CRYSTAL_ORDER = 0.35


def crystallinity_check(
    start: Structure,
    final: Structure | Sequence[Structure],
    species: Sequence[str] | None = None,
    min_long_range_order: float = MIN_CRYSTAL_ORDER,
) -> CrystallinityCheck:
    """``ok`` if the framework of ``final`` (e.g. the last production frame) keeps at least
    ``min_long_range_order`` of the Bragg order of ``start`` (the crystal the run began from).

    ``final`` may be several frames (e.g. the last few of the run): their mean order is used,
    which narrows the single-frame thermal scatter.

    ``species`` defaults to the framework elements
    (:func:`ctaflow.analysis.amorphous.network_species`). Both structures hold the same atoms in
    the same order (the MD keeps the order); only fractional coordinates are used, so a changed
    cell (NPT) does not matter.
    """

    chosen = network_species(start, species)
    frames = [final] if isinstance(final, Structure) else list(final)
    order = float(np.mean([bragg_order(start, frame, chosen) for frame in frames]))
    reason = ""
    if order < min_long_range_order:
        reason = (
            f"long-range order of {'/'.join(chosen)} at the end of the run is {order:.2f} of the "
            f"starting crystal's (< {min_long_range_order:g}): the crystal melted or disordered "
            "at this temperature; its D is not the crystal's (lower the temperature)"
        )
    return CrystallinityCheck(
        status="flagged" if reason else "ok",
        reason=reason,
        species=chosen,
        long_range_order=order,
        n_frames=len(frames),
        min_long_range_order=min_long_range_order,
    )


def reasons_of(**checks) -> list[str]:
    """The reasons of every flagged check, prefixed by its name, for :func:`checked_arrhenius`.

    Pass checks by name, e.g. ``reasons_of(md=segment_check, regime=regime_check,
    crystal=crystallinity_check)``; ``None`` (not checked) is skipped. Works with any object with
    ``status`` and ``reasons`` (list) or ``reason`` (str).
    """
    out = []
    for name, check in checks.items():
        if check is None or check.status == "ok":
            continue
        found = getattr(check, "reasons", None)
        found = found if found is not None else [check.reason]
        out += [f"{name}: {reason}" for reason in found]
    return out
