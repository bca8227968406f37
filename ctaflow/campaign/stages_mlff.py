"""Stage settings of the model-training stages: training data, MACE fit and active learning.

Units are in the field names or descriptions; every model forbids unknown keys (see
:mod:`ctaflow.campaign.stages`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from ctaflow.campaign.stages import StageSettings
from ctaflow.settings import Strict


class TrainingDataStageSettings(StageSettings):
    """MD with the labeller, frames collected into a dataset (study: AIMD of small cells at high
    temperature for every composition of the series, plus the relaxation trajectories).

    By default the labelling covers the conditions the trained model will be used at: an
    isothermal run at every temperature of the md and amorphous stages that run on it (their
    equilibration, production and melt temperatures), and the quench from the melt as a ramp
    continuing from the run at the melt temperature (see
    :func:`ctaflow.makers.training_data.labelling_plan`)."""

    supercell_min_width_a: float = Field(8.0, gt=0, description="Cell size for the MD, Å.")
    temperatures_k: list[float] | None = Field(
        None,
        min_length=1,
        description="Isothermal labelling temperatures, K; None: every temperature the trained "
        "model is used at (1000 K when no stage uses it).",
    )
    ramps: bool = Field(
        True, description="Also label the ramps of the conditions of use (the melt's quench)."
    )
    defect_hop_temperatures_k: list[float] = Field(
        [],
        description="Further labelling temperatures of the defective cell, K (with the campaign's "
        "defects, when a stage runs the model on that cell): hotter than those stages, so that "
        "the carriers hop within a labelling run and the model's hop barriers are fitted, not "
        "extrapolated (the demo's MACE at 1,100 K: one hop per Na ion in ~10 ps, so fewer than one "
        "hop in its whole cell in a 0.3 ps labelling run).",
    )
    md_ps: float = Field(1.0, gt=0, description="Length of each labelling MD, ps.")
    timestep_fs: float = Field(1.0, gt=0)
    sample_every: int = Field(10, ge=1, description="Steps between dataset frames.")
    dedupe_tol_a: float = Field(0.01, ge=0, description="Frames closer than this are duplicates.")
    split: tuple[float, float, float] = Field(
        (0.8, 0.1, 0.1), description="train / valid / test fractions."
    )
    min_test_frames_per_composition: int = Field(
        10,
        ge=1,
        description="Fewest test frames of each composition (the split is stratified by "
        "composition and source, so every composition's test error rests on this many).",
    )
    seed: int = 0


class MLFFStageSettings(Strict):
    """MACE training on the training data (CPU); every hyper-parameter overridable."""

    enabled: bool = True
    num_channels: int = Field(16, ge=1)
    max_l: int = Field(0, ge=0)
    r_max_a: float = Field(5.0, gt=0, description="Cutoff radius, Å.")
    correlation: int = Field(2, ge=1)
    num_interactions: int = Field(2, ge=1)
    max_num_epochs: int = Field(30, ge=1)
    batch_size: int = Field(5, ge=1)
    lr: float = Field(0.01, gt=0)
    energy_weight: float = Field(10.0, ge=0)
    forces_weight: float = Field(10.0, ge=0)
    stress_weight: float = Field(0.0, ge=0)
    default_dtype: Literal["float32", "float64"] = "float64"
    seed: int = 1
    e0s: str = Field("average", description="MACE E0s option (isolated-atom energies).")
    pair_repulsion: bool = Field(
        False,
        description="Add MACE's ZBL pair repulsion: a model trained on near-equilibrium frames "
        "has no short-range wall of its own and lets atoms fuse in a hot melt.",
    )
    threads: int = Field(1, ge=1, description="torch threads of the training process.")

    sanity_md_steps: int = Field(
        200, ge=0, description="Steps of the MD check with the trained model (0: none)."
    )
    sanity_md_temperature_k: float | None = Field(
        None, gt=0, description="Its temperature, K; default: the highest labelling temperature."
    )

    def hyperparameters(self) -> dict[str, Any]:
        return self.model_dump(
            exclude={"enabled", "threads", "sanity_md_steps", "sanity_md_temperature_k"}
        )


class TrustWindowSettings(Strict):
    """A committee force deviation window, eV/Å."""

    lower_ev_per_a: float = Field(ge=0)
    upper_ev_per_a: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> TrustWindowSettings:
        if self.lower_ev_per_a >= self.upper_ev_per_a:
            raise ValueError("lower_ev_per_a must be below upper_ev_per_a")
        return self


class ActiveLearningStageSettings(Strict):
    """Committee active learning after the mlff stage: the mlff stage trains ``committee_size``
    models (other seeds); member 0 explores by Langevin MD every condition the trained model will
    be used at (the md and amorphous stages' temperatures, ramps and their order: the melt's
    quench starts where the melt ended), from each composition's first training frame; frames
    whose committee force deviation lies in the trust window are relabelled by the training-data
    labeller (at most ``max_selected``, shared among the conditions), added to the training split
    (valid/test stay fixed, so errors stay comparable) and the committee is retrained; repeated
    until every condition's fraction of frames at or above the lower bound falls below
    ``stop_fraction``, or after ``max_iterations`` relabellings. Later stages that use the
    campaign-trained model get member 0 of the last committee, and the committee judges their
    trajectories."""

    enabled: bool = True
    committee_size: int = Field(3, ge=2, le=8, description="Models in the committee (K).")
    explore_temperature_k: float | None = Field(
        None,
        gt=0,
        description="Explore one isothermal condition at this temperature, K, instead of the "
        "conditions of use (default; with none, the hottest labelling temperature).",
    )
    explore_steps: int | None = Field(
        None,
        ge=1,
        description="MD steps of every condition and composition per exploration; None: each "
        "condition as long as its stage runs it, at most max_explore_ps.",
    )
    max_explore_ps: float = Field(
        1.0, gt=0, description="Longest exploration of one condition when explore_steps is None."
    )
    explore_sample_every: int = Field(10, ge=1, description="Steps between judged frames.")
    timestep_fs: float = Field(
        1.0,
        gt=0,
        le=5,
        description="Exploration time step of the isothermal explore_temperature_k, fs (the "
        "conditions of use run at their stages' time steps).",
    )
    trust_lower_ev_per_a: float = Field(
        0.05, ge=0, description="Lower bound of the committee force deviation window, eV/Å."
    )
    trust_upper_ev_per_a: float = Field(
        0.25, gt=0, description="Upper bound: frames at or above it are not labelled, eV/Å."
    )
    trust_by_composition: dict[str, TrustWindowSettings] = Field(
        default_factory=dict,
        description="Windows of particular compositions (reduced formula, e.g. Li3ClO), where "
        "their force scales differ; the others use trust_lower/upper.",
    )
    max_selected: int = Field(20, ge=1, description="Frames relabelled per iteration, at most.")
    max_iterations: int = Field(3, ge=1, description="Relabel-and-retrain rounds, at most.")
    stop_fraction: float = Field(
        0.05, gt=0, le=1, description="Stop when fewer explored frames than this are >= lower."
    )
    warm_start: bool = Field(
        True,
        description="Retrain each member from its own previous weights (mace's foundation-model "
        "start, single head) instead of from scratch.",
    )
    retrain_epochs: int | None = Field(
        None,
        ge=1,
        description="Epochs of each retraining (default: stages.mlff's from scratch, a third of "
        "them, at least 2, with warm_start).",
    )
    seed: int = 11

    @model_validator(mode="after")
    def _window(self) -> ActiveLearningStageSettings:
        if self.trust_lower_ev_per_a >= self.trust_upper_ev_per_a:
            raise ValueError(
                f"trust_lower_ev_per_a ({self.trust_lower_ev_per_a}) must be below "
                f"trust_upper_ev_per_a ({self.trust_upper_ev_per_a})"
            )
        return self
