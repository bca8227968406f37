"""Active learning with a committee of force fields (pure: arrays in, numbers out).

A committee of K models predicts forces on frames of an exploratory MD. The **committee force
deviation** of a frame is the largest, over atoms, of the root-mean-square spread of the K force
vectors about their mean (DeePMD-kit's ``max_devi_f``), in eV/Å:

    σ_F = max_i sqrt( (1/K) Σ_k |F_k,i − F̄_i|² ).

Frames with σ_F below the lower trust bound are described well already; frames above the upper
bound are treated as unphysical (the model left the region where labels would help); frames in
the window [lower, upper) are candidates for relabelling, at most ``max_selected`` per iteration.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field

from ctaflow.analysis.blobs import BlobPart
from ctaflow.analysis.mlff import MDSanity


def force_deviation(forces_by_member: np.ndarray) -> float:
    """σ_F of one frame from the members' forces, shape (K, n_atoms, 3), eV/Å."""
    forces = np.asarray(forces_by_member, dtype=float)
    if forces.ndim != 3 or forces.shape[0] < 2 or forces.shape[2] != 3:
        raise ValueError(f"need forces of shape (K >= 2, n_atoms, 3), got {forces.shape}")
    spread = forces - forces.mean(axis=0)
    return float(np.sqrt((spread**2).sum(axis=2).mean(axis=0)).max())


def trust_classes(deviations, lower: float, upper: float) -> dict[str, int]:
    """Counts of frames below, inside and above the trust window."""
    d = np.asarray(deviations, dtype=float)
    return {
        "accurate": int((d < lower).sum()),
        "candidate": int(((d >= lower) & (d < upper)).sum()),
        "failed": int((d >= upper).sum()),
    }


def select_in_window(deviations, lower: float, upper: float, cap: int, seed: int) -> list[int]:
    """Indices of frames with ``lower <= σ_F < upper``; at most ``cap`` of them, drawn without
    replacement with the seed (sorted)."""
    if not 0 <= lower < upper:
        raise ValueError(f"trust window needs 0 <= lower < upper, got [{lower}, {upper})")
    d = np.asarray(deviations, dtype=float)
    inside = np.flatnonzero((d >= lower) & (d < upper))
    if len(inside) > cap:
        inside = np.random.default_rng(seed).choice(inside, size=cap, replace=False)
    return sorted(int(i) for i in inside)


class ExploredFrame(BaseModel):
    """One frame of the exploratory MD with its committee deviation."""

    composition: str
    step: int
    deviation_ev_per_a: float = Field(description="σ_F, eV/Å.")
    selected: bool = False


class ALIterationStats(BaseModel):
    """What one exploration found. ``iteration`` 0 explores with the committee trained on the
    initial dataset; iteration n with the committee retrained after the n-th relabelling."""

    iteration: int
    n_frames: int
    n_accurate: int
    n_candidate: int
    n_failed: int
    fraction_above_lower: float = Field(description="(candidate + failed) / frames.")
    n_selected: int
    deviation_mean_ev_per_a: float
    deviation_max_ev_per_a: float
    n_train: int = Field(description="Training frames of the committee that explored.")
    test_rmse_force_mev_per_a: float = Field(description="Member 0 on the fixed test split.")
    test_rmse_energy_mev_per_atom: float
    frames: list[ExploredFrame]


class ActiveLearningResult(BaseModel):
    """The loop's history and the model it ends with (member 0 of the last committee)."""

    iterations: list[ALIterationStats]
    converged: bool = Field(description="The fraction above the lower bound fell below the stop.")
    stop_reason: str
    committee_size: int
    trust_lower_ev_per_a: float
    trust_upper_ev_per_a: float
    stop_fraction: float
    explore_temperature_k: float
    labeller: str
    n_added_frames: int = Field(description="Frames relabelled and added to training, in all.")
    model: list[BlobPart] = Field(description="Final model file (data store).")
    model_sha256: str
    rmse_force_mev_per_a: float = Field(description="Final model, test split.")
    rmse_energy_mev_per_atom: float
    md_sanity: MDSanity | None = Field(None, description="MD check of the final model.")


def stop_reason(
    fraction_above_lower: float,
    n_selected: int,
    stop_fraction: float,
    iteration: int,
    max_iterations: int,
) -> str | None:
    """Why the loop ends after exploration number ``iteration`` (0: before any relabelling), or
    None to relabel the ``n_selected`` frames and retrain."""
    if fraction_above_lower < stop_fraction:
        return (
            f"converged: {100 * fraction_above_lower:.1f} % of explored frames at or above "
            f"the lower trust bound (stop below {100 * stop_fraction:.1f} %)"
        )
    if iteration >= max_iterations:
        return f"reached max_iterations = {max_iterations}"
    if n_selected == 0:
        return "no frame inside the trust window (all above the upper bound): nothing to label"
    return None
