"""Campaign settings: the pydantic schema a campaign YAML file is validated against.

Every model forbids unknown keys, so a typo in a campaign file is an error, not a silent default.
Units are in the field names (``_ev``, ``_ev_per_a``, ``_k``, ``_fs``) or the descriptions.
The same objects are the Python API: a campaign script builds ``CampaignSettings(...)`` and passes
it to :func:`ctaflow.flows.campaign.build_campaign_flow` without any YAML.
"""

from __future__ import annotations

import hashlib
import json
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
class DemoStructureSource(Strict):
    """The built-in demo structure (see ``ctaflow.structures.demo`` for its provenance)."""

    source: Literal["demo"] = "demo"
    name: Literal["Na3OCl-antiperovskite"] = Field(
        "Na3OCl-antiperovskite", description="Which built-in demo structure."
    )


class FileStructureSource(Strict):
    """A structure file pymatgen can read: CIF, POSCAR/CONTCAR, ...; relative paths are taken
    relative to the campaign file."""

    source: Literal["file"] = "file"
    path: Path = Field(description="Path to the structure file.")

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


StructureSource = Annotated[
    DemoStructureSource | FileStructureSource, Field(discriminator="source")
]


# --------------------------------------------------------------------------- engines
class MLIPEngineSpec(Strict):
    """A universal machine-learned interatomic potential shipped inside a package (no download)."""

    kind: Literal["mlip"] = "mlip"
    model: Literal["CHGNet"] = Field("CHGNet", description="Universal MLIP family.")
    model_version: Literal["0.3.0", "0.2.0"] = Field(
        "0.3.0", description="Weights bundled with the chgnet wheel."
    )
    dtype: Literal["float32", "float64"] = "float32"
    device: Literal["cpu", "cuda"] = "cpu"


EngineSpec = Annotated[MLIPEngineSpec, Field(discriminator="kind")]


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


class Stages(Strict):
    """Which stages run, with their parameters."""

    relax: RelaxStageSettings = Field(default_factory=RelaxStageSettings)


# --------------------------------------------------------------------------- where it runs
class ExecutionSettings(Strict):
    """Where the flow runs. Only ``local`` is implemented in this version."""

    backend: Literal["local"] = Field("local", description="Execution backend.")


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
    engines: dict[str, EngineSpec] = Field(
        default_factory=lambda: {"labeller": MLIPEngineSpec()},
        description="Named engines; stages refer to them by name.",
    )
    stages: Stages = Field(default_factory=Stages)
    execution: ExecutionSettings = Field(default_factory=ExecutionSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)

    @model_validator(mode="after")
    def _stage_engines_exist(self) -> CampaignSettings:
        for stage_name, stage in self.enabled_stages().items():
            if stage.engine not in self.engines:
                raise ValueError(
                    f"stages.{stage_name}.engine is '{stage.engine}', which is not defined; "
                    f"defined engines: {sorted(self.engines)} (add it under 'engines:')"
                )
        return self

    def enabled_stages(self) -> dict[str, StageSettings]:
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
        return stable_hash(
            {
                "stage": stage.model_dump(mode="json"),
                "engine": self.engines[stage.engine].model_dump(mode="json"),
                "structure": self.structure_identity(),
            }
        )
