"""Which ions sit on which sites, frame by frame (ion-exchange tracking)."""

from __future__ import annotations

from collections import Counter

import numpy as np
from pydantic import BaseModel, Field


class SiteOccupancy(BaseModel):
    """Counts of ions of each species on each site class, per frame."""

    times_fs: list[float]
    site_classes: list[str]
    counts: dict[str, dict[str, list[int]]] = Field(
        description="counts[species][site_class][frame]; site_class 'none' = farther than the "
        "cutoff from every reference site."
    )
    cutoff_a: float


def assign_sites(
    positions_a: np.ndarray,
    cell_a: np.ndarray,
    site_positions_a: np.ndarray,
    cutoff_a: float,
) -> np.ndarray:
    """Index of the nearest reference site (minimum image) of each atom, −1 beyond ``cutoff_a``.

    ``positions_a`` (n_atoms, 3) and ``site_positions_a`` (n_sites, 3) are Cartesian, Å;
    ``cell_a`` has the cell vectors as rows.
    """
    inv = np.linalg.inv(cell_a)
    d = positions_a[:, None, :] - site_positions_a[None, :, :]
    frac = d @ inv
    frac -= np.round(frac)
    dist = np.linalg.norm(frac @ cell_a, axis=-1)
    nearest = np.argmin(dist, axis=1)
    return np.where(dist[np.arange(len(nearest)), nearest] <= cutoff_a, nearest, -1)


def track_site_occupancy(
    positions_a: np.ndarray,
    cells_a: np.ndarray,
    species: list[str],
    site_positions_a: np.ndarray,
    site_classes: list[str],
    times_fs: np.ndarray,
    cutoff_a: float = 1.2,
    track: set[str] | None = None,
) -> SiteOccupancy:
    """Per frame, count ions of each species (or only ``track``) on each site class.

    Reference sites are fixed Cartesian positions (e.g. the mobile/pillar Na sites of the
    starting structure); ions are assigned to the nearest one within ``cutoff_a``.
    """
    chosen = [i for i, s in enumerate(species) if track is None or s in track]
    classes = sorted(set(site_classes))
    labels = np.array([*site_classes, "none"])
    counts: dict[str, dict[str, list[int]]] = {
        sp: {c: [] for c in [*classes, "none"]} for sp in sorted({species[i] for i in chosen})
    }
    for frame in range(len(positions_a)):
        idx = assign_sites(positions_a[frame, chosen], cells_a[frame], site_positions_a, cutoff_a)
        tally = Counter(zip([species[i] for i in chosen], labels[idx], strict=True))
        for sp, per_class in counts.items():
            for c in per_class:
                per_class[c].append(int(tally.get((sp, c), 0)))
    return SiteOccupancy(
        times_fs=[float(t) for t in times_fs],
        site_classes=classes,
        counts=counts,
        cutoff_a=cutoff_a,
    )
