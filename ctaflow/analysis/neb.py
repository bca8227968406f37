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

from itertools import pairwise
from typing import Any

import numpy as np
from pydantic import BaseModel, Field
from pymatgen.core import Structure


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


class BarrierResult(BaseModel):
    """One NEB band of the campaign: what moved, and its barrier. Units in the field names."""

    species: str = Field(description="Element of the moving ions.")
    host_species: str = Field(description="Mobile species of the structure before any swap.")
    mechanism: str = Field(description="'vacancy' (one ion) or 'concerted' (two ions).")
    hop_label: int = Field(description="Symmetry-distinct hop class, 0 = shortest.")
    hop_length_a: float
    hop_multiplicity: int
    path_sites: list[int] = Field(description="Supercell sites along the path ([k,] i, j).")
    moving_indices: list[int] = Field(description="Indices of the moving ions in the images.")
    displacement_a: list[float] = Field(description="Straight distance each moving ion travels.")
    composition: str
    n_atoms: int
    supercell_scaling: list[int]
    forward_barrier_ev: float
    backward_barrier_ev: float
    reaction_energy_ev: float
    converged: bool
    endpoints_converged: bool
    ends_are_lowest: bool = Field(description="No image below the end points (see profile).")
    end_from_symmetry: bool = Field(
        description="End point = symmetry image of the relaxed start (equivalent minima)."
    )
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
