"""The transport stage on a stored MD segment: a random walk of known D, end to end through the
MDResult document (chunks, site classes) and kinisi."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from ctaflow.analysis.chunks import chunk_trajectory
from ctaflow.analysis.md import MDResult
from ctaflow.analysis.transport_summary import analyse_production, mobile_species

SETTINGS = {
    "by_site_class": True,
    "fit_start_ps": 2.0,
    "fit_end_ps": None,
    "collective": False,
    "n_samples": 200,
    "n_walkers": 16,
    "seed": 0,
}


def walk_md(
    d_cm2_per_s: float,
    n_frames=400,
    dt_fs=10.0,
    seed=0,
    temperature_k: float = 600.0,
    rattle_a: float = 0.1,
) -> MDResult:
    """16 Li walking with diffusivity D (mobile), 16 Li fixed (pillar), 16 O fixed (framework);
    the fixed ones rattle with ``rattle_a`` Å per axis (0: exactly still)."""
    rng = np.random.default_rng(seed)
    lattice = Lattice.cubic(12.0)
    n = 48
    start = rng.uniform(0, 12.0, size=(n, 3))
    sigma = np.sqrt(2 * d_cm2_per_s * 1e16 / 1e15 * dt_fs)  # Å per axis per frame: 2 D dt
    steps = np.zeros((n_frames, n, 3))
    steps[1:, :16] = rng.normal(0, sigma, size=(n_frames - 1, 16, 3))
    positions = start + np.cumsum(steps, axis=0)
    positions[:, 16:] += rng.normal(0, rattle_a, size=(n_frames, n - 16, 3))  # thermal rattling
    arrays = {
        "positions_a": positions,
        "cells_a": np.repeat(lattice.matrix[None], n_frames, axis=0),
        "temperatures_k": np.full(n_frames, temperature_k),
        "times_fs": np.arange(n_frames) * dt_fs,
    }
    classes = ["mobile"] * 16 + ["pillar"] * 16 + ["framework"] * 16
    final = Structure(
        lattice,
        ["Li"] * 32 + ["O"] * 16,
        positions[-1],
        coords_are_cartesian=True,
        site_properties={"site_class": classes},
    )
    return MDResult(
        segment=f"production {temperature_k:g} K",
        ensemble="nvt",
        thermostat="test",
        temperature_start_k=temperature_k,
        temperature_end_k=temperature_k,
        timestep_fs=dt_fs,
        n_steps=n_frames - 1,
        sample_every=1,
        n_frames=n_frames,
        duration_ps=(n_frames - 1) * dt_fs / 1000,
        seed=seed,
        mean_temperature_k=temperature_k,
        std_temperature_k=0,
        mean_volume_a3=1728,
        final_volume_a3=1728,
        mean_density_g_per_cm3=1.0,
        final_structure=final,
        trajectory=chunk_trajectory(arrays),
    )


def test_mobile_species_from_site_classes():
    md = walk_md(1e-5)
    assert mobile_species(md.final_structure) == ["Li"]


def test_known_diffusivity_is_recovered_per_site_class():
    d_true = 1e-5  # cm²/s: sigma = sqrt(2 · 1e-5 · 10 Å²/fs... ) per axis per 10 fs frame
    summary = analyse_production(walk_md(d_true), None, SETTINGS)
    by_class = {r.site_class: r for r in summary.results}
    assert set(by_class) == {None, "mobile", "pillar"}  # all Li, the walkers, the fixed ones
    mobile = by_class["mobile"]
    assert abs(mobile.diffusivity_cm2_per_s - d_true) < 3 * mobile.diffusivity_std_cm2_per_s
    assert mobile.diffusivity_cm2_per_s == pytest.approx(d_true, rel=0.35)
    # half the Li do not move: the all-Li D is about half, the pillar D about zero
    assert by_class[None].diffusivity_cm2_per_s == pytest.approx(d_true / 2, rel=0.4)
    assert by_class["pillar"].diffusivity_cm2_per_s < 0.05 * d_true
    assert any("have not left their sites" in note for note in by_class["pillar"].notes)
    assert not any("have not left their sites" in note for note in mobile.notes)
    assert summary.temperature_k == 600 and len(summary.msd) == 3
