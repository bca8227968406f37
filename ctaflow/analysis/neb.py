"""Barrier analysis of a nudged-elastic-band: heights, reaction energy, the energy profile and the
convergence of the climbing image. Energies in eV, distances in Å, forces in eV/Å.

Definitions
-----------
* Reaction coordinate ``r``: cumulative length of the band in configuration space,
  ``r_n = Σ_{m≤n} |R_m − R_{m−1}|`` over all atoms (minimum-image displacements), as in
  pymatgen's ``NEBAnalysis``.
* Tangent ``τ_n``: the improved tangent of Henkelman & Jónsson (J. Chem. Phys. 113, 9978
  (2000)) — the same one ASE's ``NEB(method="improvedtangent")`` uses.
* Tangent force ``F∥_n = F_n · τ̂_n``; the profile is the cubic Hermite spline through
  ``(r_n, E_n)`` with slopes ``dE/dr = −F∥_n`` (zero at the relaxed end points).
* Climbing-image force: ``F_ci = F − 2 (F·τ̂) τ̂`` at the highest intermediate image; the band is
  converged when the engine says so **and** the largest per-atom norm of ``F_ci`` is at most the
  force criterion. Without a climbing image the perpendicular force ``F − (F·τ̂) τ̂`` is used.
* End points must be the lowest points of the band: when an intermediate image lies more than
  ``ends_tolerance_ev`` below the lower end point, the relaxed end points were not the minima
  the band connects (e.g. a relaxation stuck on a symmetric saddle), and ``ends_are_lowest`` is
  False — the barrier is then not a migration barrier between those minima.
* Barriers are read from the images: forward = ``max E − E_start``, backward = ``max E − E_end``,
  reaction energy = ``E_end − E_start``; the spline maximum is reported beside them.
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field
from pymatgen.core import Structure

from ctaflow.analysis.minimum import MinimumSummary


class BarrierProfile(BaseModel):
    """Energy profile and barriers of one band. Units in the field names."""

    n_images: int = Field(description="Intermediate images.")
    reaction_coordinate_a: list[float]
    energies_ev: list[float] = Field(description="Total energies of all images incl. end points.")
    relative_energies_ev: list[float] = Field(description="Energies minus the start energy.")
    tangent_forces_ev_per_a: list[float] = Field(description="F·τ̂ per image (0 at the ends).")
    forward_barrier_ev: float
    backward_barrier_ev: float
    reaction_energy_ev: float
    spline_forward_barrier_ev: float = Field(description="Maximum of the Hermite spline − E_start.")
    spline_r_a: list[float] = Field(description="Profile samples: reaction coordinate, Å.")
    spline_energy_ev: list[float] = Field(description="Profile samples: E − E_start, eV.")
    highest_image: int = Field(description="Index (0 = start) of the highest intermediate image.")
    climbing_image: bool
    max_force_highest_image_ev_per_a: float = Field(
        description="Largest per-atom norm of the climbing (or perpendicular) force there."
    )
    fmax_ev_per_a: float = Field(description="Force criterion asked for.")
    engine_converged: bool
    converged: bool = Field(description="engine_converged and the highest image's force ≤ fmax.")
    image_below_ends_ev: float = Field(
        description="How far the lowest intermediate image lies below the lower end point (≥ 0)."
    )
    ends_are_lowest: bool = Field(description="image_below_ends_ev ≤ ends_tolerance_ev.")


def minimum_image_displacements(structures: list[Structure]) -> list[np.ndarray]:
    """Cartesian displacements (n_atoms, 3) between consecutive images, minimum image."""
    lattice = structures[0].lattice
    out = []
    for a, b in pairwise(structures):
        df = b.frac_coords - a.frac_coords
        out.append(lattice.get_cartesian_coords(df - np.rint(df)))
    return out


def improved_tangents(displacements: list[np.ndarray], energies: np.ndarray) -> list[np.ndarray]:
    """Unit tangents (n_atoms, 3) of the intermediate images (Henkelman & Jónsson 2000)."""
    tangents = []
    for n in range(1, len(energies) - 1):
        plus, minus = displacements[n], displacements[n - 1]
        e_prev, e, e_next = energies[n - 1], energies[n], energies[n + 1]
        if e_next > e > e_prev:
            tau = plus
        elif e_next < e < e_prev:
            tau = minus
        else:
            d_max = max(abs(e_next - e), abs(e_prev - e))
            d_min = min(abs(e_next - e), abs(e_prev - e))
            tau = plus * d_max + minus * d_min if e_next > e_prev else plus * d_min + minus * d_max
        tangents.append(tau / np.linalg.norm(tau))
    return tangents


def barrier_profile(
    structures: list[Structure],
    energies_ev: list[float],
    forces_ev_per_a: list[Any],
    fmax_ev_per_a: float,
    climb: bool = True,
    engine_converged: bool = True,
    n_samples: int = 61,
    ends_tolerance_ev: float = 0.01,
) -> BarrierProfile:
    """Analyse a band: ``structures``/``energies_ev`` include both end points; ``forces_ev_per_a``
    are the true forces of the **intermediate** images (each (n_atoms, 3))."""
    from scipy.interpolate import CubicHermiteSpline

    energies = np.asarray(energies_ev, dtype=float)
    n_inter = len(structures) - 2
    if n_inter < 1 or len(energies) != len(structures) or len(forces_ev_per_a) != n_inter:
        raise ValueError(
            f"a band needs end points plus ≥1 image with one energy each and forces for the "
            f"intermediate images; got {len(structures)} structures, {len(energies)} energies, "
            f"{len(forces_ev_per_a)} force sets"
        )
    disp = minimum_image_displacements(structures)
    r = np.concatenate([[0.0], np.cumsum([np.linalg.norm(d) for d in disp])])
    tangents = improved_tangents(disp, energies)
    forces = [np.asarray(f, dtype=float) for f in forces_ev_per_a]
    f_par = [float(np.sum(f * t)) for f, t in zip(forces, tangents, strict=True)]
    tangent_forces = [0.0, *f_par, 0.0]

    top = int(np.argmax(energies[1:-1])) + 1
    f, t = forces[top - 1], tangents[top - 1]
    along = np.sum(f * t) * t
    residual = f - 2 * along if climb else f - along
    max_force = float(np.max(np.linalg.norm(residual, axis=1)))

    rel = energies - energies[0]
    below = float(max(0.0, min(energies[0], energies[-1]) - energies[1:-1].min()))
    spline = CubicHermiteSpline(r, rel, -np.asarray(tangent_forces))
    xs = np.linspace(0.0, r[-1], n_samples)
    ys = spline(xs)
    return BarrierProfile(
        n_images=n_inter,
        reaction_coordinate_a=r.tolist(),
        energies_ev=energies.tolist(),
        relative_energies_ev=rel.tolist(),
        tangent_forces_ev_per_a=tangent_forces,
        forward_barrier_ev=float(energies.max() - energies[0]),
        backward_barrier_ev=float(energies.max() - energies[-1]),
        reaction_energy_ev=float(energies[-1] - energies[0]),
        spline_forward_barrier_ev=float(max(ys.max(), rel.max())),
        spline_r_a=xs.tolist(),
        spline_energy_ev=ys.tolist(),
        highest_image=top,
        climbing_image=climb,
        max_force_highest_image_ev_per_a=max_force,
        fmax_ev_per_a=fmax_ev_per_a,
        engine_converged=bool(engine_converged),
        converged=bool(engine_converged) and max_force <= fmax_ev_per_a,
        image_below_ends_ev=below,
        ends_are_lowest=below <= ends_tolerance_ev,
    )


class NEBRun(BaseModel):
    """What an MLIP NEB job returns, intermediate images only. Units in the field names."""

    structures: list[Structure]
    energies_ev: list[float]
    forces_ev_per_a: list[list[list[float]]]
    converged: bool = Field(description="The optimiser reached fmax within max steps.")
    n_steps: int | None = None
    elapsed_s: float
    engine: dict[str, Any] = Field(default_factory=dict)


# --------------------------------------------------------------------------- band validity
class BandVerdict(BaseModel):
    """Whether a band gives a migration barrier, and which. Energies in eV.

    ``status``: ``valid`` (all checks passed, one maximum), ``flagged`` (all checks passed but
    the band has two separate maxima: a barrier is given, with the reason), ``excluded`` (a check
    failed: no barrier, the reasons say which). A barrier is never 0.0 by default and never
    given for a band that failed a check.
    """

    status: Literal["valid", "flagged", "excluded"]
    reasons: list[str] = Field(description="Why the band is flagged or excluded (empty: valid).")
    barrier_ev: float | None = Field(
        description="Forward barrier (from the start, the configuration every mechanism of a hop "
        "shares); None unless every check passed."
    )
    forward_barrier_ev: float | None
    backward_barrier_ev: float | None
    reaction_energy_ev: float | None
    kind: Literal["single", "sequential"] = Field(
        description="'sequential': two maxima separated by a minimum deeper than the prominence "
        "threshold (e.g. a concerted band that is two hops one after the other)."
    )
    n_maxima: int = Field(description="Separate maxima on the images (0: none inside the band).")
    n_maxima_spline: int = Field(description="Separate maxima on the Hermite-spline profile.")
    intermediate_minimum_ev: float | None = Field(
        description="Depth of the deepest minimum between two maxima, below the lower of the two "
        "(images or spline, whichever is deeper); None for one maximum."
    )
    min_prominence_ev: float
    ends_tolerance_ev: float
    start_is_minimum: bool | None = Field(description="Minimum check of the start; None = not run.")
    end_is_minimum: bool | None = Field(description="Minimum check of the end; None = not run.")


#: smallest depth of a minimum that separates two maxima of a band: kT at 300 K (25.9 meV),
#: rounded. A shallower dip holds no metastable state at room temperature (an ion in it leaves
#: within a vibrational period or so), and it is above the few-meV wiggles of a Hermite spline
#: through converged MLIP images.
MIN_PROMINENCE_EV = 0.025


def separate_maxima(energies: Any, min_prominence_ev: float) -> tuple[list[int], float | None]:
    """Interior maxima of a sampled profile that are separated by a minimum at least
    ``min_prominence_ev`` below the lower of each pair, and the deepest such separation.

    A maximum is a point higher than the point before it and not lower than the one after it
    (the ends cannot be maxima). Neighbouring maxima whose valley is shallower than the
    threshold merge into the higher one. Returns the indices of the maxima left and the
    deepest valley depth between two of them (None when fewer than two are left).
    """
    e = np.asarray(energies, dtype=float)
    peaks = [n for n in range(1, len(e) - 1) if e[n] > e[n - 1] and e[n] >= e[n + 1]]
    merged: list[int] = []
    for p in peaks:
        if merged:
            q = merged[-1]
            depth = min(e[q], e[p]) - e[q : p + 1].min()
            if depth < min_prominence_ev:
                merged[-1] = p if e[p] > e[q] else q
                continue
        merged.append(p)
    depths = [min(e[q], e[p]) - e[q : p + 1].min() for q, p in pairwise(merged)]
    return merged, (float(max(depths)) if depths else None)


def assess_band(
    profile: BarrierProfile,
    start_is_minimum: bool | None,
    end_is_minimum: bool | None,
    ends_tolerance_ev: float = 0.01,
    min_prominence_ev: float = MIN_PROMINENCE_EV,
    caveats: list[str] | tuple[str, ...] = (),
) -> BandVerdict:
    """Decide whether ``profile`` gives a migration barrier (issue #22, rule 2).

    A barrier is valid only when

    1. the engine converged and the climbing-image force is ≤ fmax (``profile.converged``);
    2. both end points passed the minimum check (:mod:`ctaflow.analysis.minimum`; None = not
       run, which fails: an end point on a saddle makes any barrier from it meaningless — on main
       the cubic antiperovskite end points were 0.26 eV above the minimum);
    3. no intermediate image lies more than ``ends_tolerance_ev`` below the lower end point;
    4. the highest point of the band is an intermediate image, not an end point (otherwise the
       band has no saddle between the ends; on main such a band was stored as a 0.0 eV barrier).

    Independently the band is called ``sequential`` when its images, or its Hermite spline
    (which also sees the tangent forces, so it shows a dip that falls between two images), have
    two maxima separated by a minimum at least ``min_prominence_ev`` deep: the band is then two
    hops one after the other, and its barrier is that of the higher one. Such a band, with every
    check passed, is ``flagged`` (barrier given, with the reason), not ``valid``.
    """
    e = np.asarray(profile.energies_ev, dtype=float)
    reasons = []
    if not profile.engine_converged:
        reasons.append("the NEB optimiser did not converge within its steps")
    if profile.max_force_highest_image_ev_per_a > profile.fmax_ev_per_a:
        reasons.append(
            f"the {'climbing' if profile.climbing_image else 'highest'} image keeps a force of "
            f"{profile.max_force_highest_image_ev_per_a:.3f} eV/Å > fmax "
            f"{profile.fmax_ev_per_a} eV/Å: it is not at the saddle"
        )
    for name, ok in (("start", start_is_minimum), ("end", end_is_minimum)):
        if ok is None:
            reasons.append(f"the {name} point was not checked to be a minimum")
        elif not ok:
            reasons.append(f"the {name} point is not a minimum (a lower structure was found)")
    if profile.image_below_ends_ev > ends_tolerance_ev:
        reasons.append(
            f"an image lies {profile.image_below_ends_ev:.3f} eV below the lower end point "
            f"(> {ends_tolerance_ev} eV): the band found a lower state than its ends"
        )
    if e[1:-1].max() <= max(e[0], e[-1]):
        end = "start" if e[0] >= e[-1] else "end"
        reasons.append(f"the highest point of the band is the {end} point: no saddle inside")

    image_peaks, image_depth = separate_maxima(e, min_prominence_ev)
    spline_peaks, spline_depth = separate_maxima(profile.spline_energy_ev, min_prominence_ev)
    depths = [d for d in (image_depth, spline_depth) if d is not None]
    sequential = len(image_peaks) > 1 or len(spline_peaks) > 1
    excluded = bool(reasons)
    if sequential:
        seen = "images" if len(image_peaks) > 1 else "spline profile"
        reasons.append(
            f"two maxima on the {seen} separated by a minimum {max(depths):.3f} eV deep "
            f"(≥ {min_prominence_ev} eV): the band is two hops one after the other, not one "
            "concerted move; its barrier is that of the higher hop"
        )
    reasons += caveats
    given = not excluded
    return BandVerdict(
        status="excluded" if excluded else "flagged" if sequential or caveats else "valid",
        reasons=reasons,
        barrier_ev=profile.forward_barrier_ev if given else None,
        forward_barrier_ev=profile.forward_barrier_ev if given else None,
        backward_barrier_ev=profile.backward_barrier_ev if given else None,
        reaction_energy_ev=profile.reaction_energy_ev if given else None,
        kind="sequential" if sequential else "single",
        n_maxima=len(image_peaks),
        n_maxima_spline=len(spline_peaks),
        intermediate_minimum_ev=max(depths) if depths else None,
        min_prominence_ev=min_prominence_ev,
        ends_tolerance_ev=ends_tolerance_ev,
        start_is_minimum=start_is_minimum,
        end_is_minimum=end_is_minimum,
    )


# --------------------------------------------------------------------------- number of images
def images_for_path(
    path_length_a: float,
    images_per_a: float = 1.5,
    min_images: int = 3,
    max_images: int | None = None,
) -> int:
    """Intermediate images for a band whose moving ions travel ``path_length_a`` in all.

    ``n = max(min_images, ceil(path_length_a × images_per_a))``, raised to the next odd number.

    Path length: the **sum** of the straight-line (minimum-image) displacements of the moving
    ions (``sum(PathEnds.displacement_a)``), not the largest one and not the configuration-space
    length of the band. Image spacing must resolve the energy along each ion's track; when a
    concerted band turns out to be two hops one after the other (the Li concerted band on main:
    a double hump that 3 images missed), each hop needs as many images as a single hop, so the
    band needs twice as many — the sum gives that, the largest displacement would give half. The
    configuration-space length of a simultaneous move is only √2 × the hop for two ions and
    includes the relaxation of every other atom, so it scales neither way. It is known before
    any end point relaxes, from the unrelaxed ends.

    Odd: a symmetric hop has its saddle half way, so an odd count puts an image (the climbing
    one) on it from the start. The default 1.5 per Å gives 5 images (the stage's current fixed
    default) for the demo's single hops (2.77 Å Li, 3.21 Å Na, CHGNet lattices) and 9 and 11 for
    their straight two-ion chains (5.53 and 6.41 Å).

    Raises
    ------
    ValueError
        For a non-positive length or rate, or when more than ``max_images`` are needed.
    """
    if path_length_a <= 0 or images_per_a <= 0 or min_images < 1:
        raise ValueError(
            f"path_length_a={path_length_a}, images_per_a={images_per_a}, min_images="
            f"{min_images}: all must be positive"
        )
    n = max(min_images, math.ceil(round(path_length_a * images_per_a, 9)))
    n += 1 - n % 2
    if max_images is not None and n > max_images:
        raise ValueError(
            f"a {path_length_a:.2f} Å path needs {n} images at {images_per_a} per Å, more than "
            f"max_images={max_images}; raise max_images or lower images_per_a"
        )
    return n


# --------------------------------------------------------------------------- stage documents
class HostSummary(BaseModel):
    """The host a band was cut from: the supercell relaxed (cell and positions) with its minimum
    check. Energies in eV."""

    formula: str
    n_atoms: int
    energy_per_atom_ev: float
    minimum: MinimumSummary | None = Field(
        None, description="What the minimum check found (None: not run)."
    )


class BarrierResult(BaseModel):
    """One NEB band of the campaign: what moved, its verdict and its barrier. Units in the field
    names. ``barrier_ev`` and the forward/backward barriers are None unless the band passed
    every check of :func:`assess_band` (``status`` and ``reasons`` say why not)."""

    species: str = Field(description="Element of the moving ions.")
    host_species: str = Field(description="Mobile species of the structure before any swap.")
    mechanism: str = Field(description="'vacancy' (one ion) or 'concerted' (two ions).")
    hop_label: int = Field(description="Symmetry-distinct hop class, 0 = shortest.")
    hop_length_a: float = Field(description="Minimum-image length of the hop i -> j, Å.")
    hop_multiplicity: int
    path_sites: list[int] = Field(description="Supercell sites along the path ([k,] i, j).")
    moving_indices: list[int] = Field(description="Indices of the moving ions in the images.")
    displacement_a: list[float] = Field(description="Straight distance each moving ion travels.")
    composition: str
    n_atoms: int
    supercell_scaling: list[int]
    status: Literal["valid", "flagged", "excluded"]
    reasons: list[str] = Field(default_factory=list)
    kind: Literal["single", "sequential"] = "single"
    barrier_ev: float | None = None
    forward_barrier_ev: float | None = None
    backward_barrier_ev: float | None = None
    reaction_energy_ev: float | None = None
    converged: bool = Field(description="Engine converged and climbing-image force ≤ fmax.")
    endpoints_converged: bool
    ends_are_lowest: bool = Field(description="No image below the end points (see profile).")
    start_minimum: MinimumSummary | None = None
    end_minimum: MinimumSummary | None = None
    end_from_symmetry: bool = Field(
        description="End point = symmetry image of the relaxed start (equivalent minima)."
    )
    host: HostSummary | None = None
    verdict: BandVerdict
    profile: BarrierProfile
    images: list[Structure] = Field(description="Final band incl. the relaxed end points.")
    neb_elapsed_s: float | None = None
    settings: dict[str, Any]
    engine: dict[str, Any]
    software: dict[str, str] = Field(default_factory=dict)


class BarrierTable(BaseModel):
    """All bands of the NEB stage, ready for the report."""

    rows: list[dict[str, Any]]
    engine: dict[str, Any]
    settings: dict[str, Any]
