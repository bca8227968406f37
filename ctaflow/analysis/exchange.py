"""Ion exchange across an electrolyte | electrolyte interface, frame by frame.

For a stack made by :func:`ctaflow.structures.exchange.stacked_exchange_cell` (block A Na-rich,
block B Li-rich): how many Li sit on the **former Na sites of block A**, split into their site
classes (``mobile`` / ``pillar``), and how far the framework of the whole cell has moved from its
initial sites. Sites are the initial Cartesian positions; an ion counts on a site when it is the
nearest site within ``cutoff_a`` (:func:`ctaflow.analysis.sites.track_site_occupancy`). The
framework disorder is the mean minimum-image displacement of the framework atoms from their
initial positions after removing the framework's own centre-of-mass drift.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from ctaflow.analysis.sites import track_site_occupancy


class ExchangeSeries(BaseModel):
    """Time series of Li on the former Na sites of the Na-rich block. Times in fs, lengths Å."""

    times_fs: list[float]
    li_on_sites: dict[str, list[int]] = Field(
        description="li_on_sites[site_class][frame]: Li on former Na sites of that class "
        "(block A); 'none' = Li on no such site."
    )
    na_on_sites: dict[str, list[int]] = Field(
        description="na_on_sites[site_class][frame]: Na still (or again) on them."
    )
    n_sites: dict[str, int] = Field(description="Former Na sites of block A per site class.")
    framework_mean_displacement_a: list[float] = Field(
        description="Mean displacement of framework atoms from their initial sites, Å."
    )
    cutoff_a: float
    notes: list[str] = Field(default_factory=list)


def framework_displacement(
    positions_a: np.ndarray, cells_a: np.ndarray, framework: np.ndarray
) -> np.ndarray:
    """Per frame, the mean minimum-image displacement (Å) of the ``framework`` atoms from frame
    0, after removing their mean (centre-of-mass-like) drift."""
    out = []
    ref = positions_a[0, framework]
    for pos, cell in zip(positions_a, cells_a, strict=True):
        d = pos[framework] - ref
        frac = d @ np.linalg.inv(cell)
        frac -= np.round(frac)
        d = frac @ cell
        d -= d.mean(axis=0)
        out.append(float(np.linalg.norm(d, axis=1).mean()))
    return np.asarray(out)


def exchange_series(
    positions_a: np.ndarray,
    cells_a: np.ndarray,
    times_fs: np.ndarray,
    site_properties: dict[str, list[Any]],
    species: list[str],
    cutoff_a: float = 1.2,
) -> ExchangeSeries:
    """The :class:`ExchangeSeries` of a trajectory of the stacked cell.

    ``site_properties`` are those of the initial stack (``block``, ``host_species``,
    ``site_class``); ``species`` the element of every atom. Reference sites: atoms of block A
    whose ``host_species`` is Na, at their frame-0 positions.
    """
    block = site_properties["block"]
    host = site_properties["host_species"]
    classes = site_properties["site_class"]
    sites = [i for i in range(len(species)) if block[i] == "A" and host[i] == "Na"]
    if not sites:
        raise ValueError("block A has no former Na sites: stack the Na-rich member first")
    site_classes = [str(classes[i]) for i in sites]
    occupancy = track_site_occupancy(
        positions_a,
        cells_a,
        species,
        positions_a[0, sites],
        site_classes,
        times_fs,
        cutoff_a=cutoff_a,
        track={"Li", "Na"},
    )
    empty = {c: [0] * len(times_fs) for c in [*occupancy.site_classes, "none"]}
    framework = np.array([i for i, c in enumerate(classes) if c == "framework"], dtype=int)
    disorder = (
        framework_displacement(positions_a, cells_a, framework)
        if len(framework)
        else np.zeros(len(times_fs))
    )
    notes = []
    if not len(framework):
        notes.append("no framework sites (site_class 'framework'): disorder not measured")
    return ExchangeSeries(
        times_fs=[float(t) for t in times_fs],
        li_on_sites=occupancy.counts.get("Li", empty),
        na_on_sites=occupancy.counts.get("Na", empty),
        n_sites={c: site_classes.count(c) for c in sorted(set(site_classes))},
        framework_mean_displacement_a=[float(x) for x in disorder],
        cutoff_a=cutoff_a,
        notes=notes,
    )


class ExchangeResult(BaseModel):
    """Ion exchange across a Na-rich | Li-rich stack during one MD run."""

    first_composition: str = Field(description="Block A (bottom, Na-rich), reduced formula.")
    second_composition: str = Field(description="Block B (top, Li-rich), reduced formula.")
    n_atoms: int
    temperature_k: float
    duration_ps: float
    md_mean_temperature_k: float
    series: ExchangeSeries
    final_li_on_sites: dict[str, int] = Field(description="Last frame of series.li_on_sites.")
    final_framework_displacement_a: float
    engine: dict[str, Any]
    settings: dict[str, Any]
    software: dict[str, str] = Field(default_factory=dict)
