"""Numbers given as text are errors naming the key; numbers YAML writes without a dot still pass."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ctaflow.campaign import CampaignSettings, load_campaign
from ctaflow.errors import CampaignError
from ctaflow.settings import NUMBER_ERROR
from tests.conftest import REPO


def _load(tmp_path, text: str):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return load_campaign(path)


def _error(tmp_path, text: str) -> str:
    with pytest.raises(CampaignError) as caught:
        _load(tmp_path, text)
    return str(caught.value)


def test_a_quoted_temperature_is_an_error_naming_the_key(tmp_path):
    message = _error(tmp_path, 'name: t\nstages:\n  md:\n    equilibrate_temperature_k: "600"\n')
    assert message == (
        "invalid campaign:\n"
        f"  {tmp_path / 'c.yaml'}:4: stages.md.equilibrate_temperature_k: a number, not a string "
        "('600'); write it without quotes"
    )


def test_text_inside_lists_and_engine_specs(tmp_path):
    message = _error(tmp_path, "name: t\nstages:\n  md: {temperatures_k: [500, '600']}\n")
    assert (
        "c.yaml:3: stages.md.temperatures_k: item 2: a number, not a string ('600'); write it "
        "without quotes" in message
    )
    message = _error(tmp_path, "name: t\nengines:\n  labeller: {kind: mlip, threads: '2'}\n")
    assert "c.yaml:3: engines.labeller.threads: a number, not a string ('2')" in message
    message = _error(tmp_path, "name: t\nstages:\n  md: {sample_every: true}\n")
    assert "stages.md.sample_every: a number, not true" in message


def test_text_that_is_no_number_keeps_pydantics_message(tmp_path):
    message = _error(tmp_path, "name: t\nstages:\n  relax: {max_steps: many}\n")
    assert "stages.relax.max_steps: Input should be a valid integer" in message


def test_whole_numbers_and_exponents_without_a_dot_are_numbers(tmp_path):
    campaign = _load(
        tmp_path,
        "name: t\nstages:\n  md: {equilibrate_temperature_k: 600, pressure_gpa: 1e-4, "
        "temperatures_k: [300, 4.5E+2]}\n",
    )
    md = campaign.stages.md
    assert md.equilibrate_temperature_k == 600.0 and isinstance(md.equilibrate_temperature_k, float)
    assert md.pressure_gpa == 1e-4  # PyYAML alone reads 1e-4 as the text "1e-4"
    assert md.temperatures_k == [300.0, 450.0]


def test_text_fields_take_digits_as_before(tmp_path):
    campaign = _load(
        tmp_path, "name: t\nengines:\n  labeller: {kind: mlip, model: SevenNet, model_version: 0}\n"
    )
    assert campaign.engines["labeller"].model_version == "0"


def test_the_python_api_refuses_text_numbers_too():
    with pytest.raises(ValidationError) as caught:
        CampaignSettings(name="t", stages={"md": {"temperatures_k": ["600"]}})
    (error,) = caught.value.errors()
    assert error["type"] == NUMBER_ERROR and error["loc"] == ("stages", "md")
    assert error["ctx"]["field"] == "temperatures_k"


def test_the_shipped_demo_campaign_still_loads():
    demo = load_campaign(REPO / "campaigns" / "demo.yaml")
    assert demo.stages.md.temperatures_k == [900.0, 1000.0, 1100.0]
    assert demo.stages.interfaces.anneal_fs == 50.0
