"""Campaign validation: every bad key gives one message naming file, line, key and the fix."""

from __future__ import annotations

import pytest

from ctaflow.campaign import CampaignSettings, load_campaign
from ctaflow.campaign.schema import Stages
from ctaflow.campaign.sources import FileStructureSource
from ctaflow.campaign.stages import RelaxStageSettings
from ctaflow.engines.specs import MLIPEngineSpec
from ctaflow.errors import CampaignError

GOOD = """\
name: t1
structure: {source: demo}
engines:
  labeller: {kind: mlip, model: CHGNet}
stages:
  relax: {fmax_ev_per_a: 0.05, max_steps: 50}
"""


def _load(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return load_campaign(path)


def _error(tmp_path, text) -> str:
    with pytest.raises(CampaignError) as info:
        _load(tmp_path, text)
    return str(info.value)


def test_good_campaign_has_defaults_filled(tmp_path):
    settings = _load(tmp_path, GOOD)
    assert settings.stages.relax.fmax_ev_per_a == 0.05
    assert settings.stages.relax.optimizer == "FIRE"  # default
    assert settings.store.kind == "embedded"
    assert list(settings.enabled_stages()) == ["relax"]


def test_unknown_key_names_line_key_and_allowed_keys(tmp_path):
    msg = _error(tmp_path, GOOD.replace("max_steps: 50", "max_steps: 50, colour: red"))
    assert "c.yaml:6: stages.relax.colour: unknown key 'colour'" in msg
    assert "allowed keys here: enabled, engine, fmax_ev_per_a, max_steps, minimum, optimizer" in msg


def test_unknown_key_inside_named_engine(tmp_path):
    msg = _error(tmp_path, GOOD.replace("model: CHGNet", "modle: CHGNet"))
    assert "c.yaml:4: engines.labeller.modle: unknown key 'modle'" in msg
    assert "model_version" in msg


def test_wrong_type_and_range(tmp_path):
    msg = _error(tmp_path, GOOD.replace("max_steps: 50", "max_steps: many"))
    assert "stages.relax.max_steps" in msg and "integer" in msg
    msg = _error(tmp_path, GOOD.replace("fmax_ev_per_a: 0.05", "fmax_ev_per_a: -1"))
    assert "stages.relax.fmax_ev_per_a: Input should be greater than 0" in msg


def test_unknown_engine_kind_lists_the_known_ones(tmp_path):
    msg = _error(tmp_path, GOOD.replace("kind: mlip", "kind: gaussian"))
    assert "engines.labeller: unknown kind 'gaussian'; allowed: 'mlip'" in msg


def test_stage_naming_an_undefined_engine(tmp_path):
    msg = _error(tmp_path, GOOD.replace("max_steps: 50", "max_steps: 50, engine: mlff"))
    assert "stages.relax.engine is 'mlff', which is not defined" in msg
    assert "['labeller']" in msg


def test_missing_structure_file_is_resolved_relative_to_campaign(tmp_path):
    msg = _error(tmp_path, GOOD.replace("{source: demo}", "{source: file, path: nope.cif}"))
    assert f"structure file '{tmp_path / 'nope.cif'}' does not exist" in msg


def test_missing_campaign_file_and_bad_yaml(tmp_path):
    with pytest.raises(CampaignError, match="campaign file '.*none.yaml' not found"):
        load_campaign(tmp_path / "none.yaml")
    assert "not valid YAML" in _error(tmp_path, "name: [unclosed")
    assert "must be a mapping" in _error(tmp_path, "- a\n- b\n")


def test_missing_name(tmp_path):
    assert "name: required key is missing" in _error(tmp_path, "structure: {source: demo}\n")


def test_fingerprint_follows_science_not_location(tmp_path):
    base = _load(tmp_path, GOOD)
    elsewhere = _load(tmp_path, GOOD + "description: moved\n")
    changed = _load(tmp_path, GOOD.replace("0.05", "0.04"))
    assert base.fingerprint == elsewhere.fingerprint
    assert base.fingerprint != changed.fingerprint
    assert base.stage_settings_hash("relax") != changed.stage_settings_hash("relax")


def test_file_source_is_identified_by_content(tmp_path):
    from ctaflow.structures import demo_structure

    a, b = tmp_path / "a.cif", tmp_path / "b.cif"
    demo_structure().to(filename=str(a))
    demo_structure().to(filename=str(b))
    sa = _load(tmp_path, GOOD.replace("{source: demo}", "{source: file, path: a.cif}"))
    sb = _load(tmp_path, GOOD.replace("{source: demo}", "{source: file, path: b.cif}"))
    assert sa.fingerprint != _load(tmp_path, GOOD).fingerprint
    assert sa.fingerprint == sb.fingerprint  # same content under another name
    b.write_text(b.read_text().replace("_cell_length_a", "_cell_length_a 5.0\n#", 1))
    sc = _load(tmp_path, GOOD.replace("{source: demo}", "{source: file, path: b.cif}"))
    assert sc.fingerprint != sa.fingerprint


def test_python_api_equals_yaml(tmp_path):
    built = CampaignSettings(
        name="t1",
        engines={"labeller": MLIPEngineSpec(model="CHGNet")},
        stages=Stages(relax=RelaxStageSettings(fmax_ev_per_a=0.05, max_steps=50)),
    )
    assert built.fingerprint == _load(tmp_path, GOOD).fingerprint


def test_python_api_checks_files_without_context(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        FileStructureSource(path=tmp_path / "missing.cif")


def test_neb_stage_needs_a_mobile_species(tmp_path):
    msg = _error(tmp_path, GOOD + "  neb: {swap: [Li]}\n")
    assert "stages.neb needs the mobile species: set stages.neb.species" in msg
    settings = _load(
        tmp_path,
        GOOD.replace("{source: demo}", "{source: demo, classify: {species: Na}}")
        + "  neb: {swap: [Li]}\n",
    )
    assert settings.neb_species() == "Na"  # from structure.classify
    assert list(settings.enabled_stages()) == ["relax", "neb"]
    msg = _error(tmp_path, GOOD + "  neb: {species: Na, swap: [Na]}\n")
    assert "stages.neb.swap lists the mobile species Na itself" in msg


def test_neb_stage_cannot_use_the_model_trained_in_the_campaign(tmp_path):
    text = GOOD.replace(
        "  labeller: {kind: mlip, model: CHGNet}\n",
        "  labeller: {kind: mlip, model: CHGNet}\n  mlff: {kind: mace}\n",
    ) + ("  training_data: {engine: labeller}\n  mlff: {}\n  neb: {engine: mlff, species: Na}\n")
    assert "stages.neb cannot use the MACE model trained by this campaign" in _error(tmp_path, text)
