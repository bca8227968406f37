"""Campaign settings: the pydantic schema a campaign YAML file is validated against.

Every model forbids unknown keys, so a typo in a campaign file is an error, not a silent default.
Units are in the field names (``_ev``, ``_ev_per_a``, ``_k``, ``_fs``) or the descriptions.
The same objects are the Python API: a campaign script builds ``CampaignSettings(...)`` and passes
it to :func:`ctaflow.flows.campaign.build_campaign_flow` without any YAML.

The parts live beside it: structure sources and the series in :mod:`ctaflow.campaign.sources`,
engine specs in :mod:`ctaflow.engines.specs`, stage settings in :mod:`ctaflow.campaign.stages`;
which stages exist, what each needs and may run on, in the stage registry
(:mod:`ctaflow.stages`), from which :class:`Stages` is made.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from pydantic import Field, create_model, model_validator

from ctaflow.analysis.active_learning import UseCondition
from ctaflow.campaign.execution import ExecutionSettings, StoreSettings
from ctaflow.campaign.sources import (
    DemoStructureSource,
    FileStructureSource,
    SeriesSettings,
    StructureSource,
)
from ctaflow.engines.specs import EngineSpec, MaceEngineSpec, MLIPEngineSpec
from ctaflow.settings import Strict, stable_hash
from ctaflow.stages.registry import CONFIGURABLE, STAGES
from ctaflow.stages.spec import StageSpec
from ctaflow.structures.defects import DefectSettings


def _default(spec: StageSpec):
    """A stage's settings when the campaign file does not mention it."""
    return lambda: spec.settings() if spec.on_by_default else spec.settings(enabled=False)


def stages_model(configurable: Mapping[str, StageSpec]) -> type[Strict]:
    """The ``stages:`` model: one field per configurable stage of the registry, in its order."""
    return create_model(
        "Stages",
        __base__=Strict,
        __doc__="Which stages run, with their parameters (one key per stage of the registry).",
        __module__=__name__,
        **{
            name: (spec.settings, Field(default_factory=_default(spec)))
            for name, spec in configurable.items()
        },
    )


#: which stages run, with their parameters
Stages = stages_model(CONFIGURABLE)


class ReferenceValue(Strict):
    """An experimental value the report shows beside the results, for context only (never used
    to tune anything)."""

    quantity: str = Field(description="What was measured, e.g. 'total ionic conductivity'.")
    value: float
    unit: str = Field(description="Unit as printed, e.g. 'S/cm', 'eV'.")
    source: str = Field(description="Where the value comes from (paper, method).")
    material: str | None = None
    condition: str | None = Field(None, description="e.g. 'room temperature', 'amorphised'.")


class CampaignSettings(Strict):
    """A whole campaign: structure, engines, stages, execution and store.

    ``defects`` sits beside ``series``, not inside ``structure``: like the series, it transforms
    the supercell a stage builds (after ``supercell_min_width_a`` is applied, so the defect
    concentration follows that stage's cell), not the structure the campaign starts from. The
    relaxation, the training data and the force field stay those of the perfect crystal, and a
    changed defect setting reruns only the stages that apply it (``StageSpec.uses_defects``: its
    settings hash covers ``defects``), where folding it into the structure identity would
    invalidate every stage, the trained model included.
    """

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
    defects: DefectSettings | None = Field(
        None,
        description="Charge-neutral mobile-ion defects made in the supercell of the stages that "
        "use them (md, transport; None: the perfect crystal). See CampaignSettings.",
    )
    engines: dict[str, EngineSpec] = Field(
        default_factory=lambda: {"labeller": MLIPEngineSpec()},
        description="Named engines; stages refer to them by name.",
    )
    stages: Stages = Field(default_factory=Stages)  # type: ignore[valid-type]
    execution: ExecutionSettings = Field(default_factory=ExecutionSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    reference: list[ReferenceValue] = Field(
        default_factory=list,
        description="Experimental values shown in the report for context (none: no such section).",
    )

    @model_validator(mode="after")
    def _stages_consistent(self) -> CampaignSettings:
        """Every stage's engine exists; what each enabled stage needs (from the registry)."""
        for stage_name, engine in self.stage_engines().items():
            if engine not in self.engines:
                raise ValueError(
                    f"stages.{stage_name}.engine is '{engine}', which is not defined; "
                    f"defined engines: {sorted(self.engines)} (add it under 'engines:')"
                )
        enabled = self.enabled_stages()
        trained = [name for name in self.stage_engines() if self.uses_trained_model(name)]
        if trained and "mlff" not in enabled:
            raise ValueError(
                f"stages {trained} use a MACE engine without model_path, i.e. the model trained "
                "by this campaign: enable stages.mlff, or give model_path"
            )
        for name in enabled:
            spec = CONFIGURABLE[name]
            for needed, message in spec.requires.items():
                if needed not in enabled:
                    raise ValueError(message)
            if name in trained and spec.trained_model is not None:
                raise ValueError(spec.trained_model)
            if spec.check is not None:
                spec.check(self)
        return self

    def neb_species(self) -> str | None:
        """The ion that moves in the NEB stage: its own setting, else the classified species."""
        if self.stages.neb.species is not None:
            return self.stages.neb.species
        classify = getattr(self.structure, "classify", None)
        return classify.species if classify is not None else None

    def enabled_stages(self) -> dict[str, Any]:
        """Settings of the enabled stages, in pipeline order."""
        return {
            name: getattr(self.stages, name)
            for name in CONFIGURABLE
            if getattr(self.stages, name).enabled
        }

    def model_conditions(self) -> list[UseCondition]:
        """The MD conditions of every enabled stage that runs on the model this campaign trains
        (what its training data and active learning must cover), in pipeline order."""
        return [
            condition
            for name, stage in self.enabled_stages().items()
            if self.uses_trained_model(name) and CONFIGURABLE[name].conditions is not None
            for condition in CONFIGURABLE[name].conditions(stage)
        ]

    def defect_temperatures(self) -> list[float]:
        """Temperatures, K, at which the stages that apply the campaign's ``defects`` run the
        trained model (the training data label the defective cell there too); none without
        defects."""
        if self.defects is None:
            return []
        return sorted(
            {
                c.temperature_start_k
                for c in self.model_conditions()
                if c.isothermal and STAGES[c.stage].uses_defects
            }
        )

    def defect_labelling_temperatures(self) -> list[float]:
        """Temperatures, K, at which the training data label the defective cell: those of
        :meth:`defect_temperatures` and ``training_data.defect_hop_temperatures_k`` (none when no
        stage runs the model on the defective cell)."""
        used = self.defect_temperatures()
        if not used:
            return []
        return sorted({*used, *self.stages.training_data.defect_hop_temperatures_k})

    def uses_trained_model(self, stage_name: str) -> bool:
        """Whether a stage runs on the MACE model this campaign trains (no ``model_path``)."""
        engine = getattr(getattr(self.stages, stage_name), "engine", None)
        spec = self.engines.get(engine) if engine is not None else None
        return isinstance(spec, MaceEngineSpec) and spec.model_path is None

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
        data = self.model_dump(
            mode="json", exclude={"execution", "store", "description", "reference"}
        )
        data["structure"] = self.structure_identity()
        return data

    @property
    def fingerprint(self) -> str:
        """Hash of the science settings: equal fingerprints mean equal calculations."""
        return stable_hash(self.science())

    def stage_settings_hash(self, stage_name: str) -> str:
        """Hash of one stage's settings together with its engine and the structure source (of
        the structure alone for the root stage, which has no settings)."""
        if STAGES[stage_name].root:
            return stable_hash(self.structure_identity())
        stage = getattr(self.stages, stage_name)
        engine = getattr(stage, "engine", None)
        return stable_hash(
            {
                "stage": stage.model_dump(mode="json"),
                "engine": self.engines[engine].model_dump(mode="json") if engine else None,
                "structure": self.structure_identity(),
                "series": (
                    self.series.model_dump(mode="json")
                    if self.series is not None and STAGES[stage_name].uses_series
                    else None
                ),
                # only when set: the hashes of campaigns without defects stay as they were
                **(
                    {"defects": self.defects.model_dump(mode="json")}
                    if self.defects is not None and STAGES[stage_name].uses_defects
                    else {}
                ),
            }
        )
