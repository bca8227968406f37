"""stages.interfaces: validation and wiring into the campaign flow."""

from __future__ import annotations

import pytest

from ctaflow.campaign import load_campaign
from ctaflow.errors import CampaignError

BASE = """\
name: t-if
structure: {source: demo}
engines:
  labeller: {kind: mlip, model: CHGNet}
stages:
  relax: {fmax_ev_per_a: 0.05, max_steps: 50}
  interfaces:
"""


def _load(tmp_path, extra: str):
    path = tmp_path / "c.yaml"
    path.write_text(BASE + "".join(f"    {line}\n" for line in extra.splitlines()))
    return load_campaign(path)


def _error(tmp_path, extra: str) -> str:
    with pytest.raises(CampaignError) as info:
        _load(tmp_path, extra)
    return str(info.value)


def test_defaults_are_the_study_protocol(tmp_path):
    st = _load(tmp_path, "phases: [crystalline]").stages.interfaces
    assert (st.anneal_temperature_k, st.anneal_fs) == (500.0, 1000.0)
    assert st.metals == ["Na", "Li"] and st.vacuum_a == 0.0


def test_unknown_key_is_rejected(tmp_path):
    assert "anneal_k" in _error(tmp_path, "phases: [crystalline]\nanneal_k: 500")


def test_amorphous_phase_needs_the_amorphous_stage(tmp_path):
    message = _error(tmp_path, "phases: [crystalline, amorphous]")
    assert "enable stages.amorphous" in message and "phases: [crystalline]" in message


def test_vacuum_and_unknown_metal_are_refused(tmp_path):
    assert "periodic stack" in _error(tmp_path, "phases: [crystalline]\nvacuum_a: 10")
    assert "metals" in _error(tmp_path, "phases: [crystalline]\nmetals: [Mg]")
    assert "non-zero" in _error(tmp_path, "phases: [crystalline]\nmiller: [0, 0, 0]")


def test_trained_mace_is_refused_for_interfaces(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        BASE.replace(
            "  labeller: {kind: mlip, model: CHGNet}\n",
            "  labeller: {kind: mlip, model: CHGNet}\n  mlff: {kind: mace}\n",
        )
        + "    phases: [crystalline]\n    engine: mlff\n"
        + "  training_data: {engine: labeller}\n  mlff: {}\n"
    )
    with pytest.raises(CampaignError, match="never saw metal"):
        load_campaign(path)


def test_stage_is_wired_from_the_relaxed_structure(tmp_path):
    from ctaflow.flows.campaign import build_campaign_flow
    from ctaflow.structures import demo_structure

    settings = _load(tmp_path, "phases: [crystalline]\nmetals: [Na, Li]")
    built = build_campaign_flow(settings, demo_structure())
    sub = built.stages["interfaces"]
    assert built.metadata["interfaces"]["stage"] == "interfaces"
    assert built.metadata["interfaces"]["engine"] == "mlip:CHGNet-0.3.0"
    assert len(sub.output) == 2  # crystalline x {Na, Li}
    relax_summary = built.stages["relax"].output
    # the bulk electrolyte of the stage starts from the relax stage's relaxed structure
    bulk = next(j for j in sub.jobs if j.name == "bulk electrolyte crystalline 0")
    first = bulk.jobs[0]
    assert first.function_args[0].uuid == relax_summary.uuid
    # rebuilding gives the same job ids (resume finds finished work)
    again = build_campaign_flow(settings, demo_structure()).stages["interfaces"]
    assert [j.uuid for j in again.jobs] == [j.uuid for j in sub.jobs]


def test_exchange_stage_needs_the_series_and_is_wired(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(BASE.replace("  interfaces:\n", "  exchange: {md_ps: 0.02}\n"))
    with pytest.raises(CampaignError, match="add a series section"):
        load_campaign(path)
    path.write_text(
        BASE.replace("  interfaces:\n", "  exchange: {md_ps: 0.02}\n")
        + "series: {replace: Na, by: Li, sites: all}\n"
    )
    settings = load_campaign(path)
    from ctaflow.flows.campaign import build_campaign_flow
    from ctaflow.structures import demo_structure

    built = build_campaign_flow(settings, demo_structure())
    assert [j.name for j in built.stages["exchange"].jobs] == [
        "exchange stack",
        "exchange md",
        "exchange series",
    ]
    # the series is part of the stage's settings hash (it decides what is stacked)
    changed = settings.model_copy(
        update={"series": settings.series.model_copy(update={"sites": "mobile"})}
    )
    assert changed.stage_settings_hash("exchange") != settings.stage_settings_hash("exchange")
