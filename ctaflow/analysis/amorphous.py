"""Melt–quench checks and amorphous-vs-crystalline energies (pure functions + schemas).

Units: energies in eV (per atom where the name says so, meV/atom for differences), lengths in Å,
MSD in Å².

Checks on every melt–quench sample
----------------------------------
* **melted**: the mean squared displacement of the network-former atoms (e.g. Si in a silicate;
  by default the atoms of site class ``framework``) accumulated over the melt and hold segments,
  ``MSD = ⟨|Σ_segments (r_end − r_start)|²⟩``, must reach ``min_msd_a2`` (a melt from random
  positions counts from the middle of the melt: its first half lets the random start collapse
  into a liquid, and that collapse is no diffusion). A solid only
  vibrates (MSD of a few 0.01 Å² at room temperature, ~0.1–0.5 Å² when hot); a melt lets the
  network formers leave their sites.
* **amorphous**: the long-range order left after quench and relaxation, measured by the
  structure factor of the network formers at the crystal's Bragg reflections. With
  ``ρ(h) = Σ_j exp(2πi h·f_j)`` over fractional coordinates ``f_j`` of the (super)cell,
  ``S(h) = |ρ(h)|² / N``; the order parameter is ``Σ_h S_glass(h) / Σ_h S_crystal(h)`` over the
  ``n_reflections`` strongest reflections of the crystal. A crystal (even with thermal noise)
  gives ≈ 1, a structure with no long-range order ≈ 1/N on average. Fractional coordinates
  make the measure indifferent to the small cell change of the final relaxation.
* **stable**: no pair of atoms closer than the overlap limit of structure validation, and the mean
  temperature of the hold segment within a factor two of the target.

The radial distribution function of the glass and of the crystal is recorded beside the checks.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field
from pymatgen.core import Composition, Structure

from ctaflow.analysis.active_learning import TrustCheck
from ctaflow.structures.validate import closest_distance, closest_overlap

SampleStatus = Literal["ok", "not melted", "not amorphous", "unstable", "failed"]


class RDF(BaseModel):
    """Total radial distribution function g(r) (all pairs), bins of ``dr_a`` from 0."""

    r_a: list[float] = Field(description="Bin centres, Å.")
    g: list[float]


class MeltQuenchChecks(BaseModel):
    """The recorded checks of one melt–quench sample (see module docstring)."""

    network_species: list[str]
    melt_msd_a2: float | None = Field(description="Network-former MSD over melt + hold, Å².")
    min_msd_a2: float = Field(description="Threshold for 'melted', Å².")
    melted: bool | None
    long_range_order: float | None = Field(
        description="Bragg structure-factor ratio glass/crystal (≈1 crystal, ≈1/N disordered)."
    )
    max_long_range_order: float = Field(description="Threshold for 'amorphous'.")
    amorphous: bool | None
    hold_mean_temperature_k: float | None = None
    closest_pair_a: float | None = Field(None, description="Shortest interatomic distance, Å.")
    stable: bool | None
    rdf_glass: RDF | None = None
    rdf_crystal: RDF | None = None


class SampleAttempt(BaseModel):
    """An attempt of a sample that failed a check and was made again with another seed."""

    seed: int
    status: SampleStatus
    reason: str = ""


class AmorphousSample(BaseModel):
    """One melt–quench sample of one composition."""

    index: int
    seed: int
    status: SampleStatus
    reason: str = ""
    energy_ev: float | None = None
    energy_per_atom_ev: float | None = None
    delta_e_mev_per_atom: float | None = Field(
        None, description="E_amorphous − E_crystalline, meV/atom (same engine, same atoms)."
    )
    relax_converged: bool | None = None
    max_force_ev_per_a: float | None = None
    volume_per_atom_a3: float | None = None
    structure: Structure | None = Field(None, description="Relaxed amorphous cell.")
    checks: MeltQuenchChecks | None = None
    trust: TrustCheck | None = Field(
        None,
        description="Committee force deviation over the melt, hold and quench (the worst "
        "segment), when the engine has a committee.",
    )
    attempts: list[SampleAttempt] = Field(
        default_factory=list,
        description="Earlier attempts of this sample, each failed a check and was replaced "
        "(setting sample_retries); this one is the last.",
    )


class DeltaEStats(BaseModel):
    """ΔE = E_amorphous − E_crystalline over the samples that passed every check, meV/atom."""

    n_samples: int
    mean_mev_per_atom: float | None
    stderr_mev_per_atom: float | None = Field(description="Sample std (ddof 1) / √n; None if n<2.")
    min_mev_per_atom: float | None
    max_mev_per_atom: float | None
    n_below_crystal: int = Field(description="Samples lower in energy than the crystal.")


def network_species(structure: Structure, species: Sequence[str] | None = None) -> list[str]:
    """Elements whose atoms count as network formers.

    ``species`` if given; else the elements of the sites of class ``framework`` (site property
    ``site_class``); else every element but the most abundant one. Raises if none remain.
    """
    present = {el.symbol for el in structure.composition.elements}
    if species:
        missing = sorted(set(species) - present)
        if missing:
            raise ValueError(
                f"network species {missing} are not in {structure.composition.reduced_formula}; "
                f"choose from {sorted(present)}"
            )
        return sorted(species)
    classes = structure.site_properties.get("site_class")
    if classes is not None:
        found = {
            s.specie.symbol for s, c in zip(structure, classes, strict=True) if c == "framework"
        }
        if found:
            return sorted(found)
    counts = structure.composition.element_composition.get_el_amt_dict()
    most = max(counts, key=counts.get)
    rest = sorted(present - {most})
    if not rest:
        raise ValueError("a single-element structure has no network formers to check")
    return rest


def _indices(structure: Structure, species: Sequence[str]) -> np.ndarray:
    wanted = set(species)
    return np.array([i for i, s in enumerate(structure) if s.specie.symbol in wanted], dtype=int)


def accumulated_msd(segments: Sequence[np.ndarray], indices: Sequence[int] | np.ndarray) -> float:
    """MSD (Å²) of atoms ``indices`` over consecutive segments of unwrapped positions.

    Each segment is an array ``(n_frames, n_atoms, 3)`` of positions continuous in time; the
    displacement of an atom is the sum over segments of (last − first frame), so the segments may
    be stored separately (a jump between the end of one and the start of the next, such as a
    wrap into the cell, does not count).
    """
    idx = np.asarray(indices, dtype=int)
    if idx.size == 0:
        raise ValueError("no atoms to measure the MSD of")
    total = sum(np.asarray(seg)[-1, idx] - np.asarray(seg)[0, idx] for seg in segments)
    return float(np.mean(np.sum(np.asarray(total) ** 2, axis=1)))


def structure_factor(frac: np.ndarray, reflections: np.ndarray) -> np.ndarray:
    """``S(h) = |Σ_j exp(2πi h·f_j)|² / N`` for integer reflections ``h`` (rows)."""
    phase = 2j * np.pi * np.asarray(reflections, dtype=float) @ np.asarray(frac, dtype=float).T
    return np.abs(np.exp(phase).sum(axis=1)) ** 2 / len(frac)


def bragg_order(
    crystal: Structure,
    glass: Structure,
    species: Sequence[str],
    n_reflections: int = 12,
    h_max: int = 4,
) -> float:
    """Long-range order left in ``glass`` relative to ``crystal`` (see module docstring).

    Both cells must hold the same atoms of ``species`` in the same order (the glass was made from
    the crystal cell). The ``n_reflections`` strongest non-zero reflections of the crystal with
    ``|h_i| ≤ h_max`` are used (Friedel pairs counted once).
    """
    ci, gi = _indices(crystal, species), _indices(glass, species)
    if len(ci) != len(gi) or len(ci) == 0:
        raise ValueError(
            f"crystal and glass hold different numbers of {list(species)} atoms "
            f"({len(ci)} vs {len(gi)})"
        )
    grid = np.array(
        [
            h
            for h in itertools.product(range(-h_max, h_max + 1), repeat=3)
            if h > (0, 0, 0)  # one of each Friedel pair, no (0, 0, 0)
        ]
    )
    s_crystal = structure_factor(crystal.frac_coords[ci], grid)
    strongest = np.argsort(-s_crystal, kind="stable")[:n_reflections]
    s_glass = structure_factor(glass.frac_coords[gi], grid[strongest])
    return float(s_glass.sum() / s_crystal[strongest].sum())


def radial_distribution(structure: Structure, r_max_a: float = 6.0, dr_a: float = 0.1) -> RDF:
    """Total g(r) of a periodic structure: pair counts per shell over the ideal-gas count."""
    n = len(structure)
    edges = np.arange(0.0, r_max_a + dr_a / 2, dr_a)
    _, _, _, dist = structure.get_neighbor_list(r_max_a)
    counts, _ = np.histogram(dist, bins=edges)
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    density = n / structure.volume
    g = counts / (n * density * shell)
    return RDF(r_a=((edges[1:] + edges[:-1]) / 2).round(6).tolist(), g=g.round(6).tolist())


def sample_status(checks: MeltQuenchChecks) -> tuple[SampleStatus, str]:
    """The status of a sample from its checks, with the reason when it is excluded."""
    if checks.stable is False:
        return "unstable", (
            f"unstable MD: closest pair {checks.closest_pair_a:.2f} Å, hold mean temperature "
            f"{checks.hold_mean_temperature_k:.0f} K"
        )
    if checks.melted is False:
        return "not melted", (
            f"network-former MSD {checks.melt_msd_a2:.3g} Å² < {checks.min_msd_a2:g} Å²: the melt "
            "did not melt (raise melt_temperature_k or melt_ps)"
        )
    if checks.amorphous is False:
        return "not amorphous", (
            f"long-range order {checks.long_range_order:.3g} > {checks.max_long_range_order:g}: "
            "the quenched cell kept the crystal's order"
        )
    return "ok", ""


def delta_e_stats(
    crystal_energy_per_atom_ev: float, sample_energies_per_atom_ev: Sequence[float]
) -> DeltaEStats:
    """Mean, standard error, min and max of ΔE = E_am − E_cr in meV/atom."""
    delta = np.asarray(sample_energies_per_atom_ev, dtype=float) - crystal_energy_per_atom_ev
    delta *= 1000.0
    n = len(delta)
    if n == 0:
        return DeltaEStats(
            n_samples=0,
            mean_mev_per_atom=None,
            stderr_mev_per_atom=None,
            min_mev_per_atom=None,
            max_mev_per_atom=None,
            n_below_crystal=0,
        )
    return DeltaEStats(
        n_samples=n,
        mean_mev_per_atom=float(delta.mean()),
        stderr_mev_per_atom=float(delta.std(ddof=1) / np.sqrt(n)) if n > 1 else None,
        min_mev_per_atom=float(delta.min()),
        max_mev_per_atom=float(delta.max()),
        n_below_crystal=int((delta < 0).sum()),
    )


def ground_state_warning(stats: DeltaEStats, engine: str) -> str | None:
    """Plain words when the crystal is not below its own amorphous samples, else None."""
    if stats.n_samples == 0 or stats.n_below_crystal == 0:
        return None
    if stats.mean_mev_per_atom is not None and stats.mean_mev_per_atom < 0:
        return (
            f"the crystalline reference lies above its amorphous samples on average "
            f"({stats.mean_mev_per_atom:.1f} meV/atom): with {engine} this crystal is not a good "
            "ground state (or the structure is wrong); ΔE here is not a finding"
        )
    return (
        f"{stats.n_below_crystal} of {stats.n_samples} amorphous samples lie below the "
        f"crystalline reference with {engine}: the crystal may not be this engine's ground state"
    )


def formation_energy_per_atom(
    energy_ev: float, composition: Composition | str, chemical_potentials_ev: dict[str, float]
) -> float:
    """``(E − Σ_el n_el μ_el) / N`` in eV/atom; ``μ_el`` = energy per atom of the element's
    reference. Raises if an element has no reference."""
    comp = Composition(composition)
    missing = sorted(el.symbol for el in comp.elements if el.symbol not in chemical_potentials_ev)
    if missing:
        raise ValueError(f"no elemental reference energy for {missing}")
    ref = sum(
        amt * chemical_potentials_ev[el.symbol] for el, amt in comp.element_composition.items()
    )
    return float((energy_ev - ref) / comp.num_atoms)


def checks_from_runs(
    crystal: Structure,
    glass: Structure | None,
    melt_positions: Sequence[np.ndarray],
    hold_mean_temperature_k: float | None,
    melt_temperature_k: float,
    species: Sequence[str],
    min_msd_a2: float,
    max_long_range_order: float,
) -> MeltQuenchChecks:
    """All checks of one sample from its runs (positions of the melt and hold segments)."""
    idx = _indices(crystal, species)
    msd = accumulated_msd(melt_positions, idx) if melt_positions else None
    lro = bragg_order(crystal, glass, species) if glass is not None else None
    overlap = closest_overlap(glass) if glass is not None else None
    closest = closest_distance(glass) if glass is not None else None
    hot_ok = hold_mean_temperature_k is None or (
        0.5 * melt_temperature_k <= hold_mean_temperature_k <= 2.0 * melt_temperature_k
    )
    return MeltQuenchChecks(
        network_species=list(species),
        melt_msd_a2=msd,
        min_msd_a2=min_msd_a2,
        melted=None if msd is None else msd >= min_msd_a2,
        long_range_order=lro,
        max_long_range_order=max_long_range_order,
        amorphous=None if lro is None else lro <= max_long_range_order,
        hold_mean_temperature_k=hold_mean_temperature_k,
        closest_pair_a=closest,
        stable=None if glass is None else (overlap is None and hot_ok),
        rdf_glass=radial_distribution(glass) if glass is not None else None,
        rdf_crystal=radial_distribution(crystal),
    )


class ElementReference(BaseModel):
    """Energy per atom of an element's reference with the stage's engine (or why there is none)."""

    element: str
    energy_per_atom_ev: float | None = None
    converged: bool | None = None
    provenance: dict[str, Any] = Field(default_factory=dict)


class AmorphousCompositionResult(BaseModel):
    """Melt–quench samples and crystalline reference of one composition. Units in the names."""

    x: float | None = Field(description="Substituted fraction of the series (None: no series).")
    substitution: str | None = Field(None, description="e.g. 'Na->Li' (the series).")
    formula: str = Field(description="Reduced formula of the composition.")
    n_atoms: int | None = None
    crystal_energy_per_atom_ev: float | None = None
    crystal_converged: bool | None = None
    crystal_is_minimum: bool | None = Field(
        None, description="The crystalline reference passed its minimum check (None: not run)."
    )
    crystal_volume_per_atom_a3: float | None = None
    samples: list[AmorphousSample]
    n_requested: int
    n_failed: int = Field(description="Samples excluded (failed, unstable, not melted/amorphous).")
    n_retried: int = Field(
        0,
        description="Attempts that failed a check and were made again with a new seed "
        "(setting sample_retries); each is in the warnings and in its sample's attempts.",
    )
    delta_e: DeltaEStats
    warnings: list[str] = Field(default_factory=list)
    formation_energy_crystal_ev_per_atom: float | None = None
    formation_energy_amorphous_ev_per_atom: float | None = Field(
        None, description="Mean over included samples."
    )
    formation_energy_note: str = ""
    elemental_references: list[ElementReference] = Field(default_factory=list)
    melt: dict[str, Any] = Field(description="Melt–quench settings used (K, ps, K/ps).")
    engine: dict[str, Any] = Field(default_factory=dict)
    software: dict[str, str] = Field(default_factory=dict)
