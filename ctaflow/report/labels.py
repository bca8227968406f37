"""Human-readable column headers with units, from the field names.

Field names carry their unit as a suffix (``barrier_ev``, ``gamma_j_per_m2``); :func:`label` turns
one into a header such as "barrier (eV)" or "γ (J/m²)". The quantity comes from :data:`NAMES`
(explicit labels for the stems that have a usual symbol) or, failing that, from the stem with its
underscores as spaces; the unit from :data:`UNITS` (the longest matching suffix). A field that
needs more than that gets a whole label in :data:`LABELS`. One mapping for every report table,
``ctaflow compare`` and the query table.
"""

from __future__ import annotations

#: unit suffix of a field name → unit as printed; the longest matching suffix wins
UNITS: dict[str, str] = {
    "ev": "eV",
    "mev": "meV",
    "ev_per_atom": "eV/atom",
    "mev_per_atom": "meV/atom",
    "ev_per_a": "eV/Å",
    "mev_per_a": "meV/Å",
    "ev_per_atom_per_ps": "eV/atom/ps",
    "ev_per_a3": "eV/Å³",
    "a": "Å",
    "a2": "Å²",
    "a3": "Å³",
    "a_per_fs": "Å/fs",
    "k": "K",
    "ps": "ps",
    "fs": "fs",
    "s": "s",
    "gpa": "GPa",
    "kbar": "kbar",
    "s_per_cm": "S/cm",
    "cm2_per_s": "cm²/s",
    "j_per_m2": "J/m²",
    "g_per_cm3": "g/cm³",
    "pct": "%",
    "k_per_ps": "K/ps",
}

#: stem (the field name without its unit suffix) → quantity as printed
NAMES: dict[str, str] = {
    "delta_e_amorphous_minus_crystalline": "ΔE amorphous − crystalline",
    "delta_e_stderr": "ΔE std. error",
    "delta_e_min": "ΔE min",
    "delta_e_max": "ΔE max",
    "delta_e": "ΔE",
    "diffusivity": "D",
    "diffusivity_std": "D ± (1σ)",
    "conductivity": "σ",
    "conductivity_std": "σ ± (1σ)",
    "activation_energy": "Ea",
    "activation_energy_std": "Ea ± (1σ)",
    "gamma": "γ",
    "gamma_as_built": "γ as built",
    "forward_barrier": "barrier forward",
    "backward_barrier": "barrier backward",
    "spline_forward_barrier": "barrier forward (spline)",
    "reaction_energy": "reaction energy",
    "max_force_highest_image": "max force, highest image",
    "max_force": "max force",
    "fmax_target": "fmax target",
    "energy_per_atom": "E per atom",
    "initial_energy_per_atom": "initial E per atom",
    "crystal_energy_per_atom": "E crystal per atom",
    "formation_energy_crystal": "formation E crystal",
    "formation_energy_amorphous": "formation E amorphous",
    "rmse_energy": "RMSE energy",
    "rmse_force": "RMSE force",
    "rmse_energy_all": "RMSE energy (all)",
    "rmse_force_all": "RMSE force (all)",
    "test_rmse_force": "test RMSE force",
    "test_rmse_energy": "test RMSE energy",
    "deviation_mean": "σ_F mean",
    "deviation_max": "σ_F max",
    "mean_temperature": "mean T",
    "std_temperature": "T std",
    "temperature": "T",
    "temperature_start": "T start",
    "temperature_end": "T end",
    "mean_pressure": "mean P",
    "mean_density": "mean density",
    "total_energy_slope": "E total drift",
    "hop_length": "hop length",
    "md_duration": "MD duration",
    "msd_loglog_exponent": "MSD log–log slope",
    "haven_ratio_assumed": "Haven ratio (assumed)",
    "li_fraction": "Li fraction",
    "n_atoms": "atoms",
    "n_images": "images",
    "n_samples": "samples used",
    "n_requested": "samples requested",
    "n_failed": "failed",
    "n_retried": "retried",
    "n_train": "training frames",
    "n_test_frames": "test frames",
    "n_frames": "frames",
    "n_selected": "selected",
    "n_accurate": "below window",
    "n_candidate": "in window",
    "fraction_above_lower": "fraction ≥ lower",
    "neb_elapsed": "NEB wall time",
    "training_time": "training time",
    "md_sanity_stable": "MD check stable",
    "crystal_is_lowest": "crystal lowest",
    "ends_are_lowest": "ends are minima",
    "relaxed_converged": "relaxation converged",
    "final_li_on_sites": "Li on former Na sites (end)",
    "final_framework_displacement": "framework displacement (end)",
    "site_class": "site class",
    "space_group": "space group",
    "electrolyte_formula": "electrolyte",
    "miller": "Miller (electrolyte)",
    "metal_miller": "Miller (metal)",
    "metal_lattice": "metal lattice",
    "area": "area",
    "strain": "strain",
    "initial_volume": "initial volume",
    "volume": "volume",
    "status": "status",
}

#: whole field names whose header is not stem + unit
LABELS: dict[str, str] = {
    "engine": "engine",
    "model_name": "model",
    "x": "x",
}


def split_unit(field: str) -> tuple[str, str | None]:
    """``(stem, unit)`` of a field name: ``"barrier_ev"`` → ``("barrier", "eV")``; a field
    without a known unit suffix → ``(field, None)``."""
    parts = field.split("_")
    for n in range(min(len(parts) - 1, 5), 0, -1):  # longest suffix first
        suffix = "_".join(parts[-n:])
        if suffix in UNITS:
            return "_".join(parts[:-n]), UNITS[suffix]
    return field, None


def label(field: str) -> str:
    """The header of a field: ``"delta_e_amorphous_minus_crystalline_mev_per_atom"`` →
    ``"ΔE amorphous − crystalline (meV/atom)"``, ``"gamma_j_per_m2"`` → ``"γ (J/m²)"``,
    ``"n_atoms"`` → ``"atoms"``, ``"converged"`` → ``"converged"``."""
    if field in LABELS:
        return LABELS[field]
    stem, unit = split_unit(field)
    name = NAMES.get(stem) or stem.replace("_", " ")
    return f"{name} ({unit})" if unit else name
