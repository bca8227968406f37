"""Job metadata ``priority``: the stages of the model a campaign trains first (the local runner
starts their jobs before the others, see tests/execution/test_parallel_runner.py)."""

from __future__ import annotations

from ctaflow.campaign import load_campaign
from ctaflow.flows.campaign import build_campaign_flow, model_chain
from ctaflow.structures import demo_structure

CAMPAIGN = """\
name: prio
structure: {source: demo}
engines:
  labeller: {kind: mlip, model: CHGNet}
  mlff: {kind: mace}
stages:
  training_data: {engine: labeller, temperatures_k: [600]}
  mlff: {stress_weight: 1.0}
  md: {engine: %s, temperatures_k: [600]}
  neb: {engine: labeller, species: Na}
"""


def _settings(tmp_path, md_engine: str):
    path = tmp_path / "c.yaml"
    path.write_text(CAMPAIGN % md_engine)
    return load_campaign(path)


def test_the_trained_model_chain_gets_priority_in_every_job(tmp_path):
    settings = _settings(tmp_path, "mlff")
    assert model_chain(settings, settings.enabled_stages()) == {"training_data", "mlff", "md"}
    built = build_campaign_flow(settings, demo_structure())
    for name, flow in built.stages.items():
        want = 1 if name in {"training_data", "mlff", "md"} else 0
        assert {job.metadata["priority"] for job in flow.jobs} == {want}, name
    # what md's jobs add while they run (MD extensions) carries it too
    assert all(
        any(u["update"].get("priority") == 1 for u in job.metadata_updates)
        for job in built.stages["md"].jobs
    )


def test_no_stage_has_priority_when_nothing_runs_on_the_trained_model(tmp_path):
    settings = _settings(tmp_path, "labeller")
    assert model_chain(settings, settings.enabled_stages()) == set()
    built = build_campaign_flow(settings, demo_structure())
    assert {job.metadata["priority"] for flow in built.stages.values() for job in flow.jobs} == {0}
