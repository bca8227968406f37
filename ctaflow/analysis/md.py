"""Molecular-dynamics results: per-segment statistics with units (pure functions + schema)."""

from __future__ import annotations

from typing import Any

import numpy as np
from ase import units
from pydantic import BaseModel, Field
from pymatgen.core import Structure

from ctaflow.analysis.chunks import TrajectoryChunk

AMU_PER_A3_TO_G_PER_CM3 = 1.66053906660  # 1 amu/Å³ = 1.66054 g/cm³
K_B_EV_PER_K = 8.617333262e-5


class MDResult(BaseModel):
    """One MD segment. Temperatures in K, pressures in GPa, times in fs/ps, volumes in Å³."""

    segment: str = Field(description="Protocol segment, e.g. equilibrate, cool, production.")
    ensemble: str = Field(description="nvt or npt.")
    thermostat: str = Field(description="Integrator / thermostat used.")
    temperature_start_k: float
    temperature_end_k: float
    pressure_gpa: float | None = Field(None, description="Target pressure (NPT), GPa.")
    timestep_fs: float
    n_steps: int
    sample_every: int = Field(description="Steps between stored frames.")
    n_frames: int
    duration_ps: float
    seed: int = Field(description="Seed of initial velocities and stochastic forces.")
    mean_temperature_k: float
    std_temperature_k: float
    mean_pressure_gpa: float | None = Field(
        None, description="Mean of −tr(σ)/3 including the kinetic part, GPa."
    )
    mean_volume_a3: float
    final_volume_a3: float
    total_energy_slope_ev_per_atom_per_ps: float | None = Field(
        None,
        description="Slope of potential + kinetic energy: the drift for NVE segments; under a "
        "thermostat/barostat the bath exchanges energy, so it is not a drift there.",
    )
    mean_density_g_per_cm3: float
    final_structure: Structure = Field(
        description="Last frame; site property 'velocities' (ASE units) continues the run."
    )
    trajectory: list[TrajectoryChunk] = Field(
        description="Chunked frames (data store); join with analysis.chunks.join_chunks."
    )
    engine: dict[str, Any] = Field(default_factory=dict)
    software: dict[str, str] = Field(default_factory=dict)


def md_statistics(arrays: dict[str, np.ndarray], total_mass_amu: float) -> dict[str, Any]:
    """Mean/std temperature, mean pressure, volume and density of a set of frames."""
    volumes = np.abs(np.linalg.det(arrays["cells_a"]))
    stats: dict[str, Any] = {
        "mean_temperature_k": float(np.mean(arrays["temperatures_k"])),
        "std_temperature_k": float(np.std(arrays["temperatures_k"])),
        "mean_volume_a3": float(volumes.mean()),
        "final_volume_a3": float(volumes[-1]),
        "mean_density_g_per_cm3": float(
            np.mean(total_mass_amu / volumes) * AMU_PER_A3_TO_G_PER_CM3
        ),
        "mean_pressure_gpa": None,
    }
    if "energies_ev" in arrays and len(arrays["energies_ev"]) > 2 and "times_fs" in arrays:
        n_atoms = arrays["positions_a"].shape[1] if "positions_a" in arrays else 1
        kinetic = 1.5 * n_atoms * K_B_EV_PER_K * np.asarray(arrays["temperatures_k"])
        total = (np.asarray(arrays["energies_ev"]) + kinetic) / n_atoms
        slope = np.polyfit(np.asarray(arrays["times_fs"]) / 1000.0, total, 1)[0]
        stats["total_energy_slope_ev_per_atom_per_ps"] = float(slope)
    if "stresses_gpa" in arrays:
        traces = np.trace(arrays["stresses_gpa"], axis1=1, axis2=2)
        stats["mean_pressure_gpa"] = float(np.mean(-traces / 3.0))
    return stats


def voigt_to_matrix(voigt: np.ndarray) -> np.ndarray:
    """(n, 6) Voigt [xx, yy, zz, yz, xz, xy] → (n, 3, 3)."""
    v = np.asarray(voigt, dtype=float).reshape(-1, 6)
    m = np.empty((len(v), 3, 3))
    m[:, 0, 0], m[:, 1, 1], m[:, 2, 2] = v[:, 0], v[:, 1], v[:, 2]
    m[:, 1, 2] = m[:, 2, 1] = v[:, 3]
    m[:, 0, 2] = m[:, 2, 0] = v[:, 4]
    m[:, 0, 1] = m[:, 1, 0] = v[:, 5]
    return m


def final_structure(arrays: dict[str, np.ndarray], initial: Structure) -> Structure:
    """Last frame with the initial structure's site properties and (if known) velocities."""
    final = Structure(
        arrays["cells_a"][-1],
        initial.species,
        arrays["positions_a"][-1],
        coords_are_cartesian=True,
        site_properties=dict(initial.site_properties),
        properties=dict(initial.properties or {}),
    )
    if "velocities_a_per_fs" in arrays:
        final.add_site_property(
            "velocities", (arrays["velocities_a_per_fs"][-1] / units.fs).tolist()
        )
    return final
