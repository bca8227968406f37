"""Real ctaflow jobs (embedded CHGNet engine) for the check that they run in worker processes:
an atomate2 ForceFieldRelaxMaker relaxation and a dynamic job replaced by a ctaflow MD job."""

from __future__ import annotations

from jobflow import Flow, Response, job

from ctaflow.flows.uids import deterministic_uids


def _engine():
    from ctaflow.campaign.schema import MLIPEngineSpec
    from ctaflow.engines import get_engine

    return get_engine(MLIPEngineSpec())


@job
def md_in_replacement(structure, n_steps: int, seed: int) -> Response:
    """Replaced by one ctaflow MD job (NVT, 600 K) on ``structure``."""
    from ctaflow.makers.md import MDControls, MDSegment

    segment = MDSegment("test", "nvt", 600.0, 600.0, duration_ps=n_steps / 1000.0)
    maker = _engine().md_maker(segment, n_steps, seed, MDControls(sample_every=5))
    md = maker.make(structure)
    return Response(replace=Flow([md], output=md.output))


def flow() -> tuple[Flow, str, str]:
    """(flow, uuid of the relaxation summary, uuid of the replaced job): two independent parts."""
    from ctaflow.campaign.stages import RelaxStageSettings
    from ctaflow.makers.relax import RelaxStageMaker
    from ctaflow.structures import demo_structure

    with deterministic_uids("real-jobs"):
        settings = RelaxStageSettings(fmax_ev_per_a=0.05, max_steps=20)
        relax = RelaxStageMaker(engine=_engine(), settings=settings).make(demo_structure())
        md = md_in_replacement(demo_structure(), 20, 3)
        whole = Flow([relax, md])
    whole.update_metadata({"stage": "real", "campaign": "real"})
    return whole, relax.output.uuid, md.uuid
