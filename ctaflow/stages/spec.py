"""The shape of a stage: what the registry (:mod:`ctaflow.stages.registry`) holds for each one.

A stage is one :class:`StageSpec`: its settings model, the stages it builds on, whether it may run
on the model the campaign trains, how its flow is built from a :class:`StageContext`, the maggma
builder of its derived collection and its report section. The campaign schema, the flow builder,
``ctaflow validate``, ``ctaflow build`` and the report loop over the registry; none of them names a
stage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from jobflow import Flow, Maker

from ctaflow.engines import get_engine
from ctaflow.makers.mlff import run_on_trained_model

if TYPE_CHECKING:
    from pydantic import BaseModel
    from pymatgen.core import Structure

    from ctaflow.analysis.active_learning import UseCondition
    from ctaflow.builders.base import StageBuilder
    from ctaflow.campaign.schema import CampaignSettings
    from ctaflow.engines.base import Engine
    from ctaflow.report.data import ReportSection
    from ctaflow.stages.cells import StageCell

#: the campaign's structure as the later stages start from it: the starting structure, or the
#: output of the last stage that ``provides`` "start" (the relaxation)
BASE = "base"
#: the model trained by the campaign: the output of the last stage that ``provides`` "model"
MODEL = "model"


@dataclass(frozen=True)
class StageSpec:
    """One stage of a campaign.

    Parameters
    ----------
    name
        Key under ``stages:`` in a campaign file and ``metadata.stage`` of its jobs.
    settings
        Its settings model (None: the root stage, which has none).
    build
        ``build(context, settings) -> Flow``: the stage's jobs.
    upstream
        Stages whose outputs it uses (:data:`BASE`, :data:`MODEL` or stage names), or a function of
        its settings giving them; their seeds enter this stage's job uuids. :data:`MODEL` is added
        by itself when the stage's engine is the campaign-trained model.
    requires
        Stage name → message, for stages that must be enabled with this one.
    trained_model
        None when the stage may run on the campaign-trained MACE; else why it may not.
    output_schema
        The result documents the stage stores (what the report and ``query`` read).
    builder, no_builder
        The maggma builder of its derived collection, or why it has none.
    report, no_report
        Its report section, or why it has none.
    uses_series
        Its settings hash covers the substitution series.
    uses_defects
        It applies the campaign's ``defects`` to its cells; its settings hash covers them.
    provides
        "start": later stages start from ``provided(flow)``; "model": later stages on the trained
        model use ``provided(flow)`` (the model's stored parts).
    label
        ``label(context, settings)``: the engine label in the job metadata (default: the label of
        the stage's engine).
    check
        ``check(campaign)`` raises ValueError for settings that cannot work together.
    seed_extra
        ``seed_extra(campaign)``: more data for the stage's uuid seed.
    preview
        ``preview(engine, settings)``: the engine maker ``ctaflow validate`` shows.
    conditions
        ``conditions(settings)``: the MD conditions the stage runs (for a stage that may run on
        the campaign-trained model: what its training data and active learning must cover).
    cells
        ``cells(campaign, structure) -> {label: StageCell}``: the cells the stage computes on,
        sized without running anything (see :mod:`ctaflow.stages.cells`); ``ctaflow validate``
        prints them with memory and time estimates and refuses cells that cannot fit.
    root
        The stage every campaign has (the structure record).
    on_by_default
        Enabled when a campaign file does not mention it.
    """

    name: str
    settings: type[BaseModel] | None
    build: Callable[[StageContext, Any], Flow]
    upstream: tuple[str, ...] | Callable[[Any], tuple[str, ...]] = (BASE,)
    requires: dict[str, str] = field(default_factory=dict)
    trained_model: str | None = None
    output_schema: type[BaseModel] | None = None
    builder: type[StageBuilder] | None = None
    no_builder: str = ""
    report: ReportSection | None = None
    no_report: str = ""
    uses_series: bool = False
    uses_defects: bool = False
    provides: str | None = None
    provided: Callable[[Flow], Any] | None = None
    label: Callable[[StageContext, Any], str | None] | None = None
    check: Callable[[CampaignSettings], None] | None = None
    seed_extra: Callable[[CampaignSettings], dict[str, Any]] | None = None
    preview: Callable[[Engine, Any], Maker | None] | None = None
    conditions: Callable[[Any], list[UseCondition]] | None = None
    cells: Callable[[CampaignSettings, Structure], dict[str, StageCell]] | None = None
    root: bool = False
    on_by_default: bool = False

    def upstream_of(self, settings: Any) -> tuple[str, ...]:
        return self.upstream(settings) if callable(self.upstream) else self.upstream


@dataclass
class StageContext:
    """What a stage's flow is built from.

    ``structure`` is the validated starting structure; ``start`` what later stages start from (the
    relaxed structure once the relax stage is built, an output reference); ``flows`` the flows of
    the stages built so far; ``model`` a reference to the output of the stage that trained the
    campaign's model last (mlff, or active learning: the model's and its committee's parts).
    """

    campaign: CampaignSettings
    structure: Structure
    start: Any = None
    flows: dict[str, Flow] = field(default_factory=dict)
    model: Any = None

    def engine(self, stage_settings: Any) -> Engine:
        """The engine a stage's settings name."""
        return get_engine(self.campaign.engines[stage_settings.engine])

    def trust(self) -> dict[str, dict[str, float]] | None:
        """The trust windows of active learning (``{"default": window, composition: window}``;
        None without active learning)."""
        al = self.campaign.stages.active_learning
        if not al.enabled:
            return None
        default = {
            "lower_ev_per_a": al.trust_lower_ev_per_a,
            "upper_ev_per_a": al.trust_upper_ev_per_a,
        }
        return {
            "default": default,
            **{k: w.model_dump() for k, w in al.trust_by_composition.items()},
        }

    def make(self, stage: str, maker: Maker, *args: Any) -> Flow:
        """``maker.make(*args)``, or, when the maker's engine is the model this campaign trains
        (known only at run time), a one-job flow that makes it then (see
        :func:`ctaflow.makers.mlff.run_on_trained_model`)."""
        if not maker.engine.needs_trained_model:
            return maker.make(*args)
        launcher = run_on_trained_model(self.model, replace(maker), list(args), self.trust())
        launcher.name = f"{stage} with trained mace"
        return Flow([launcher], output=launcher.output, name=stage)
