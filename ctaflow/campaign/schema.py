"""Campaign settings: the pydantic schema a campaign YAML file is validated against.

Every model forbids unknown keys, so a typo in a campaign file is an error, not a silent default.
Units are in the field names (``_ev``, ``_ev_per_a``, ``_k``, ``_fs``) or the descriptions.
The same objects are the Python API: a campaign script builds ``CampaignSettings(...)`` and passes
it to :func:`ctaflow.flows.campaign.build_campaign_flow` without any YAML.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator


class Strict(BaseModel):
    """Base model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


def stable_hash(data: Any, length: int = 12) -> str:
    """Short sha256 of the canonical JSON of ``data`` (sorted keys)."""
    text = json.dumps(data, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


# --------------------------------------------------------------------------- structures
class OrderSettings(Strict):
    """Order partial occupancies into a supercell (pymatgen OrderDisorderedStructureTransformation,
    Ewald ranking); the best-ranked ordering is the campaign's structure."""

    supercell: list[int] | None = Field(
        None, description="[a, b, c] repetitions; None: the smallest that gives whole atoms."
    )
    rank_by: Literal["ewald"] = "ewald"
    n_candidates: int = Field(3, ge=1, description="Distinct orderings kept (best is used).")
    seed: int = 0
    max_orderings: int = Field(
        500, ge=1, description="Lowest-Ewald orderings examined for distinct ones (a cap)."
    )
    max_enumeration_s: float = Field(
        300.0,
        gt=0,
        description="Wall-time limit of the ordering search, s; when reached, loading the "
        "structure fails with a message (nothing is run).",
    )


class ClassifySettings(Strict):
    """Mark sites of a species as mobile or pillar from their connectivity: hops shorter than
    ``hop_cutoff_a`` whose straight path keeps ``min_clearance_a`` from other atoms, percolating
    in at least ``min_dimension`` directions, are mobile."""

    species: str = Field(description="Mobile-ion species, e.g. Na.")
    hop_cutoff_a: float = Field(4.0, gt=0)
    min_clearance_a: float = Field(1.5, ge=0)
    min_dimension: int = Field(1, ge=1, le=3)


class DemoStructureSource(Strict):
    """The built-in demo structure (see ``ctaflow.structures.demo`` for its provenance)."""

    source: Literal["demo"] = "demo"
    name: Literal["Na3OCl-antiperovskite"] = Field(
        "Na3OCl-antiperovskite", description="Which built-in demo structure."
    )
    classify: ClassifySettings | None = None


class FileStructureSource(Strict):
    """A structure file pymatgen can read: CIF, POSCAR/CONTCAR, ...; relative paths are taken
    relative to the campaign file."""

    source: Literal["file"] = "file"
    path: Path = Field(description="Path to the structure file.")
    order: OrderSettings | None = Field(
        None, description="Required when the file has partial occupancies."
    )
    classify: ClassifySettings | None = None

    @field_validator("path")
    @classmethod
    def _resolve_and_check(cls, path: Path, info: ValidationInfo) -> Path:
        base = (info.context or {}).get("base_dir")
        if base is not None and not path.is_absolute():
            path = Path(base) / path
        if not path.is_file():
            raise ValueError(
                f"structure file '{path}' does not exist; give the path of a CIF or POSCAR "
                "file, absolute or relative to the campaign file"
            )
        return path.resolve()


class MPStructureSource(Strict):
    """A Materials Project material, fetched with the mp-api client (``pip install
    'ctaflow[mp]'``) when the campaign is loaded. The API key is read from the environment
    variable named by ``api_key_env``, never from the campaign file.

    The structure is the final (DFT-relaxed) structure of the current database release, not
    necessarily the experimental one; the release is recorded in its provenance. The campaign
    fingerprint identifies the material id, not the release: to freeze the exact structure,
    save it to a file and use ``source: file``.
    """

    source: Literal["mp"] = "mp"
    material_id: str = Field(description="Materials Project id, e.g. mp-22862.")
    api_key_env: str = Field(
        "MP_API_KEY", description="Name of the environment variable that holds the API key."
    )
    conventional_cell: bool = Field(
        False,
        description="Conventional standard cell (pymatgen) instead of the primitive cell the "
        "Materials Project stores.",
    )
    order: OrderSettings | None = Field(
        None, description="Only used when the structure has partial occupancies."
    )
    classify: ClassifySettings | None = None

    @field_validator("material_id")
    @classmethod
    def _looks_like_an_id(cls, material_id: str) -> str:
        material_id = material_id.strip()
        if not re.fullmatch(r"[a-z]+-[0-9a-z]+", material_id):
            raise ValueError(
                f"'{material_id}' is not a Materials Project id; ids look like mp-22862 "
                "(shown on the material's page at materialsproject.org)"
            )
        return material_id

    @field_validator("api_key_env")
    @classmethod
    def _a_variable_name(cls, name: str) -> str:
        if re.fullmatch(r"[A-Za-z0-9]{32}", name) and re.search(r"[a-z]", name):
            raise ValueError(
                "this looks like an API key itself; keep the key out of campaign files: export "
                "it in an environment variable (e.g. MP_API_KEY) and give that variable's name"
            )
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(
                f"'{name}' is not an environment variable name; give one such as MP_API_KEY"
            )
        return name


class CoordinationRuleSettings(Strict):
    """Every ``centre`` atom has exactly ``n`` ``ligand`` atoms within ``cutoff_a`` Å."""

    centre: str = "Si"
    ligand: str = "O"
    n: int = Field(4, ge=0)
    cutoff_a: float = Field(2.0, gt=0)


class SearchStructureSource(Strict):
    """A generated model from ctaflow's structure search
    (:func:`ctaflow.structures.search.search_structures`): ``n_candidates`` pyxtal random
    crystals of ``composition`` in the given space groups and formula units per cell, relaxed
    (cell and positions) with the embedded CHGNet, filtered by the coordination rules and
    ranked by energy per atom; the best-ranked candidate is the campaign's structure.

    When it runs: when the campaign is loaded (``ctaflow validate``, ``run``, ``submit``),
    before the flow is built, like reading a file. Then the structure is validated at the edge
    (a failed search writes nothing to the store), every stage is built from a concrete
    structure as for the other sources (composition metadata, elements, classification), and
    the campaign fingerprint and stage hashes are these settings
    (``CampaignSettings.structure_identity``), known before anything runs. As a job inside the
    flow, the search would need every later stage replaced at run time and its errors would
    surface after the store is opened. The cost: each load searches again. That is
    reproducible: one generator seeded with ``seed`` drives pyxtal, and CHGNet runs on the CPU
    with ``threads`` threads, so the same settings give the same structure (tested) and a
    resumed run rebuilds the same flow from it. Every setting, the seed and the ranking table
    are in the structure's provenance, labelled a generated model, not the experimental
    structure.
    """

    source: Literal["search"] = "search"
    composition: str = Field(description="Formula of one formula unit, e.g. Na3OCl.")
    space_groups: list[Annotated[int, Field(ge=1, le=230)]] = Field(
        min_length=1, description="International space group numbers to generate in."
    )
    formula_units: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=lambda: [2], min_length=1, description="Formula units per cell."
    )
    n_candidates: int = Field(4, ge=1, description="Relaxed candidates compared.")
    seed: int = Field(0, description="Seed of the random crystal generation.")
    steps: int = Field(200, ge=1, description="Maximum relaxation steps per candidate.")
    fmax_ev_per_a: float = Field(0.05, gt=0, description="Relaxation force criterion, eV/Å.")
    keep_symmetry: bool = Field(True, description="Keep the generated space group (relax).")
    coordination: list[CoordinationRuleSettings] = Field(
        default_factory=lambda: [CoordinationRuleSettings()],
        description="Filter rules (default: SiO4 tetrahedra; no Si: nothing to check).",
    )
    volume_factor: float = Field(1.1, gt=0, description="pyxtal volume factor.")
    max_generation_attempts: int = Field(10, ge=1, description="pyxtal attempts per pair.")
    model: Literal["CHGNet"] = Field("CHGNet", description="Embedded MLIP of the relaxation.")
    model_version: Literal["0.3.0", "0.2.0"] = Field(
        "0.3.0", description="Weights bundled with the chgnet wheel."
    )
    threads: int = Field(1, ge=1, description="torch CPU threads of the relaxations.")
    classify: ClassifySettings | None = None


StructureSource = Annotated[
    DemoStructureSource | FileStructureSource | MPStructureSource | SearchStructureSource,
    Field(discriminator="source"),
]


class SeriesSettings(Strict):
    """Substitution series (study: Na5SmSi4O12 → Li5SmSi4O12 in five even steps), built on the
    training-data supercell; arrangements ranked by Ewald energy (spread for isovalent swaps)."""

    replace: str = Field("Na", description="Element replaced.")
    by: str = Field("Li", description="Element put in its place.")
    sites: str | list[str] = Field(
        "all", description="'all', a site class (e.g. mobile) or site labels."
    )
    n_compositions: int = Field(5, ge=2, description="Members including both end members.")
    n_samples: int = Field(20, ge=1, description="Arrangements sampled per composition.")
    seed: int = 0


# --------------------------------------------------------------------------- engines
#: versions of each universal MLIP whose weights ship inside its pip package; first = default
MLIP_MODEL_VERSIONS: dict[str, tuple[str, ...]] = {
    "CHGNet": ("0.3.0", "0.2.0"),  # in the chgnet wheel
    "SevenNet": ("0",),  # SevenNet-0 (11 Jul 2024), in the sevenn wheel
}


class MLIPEngineSpec(Strict):
    """A universal machine-learned interatomic potential shipped inside a package (no download)."""

    kind: Literal["mlip"] = "mlip"
    model: Literal["CHGNet", "SevenNet"] = Field(
        "CHGNet", description="Universal MLIP family; both are trained on MPtrj (PBE)."
    )
    model_version: str | None = Field(
        None,
        description="Weights bundled with the model's wheel: CHGNet 0.3.0 (default) or 0.2.0, "
        "SevenNet 0 (SevenNet-0). Omitted: the model's default.",
    )
    device: Literal["cpu", "cuda"] = "cpu"
    dtype: Literal["float32", "float64"] = Field(
        "float32",
        description="Floating-point precision of the model evaluation. float32: the models' own. "
        "float64 (CHGNet only): the same weights in double precision; forces match the energy's "
        "finite-difference derivative to ~1e-9 eV/Å instead of ~1e-5 eV/Å, at about twice the "
        "CPU time (measured).",
    )
    threads: int = Field(
        1,
        ge=1,
        description="torch CPU threads. 1 by default: on a shared or busy node more threads than "
        "free cores made CHGNet ~20x slower (3.8 s vs 0.16 s per 40-atom step, measured).",
    )

    @field_validator("model_version", mode="before")
    @classmethod
    def _yaml_integer(cls, value: Any) -> Any:
        # `model_version: 0` is an integer in YAML
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _check_model(self) -> MLIPEngineSpec:
        versions = MLIP_MODEL_VERSIONS[self.model]
        if self.model_version is None:
            self.model_version = versions[0]
        elif self.model_version not in versions:
            raise ValueError(
                f"{self.model} model_version '{self.model_version}' is not bundled; "
                f"choose one of {list(versions)}"
            )
        if self.dtype == "float64" and self.model != "CHGNet":
            raise ValueError(f"{self.model} runs in float32 only; remove dtype: float64")
        return self


class KpointSettings(Strict):
    """k-point mesh from a spacing.

    ``convention: no_2pi`` (default, the study's Å⁻¹ spacing): reciprocal vectors without the 2π
    factor, |b_i| = 1/d_i, and N_i = max(1, ceil(|b_i| / spacing)); for the study's 22.1 × 12.7 Å
    hexagonal cell 0.04 Å⁻¹ gives a 2×2×2 mesh. ``convention: vasp_kspacing``: VASP's KSPACING
    definition, |b_i| with 2π, N_i = max(1, ceil(|b_i| / spacing)).
    """

    spacing_per_a: float = Field(0.04, gt=0, description="k-point spacing in Å⁻¹.")
    convention: Literal["no_2pi", "vasp_kspacing"] = "no_2pi"
    style: Literal["monkhorst", "gamma"] = Field(
        "monkhorst", description="Monkhorst-Pack (study) or Γ-centred mesh."
    )


class VaspEngineSpec(Strict):
    """VASP through atomate2 makers and custodian, with the study's settings as the preset.

    Layers (later wins): study preset (PBE, ENCUT 520 eV, EDIFF 1e-4 eV/atom × N, ionic
    criterion 1e-3 eV/atom × N, Sm_3) → per-calculation updates of the atomate2 generator
    (relax, static, MD) → ``incar``/``kpoints``/``potcar`` here → powerups in Python.
    """

    kind: Literal["vasp"] = "vasp"
    vasp_cmd: str = Field("vasp_std", description="Command that runs VASP (as for custodian).")
    incar: dict[str, Any] = Field(
        default_factory=dict, description="INCAR updates on top of the preset (null unsets)."
    )
    kpoints: KpointSettings = Field(default_factory=KpointSettings)
    potcar: dict[str, str] = Field(
        default_factory=lambda: {"Sm": "Sm_3"},
        description="POTCAR choice per element on top of atomate2's; Sm_3 = 4f in core.",
    )
    potcar_functional: Literal["PBE_54", "PBE_52", "PBE_64", "PBE"] = "PBE_54"
    encut_ev: float = Field(520.0, gt=0, description="Plane-wave cutoff, eV.")
    ediff_per_atom_ev: float = Field(1e-4, gt=0, description="EDIFF = this × number of atoms.")
    ionic_criterion: Literal["energy", "force"] = Field(
        "energy",
        description="energy: EDIFFG = +ediffg_per_atom_ev × N (study); force: EDIFFG = −fmax "
        "of the stage (eV/Å).",
    )
    ediffg_per_atom_ev: float = Field(1e-3, gt=0, description="Energy criterion per atom, eV.")
    max_errors: int = Field(5, ge=0, description="custodian: maximum number of corrections.")
    polling_time_s: int = Field(10, gt=0, description="custodian: seconds between checks.")


class VaspStandinEngineSpec(VaspEngineSpec):
    """The VASP path (atomate2 makers, custodian, parsers) with an MLIP instead of VASP.

    For tests and demos only: outputs say which MLIP produced them and never claim to be DFT.
    No POTCARs are needed (inputs are written with POTCAR.spec).
    """

    kind: Literal["vasp-standin"] = "vasp-standin"
    vasp_cmd: str = Field("", description="Leave empty: ctaflow runs its own stand-in.")
    model: Literal["chgnet:0.3.0", "chgnet:0.2.0"] = Field(
        "chgnet:0.3.0", description="MLIP inside the stand-in."
    )
    polling_time_s: int = Field(1, gt=0, description="custodian: seconds between checks.")


class MaceEngineSpec(Strict):
    """A MACE force field: ``model_path`` to a .model file, or omitted to use the model that
    the campaign's ``mlff`` stage trains."""

    kind: Literal["mace"] = "mace"
    model_path: Path | None = Field(None, description="MACE .model file; None: trained here.")
    device: Literal["cpu", "cuda"] = "cpu"
    dtype: Literal["float32", "float64"] = "float64"
    threads: int = Field(1, ge=1, description="torch CPU threads.")

    @field_validator("model_path")
    @classmethod
    def _resolve(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        base = (info.context or {}).get("base_dir")
        if path is not None and base is not None and not path.is_absolute():
            path = Path(base) / path
        return path


EngineSpec = Annotated[
    MLIPEngineSpec | VaspEngineSpec | VaspStandinEngineSpec | MaceEngineSpec,
    Field(discriminator="kind"),
]


# --------------------------------------------------------------------------- stages
class StageSettings(Strict):
    """Settings every stage has."""

    enabled: bool = Field(True, description="Whether this stage runs.")
    engine: str = Field(
        "labeller", description="Name of the engine (a key of `engines`) this stage runs on."
    )


class RelaxStageSettings(StageSettings):
    """Relaxation of the input structure (positions, and the cell unless ``relax_cell`` is off)."""

    fmax_ev_per_a: float = Field(0.05, gt=0, description="Force criterion in eV/Å.")
    max_steps: int = Field(300, gt=0, description="Maximum number of optimiser steps.")
    relax_cell: bool = Field(True, description="Relax the cell as well as positions.")
    optimizer: Literal["FIRE", "BFGS", "LBFGS"] = "FIRE"


class MDStageSettings(StageSettings):
    """Production MD protocol of the study: NPT at ``equilibrate_temperature_k`` for
    ``equilibrate_ps``, NPT cooling to each production temperature over ``cool_ps``, then NVT
    at that temperature for ``production_ps``. Study values: 600 K, 100 / 100 / 200 ps, 1 fs."""

    supercell_min_width_a: float = Field(
        10.0, gt=0, description="Smallest distance between opposite cell faces, Å."
    )
    timestep_fs: float = Field(1.0, gt=0)
    sample_every: int = Field(10, ge=1, description="Steps between stored frames.")
    equilibrate_temperature_k: float = Field(600.0, gt=0)
    equilibrate_ps: float = Field(100.0, gt=0)
    cool_ps: float = Field(100.0, gt=0)
    production_ps: float = Field(200.0, gt=0)
    temperatures_k: list[float] = Field(
        default_factory=lambda: [300.0],
        min_length=1,
        description="NVT production temperatures, K (two or more give an Arrhenius fit).",
    )
    pressure_gpa: float = Field(1e-4, description="NPT pressure, GPa (1e-4 GPa = 1 bar).")
    langevin_friction_per_ps: float = Field(10.0, gt=0, description="NVT Langevin friction.")
    thermostat_damping_fs: float = Field(100.0, gt=0, description="NPT thermostat time, fs.")
    barostat_damping_fs: float = Field(1000.0, gt=0, description="NPT barostat time, fs.")
    seed: int = Field(0, description="Seed of velocities and stochastic forces.")


class TrainingDataStageSettings(StageSettings):
    """High-temperature MD with the labeller, frames collected into a dataset (study: AIMD of
    small cells at high temperature for every composition of the series)."""

    supercell_min_width_a: float = Field(8.0, gt=0, description="Cell size for the MD, Å.")
    temperatures_k: list[float] = Field(default_factory=lambda: [1000.0], min_length=1)
    md_ps: float = Field(1.0, gt=0, description="Length of each labelling MD, ps.")
    timestep_fs: float = Field(1.0, gt=0)
    sample_every: int = Field(10, ge=1, description="Steps between dataset frames.")
    dedupe_tol_a: float = Field(0.01, ge=0, description="Frames closer than this are duplicates.")
    split: tuple[float, float, float] = Field(
        (0.8, 0.1, 0.1), description="train / valid / test fractions."
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


class ActiveLearningStageSettings(Strict):
    """Committee active learning after the mlff stage: the mlff stage trains ``committee_size``
    models (other seeds), member 0 explores by NVT MD from each composition's first training
    frame, frames whose committee force deviation lies in [trust_lower, trust_upper) are
    relabelled by the training-data labeller (at most ``max_selected``), added to the training
    split (valid/test stay fixed, so errors stay comparable) and the committee is retrained;
    repeated until the fraction of explored frames at or above the lower bound falls below
    ``stop_fraction`` or after ``max_iterations`` relabellings. Later stages that use the
    campaign-trained model get member 0 of the last committee."""

    enabled: bool = True
    committee_size: int = Field(3, ge=2, le=8, description="Models in the committee (K).")
    explore_temperature_k: float | None = Field(
        None, gt=0, description="Exploration MD temperature, K; default: hottest labelling T."
    )
    explore_steps: int = Field(200, ge=1, description="MD steps per composition and iteration.")
    explore_sample_every: int = Field(10, ge=1, description="Steps between judged frames.")
    timestep_fs: float = Field(1.0, gt=0, le=5, description="Exploration time step, fs.")
    trust_lower_ev_per_a: float = Field(
        0.05, ge=0, description="Lower bound of the committee force deviation window, eV/Å."
    )
    trust_upper_ev_per_a: float = Field(
        0.25, gt=0, description="Upper bound: frames at or above it are not labelled, eV/Å."
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


class TransportStageSettings(Strict):
    """Diffusion and conductivity from the production trajectories (kinisi)."""

    enabled: bool = True
    species: list[str] | None = Field(
        None, description="Ions analysed; default: species on sites with site_class 'mobile'."
    )
    by_site_class: bool = Field(True, description="Also analyse each site class separately.")
    fit_start_ps: float | None = Field(None, description="MSD fit window start, ps.")
    fit_end_ps: float | None = Field(None, description="MSD fit window end, ps.")
    collective: bool = Field(False, description="Also fit the charge (collective) diffusivity.")
    n_samples: int = Field(1000, ge=10, description="MCMC steps kept per walker.")
    n_walkers: int = Field(32, ge=4)
    seed: int = 0


class AmorphousStageSettings(StageSettings):
    """Melt–quench amorphous samples and the crystalline reference of every composition of the
    series (or of the structure alone without a series), all with one engine; ΔE(amorphous −
    crystalline) in meV/atom and formation energies from elemental references.

    Each composition: supercell → relaxation (the crystalline reference, cell + positions) → NVT
    melt at ``melt_temperature_k`` for ``melt_ps`` → per sample (seed): NVT hold for ``hold_ps``,
    NVT quench to ``quench_end_temperature_k`` at ``quench_rate_k_per_ps``, relaxation of cell and
    positions. The study gives no melt–quench numbers; the defaults are common choices for oxides,
    not the study's."""

    supercell_min_width_a: float = Field(10.0, gt=0, description="Cell size, Å.")
    melt_temperature_k: float = Field(3000.0, gt=0, description="Melt and hold temperature, K.")
    melt_ps: float = Field(5.0, gt=0, description="Melt from the crystal (shared by samples), ps.")
    hold_ps: float = Field(2.0, gt=0, description="Per-sample hold in the melt (decorrelates), ps.")
    quench_rate_k_per_ps: float = Field(100.0, gt=0, description="Cooling rate, K/ps.")
    quench_end_temperature_k: float = Field(300.0, gt=0, description="End of the quench, K.")
    n_samples: int = Field(3, ge=1, description="Independent samples per composition.")
    timestep_fs: float = Field(1.0, gt=0)
    sample_every: int = Field(10, ge=1, description="Steps between stored frames.")
    langevin_friction_per_ps: float = Field(10.0, gt=0)
    network_species: list[str] | None = Field(
        None,
        description="Network formers for the melt check (e.g. [Si]); default: the elements on "
        "sites of class framework.",
    )
    min_msd_a2: float = Field(
        2.0, gt=0, description="Network-former MSD over melt + hold that counts as melted, Å²."
    )
    max_long_range_order: float = Field(
        0.25, gt=0, lt=1, description="Largest Bragg order parameter that counts as amorphous."
    )
    fmax_ev_per_a: float = Field(0.05, gt=0, description="Force criterion of the relaxations.")
    max_steps: int = Field(500, gt=0, description="Optimiser steps of each relaxation.")
    optimizer: Literal["FIRE", "BFGS", "LBFGS"] = "FIRE"
    elemental_references: bool = Field(
        True, description="Relax elemental references with the same engine for formation energies."
    )
    seed: int = 0

    def relax_settings(self, relax_cell: bool = True) -> RelaxStageSettings:
        """The relaxation settings of the crystalline reference, the glasses and the elements."""
        return RelaxStageSettings(
            engine=self.engine,
            fmax_ev_per_a=self.fmax_ev_per_a,
            max_steps=self.max_steps,
            relax_cell=relax_cell,
            optimizer=self.optimizer,
        )

    @model_validator(mode="after")
    def _quench_cools(self) -> AmorphousStageSettings:
        if self.quench_end_temperature_k >= self.melt_temperature_k:
            raise ValueError(
                f"quench_end_temperature_k ({self.quench_end_temperature_k:g} K) must be below "
                f"melt_temperature_k ({self.melt_temperature_k:g} K)"
            )
        return self


class NEBStageSettings(StageSettings):
    """Climbing-image NEB barriers of the mobile ion: single vacancy hops and concerted two-ion
    moves, for the host's mobile species and for each species in ``swap`` put on its sites."""

    species: str | None = Field(
        None, description="Mobile species of the structure; default: structure.classify.species."
    )
    swap: list[str] = Field(
        default_factory=list,
        description="Species that replace the mobile ions (all mobile sites) for the same hops.",
    )
    mechanisms: list[Literal["vacancy", "concerted"]] = Field(
        default_factory=lambda: ["vacancy", "concerted"], min_length=1
    )
    max_hop_length_a: float = Field(4.0, gt=0, description="Longest hop considered, Å.")
    n_hops: int = Field(1, ge=1, description="Symmetry-distinct hops computed, shortest first.")
    min_image_distance_a: float = Field(
        8.0, gt=0, description="Supercell face width: periodic images of a moving ion, Å."
    )
    images: int = Field(5, ge=1, description="Intermediate images of each band.")
    interpolation: Literal["idpp", "linear"] = "idpp"
    min_atom_distance_a: float = Field(
        1.0, gt=0, description="Interpolated images may not bring two atoms closer, Å."
    )
    climb: bool = Field(True, description="Climbing image on the highest image.")
    spring_ev_per_a2: float = Field(0.1, gt=0, description="Spring constant, eV/Å².")
    fmax_ev_per_a: float = Field(0.05, gt=0, description="NEB force criterion, eV/Å.")
    max_steps: int = Field(300, gt=0, description="Maximum NEB optimiser steps.")
    optimizer: Literal["FIRE", "BFGS", "LBFGS", "MDMin"] = "FIRE"
    endpoint_fmax_ev_per_a: float = Field(
        0.05, gt=0, description="Force criterion of the fixed-cell endpoint relaxations, eV/Å."
    )
    endpoint_max_steps: int = Field(300, gt=0)
    endpoint_rattle_a: float = Field(
        0.05,
        ge=0,
        description="Random displacement (Å, seeded) of every atom before the end points relax, "
        "so a relaxation cannot stay on a symmetric saddle; 0 = off.",
    )
    seed: int = Field(0, description="Seed of the end-point rattle.")

    def endpoint_relax(self) -> RelaxStageSettings:
        """Fixed-cell relaxation settings of the band end points."""
        return RelaxStageSettings(
            engine=self.engine,
            fmax_ev_per_a=self.endpoint_fmax_ev_per_a,
            max_steps=self.endpoint_max_steps,
            relax_cell=False,
            optimizer="FIRE",
        )


# ---- interfaces (issue 10) ---------------------------------------------------------------
class InterfaceStageSettings(StageSettings):
    """Electrolyte | alkali-metal interfaces (study: crystalline and amorphous electrolyte against
    Li metal, MD at 500 K for 1,000 fs, then minimisation; ctaflow does Na and Li alike).

    Periodic stack without vacuum (two interfaces per cell, γ per interface); the metal takes all
    the lattice mismatch; bulk references with the same engine, the metal one strained in-plane as
    in the interface and relaxed along the normal (see :mod:`ctaflow.analysis.interfaces`).
    The study uses a universal MLIP here (its trained force field never saw metal).
    """

    metals: list[Literal["Na", "Li"]] = Field(
        default_factory=lambda: ["Na", "Li"], min_length=1, description="bcc metal electrodes."
    )
    phases: list[Literal["crystalline", "amorphous"]] = Field(
        default_factory=lambda: ["crystalline", "amorphous"],
        min_length=1,
        description="Electrolyte phases; amorphous samples come from stages.amorphous.",
    )
    miller: tuple[int, int, int] = Field((0, 0, 1), description="Crystalline electrolyte plane.")
    termination: int = Field(0, ge=0, description="Index into pymatgen's slab terminations.")
    electrolyte_thickness_a: float = Field(10.0, gt=0, description="Minimum slab thickness, Å.")
    amorphous_repeats: int = Field(1, ge=1, description="Amorphous cell repeats along c.")
    metal_miller: tuple[int, int, int] = Field((1, 1, 0), description="bcc metal plane.")
    metal_thickness_a: float = Field(8.0, gt=0, description="Minimum metal slab thickness, Å.")
    metal_lattice_a: dict[Literal["Na", "Li"], float] = Field(
        default_factory=dict,
        description="Given bcc lattice parameters, Å; metals not listed are relaxed by the engine.",
    )
    max_strain_pct: float = Field(5.0, gt=0, description="Largest metal strain allowed, %.")
    max_area_a2: float = Field(200.0, gt=0, description="Largest interface area, Å².")
    gap_a: float = Field(2.0, gt=0, description="Electrolyte-metal distance as built, Å.")
    vacuum_a: float = Field(
        0.0, ge=0, description="Must be 0: γ from bulk references needs the periodic stack."
    )
    anneal_temperature_k: float = Field(500.0, gt=0, description="NVT (Langevin) MD, K.")
    anneal_fs: float = Field(1000.0, gt=0, description="Length of the MD, fs.")
    timestep_fs: float = Field(1.0, gt=0)
    sample_every: int = Field(10, ge=1, description="Steps between stored frames.")
    langevin_friction_per_ps: float = Field(10.0, gt=0)
    fmax_ev_per_a: float = Field(0.05, gt=0, description="Force criterion of the interface.")
    reference_fmax_ev_per_a: float = Field(
        0.01,
        gt=0,
        description="Force criterion of the small bulk references (metal, strained metal, "
        "electrolyte); the bcc lattice parameter, hence the strain, depends on it.",
    )
    max_steps: int = Field(300, gt=0, description="Maximum optimiser steps per relaxation.")
    optimizer: Literal["FIRE", "BFGS", "LBFGS"] = "FIRE"
    relax_cell_normal: bool = Field(
        False, description="Also relax the interface cell's length along the normal."
    )
    seed: int = Field(0, description="Seed of MD velocities and Langevin forces.")

    @field_validator("vacuum_a")
    @classmethod
    def _periodic_only(cls, vacuum: float) -> float:
        if vacuum > 0:
            raise ValueError(
                "vacuum_a must be 0: with vacuum the bulk-referenced excess energy also holds two "
                "free surfaces, so it is not γ; the stage uses the periodic stack (2 interfaces)"
            )
        return vacuum

    @field_validator("miller", "metal_miller")
    @classmethod
    def _plane(cls, miller: tuple[int, int, int]) -> tuple[int, int, int]:
        if not any(miller):
            raise ValueError("a Miller index needs a non-zero entry, e.g. [0, 0, 1]")
        return miller

    def relax(
        self, relax_cell: bool = False, max_steps: int | None = None, reference: bool = False
    ) -> RelaxStageSettings:
        """Relaxation settings of the interface (``reference``: of a bulk reference)."""
        return RelaxStageSettings(
            engine=self.engine,
            fmax_ev_per_a=self.reference_fmax_ev_per_a if reference else self.fmax_ev_per_a,
            max_steps=max_steps or self.max_steps,
            relax_cell=relax_cell,
            optimizer=self.optimizer,
        )


class ExchangeStageSettings(StageSettings):
    """MD of a Na-rich | Li-rich stack of the substitution series' end members (study: a large
    Na5SmSi4O12 | Li5SmSi4O12 MD) and the ion-exchange series: Li on former mobile / pillar Na
    sites of the Na-rich block, framework displacement. Needs ``series``."""

    supercell_min_width_a: float = Field(
        8.0, gt=0, description="Face width of each block's supercell, Å."
    )
    temperature_k: float = Field(600.0, gt=0, description="NVT (Langevin) temperature, K.")
    md_ps: float = Field(10.0, gt=0, description="Length of the MD, ps.")
    timestep_fs: float = Field(1.0, gt=0)
    sample_every: int = Field(10, ge=1, description="Steps between stored (analysed) frames.")
    langevin_friction_per_ps: float = Field(10.0, gt=0)
    site_cutoff_a: float = Field(1.2, gt=0, description="Ion-to-site assignment radius, Å.")
    seed: int = 0


# ---- end interfaces ----------------------------------------------------------------------


class Stages(Strict):
    """Which stages run, with their parameters."""

    relax: RelaxStageSettings = Field(default_factory=RelaxStageSettings)
    training_data: TrainingDataStageSettings = Field(
        default_factory=lambda: TrainingDataStageSettings(enabled=False)
    )
    mlff: MLFFStageSettings = Field(default_factory=lambda: MLFFStageSettings(enabled=False))
    active_learning: ActiveLearningStageSettings = Field(
        default_factory=lambda: ActiveLearningStageSettings(enabled=False)
    )
    md: MDStageSettings = Field(default_factory=lambda: MDStageSettings(enabled=False))
    transport: TransportStageSettings = Field(
        default_factory=lambda: TransportStageSettings(enabled=False)
    )
    amorphous: AmorphousStageSettings = Field(
        default_factory=lambda: AmorphousStageSettings(enabled=False)
    )
    neb: NEBStageSettings = Field(default_factory=lambda: NEBStageSettings(enabled=False))
    interfaces: InterfaceStageSettings = Field(
        default_factory=lambda: InterfaceStageSettings(enabled=False)
    )
    exchange: ExchangeStageSettings = Field(
        default_factory=lambda: ExchangeStageSettings(enabled=False)
    )


# --------------------------------------------------------------------------- where it runs
class ExecutionSettings(Strict):
    """Where the flow runs: ``ctaflow run`` runs it here; ``ctaflow submit`` hands it to FireWorks
    (LaunchPad from ``launchpad_file``) or jobflow-remote (``project``, ``worker``)."""

    backend: Literal["local", "fireworks", "jobflow-remote"] = Field(
        "local", description="Execution backend."
    )
    launchpad_file: Path | None = Field(
        None,
        description="FireWorks: my_launchpad.yaml (see launchpad/), relative to the campaign "
        "file; --launchpad overrides it.",
    )
    project: str | None = Field(None, description="jobflow-remote: project name (~/.jfremote).")
    worker: str | None = Field(None, description="jobflow-remote: worker name of the project.")

    @field_validator("launchpad_file")
    @classmethod
    def _relative_to_campaign(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        if path is None:
            return None
        path = path.expanduser()
        base = (info.context or {}).get("base_dir")
        if base is not None and not path.is_absolute():
            path = Path(base) / path
        return path.resolve()


class StoreSettings(Strict):
    """Where results go.

    ``embedded``: an on-disk store under the work directory (no server). ``mongodb``: a
    jobflow-style JOB_STORE configuration file (MongoStore docs + GridFS ``data`` store); the
    credentials live in that file or the environment, never in the campaign file.
    """

    kind: Literal["embedded", "mongodb"] = "embedded"
    config_file: Path | None = Field(
        None, description="jobflow.yaml with a JOB_STORE section (only for kind: mongodb)."
    )

    @model_validator(mode="after")
    def _config_needed(self) -> StoreSettings:
        if self.kind == "mongodb" and self.config_file is None:
            raise ValueError(
                "store kind 'mongodb' needs config_file: the path of a jobflow.yaml with a "
                "JOB_STORE section (see launchpad/jobflow.yaml)"
            )
        return self


# --------------------------------------------------------------------------- campaign
class CampaignSettings(Strict):
    """A whole campaign: structure, engines, stages, execution and store."""

    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        max_length=64,
        description="Campaign name (letters, digits, '_', '-', '.').",
    )
    description: str = ""
    structure: StructureSource = Field(default_factory=DemoStructureSource)
    series: SeriesSettings | None = Field(
        None, description="Substitution series for the training data (None: base structure)."
    )
    engines: dict[str, EngineSpec] = Field(
        default_factory=lambda: {"labeller": MLIPEngineSpec()},
        description="Named engines; stages refer to them by name.",
    )
    stages: Stages = Field(default_factory=Stages)
    execution: ExecutionSettings = Field(default_factory=ExecutionSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)

    @model_validator(mode="after")
    def _stage_engines_exist(self) -> CampaignSettings:
        for stage_name, engine in self.stage_engines().items():
            if engine not in self.engines:
                raise ValueError(
                    f"stages.{stage_name}.engine is '{engine}', which is not defined; "
                    f"defined engines: {sorted(self.engines)} (add it under 'engines:')"
                )
        if self.stages.mlff.enabled and not self.stages.training_data.enabled:
            raise ValueError("stages.mlff needs training data: enable stages.training_data")
        if self.stages.active_learning.enabled and not self.stages.mlff.enabled:
            raise ValueError(
                "stages.active_learning retrains the mlff stage's committee: enable stages.mlff "
                "(and stages.training_data, whose labeller relabels the selected frames)"
            )
        trained = [
            name
            for name, engine in self.stage_engines().items()
            if isinstance(self.engines[engine], MaceEngineSpec)
            and self.engines[engine].model_path is None
        ]
        if trained and not self.stages.mlff.enabled:
            raise ValueError(
                f"stages {trained} use a MACE engine without model_path, i.e. the model trained "
                "by this campaign: enable stages.mlff, or give model_path"
            )
        if "training_data" in trained or "relax" in trained:
            raise ValueError(
                "the trained MACE model exists only after stages.mlff; relax and training_data "
                "must use another engine"
            )
        if "neb" in trained:
            raise ValueError(
                "stages.neb cannot use the MACE model trained by this campaign yet (only md "
                "can); use another engine, or a MACE engine with model_path"
            )
        if self.stages.neb.enabled and self.neb_species() is None:
            raise ValueError(
                "stages.neb needs the mobile species: set stages.neb.species (e.g. Na) or "
                "structure.classify.species"
            )
        if self.stages.neb.enabled and self.neb_species() in self.stages.neb.swap:
            raise ValueError(
                f"stages.neb.swap lists the mobile species {self.neb_species()} itself; "
                "give only the species that replace it (e.g. [Li])"
            )
        if self.stages.transport.enabled and not self.stages.md.enabled:
            raise ValueError(
                "stages.transport needs the md stage: enable stages.md or disable transport"
            )
        return self

    @model_validator(mode="after")
    def _interfaces_consistent(self) -> CampaignSettings:
        """stages.interfaces: amorphous samples need the amorphous stage; no trained MACE."""
        st = self.stages.interfaces
        if not st.enabled:
            return self
        amorphous = getattr(self.stages, "amorphous", None)
        if "amorphous" in st.phases and not (amorphous is not None and amorphous.enabled):
            raise ValueError(
                "stages.interfaces.phases includes 'amorphous', whose samples come from the "
                "amorphous (melt-quench) stage: enable stages.amorphous, or set "
                "stages.interfaces.phases: [crystalline]"
            )
        spec = self.engines.get(st.engine)
        if isinstance(spec, MaceEngineSpec) and spec.model_path is None:
            raise ValueError(
                "stages.interfaces cannot use the MACE model trained by this campaign: it never "
                "saw metal; use a universal MLIP engine (the study's choice)"
            )
        return self

    @model_validator(mode="after")
    def _exchange_consistent(self) -> CampaignSettings:
        """stages.exchange stacks the series' end members: it needs ``series``."""
        st = self.stages.exchange
        if not st.enabled:
            return self
        if self.series is None:
            raise ValueError(
                "stages.exchange stacks the Na-rich and Li-rich ends of the substitution series: "
                "add a series section (e.g. series: {replace: Na, by: Li, sites: mobile})"
            )
        spec = self.engines.get(st.engine)
        if isinstance(spec, MaceEngineSpec) and spec.model_path is None:
            raise ValueError(
                "stages.exchange cannot use the MACE model trained by this campaign yet; use an "
                "MLIP engine or a MACE engine with model_path"
            )
        return self

    def neb_species(self) -> str | None:
        """The ion that moves in the NEB stage: its own setting, else the classified species."""
        if self.stages.neb.species is not None:
            return self.stages.neb.species
        classify = getattr(self.structure, "classify", None)
        return classify.species if classify is not None else None

    def enabled_stages(self) -> dict[str, StageSettings | TransportStageSettings]:
        """Enabled stages in pipeline order."""
        return {
            name: getattr(self.stages, name)
            for name in type(self.stages).model_fields
            if getattr(self.stages, name).enabled
        }

    def structure_identity(self) -> dict[str, Any]:
        """The structure source, with a file identified by its content rather than its path."""
        ident = self.structure.model_dump(mode="json")
        if isinstance(self.structure, FileStructureSource):
            del ident["path"]  # a renamed or moved file is the same structure
            ident["sha256"] = hashlib.sha256(self.structure.path.read_bytes()).hexdigest()
        return ident

    def stage_engines(self) -> dict[str, str]:
        """Engine name of every enabled stage that runs calculations (analysis stages have none)."""
        return {
            name: stage.engine
            for name, stage in self.enabled_stages().items()
            if getattr(stage, "engine", None) is not None
        }

    def science(self) -> dict[str, Any]:
        """Everything that determines results (not where they run or are stored)."""
        data = self.model_dump(mode="json", exclude={"execution", "store", "description"})
        data["structure"] = self.structure_identity()
        return data

    @property
    def fingerprint(self) -> str:
        """Hash of the science settings: equal fingerprints mean equal calculations."""
        return stable_hash(self.science())

    def stage_settings_hash(self, stage_name: str) -> str:
        """Hash of one stage's settings together with its engine and the structure source."""
        stage = getattr(self.stages, stage_name)
        engine = getattr(stage, "engine", None)
        return stable_hash(
            {
                "stage": stage.model_dump(mode="json"),
                "engine": self.engines[engine].model_dump(mode="json") if engine else None,
                "structure": self.structure_identity(),
                "series": (
                    self.series.model_dump(mode="json")
                    if self.series is not None
                    and stage_name in ("training_data", "amorphous", "exchange")
                    else None
                ),
            }
        )
