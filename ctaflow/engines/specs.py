"""Engine specifications: what a campaign file's ``engines:`` entries may say.

One pydantic model per engine kind (discriminated by ``kind``); :func:`ctaflow.engines.get_engine`
turns a validated spec into an engine object. Every model forbids unknown keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from ctaflow.settings import Strict, TrustWindow, relative_to_campaign

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
    dtype: Literal["float32", "float64"] = Field(
        "float64", description="Precision of relaxations, NEB and static evaluations."
    )
    md_dtype: Literal["auto", "float32", "float64"] = Field(
        "auto",
        description="Precision of MD (production, melt–quench, exploration). auto: float32 for "
        "the campaign-trained model when its test split gives the same energies and forces in "
        "float32 and float64 (within 1 % of its test error; the mlff stage checks it), else "
        "dtype. float64 forces it.",
    )
    threads: int = Field(1, ge=1, description="torch CPU threads.")
    committee: list[Path] = Field(
        default_factory=list,
        description="Model files of the other members of a committee (model_path is member 0): "
        "every MD run then stores the committee force deviation of its frames and whether they "
        "stayed in the trust window. The campaign-trained model gets its active-learning "
        "committee here by itself.",
    )
    trust_window: TrustWindow = Field(
        default_factory=lambda: TrustWindow(lower_ev_per_a=0.05, upper_ev_per_a=0.25),
        description="Committee force deviation window, eV/Å (frames at or above the upper "
        "bound left the model's trust window).",
    )
    trust_by_composition: dict[str, TrustWindow] = Field(
        default_factory=dict, description="Windows of particular compositions (reduced formula)."
    )

    @field_validator("model_path")
    @classmethod
    def _resolve(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        return None if path is None else relative_to_campaign(path, info)

    @field_validator("committee")
    @classmethod
    def _resolve_all(cls, paths: list[Path], info: ValidationInfo) -> list[Path]:
        return [relative_to_campaign(path, info) for path in paths]

    def window_for(self, composition: str) -> TrustWindow:
        """The trust window of a composition (its own, else the default)."""
        return self.trust_by_composition.get(composition, self.trust_window)


EngineSpec = Annotated[
    MLIPEngineSpec | VaspEngineSpec | VaspStandinEngineSpec | MaceEngineSpec,
    Field(discriminator="kind"),
]
