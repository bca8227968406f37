"""Force-field validation metrics and the dataset / model documents (pure, no files)."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from ctaflow.analysis.blobs import BlobPart
from ctaflow.analysis.dataset import rmse
from ctaflow.structures.validate import closest_distance, closest_overlap


class DatasetResult(BaseModel):
    """A labelled dataset; the extxyz files are in the ``data`` store."""

    n_frames: dict[str, int] = Field(description="Frames per split (train/valid/test).")
    n_frames_by_composition: dict[str, int]
    n_test_by_composition: dict[str, int] = Field(
        default_factory=dict, description="Test frames per composition."
    )
    n_duplicates_removed: int
    labeller: str
    sources: dict[str, int] = Field(description="Frames per source (e.g. md 1000 K, relaxation).")
    split_seed: int
    files: dict[str, list[BlobPart]] = Field(description="train/valid/test extxyz files.")


class CompositionMetrics(BaseModel):
    composition: str
    n_frames: int
    rmse_energy_mev_per_atom: float
    rmse_force_mev_per_a: float


class PrecisionCheck(BaseModel):
    """The same model evaluated in float32 and float64 on the test split: the largest differences
    and whether float32 is safe for MD (both differences below ``max_fraction`` of the model's
    own test error). Energies in meV/atom, forces in meV/Å (components)."""

    n_frames: int
    max_energy_diff_mev_per_atom: float | None = Field(description="None: not compared.")
    max_force_diff_mev_per_a: float | None = Field(description="None: not compared.")
    rms_force_diff_mev_per_a: float | None = Field(description="None: not compared.")
    max_fraction: float
    float32_ok: bool
    reason: str


def trained_in_float32() -> PrecisionCheck:
    """A model trained in float32: float32 MD runs it in its own precision (nothing to
    compare; its float64 evaluations, e.g. of relaxations, hold the same weights exactly)."""
    return PrecisionCheck(
        n_frames=0,
        max_energy_diff_mev_per_atom=None,
        max_force_diff_mev_per_a=None,
        rms_force_diff_mev_per_a=None,
        max_fraction=0.0,
        float32_ok=True,
        reason="trained in float32: MD in float32 is the model's own precision",
    )


def precision_check(
    rows64: list[dict], rows32: list[dict], rmse_energy_mev_per_atom: float,
    rmse_force_mev_per_a: float, max_fraction: float = 0.01,
) -> PrecisionCheck:  # fmt: skip
    """Compare float32 with float64 predictions of the same frames (``evaluate`` rows)."""
    if len(rows64) != len(rows32) or not rows64:
        raise ValueError(f"{len(rows64)} float64 and {len(rows32)} float32 rows: not one set")
    de = np.array(
        [abs(a["energy_pred_ev"] - b["energy_pred_ev"]) / a["n_atoms"] for a, b in zip(
            rows64, rows32, strict=True)]
    )  # fmt: skip
    df = np.concatenate(
        [np.ravel(np.subtract(a["forces_pred_ev_per_a"], b["forces_pred_ev_per_a"]))
         for a, b in zip(rows64, rows32, strict=True)]
    )  # fmt: skip
    max_e, max_f = 1000 * float(de.max()), 1000 * float(np.abs(df).max())
    ok = max_e <= max_fraction * rmse_energy_mev_per_atom and max_f <= (
        max_fraction * rmse_force_mev_per_a
    )
    reason = (
        f"float32 differs from float64 by at most {max_e:.2g} meV/atom and {max_f:.2g} meV/Å on "
        f"the {len(rows64)} test frames, "
        + ("below" if ok else "not below")
        + f" {100 * max_fraction:g} % of the test errors ({rmse_energy_mev_per_atom:.3g} meV/atom, "
        f"{rmse_force_mev_per_a:.3g} meV/Å)"
    )
    return PrecisionCheck(
        n_frames=len(rows64),
        max_energy_diff_mev_per_atom=max_e,
        max_force_diff_mev_per_a=max_f,
        rms_force_diff_mev_per_a=1000 * float(np.sqrt(np.mean(df**2))),
        max_fraction=max_fraction,
        float32_ok=ok,
        reason=reason,
    )


class MDSanity(BaseModel):
    """A short NVT run with the trained model: stable when no two atoms come closer than the
    overlap limit of structure validation (half the sum of atomic radii) in any sampled frame
    and the mean temperature stays within a factor two of the target."""

    temperature_k: float = Field(description="Thermostat target, K.")
    n_steps: int
    timestep_fs: float
    n_atoms: int
    closest_pair_a: float | None = Field(
        description="Shortest distance over the sampled frames, Å (None: none within 6 Å)."
    )
    first_overlap_step: int | None = Field(None, description="First sampled step with overlap.")
    mean_temperature_k: float
    max_temperature_k: float
    stable: bool
    reason: str = ""


def md_sanity(
    frames: list[Any],
    steps: list[int],
    temperatures_k: list[float],
    target_k: float,
    timestep_fs: float,
) -> MDSanity:
    """Judge a trajectory of pymatgen structures sampled at ``steps`` (see :class:`MDSanity`)."""
    distances = [d for d in map(closest_distance, frames) if d is not None]
    closest = min(distances) if distances else None
    first_overlap = next(
        (step for step, frame in zip(steps, frames, strict=True) if closest_overlap(frame)), None
    )
    mean_t = float(np.mean(temperatures_k))
    reasons = []
    if first_overlap is not None:
        reasons.append(f"atoms overlap from step {first_overlap} (closest pair {closest:.2f} Å)")
    if not 0.5 * target_k <= mean_t <= 2.0 * target_k:
        reasons.append(f"mean temperature {mean_t:.0f} K for a {target_k:.0f} K thermostat")
    return MDSanity(
        temperature_k=target_k,
        n_steps=steps[-1],
        timestep_fs=timestep_fs,
        n_atoms=len(frames[0]),
        closest_pair_a=closest,
        first_overlap_step=first_overlap,
        mean_temperature_k=mean_t,
        max_temperature_k=float(np.max(temperatures_k)),
        stable=not reasons,
        reason="; ".join(reasons),
    )


class CommitteeMember(BaseModel):
    """A further model of an active-learning committee: same data, another seed."""

    seed: int
    model: list[BlobPart] = Field(description="The model file (data store).")
    model_sha256: str
    rmse_energy_mev_per_atom: float = Field(description="Test set, energy per atom.")
    rmse_force_mev_per_a: float = Field(description="Test set, force components.")
    training_time_s: float


class MLFFResult(BaseModel):
    """A trained MACE model with its test-set errors. Energies meV/atom, forces meV/Å."""

    model: list[BlobPart] = Field(description="The model file (data store).")
    model_sha256: str
    architecture: str = "MACE"
    hyperparameters: dict[str, Any]
    n_train: int
    n_valid: int
    n_test: int
    rmse_energy_mev_per_atom: float = Field(description="Test set, energy per atom.")
    rmse_force_mev_per_a: float = Field(description="Test set, force components.")
    mae_energy_mev_per_atom: float
    mae_force_mev_per_a: float
    per_composition: list[CompositionMetrics]
    parity: dict[str, list[float] | list[str]] = Field(
        description="Test-set energy per atom (eV) and up to 3000 force components (eV/Å), "
        "reference and predicted, with the composition of each, for parity plots."
    )
    epochs_log: list[dict[str, float]] = Field(
        default_factory=list, description="Per-epoch validation losses reported by MACE."
    )
    training_time_s: float
    labeller: str
    md_sanity: MDSanity | None = Field(None, description="Short MD with the trained model.")
    precision: PrecisionCheck | None = Field(
        None, description="float32 against float64 on the test split (is float32 safe for MD?)."
    )
    initial_model_sha256: str | None = Field(
        None, description="Model the training started from (warm start); None: from scratch."
    )
    committee: list[CommitteeMember] = Field(
        default_factory=list,
        description="Further committee members for active learning (this model is member 0).",
    )
    software: dict[str, str] = Field(default_factory=dict)


def validation_metrics(rows: list[dict]) -> dict[str, Any]:
    """RMSE/MAE of energies per atom and force components, overall and per composition."""

    def block(subset: list[dict]) -> dict[str, float]:
        e_ref = np.array([r["energy_ref_ev"] / r["n_atoms"] for r in subset])
        e_pred = np.array([r["energy_pred_ev"] / r["n_atoms"] for r in subset])
        f_ref = np.concatenate([np.ravel(r["forces_ref_ev_per_a"]) for r in subset])
        f_pred = np.concatenate([np.ravel(r["forces_pred_ev_per_a"]) for r in subset])
        return {
            "rmse_energy_mev_per_atom": 1000 * rmse(e_ref, e_pred),
            "rmse_force_mev_per_a": 1000 * rmse(f_ref, f_pred),
            "mae_energy_mev_per_atom": 1000 * float(np.mean(np.abs(e_ref - e_pred))),
            "mae_force_mev_per_a": 1000 * float(np.mean(np.abs(f_ref - f_pred))),
            "e_comp": [r["composition"] for r in subset],
            "f_comp": [
                r["composition"] for r in subset for _ in np.ravel(r["forces_ref_ev_per_a"])
            ],
            "e_ref": e_ref,
            "e_pred": e_pred,
            "f_ref": f_ref,
            "f_pred": f_pred,
        }

    overall = block(rows)
    per = []
    for comp in sorted({r["composition"] for r in rows}):
        subset = [r for r in rows if r["composition"] == comp]
        b = block(subset)
        per.append(
            CompositionMetrics(
                composition=comp,
                n_frames=len(subset),
                rmse_energy_mev_per_atom=b["rmse_energy_mev_per_atom"],
                rmse_force_mev_per_a=b["rmse_force_mev_per_a"],
            )
        )
    pick = np.linspace(0, len(overall["f_ref"]) - 1, min(3000, len(overall["f_ref"]))).astype(int)
    return {
        **{k: v for k, v in overall.items() if k.startswith(("rmse", "mae"))},
        "per_composition": per,
        "parity": {
            "energy_ref_ev_per_atom": overall["e_ref"].tolist(),
            "energy_pred_ev_per_atom": overall["e_pred"].tolist(),
            "force_ref_ev_per_a": overall["f_ref"][pick].tolist(),
            "force_pred_ev_per_a": overall["f_pred"][pick].tolist(),
            "energy_composition": overall["e_comp"],
            "force_composition": [overall["f_comp"][i] for i in pick],
        },
    }
