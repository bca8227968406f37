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

from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from ctaflow.analysis.blobs import BlobPart
from ctaflow.analysis.mlff import MDSanity, PrecisionCheck
from ctaflow.settings import TrustWindow


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


def window_summary(deviations, lower, upper) -> dict[str, float | int]:
    """The statistics an exploration reports, as a whole and per condition: frames, their
    counts below / in / above the trust window (``lower``/``upper``: numbers or one per frame),
    the fraction at or above the lower bound, and the mean and largest deviation, eV/Å."""
    d = np.asarray(deviations, dtype=float)
    counts = trust_classes(d, lower, upper)
    return {
        "n_frames": len(d),
        "n_accurate": counts["accurate"],
        "n_candidate": counts["candidate"],
        "n_failed": counts["failed"],
        "fraction_above_lower": (counts["candidate"] + counts["failed"]) / len(d),
        "deviation_mean_ev_per_a": float(d.mean()),
        "deviation_max_ev_per_a": float(d.max()),
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


class UseCondition(BaseModel):
    """An MD condition a stage runs the campaign-trained model at (the study's protocol: NPT
    equilibration, cooling, production; melt, hold, quench). The labeller's MD and the
    committee's exploration cover these conditions. Temperatures in K, times in ps and fs."""

    name: str = Field(description="e.g. 'md production 600 K', 'amorphous quench'.")
    stage: str
    temperature_start_k: float
    temperature_end_k: float
    duration_ps: float = Field(description="How long the stage runs it.")
    timestep_fs: float = 1.0
    follows: str | None = Field(
        None, description="The condition whose end state it starts from (a protocol's order)."
    )
    random_start_fraction: float | None = Field(
        None,
        description="Starts from random positions in the cell (pairs at least this fraction of "
        "the crystal's shortest distances; ctaflow.structures.random_packing), not from the "
        "structure: a melt from a disordered start.",
    )
    pressure_gpa: float | None = Field(
        None,
        description="NPT at this pressure (Berendsen barostat with ``barostat_damping_fs``), "
        "GPa; None: NVT in the cell it starts in. The labelling and the exploration run it so.",
    )
    barostat_damping_fs: float = 200.0
    label_ramp: bool = Field(
        False,
        description="The labeller also runs this ramp (continuing from its run at the start "
        "temperature): a quench from a melt makes states no isothermal run visits.",
    )
    base_only: bool = Field(
        False,
        description="The stage runs the model on the campaign's structure only (x = 0, with "
        "the campaign's defects), not on every member of a substitution series (the md stage).",
    )

    @property
    def isothermal(self) -> bool:
        return self.temperature_start_k == self.temperature_end_k


class TrustCheck(BaseModel):
    """The committee force deviation along a stored trajectory (sampled frames) and whether it
    stayed inside the trust window. σ_F in eV/Å."""

    n_frames: int = Field(description="Frames evaluated by the committee.")
    committee_size: int
    deviation_mean_ev_per_a: float
    deviation_max_ev_per_a: float
    fraction_above_lower: float
    fraction_above_upper: float
    window: TrustWindow
    status: Literal["valid", "flagged"]
    reasons: list[str] = Field(default_factory=list)


def worst_trust(checks: Sequence[TrustCheck | None]) -> TrustCheck | None:
    """Of a result's MD segments, the check that strayed furthest (largest σ_F; None: none)."""
    known = [c for c in checks if c is not None]
    return max(known, key=lambda c: c.deviation_max_ev_per_a) if known else None


def trust_check(deviations, window: TrustWindow, committee_size: int) -> TrustCheck:
    """Judge a trajectory by its frames' σ_F: flagged when any frame reached the upper bound
    (the model was used where it has no labels), with the number and the largest σ_F."""
    d = np.asarray(deviations, dtype=float)
    if d.size == 0:
        raise ValueError("no frame to judge: the trajectory stored no frames")
    above_upper = d >= window.upper_ev_per_a
    reasons = []
    if above_upper.any():
        reasons.append(
            f"the trajectory left the force field's trust window: {int(above_upper.sum())} of "
            f"{d.size} frames have a committee force deviation ≥ {window.upper_ev_per_a:g} eV/Å "
            f"(max {d.max():.3g} eV/Å)"
        )
    return TrustCheck(
        n_frames=int(d.size),
        committee_size=committee_size,
        deviation_mean_ev_per_a=float(d.mean()),
        deviation_max_ev_per_a=float(d.max()),
        fraction_above_lower=float((d >= window.lower_ev_per_a).mean()),
        fraction_above_upper=float(above_upper.mean()),
        window=window,
        status="flagged" if reasons else "valid",
        reasons=reasons,
    )


class ExploredFrame(BaseModel):
    """One frame of the exploratory MD with its committee deviation."""

    composition: str
    condition: str = Field("", description="The condition of use explored.")
    step: int
    deviation_ev_per_a: float = Field(description="σ_F, eV/Å.")
    selected: bool = False


class ConditionStats(BaseModel):
    """One condition of use in one exploration: how its frames fall in the trust window."""

    condition: str
    n_frames: int
    n_accurate: int
    n_candidate: int
    n_failed: int
    fraction_above_lower: float
    deviation_mean_ev_per_a: float
    deviation_max_ev_per_a: float
    n_selected: int
    converged: bool = Field(description="fraction_above_lower < stop_fraction.")


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
    conditions: list[ConditionStats] = Field(
        default_factory=list, description="The same numbers per condition of use."
    )


class ActiveLearningResult(BaseModel):
    """The loop's history and the model it ends with (member 0 of the last committee)."""

    iterations: list[ALIterationStats]
    converged: bool = Field(description="The fraction above the lower bound fell below the stop.")
    stop_reason: str
    committee_size: int
    trust_lower_ev_per_a: float
    trust_upper_ev_per_a: float
    stop_fraction: float
    explore_temperature_k: float | None = Field(
        None, description="The single exploration temperature, when no conditions were given."
    )
    conditions: list[UseCondition] = Field(
        default_factory=list, description="The conditions of use explored."
    )
    labeller: str
    n_added_frames: int = Field(description="Frames relabelled and added to training, in all.")
    model: list[BlobPart] = Field(description="Final model file (data store).")
    model_sha256: str
    committee: list[list[BlobPart]] = Field(
        default_factory=list, description="The final committee's other members (data store)."
    )
    rmse_force_mev_per_a: float = Field(description="Final model, test split.")
    rmse_energy_mev_per_atom: float
    md_sanity: MDSanity | None = Field(None, description="MD check of the final model.")
    precision: PrecisionCheck | None = Field(
        None, description="float32 against float64 of the final model on the test split."
    )


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


def select_by_condition(
    deviations, conditions: list[str], lower, upper, cap: int, seed: int
) -> list[int]:
    """Frames to relabel: those in their window ``[lower, upper)`` (numbers, or one per frame
    when compositions have their own windows), at most ``cap``, shared among the conditions that
    have candidates (round robin in the order given, each condition's own candidates drawn with
    the seed), so one poorly described condition cannot take every label."""
    d = np.asarray(deviations, dtype=float)
    lo, hi = np.broadcast_to(lower, d.shape), np.broadcast_to(upper, d.shape)
    if not np.all((lo >= 0) & (lo < hi)):
        raise ValueError("a trust window needs 0 <= lower < upper")
    rng = np.random.default_rng(seed)
    pools: dict[str, list[int]] = {}
    for i, name in enumerate(conditions):
        if lo[i] <= d[i] < hi[i]:
            pools.setdefault(name, []).append(i)
    for name in pools:
        pools[name] = [int(i) for i in rng.permutation(pools[name])]
    picked: list[int] = []
    order = [c for c in dict.fromkeys(conditions) if c in pools]
    while len(picked) < cap and any(pools[c] for c in order):
        for c in order:
            if pools[c] and len(picked) < cap:
                picked.append(pools[c].pop(0))
    return sorted(picked)


def condition_stats(
    deviations, conditions: list[str], selected: list[int], lower, upper, stop_fraction: float
) -> list[ConditionStats]:
    """Per condition (in order of first appearance): counts in the window (``lower``/``upper``:
    numbers or one per frame) and whether its fraction at or above the lower bound is below
    ``stop_fraction``."""
    d = np.asarray(deviations, dtype=float)
    lo, hi = np.broadcast_to(lower, d.shape), np.broadcast_to(upper, d.shape)
    names = np.asarray(conditions)
    chosen = set(selected)
    out = []
    for name in dict.fromkeys(conditions):
        idx = np.flatnonzero(names == name)
        summary = window_summary(d[idx], lo[idx], hi[idx])
        out.append(
            ConditionStats(
                condition=name,
                **summary,
                n_selected=sum(1 for i in idx if int(i) in chosen),
                converged=summary["fraction_above_lower"] < stop_fraction,
            )
        )
    return out


def stop_reason_by_condition(
    stats: list[ConditionStats],
    n_selected: int,
    stop_fraction: float,
    iteration: int,
    max_iterations: int,
) -> str | None:
    """Why the loop ends after exploration ``iteration``: every condition below the stop
    fraction (converged), ``max_iterations`` reached (which conditions are not), or nothing to
    label; None to relabel and retrain."""
    open_ = [s for s in stats if not s.converged]
    if not open_:
        return (
            f"converged: every condition below {100 * stop_fraction:.1f} % of frames at or above "
            "the lower trust bound"
        )
    if iteration >= max_iterations:
        worst = ", ".join(f"{s.condition} {100 * s.fraction_above_lower:.0f} %" for s in open_)
        return f"reached max_iterations = {max_iterations}; not converged: {worst}"
    if n_selected == 0:
        return "no frame inside the trust window (all above the upper bound): nothing to label"
    return None
