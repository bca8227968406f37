"""The stage registry: every stage of a campaign, in pipeline order, in one place.

Adding a stage means a maker (:mod:`ctaflow.makers`), a pure analysis module with its result
schema (:mod:`ctaflow.analysis`), a settings model (:mod:`ctaflow.campaign.stages`), and one entry
here (its build function, builder and report section); the campaign schema, the flow builder, the
CLI, ``ctaflow build`` and the report pick it up from :data:`STAGES`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jobflow import Flow

import ctaflow.stages.cells as cells
from ctaflow.analysis.active_learning import ActiveLearningResult
from ctaflow.analysis.amorphous import AmorphousCompositionResult
from ctaflow.analysis.exchange import ExchangeResult
from ctaflow.analysis.interfaces import InterfaceResult
from ctaflow.analysis.md import MDResult
from ctaflow.analysis.mlff import DatasetResult, MLFFResult
from ctaflow.analysis.neb import BarrierResult
from ctaflow.analysis.relax import RelaxResult
from ctaflow.analysis.structure import StructureRecord
from ctaflow.analysis.transport_summary import TransportSummary
from ctaflow.builders.barriers import BarrierBuilder
from ctaflow.builders.formation import FormationEnergyBuilder
from ctaflow.builders.interfaces import InterfaceBuilder
from ctaflow.builders.mlff import MLFFBuilder
from ctaflow.builders.relax import RelaxBuilder
from ctaflow.builders.transport import TransportBuilder
from ctaflow.campaign import stages as settings
from ctaflow.campaign import stages_mlff
from ctaflow.engines import get_engine
from ctaflow.engines.params import MDSegment, steps_for
from ctaflow.engines.specs import MaceEngineSpec
from ctaflow.makers.active_learning import active_learning_job, committee_seeds
from ctaflow.makers.amorphous import AmorphousStageMaker, usable_amorphous_sample
from ctaflow.makers.exchange import ExchangeStageMaker
from ctaflow.makers.interfaces import InterfaceStageMaker
from ctaflow.makers.md import MDStageMaker
from ctaflow.makers.mlff import claim_training_cores, train_mace_job
from ctaflow.makers.neb import NEBStageMaker
from ctaflow.makers.relax import RelaxStageMaker
from ctaflow.makers.structure import StructureRecordMaker
from ctaflow.makers.training_data import TrainingDataMaker, labelling_plan
from ctaflow.makers.transport import transport_flow
from ctaflow.report import sections
from ctaflow.stages.conditions import amorphous_conditions, md_conditions
from ctaflow.stages.spec import BASE, MODEL, StageContext, StageSpec

if TYPE_CHECKING:
    from ctaflow.campaign.schema import CampaignSettings
    from ctaflow.engines.base import Engine


# --------------------------------------------------------------------------- build functions
def _structure(ctx: StageContext, _: None) -> Flow:
    return Flow([StructureRecordMaker().make(ctx.structure)], name="structure")


def _relax(ctx: StageContext, st: settings.RelaxStageSettings) -> Flow:
    return RelaxStageMaker(engine=ctx.engine(st), settings=st).make(ctx.structure)


def _training_data(ctx: StageContext, st: stages_mlff.TrainingDataStageSettings) -> Flow:
    maker = TrainingDataMaker(
        engine=ctx.engine(st),
        settings=st,
        series=ctx.campaign.series,
        relax_settings=ctx.campaign.stages.relax,
        conditions=ctx.campaign.model_conditions(),
        defects=ctx.campaign.defects,
        defect_temperatures_k=ctx.campaign.defect_labelling_temperatures(),
    )
    return maker.make(ctx.start)


def _sanity(campaign: CampaignSettings) -> dict[str, float]:
    """The MD check of every trained model: at the hottest labelling temperature by default."""
    ml = campaign.stages.mlff
    hottest = max(labelling_plan(campaign.stages.training_data, campaign.model_conditions())[0])
    return {"temperature_k": ml.sanity_md_temperature_k or hottest, "n_steps": ml.sanity_md_steps}


def _committee(campaign: CampaignSettings) -> list[int]:
    """Seeds of the further committee members (none without active learning)."""
    al = campaign.stages.active_learning
    return committee_seeds(campaign.stages.mlff.seed, al.committee_size) if al.enabled else []


def _mlff(ctx: StageContext, ml: stages_mlff.MLFFStageSettings) -> Flow:
    members = _committee(ctx.campaign)
    dataset = ctx.flows["training_data"].output
    fit = train_mace_job(dataset, ml.hyperparameters(), ml.threads, _sanity(ctx.campaign), members)
    claim_training_cores(fit, len(members) + 1, ml.threads)
    fit.name = "train mace" + (f" committee of {len(members) + 1}" if members else "")
    return Flow([fit], output=fit.output, name="mlff")


def _active_learning(ctx: StageContext, al: stages_mlff.ActiveLearningStageSettings) -> Flow:
    campaign = ctx.campaign
    ml, td = campaign.stages.mlff, campaign.stages.training_data
    retrain = ml.hyperparameters()
    retrain["max_num_epochs"] = al.retrain_epochs or (
        max(2, ml.max_num_epochs // 3) if al.warm_start else ml.max_num_epochs
    )
    conditions = campaign.model_conditions()
    explore = al
    if al.explore_temperature_k is None and not conditions:  # no stage uses the model
        hottest = max(labelling_plan(td, conditions)[0])
        explore = al.model_copy(update={"explore_temperature_k": hottest})
    loop = active_learning_job(
        ctx.flows["training_data"].output,
        ctx.flows["mlff"].output,
        explore,
        ctx.engine(td),
        retrain,
        ml.threads,
        _sanity(campaign),
        conditions=conditions,
    )
    loop.name = "active learning 0"
    return Flow([loop], output=loop.output, name="active_learning")


def _md(ctx: StageContext, st: settings.MDStageSettings) -> Flow:
    """The MD protocol on the campaign's defective supercell; the production runs follow the
    transport stage's species (default: the mobile ones)."""
    maker = MDStageMaker(
        engine=ctx.engine(st),
        settings=st,
        defects=ctx.campaign.defects,
        species=ctx.campaign.stages.transport.species,
    )
    return ctx.make("md", maker, ctx.start)


def _transport(ctx: StageContext, tr: settings.TransportStageSettings) -> Flow:
    md = ctx.flows["md"]
    md_settings = ctx.campaign.stages.md
    n = len(md_settings.temperatures_k)
    options = tr.model_dump()
    # the regime check asks for the MSD the production runs were extended to reach
    options["min_msd_a2"] = tr.min_msd_a2 or md_settings.msd_target_a2
    return transport_flow([md.output[i] for i in range(n)], tr.species, options)


def _amorphous(ctx: StageContext, st: settings.AmorphousStageSettings) -> Flow:
    cells = None if st.cell_engine is None else get_engine(ctx.campaign.engines[st.cell_engine])
    maker = AmorphousStageMaker(
        engine=ctx.engine(st),
        cell_engine=cells,
        settings=st,
        series=ctx.campaign.series,
        elements=sorted(el.symbol for el in ctx.structure.composition.elements),
    )
    return ctx.make("amorphous", maker, ctx.start)


def _neb(ctx: StageContext, st: settings.NEBStageSettings) -> Flow:
    maker = NEBStageMaker(
        engine=ctx.engine(st),
        settings=st,
        species=ctx.campaign.neb_species(),
        host_relax=ctx.campaign.stages.relax,
    )
    return maker.make(ctx.start)


def _interfaces(ctx: StageContext, st: settings.InterfaceStageSettings) -> Flow:
    maker = InterfaceStageMaker(engine=ctx.engine(st), settings=st)
    if "amorphous" not in st.phases:
        return maker.make(ctx.start, [])
    # the lowest-energy sample of the campaign's own composition (series member 0) that passed
    # every melt–quench check
    pick = usable_amorphous_sample(ctx.flows["amorphous"].output[0])
    pick.name = "amorphous sample for interfaces"
    interfaces = maker.make(ctx.start, [pick.output])
    return Flow([pick, interfaces], output=interfaces.output, name="interfaces")


def _exchange(ctx: StageContext, st: settings.ExchangeStageSettings) -> Flow:
    maker = ExchangeStageMaker(engine=ctx.engine(st), settings=st, series=ctx.campaign.series)
    return maker.make(ctx.start)


# --------------------------------------------------------------------------- checks, previews
def _check_neb(campaign: CampaignSettings) -> None:
    species = campaign.neb_species()
    if species is None:
        raise ValueError(
            "stages.neb needs the mobile species: set stages.neb.species (e.g. Na) or "
            "structure.classify.species"
        )
    if species in campaign.stages.neb.swap:
        raise ValueError(
            f"stages.neb.swap lists the mobile species {species} itself; give only the species "
            "that replace it (e.g. [Li])"
        )


def _needs_stresses(campaign: CampaignSettings, stage: str, what: str, instead: str) -> None:
    """A stage that changes the cell with the MACE model the campaign trains needs a model
    trained on stresses: without, its stress is an untrained derivative (on the demo cell a glass
    relaxed with it swelled from 9 to 13 Å per side)."""
    if campaign.uses_trained_model(stage) and campaign.stages.mlff.stress_weight <= 0:
        raise ValueError(
            f"stages.{stage} {what} with the MACE model this campaign trains, which is trained "
            "without stresses (stages.mlff.stress_weight: 0) and so predicts no usable stress: "
            f"set stages.mlff.stress_weight (e.g. 1.0; the labeller's stresses), or {instead}"
        )


def _check_md(campaign: CampaignSettings) -> None:
    if campaign.stages.md.equilibrate_ensemble == "npt":
        _needs_stresses(
            campaign, "md", "runs an NPT barostat", "stages.md.equilibrate_ensemble: nvt"
        )


def _check_amorphous(campaign: CampaignSettings) -> None:
    cell_engine = campaign.stages.amorphous.cell_engine
    if cell_engine is not None and cell_engine not in campaign.engines:
        raise ValueError(
            f"stages.amorphous.cell_engine is '{cell_engine}', which is not defined; defined "
            f"engines: {sorted(campaign.engines)} (add it under 'engines:')"
        )
    spec = campaign.engines.get(cell_engine) if cell_engine is not None else None
    if isinstance(spec, MaceEngineSpec) and spec.model_path is None:
        raise ValueError(
            f"stages.amorphous.cell_engine is '{cell_engine}', the MACE model this campaign "
            "trains: it exists only after the mlff stage, and the stage's own cell relaxation "
            "(relax_cell: true) already uses it. Name the labeller or a model with model_path"
        )
    if campaign.stages.amorphous.relax_cell:
        _needs_stresses(
            campaign,
            "amorphous",
            "relaxes the cells of the crystal and the glasses",
            "stages.amorphous.relax_cell: false",
        )


def _check_interfaces(campaign: CampaignSettings) -> None:
    if "amorphous" in campaign.stages.interfaces.phases and not campaign.stages.amorphous.enabled:
        raise ValueError(
            "stages.interfaces.phases includes 'amorphous', whose samples come from the "
            "amorphous (melt-quench) stage: enable stages.amorphous, or set "
            "stages.interfaces.phases: [crystalline]"
        )


def _check_exchange(campaign: CampaignSettings) -> None:
    if campaign.series is None:
        raise ValueError(
            "stages.exchange stacks the Na-rich and Li-rich ends of the substitution series: "
            "add a series section (e.g. series: {replace: Na, by: Li, sites: mobile})"
        )


def _preview_relax(engine: Engine, st: settings.RelaxStageSettings):
    return engine.relax_maker(st)


def _preview_md(engine: Engine, st: settings.MDStageSettings):
    """The first segment's maker shows the engine's MD settings."""
    maker = MDStageMaker(engine=engine, settings=st)
    segment: MDSegment = maker.equilibration()
    controls = maker.controls()
    steps = steps_for(segment.duration_ps, controls.timestep_fs, controls.sample_every)
    return engine.md_maker(segment, steps, st.seed, controls)


def _mace_label(ctx: StageContext, _: Any) -> str:
    return "mace"


def _md_label(ctx: StageContext, _: Any) -> str:
    return ctx.engine(ctx.campaign.stages.md).label


def _interfaces_upstream(st: settings.InterfaceStageSettings) -> tuple[str, ...]:
    return (BASE, "amorphous") if "amorphous" in st.phases else (BASE,)


NO_MODEL_YET = (
    "the trained MACE model exists only after stages.mlff; {name} must use another engine"
)

# --------------------------------------------------------------------------- the registry
STAGES: dict[str, StageSpec] = {
    spec.name: spec
    for spec in (
        StageSpec(
            name="structure",
            settings=None,
            build=_structure,
            upstream=(),
            root=True,
            output_schema=StructureRecord,
            no_builder="one document per campaign, read as stored",
            report=sections.STRUCTURES,
        ),
        StageSpec(
            name="relax",
            cells=cells.relax,
            settings=settings.RelaxStageSettings,
            build=_relax,
            upstream=("structure",),
            trained_model=NO_MODEL_YET.format(name="relax"),
            provides="start",
            provided=lambda flow: flow.output.structure,
            output_schema=RelaxResult,
            builder=RelaxBuilder,
            report=sections.RELAXATIONS,
            preview=_preview_relax,
            on_by_default=True,
        ),
        StageSpec(
            name="training_data",
            cells=cells.training_data,
            settings=stages_mlff.TrainingDataStageSettings,
            build=_training_data,
            uses_defects=True,  # labels the defective cell where a stage runs the model on it
            trained_model=NO_MODEL_YET.format(name="training_data"),
            uses_series=True,
            output_schema=DatasetResult,
            no_builder="the dataset is an input of the mlff stage, whose builder reports on it",
            no_report="its frames and sources are reported with the force field (mlff)",
        ),
        StageSpec(
            name="mlff",
            settings=stages_mlff.MLFFStageSettings,
            build=_mlff,
            upstream=("training_data",),
            requires={
                "training_data": "stages.mlff needs training data: enable stages.training_data"
            },
            provides="model",
            provided=lambda flow: flow.output,
            label=_mace_label,
            seed_extra=lambda c: {"committee_seeds": _committee(c)} if _committee(c) else {},
            output_schema=MLFFResult,
            builder=MLFFBuilder,
            report=sections.MLFF,
        ),
        StageSpec(
            name="active_learning",
            cells=cells.active_learning,
            settings=stages_mlff.ActiveLearningStageSettings,
            build=_active_learning,
            upstream=("mlff",),
            requires={
                "mlff": "stages.active_learning retrains the mlff stage's committee: enable "
                "stages.mlff (and stages.training_data, whose labeller relabels the selected "
                "frames)"
            },
            provides="model",
            provided=lambda flow: flow.output,
            label=_mace_label,
            output_schema=ActiveLearningResult,
            no_builder="one document per loop holds every iteration; the report reads it as stored",
            report=sections.ACTIVE_LEARNING,
        ),
        StageSpec(
            name="md",
            cells=cells.md,
            settings=settings.MDStageSettings,
            build=_md,
            uses_defects=True,
            check=_check_md,
            output_schema=MDResult,
            no_builder="per-segment statistics are in the MD documents; the report reads them",
            report=sections.MD,
            preview=_preview_md,
            conditions=md_conditions,
        ),
        StageSpec(
            name="transport",
            settings=settings.TransportStageSettings,
            build=_transport,
            upstream=("md",),
            requires={
                "md": "stages.transport needs the md stage: enable stages.md or disable transport"
            },
            label=_md_label,
            uses_defects=True,
            output_schema=TransportSummary,
            builder=TransportBuilder,
            report=sections.TRANSPORT,
        ),
        StageSpec(
            name="amorphous",
            cells=cells.amorphous,
            settings=settings.AmorphousStageSettings,
            build=_amorphous,
            uses_series=True,
            check=_check_amorphous,
            output_schema=AmorphousCompositionResult,
            conditions=amorphous_conditions,
            builder=FormationEnergyBuilder,
            report=sections.FORMATION_ENERGIES,
        ),
        StageSpec(
            name="neb",
            cells=cells.neb,
            settings=settings.NEBStageSettings,
            build=_neb,
            trained_model="stages.neb cannot use the MACE model trained by this campaign yet "
            "(only md and amorphous can); use another engine, or a MACE engine with model_path",
            check=_check_neb,
            output_schema=BarrierResult,
            builder=BarrierBuilder,
            report=sections.BARRIERS,
        ),
        StageSpec(
            name="interfaces",
            cells=cells.interfaces,
            settings=settings.InterfaceStageSettings,
            build=_interfaces,
            upstream=_interfaces_upstream,
            trained_model="stages.interfaces cannot use the MACE model trained by this campaign: "
            "it never saw metal; use a universal MLIP engine (the study's choice)",
            check=_check_interfaces,
            output_schema=InterfaceResult,
            builder=InterfaceBuilder,
            report=sections.INTERFACES,
        ),
        StageSpec(
            name="exchange",
            cells=cells.exchange,
            settings=settings.ExchangeStageSettings,
            build=_exchange,
            trained_model="stages.exchange cannot use the MACE model trained by this campaign "
            "yet; use an MLIP engine or a MACE engine with model_path",
            uses_series=True,
            check=_check_exchange,
            output_schema=ExchangeResult,
            no_builder="one document per MD run holds its time series; the report reads it",
            report=sections.EXCHANGE,
        ),
    )
}

#: stages with settings (the keys a campaign file's ``stages:`` may have), in pipeline order;
#: :class:`ctaflow.campaign.schema.Stages` is made from it when the schema loads
CONFIGURABLE = {name: spec for name, spec in STAGES.items() if spec.settings is not None}


def builders() -> dict[str, type]:
    """The builders, by the name of their derived collection, in pipeline order."""
    return {spec.builder.collection: spec.builder for spec in STAGES.values() if spec.builder}


def report_sections() -> list:
    """The report sections, in pipeline order."""
    return [spec.report for spec in STAGES.values() if spec.report is not None]


__all__ = ["CONFIGURABLE", "MODEL", "STAGES", "builders", "report_sections"]
