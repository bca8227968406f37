"""Build the jobflow Flow of a campaign: one sub-flow per enabled stage, wired by references."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jobflow import Flow

from ctaflow import __version__
from ctaflow.campaign.schema import stable_hash
from ctaflow.engines import get_engine
from ctaflow.flows.uids import deterministic_uids
from ctaflow.makers.active_learning import active_learning_job, committee_seeds
from ctaflow.makers.amorphous import AmorphousStageMaker, usable_amorphous_sample
from ctaflow.makers.exchange import ExchangeStageMaker
from ctaflow.makers.interfaces import InterfaceStageMaker
from ctaflow.makers.md import MDStageMaker
from ctaflow.makers.mlff import TrainingDataMaker, stage_on_trained_model, train_mace_job
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
    amorphous_seed = None
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

            hottest = max(stages["training_data"].temperatures_k)
            al = stages.get("active_learning")
            members = committee_seeds(ml.seed, al.committee_size) if al else []

            sanity = {
                "temperature_k": ml.sanity_md_temperature_k or hottest,
                "n_steps": ml.sanity_md_steps,
            }

            def train():
                fit = train_mace_job(
                    dataset.output, ml.hyperparameters(), ml.threads, sanity, members
                )
                fit.name = "train mace" + (f" committee of {len(members) + 1}" if al else "")
                return Flow([fit], output=fit.output, name="mlff")

            ml_seed_data = {"settings": ml_hash, "upstream": td_seed}
            if members:  # without active learning the stage (and its seed) is as before
                ml_seed_data["committee_seeds"] = members
            mlff, ml_seed = add("mlff", ml_seed_data, train, "mace", ml_hash)
            if al:
                al_hash = settings.stage_settings_hash("active_learning")
                retrain = ml.hyperparameters()
                retrain["max_num_epochs"] = al.retrain_epochs or (
                    max(2, ml.max_num_epochs // 3) if al.warm_start else ml.max_num_epochs
                )
                al_settings = al.model_copy(
                    update={"explore_temperature_k": al.explore_temperature_k or hottest}
                )
                labeller_spec = settings.engines[stages["training_data"].engine]
                committee = mlff

                def learn():
                    loop = active_learning_job(
                        dataset.output,
                        committee.output,
                        al_settings.model_dump(mode="json"),
                        labeller_spec.model_dump(mode="json"),
                        retrain,
                        ml.threads,
                        sanity,
                    )
                    loop.name = "active learning 0"
                    return Flow([loop], output=loop.output, name="active_learning")

                # later stages on the trained model take the loop's final model
                mlff, ml_seed = add(
                    "active_learning",
                    {"settings": al_hash, "upstream": ml_seed},
                    learn,
                    "mace",
                    al_hash,
                )
    if "md" in stages:
        md_spec = settings.engines[stages["md"].engine]
        md_engine = get_engine(md_spec)
        md_hash = settings.stage_settings_hash("md")
        trained = getattr(md_spec, "kind", None) == "mace" and md_spec.model_path is None

        def md_flow():
            if not trained:
                return MDStageMaker(engine=md_engine, settings=stages["md"]).make(current)
            return on_trained_model("md", mlff, current, stages["md"], md_spec)

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
    if "amorphous" in stages:
        am = stages["amorphous"]
        am_spec = settings.engines[am.engine]
        am_engine = get_engine(am_spec)
        am_hash = settings.stage_settings_hash("amorphous")
        elements = sorted(el.symbol for el in structure.composition.elements)
        am_trained = getattr(am_spec, "kind", None) == "mace" and am_spec.model_path is None

        def amorphous_flow():
            if not am_trained:
                return AmorphousStageMaker(
                    engine=am_engine, settings=am, series=settings.series, elements=elements
                ).make(current)
            series = None if settings.series is None else settings.series.model_dump(mode="json")
            return on_trained_model(
                "amorphous", mlff, current, am, am_spec, {"series": series, "elements": elements}
            )

        _, amorphous_seed = add(
            "amorphous",
            {"settings": am_hash, "upstream": [upstream, ml_seed] if am_trained else upstream},
            amorphous_flow,
            am_engine.label,
            am_hash,
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

        def interfaces_flow():
            maker = InterfaceStageMaker(engine=if_engine, settings=stages["interfaces"])
            if "amorphous" not in stages["interfaces"].phases:
                return maker.make(current, [])
            # the lowest-energy sample of the campaign's own composition (series member 0)
            # that passed every melt–quench check
            pick = usable_amorphous_sample(built.stages["amorphous"].output[0])
            pick.name = "amorphous sample for interfaces"
            interfaces = maker.make(current, [pick.output])
            return Flow([pick, interfaces], output=interfaces.output, name="interfaces")

        add(
            "interfaces",
            {
                "settings": if_hash,
                "upstream": (
                    [upstream, amorphous_seed]
                    if "amorphous" in stages["interfaces"].phases
                    else upstream
                ),
            },
            interfaces_flow,
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


def on_trained_model(stage: str, mlff: Flow, structure, stage_settings, mace_spec, options=None):
    """A one-job flow that runs ``stage`` on the model the ``mlff`` stage trains (the model
    exists only at run time, so the stage's own flow replaces this job then)."""
    launcher = stage_on_trained_model(
        mlff.output.model,
        structure,
        stage,
        stage_settings.model_dump(mode="json"),
        mace_spec.model_dump(mode="json"),
        options,
    )
    launcher.name = f"{stage} with trained mace"
    return Flow([launcher], output=launcher.output, name=stage)
