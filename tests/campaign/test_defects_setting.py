"""The campaign's ``defects:`` setting: validated where it is written, applied to the MD supercell,
and part of the settings hash of exactly the stages that use it."""

from __future__ import annotations

import pytest

from ctaflow.campaign import CampaignSettings, load_campaign
from ctaflow.errors import CampaignError

CAMPAIGN = """\
name: t1
structure: {source: demo}
engines:
  labeller: {kind: mlip, model: CHGNet}
stages:
  relax: {fmax_ev_per_a: 0.05, max_steps: 50}
  md: {temperatures_k: [500, 600, 700], supercell_min_width_a: 9.0}
  transport: {}
"""


def _load(tmp_path, text) -> CampaignSettings:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return load_campaign(path)


def test_defects_change_the_md_and_transport_hashes_only(tmp_path):
    plain = _load(tmp_path, CAMPAIGN)
    defective = _load(tmp_path, CAMPAIGN + "defects: {kind: schottky, species: Na, seed: 1}\n")
    assert plain.defects is None and defective.defects.kind == "schottky"
    for stage in ("structure", "relax"):
        assert plain.stage_settings_hash(stage) == defective.stage_settings_hash(stage)
    for stage in ("md", "transport"):
        assert plain.stage_settings_hash(stage) != defective.stage_settings_hash(stage)
    other_seed = _load(tmp_path, CAMPAIGN + "defects: {kind: schottky, species: Na, seed: 2}\n")
    assert other_seed.stage_settings_hash("md") != defective.stage_settings_hash("md")


def test_a_defect_without_its_compensation_is_refused_where_it_is_written(tmp_path):
    with pytest.raises(CampaignError) as info:
        _load(tmp_path, CAMPAIGN + "defects: {kind: aliovalent, species: Na}\n")
    assert "defects" in str(info.value) and "replace" in str(info.value)


def test_the_md_stage_makes_its_defects_after_the_supercell(tmp_path):
    from ctaflow.flows.campaign import build_campaign_flow
    from ctaflow.structures import demo_structure

    settings = _load(tmp_path, CAMPAIGN + "defects: {kind: schottky, species: Na}\n")
    flow = build_campaign_flow(settings, demo_structure()).stages["md"]
    names = [job.name for job in flow.jobs]
    assert names[:3] == ["md supercell", "md defects", "md equilibrate"]
    defects_job = flow.jobs[1]
    assert defects_job.function_args[0].uuid == flow.jobs[0].uuid  # made from the supercell
    # the protocol's segments: no cooling segment at the equilibration temperature (600 K)
    assert "md cool to 600 K" not in names and "md cool to 500 K" in names
    assert "md heat to 700 K" in names
