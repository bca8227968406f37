"""The campaign's store section: config_file found next to the campaign file and recorded
absolute, timeout_s reaching the MongoDB clients."""

from __future__ import annotations

import pytest

from ctaflow.campaign import CampaignSettings, load_campaign
from ctaflow.campaign.execution import StoreSettings
from ctaflow.errors import CampaignError
from ctaflow.store_mongo import DEFAULT_TIMEOUT_S, mongo_spec, store_timeout_s

CONFIG = """\
JOB_STORE:
  docs_store: {type: MongoStore, host: 127.0.0.1, port: 1, database: d, collection_name: c}
"""


def test_config_file_is_relative_to_the_campaign_and_recorded_absolute(tmp_path, monkeypatch):
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "jobflow.yaml").write_text(CONFIG)
    (tmp_path / "campaigns").mkdir()
    campaign = tmp_path / "campaigns" / "c.yaml"
    campaign.write_text("name: c\nstore: {kind: mongodb, config_file: ../db/jobflow.yaml}\n")
    monkeypatch.chdir(tmp_path / "db")  # from here, ../db/jobflow.yaml would not exist
    store = load_campaign(campaign).store
    assert store.config_file == tmp_path / "db" / "jobflow.yaml"
    assert store.config_file.is_absolute()
    # what ctaflow-run.json records reads back to the same file from anywhere
    recorded = store.model_dump(mode="json")
    monkeypatch.chdir(tmp_path)
    assert StoreSettings.model_validate(recorded).config_file == store.config_file


def test_timeout_defaults_to_five_seconds_and_reaches_the_clients(tmp_path):
    (tmp_path / "jobflow.yaml").write_text(CONFIG)
    store = StoreSettings(kind="mongodb", config_file=tmp_path / "jobflow.yaml")
    assert store.timeout_s == DEFAULT_TIMEOUT_S == 5.0
    quick = store.model_copy(update={"timeout_s": 0.5})
    assert store_timeout_s(quick) == 0.5
    kwargs = mongo_spec(quick)["docs_store"]["mongoclient_kwargs"]
    assert kwargs == {"serverSelectionTimeoutMS": 500, "connectTimeoutMS": 500}


def test_timeout_must_be_positive(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: c\nstore: {kind: embedded, timeout_s: 0}\n")
    with pytest.raises(CampaignError, match="store.timeout_s: Input should be greater than 0"):
        load_campaign(path)


def test_embedded_store_needs_no_config():
    assert CampaignSettings(name="c").store.config_file is None
