"""Build the jobflow Flow of a campaign: one sub-flow per enabled stage of the registry, in
pipeline order, wired by output references."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jobflow import Flow

from ctaflow import __version__
from ctaflow.analysis.provenance import source_fingerprint
from ctaflow.execution.local import count_jobs
from ctaflow.flows.uids import deterministic_uids
from ctaflow.settings import stable_hash
from ctaflow.stages.registry import STAGES
from ctaflow.stages.spec import BASE, MODEL, StageContext, StageSpec

if TYPE_CHECKING:
    from pymatgen.core import Structure

    from ctaflow.campaign.schema import CampaignSettings


@dataclass
class CampaignFlow:
    """The flow of a campaign with its stage sub-flows and their metadata."""

    flow: Flow
    stages: dict[str, Flow] = field(default_factory=dict)
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def n_jobs(self) -> int:
        return count_jobs(self.flow)


def build_campaign_flow(settings: CampaignSettings, structure: Structure) -> CampaignFlow:
    """The campaign's Flow for a validated starting ``structure``.

    Job uuids are deterministic: each stage is built under a seed made of the ctaflow version
    and source code, the stage name, its settings hash and the seeds of the stages it builds on (see
    :mod:`ctaflow.flows.uids`), so a rebuilt campaign finds its finished jobs and a changed
    setting reruns exactly the stages downstream of it. Every job carries the metadata
    ``campaign``, ``campaign_fingerprint``, ``stage``, ``composition``, ``engine``,
    ``settings_hash`` and ``priority`` (1 for the stages of the model the campaign trains, see
    :func:`model_chain`; the local runner starts their jobs first).
    """
    with deterministic_uids(settings.fingerprint):
        built = CampaignFlow(flow=Flow([], name=settings.name))
    base = {
        "campaign": settings.name,
        "campaign_fingerprint": settings.fingerprint,
        "composition": structure.composition.reduced_formula,
    }
    ctx = StageContext(campaign=settings, structure=structure, start=structure)
    enabled = settings.enabled_stages()
    first = model_chain(settings, enabled)
    seeds: dict[str, str] = {}  # stage name (or BASE, MODEL) -> seed of its uuids
    for name, spec in STAGES.items():
        if not spec.root and name not in enabled:
            continue
        stage_settings = enabled.get(name)
        settings_hash = settings.stage_settings_hash(name)
        seed_data = _seed_data(spec, settings, stage_settings, settings_hash, seeds)
        code = {"ctaflow": __version__, "source": source_fingerprint()}
        seed = stable_hash({**code, "stage": name, **seed_data}, length=32)
        with deterministic_uids(seed):
            sub = spec.build(ctx, stage_settings)
        label = _label(spec, ctx, stage_settings)
        meta = {
            **base,
            "stage": name,
            "engine": label,
            "settings_hash": settings_hash,
            "priority": int(name in first),
        }
        sub.update_metadata(meta)
        built.stages[name] = sub
        built.metadata[name] = meta
        built.flow.add_jobs(sub)
        ctx.flows[name] = sub
        seeds[name] = seed
        if spec.root:
            seeds[BASE] = seed
        if spec.provides == "start":
            ctx.start, seeds[BASE] = spec.provided(sub), seed
        elif spec.provides == "model":
            ctx.model, seeds[MODEL] = spec.provided(sub), seed
    return built


def model_chain(settings: CampaignSettings, enabled: dict[str, Any]) -> set[str]:
    """The enabled stages that run on the model the campaign trains, those that train it and
    every stage these build on (empty when no stage uses a trained model). Their chain of jobs
    is the campaign's longest in time, and it grows while it runs (active-learning rounds, MD
    extensions), so the runner cannot see it in the graph: their jobs start first and the other
    stages fill the cores left free."""
    chain = {name for name in enabled if settings.uses_trained_model(name)}
    if not chain:
        return set()
    todo = [name for name, spec in STAGES.items() if spec.provides == "model"]
    while todo:
        name = todo.pop()
        if name in enabled and name not in chain:
            chain.add(name)
            todo += STAGES[name].upstream_of(enabled[name])
    return chain


def _seed_data(
    spec: StageSpec,
    settings: CampaignSettings,
    stage_settings: Any,
    settings_hash: str,
    seeds: dict[str, str],
) -> dict[str, Any]:
    """What a stage's uuid seed is made of: its settings hash and its upstream stages' seeds
    (one seed, or a list when it builds on several)."""
    if spec.root:
        return {"structure": settings_hash}
    names = list(spec.upstream_of(stage_settings))
    if settings.uses_trained_model(spec.name) and MODEL not in names:
        names.append(MODEL)
    upstream = [seeds[n] for n in names]
    data = {"settings": settings_hash, "upstream": upstream[0] if len(upstream) == 1 else upstream}
    if spec.seed_extra is not None:
        data.update(spec.seed_extra(settings))
    return data


def _label(spec: StageSpec, ctx: StageContext, stage_settings: Any) -> str | None:
    """The engine label in a stage's job metadata."""
    if spec.label is not None:
        return spec.label(ctx, stage_settings)
    if getattr(stage_settings, "engine", None) is None:
        return None
    return ctx.engine(stage_settings).label
