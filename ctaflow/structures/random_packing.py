"""A disordered start for a melt: the atoms of a cell at random positions in the same cell.

A perfect crystal in a small periodic cell superheats: it has no surface or defect to melt from.
Measured on the demo's 40-atom Na3OCl cell at the crystal's density (NVT, 2 fs, Langevin): CHGNet
0.3.0 left the oxygen and chlorine atoms on their sites for 1.5 ps at 2000 K (their MSD
0.3-0.6 Å²) and began to melt them only after ~0.8 ps at 3000 K; the campaign-trained MACE
behaved alike and at 3000 K left its training data (closest pairs 0.74 Å). From random positions
both models gave a diffusing liquid at 2000 K (the same atoms' MSD 3.8 Å² after 0.6 ps with
CHGNet, 5.5 Å² after 1 ps with the MACE). Many melt–quench studies start from random positions
for this reason; the melt then equilibrates the liquid, and the stage's checks (melted,
amorphous, stable) judge the result.

Every pair of atoms is kept at least ``min_distance_fraction`` times the shortest distance of
that pair of elements in the input (its crystal): no two anions on top of each other, no cation
inside an anion. Units: Å.
"""

from __future__ import annotations

import itertools

import numpy as np
from pymatgen.core import Structure

from ctaflow.structures._common import element_symbol, moved

#: placements tried per atom before the packing is given up
MAX_TRIES = 20000


def pair_minima(structure: Structure, fraction: float, cutoff_a: float = 8.0) -> dict:
    """``{(A, B): fraction × shortest A–B distance}`` of ``structure`` (both orders; periodic
    images counted), Å. A pair of elements with no neighbours within ``cutoff_a`` gets
    ``fraction × cutoff_a``."""
    symbols = [element_symbol(site.specie) for site in structure]
    shortest: dict[tuple[str, str], float] = {}
    centre, neigh, _, dist = structure.get_neighbor_list(cutoff_a)
    for i, j, d in zip(centre, neigh, dist, strict=True):
        key = (symbols[int(i)], symbols[int(j)])
        if d > 1e-8 and d < shortest.get(key, np.inf):
            shortest[key] = float(d)
    elements = sorted(set(symbols))
    return {
        (a, b): fraction * shortest.get((a, b), cutoff_a)
        for a, b in itertools.product(elements, elements)
    }


def random_packing(structure: Structure, min_distance_fraction: float, seed: int) -> Structure:
    """The atoms of ``structure`` at uniformly random positions in its cell, placed one by one
    (largest exclusion first, random order among equals) where no pair is closer than
    :func:`pair_minima`; lattice, species and site properties of every atom kept, one provenance
    step added (``random_packing``; not the experimental structure).
    ``numpy.random.default_rng(seed)``: a seed gives the same cell on every machine. Raises
    ValueError when an atom finds no place (lower the fraction)."""
    if not 0 < min_distance_fraction < 1:
        raise ValueError(
            f"min_distance_fraction={min_distance_fraction}: a fraction of the crystal's "
            "shortest pair distances, between 0 and 1"
        )
    limits = pair_minima(structure, min_distance_fraction)
    symbols = [element_symbol(site.specie) for site in structure]
    lattice = structure.lattice
    rng = np.random.default_rng(seed)
    frac = np.zeros((len(structure), 3))
    placed: list[int] = []
    # the atoms that exclude the most space first (random order among equals): placed last, the
    # anions of a dense ionic cell often find no room left between the cations
    reach = np.array([max(limits[a, b] for a, b in limits if a == sym) for sym in symbols])
    order = sorted(rng.permutation(len(structure)), key=lambda i: -reach[i])
    for i in order:
        need = np.array([limits[symbols[i], symbols[j]] for j in placed])
        for _ in range(MAX_TRIES):
            trial = rng.random(3)
            if not placed or (lattice.get_all_distances(trial, frac[placed])[0] >= need).all():
                frac[i] = trial
                placed.append(int(i))
                break
        else:
            raise ValueError(
                f"random packing of {structure.composition.reduced_formula} "
                f"({len(structure)} atoms, {structure.volume:.0f} Å³) found no place for atom "
                f"{int(i)} ({symbols[i]}) after {MAX_TRIES} tries with pairs at least "
                f"{min_distance_fraction:g} × the crystal's shortest distances: lower "
                "stages.amorphous.random_min_distance_fraction"
            )
    step = {
        "step": "random_packing",
        "min_distance_fraction": min_distance_fraction,
        "seed": seed,
        "note": "random positions in the crystal's cell: the start of a melt, not a crystal",
    }
    return moved(structure, frac, step)
