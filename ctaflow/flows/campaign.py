"""Build the jobflow Flow of a campaign: one sub-flow per enabled stage, wired by references."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jobflow import Flow

from ctaflow import __version__
from ctaflow.campaign.schema import stable_hash
from ctaflow.engines import get_engine
from ctaflow.flows.uids import deterministic_uids
from ctaflow.makers.exchange import ExchangeStageMaker
from ctaflow.makers.interfaces import InterfaceStageMaker
from ctaflow.makers.md import MDStageMaker
from ctaflow.makers.mlff import TrainingDataMaker, md_with_trained_model, train_mace_job
from ctaflow.makers.neb import NEBStageMaker
from ctaflow.makers.relax import RelaxStageMaker
from ctaflow.makers.structure import StructureRecordMaker
from ctaflow.makers.transport import transport_flow

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
        from ctaflow.execution.local import count_jobs

        return count_jobs(self.flow)


def build_campaign_flow(settings: CampaignSettings, structure: Structure) -> CampaignFlow:
    """The campaign's Flow for a validated starting ``structure``.

    Job uuids are deterministic (see :mod:`ctaflow.flows.uids`) and every job carries the
    metadata ``campaign``, ``campaign_fingerprint``, ``stage``, ``composition``, ``engine`` and
    ``settings_hash``.
    """
    with deterministic_uids(settings.fingerprint):
        built = CampaignFlow(flow=Flow([], name=settings.name))
    composition = structure.composition.reduced_formula
    base = {
        "campaign": settings.name,
        "campaign_fingerprint": settings.fingerprint,
        "composition": composition,
    }

    def add(stage: str, seed_data: dict, make, engine_label: str | None, settings_hash: str):
        seed = stable_hash({"ctaflow": __version__, "stage": stage, **seed_data}, length=32)
        with deterministic_uids(seed):
            sub = make()
        meta = {**base, "stage": stage, "engine": engine_label, "settings_hash": settings_hash}
        sub.update_metadata(meta)
        built.stages[stage] = sub
        built.metadata[stage] = meta
        built.flow.add_jobs(sub)
        return sub, seed

    structure_hash = stable_hash(settings.structure_identity())
    _, structure_seed = add(
        "structure",
        {"structure": structure_hash},
        lambda: Flow([StructureRecordMaker().make(structure)], name="structure"),
        None,
        structure_hash,
    )
    stages = settings.enabled_stages()
    current, upstream = structure, structure_seed  # what the next stage starts from
    if "relax" in stages:
        engine = get_engine(settings.engines[stages["relax"].engine])
        relax_hash = settings.stage_settings_hash("relax")
        relax, upstream = add(
            "relax",
            {"settings": relax_hash, "upstream": upstream},
            lambda: RelaxStageMaker(engine=engine, settings=stages["relax"]).make(structure),
            engine.label,
            relax_hash,
        )
        current = relax.output.structure
    mlff, ml_seed = None, None
    if "training_data" in stages:
        labeller = get_engine(settings.engines[stages["training_data"].engine])
        td_hash = settings.stage_settings_hash("training_data")
        dataset, td_seed = add(
            "training_data",
            {"settings": td_hash, "upstream": upstream},
            lambda: TrainingDataMaker(
                labeller, stages["training_data"], settings.series, settings.stages.relax
            ).make(current),
            labeller.label,
            td_hash,
        )
        if "mlff" in stages:
            ml = stages["mlff"]
            ml_hash = settings.stage_settings_hash("mlff")

            def train():
                fit = train_mace_job(dataset.output, ml.hyperparameters(), ml.threads)
                fit.name = "train mace"
                return Flow([fit], output=fit.output, name="mlff")

            mlff, ml_seed = add(
                "mlff", {"settings": ml_hash, "upstream": td_seed}, train, "mace", ml_hash
            )
    if "md" in stages:
        md_spec = settings.engines[stages["md"].engine]
        md_engine = get_engine(md_spec)
        md_hash = settings.stage_settings_hash("md")
        trained = getattr(md_spec, "kind", None) == "mace" and md_spec.model_path is None

        def md_flow():
            if not trained:
                return MDStageMaker(engine=md_engine, settings=stages["md"]).make(current)
            launcher = md_with_trained_model(
                mlff.output.model,
                current,
                stages["md"].model_dump(mode="json"),
                md_spec.model_dump(mode="json"),
            )
            launcher.name = "md with trained mace"
            return Flow([launcher], output=launcher.output, name="md")

        md, md_seed = add(
            "md",
            {"settings": md_hash, "upstream": [upstream, ml_seed] if trained else upstream},
            md_flow,
            md_engine.label,
            md_hash,
        )
        if "transport" in stages:
            tr = stages["transport"]
            tr_hash = settings.stage_settings_hash("transport")
            add(
                "transport",
                {"settings": tr_hash, "upstream": md_seed},
                lambda: transport_flow(
                    [md.output[i] for i in range(len(stages["md"].temperatures_k))],
                    tr.species,
                    tr.model_dump(),
                ),
                md_engine.label,
                tr_hash,
            )
    if "neb" in stages:
        neb_engine = get_engine(settings.engines[stages["neb"].engine])
        neb_hash = settings.stage_settings_hash("neb")
        add(
            "neb",
            {"settings": neb_hash, "upstream": upstream},
            lambda: NEBStageMaker(
                engine=neb_engine,
                settings=stages["neb"],
                species=settings.neb_species(),
                host_relax=settings.stages.relax,
            ).make(current),
            neb_engine.label,
            neb_hash,
        )
    # ---- interfaces (issue 10) -----------------------------------------------------------
    if "interfaces" in stages:
        if_engine = get_engine(settings.engines[stages["interfaces"].engine])
        if_hash = settings.stage_settings_hash("interfaces")
        amorphous, amorphous_seed = interface_amorphous_samples(built)
        add(
            "interfaces",
            {"settings": if_hash, "upstream": [upstream, amorphous_seed]},
            lambda: InterfaceStageMaker(engine=if_engine, settings=stages["interfaces"]).make(
                current, amorphous
            ),
            if_engine.label,
            if_hash,
        )
    if "exchange" in stages:
        ex_engine = get_engine(settings.engines[stages["exchange"].engine])
        ex_hash = settings.stage_settings_hash("exchange")
        add(
            "exchange",
            {"settings": ex_hash, "upstream": upstream},  # ex_hash covers the series
            lambda: ExchangeStageMaker(
                engine=ex_engine, settings=stages["exchange"], series=settings.series
            ).make(current),
            ex_engine.label,
            ex_hash,
        )
    # ---- end interfaces ------------------------------------------------------------------
    return built


def interface_amorphous_samples(built: CampaignFlow) -> tuple[list, str | None]:
    """MERGE POINT (issue 10 x amorphous stage): the relaxed amorphous samples that the
    interfaces stage puts against the metals, and the seed of the stage they come from.

    The amorphous (melt-quench) stage is being written on main. When it lands, return
    references to its relaxed sample structures here, e.g.
    ``[s.structure for s in built.stages["amorphous"].output.samples]`` (a list of
    ``Structure`` references, one per sample of the campaign's composition) and that stage's seed;
    :class:`~ctaflow.makers.interfaces.InterfaceStageMaker` accepts any list of structures.
    Until then the campaign validator refuses ``phases: [amorphous]`` without the stage, so an
    empty list here is never silently used.
    """
    return [], None
