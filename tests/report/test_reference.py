"""Experimental reference values come only from the campaign's own ``reference:`` block."""

from __future__ import annotations

import json

import pytest
import yaml
from pydantic import TypeAdapter, ValidationError

from ctaflow.campaign.schema import CampaignSettings, ReferenceValue
from ctaflow.errors import CtaflowError
from ctaflow.report.reference import reference_of
from tests.conftest import REPO

VALUE = {"quantity": "activation energy", "value": 0.15, "unit": "eV", "source": "impedance"}


def test_the_study_campaign_declares_the_study_values_and_the_demo_none():
    paper = yaml.safe_load((REPO / "campaigns" / "paper.yaml").read_text())
    values = TypeAdapter(list[ReferenceValue]).validate_python(paper["reference"])
    assert [(v.value, v.unit, v.condition) for v in values] == [
        (2.9e-3, "S/cm", "room temperature"),
        (0.15, "eV", None),
        (0.13, "eV", "crystalline"),
        (0.07, "eV", "after amorphisation"),
    ]
    assert "reference" not in yaml.safe_load((REPO / "campaigns" / "demo.yaml").read_text())


def test_reference_values_do_not_change_the_fingerprint():
    bare = CampaignSettings(name="x")
    with_reference = CampaignSettings(name="x", reference=[VALUE])
    assert bare.fingerprint == with_reference.fingerprint
    with pytest.raises(ValidationError):
        CampaignSettings(name="x", reference=[{"value": 1.0}])  # quantity, unit, source needed


def test_reference_is_read_from_the_recorded_campaign_file_else_the_effective_settings(workdir):
    assert reference_of(workdir) == []  # nothing recorded: no reference section
    (workdir / "campaign.effective.yaml").write_text(yaml.safe_dump({"name": "x"}))
    assert reference_of(workdir) == []  # the campaign declared none
    (workdir / "campaign.effective.yaml").write_text(
        yaml.safe_dump({"name": "x", "reference": [VALUE]})
    )
    assert reference_of(workdir) == [VALUE]
    campaign = workdir.parent / "c.yaml"
    campaign.write_text(yaml.safe_dump({"name": "x", "reference": [{**VALUE, "value": 0.2}]}))
    (workdir / "ctaflow-run.json").write_text(json.dumps({"campaign_file": str(campaign)}))
    assert reference_of(workdir)[0]["value"] == 0.2  # the user's current file first
    campaign.write_text(yaml.safe_dump({"name": "x", "reference": [{"value": 0.2}]}))
    with pytest.raises(CtaflowError, match="each entry needs quantity, value, unit and source"):
        reference_of(workdir)
