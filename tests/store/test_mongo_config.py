"""MongoDB store configuration: where the file is, what it needs from the environment, how long
ctaflow waits for the server and what it says when the server does not answer."""

from __future__ import annotations

import socket
from types import SimpleNamespace

import pytest

from ctaflow.errors import StoreError
from ctaflow.store import job_store
from ctaflow.store_mongo import (
    DEFAULT_TIMEOUT_S,
    check_store_config,
    env_references,
    missing_env_vars,
    mongo_problem,
    mongo_spec,
    resolve_config_file,
)

CONFIG = """\
JOB_STORE:
  docs_store: {{type: MongoStore, host: 127.0.0.1, port: {port}, database: ctaflow_results,
               collection_name: outputs, username: "${{CT_USER}}", password: "${{CT_PASS}}"}}
  additional_stores:
    data: {{type: GridFSStore, host: 127.0.0.1, port: {port}, database: ctaflow_results,
           collection_name: outputs_data}}
    uri: {{type: MongoURIStore, uri: "mongodb://${{CT_USER}}:${{CT_PASS}}@db.example.org/x",
          database: x, collection_name: extra}}
"""


def _settings(config, timeout_s=None):
    """A store section as the campaign schema will have it (timeout_s is not in it yet)."""
    return SimpleNamespace(kind="mongodb", config_file=config, timeout_s=timeout_s)


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def config(tmp_path, closed_port):
    path = tmp_path / "jobflow.yaml"
    path.write_text(CONFIG.format(port=closed_port))
    return path


def test_config_file_is_found_next_to_the_campaign(tmp_path, monkeypatch):
    campaign = tmp_path / "campaigns" / "study.yaml"
    monkeypatch.chdir(tmp_path)  # the current directory must not matter
    assert resolve_config_file("jobflow.yaml", campaign) == tmp_path / "campaigns" / "jobflow.yaml"
    assert resolve_config_file("../db/jobflow.yaml", campaign) == tmp_path / "db" / "jobflow.yaml"
    elsewhere = tmp_path / "db" / "jobflow.yaml"
    assert resolve_config_file(str(elsewhere), campaign) == elsewhere  # absolute: as it is
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_config_file("~/jobflow.yaml", campaign) == tmp_path / "home" / "jobflow.yaml"


def test_every_unset_variable_is_named_before_any_connection(config, monkeypatch):
    monkeypatch.delenv("CT_USER", raising=False)
    monkeypatch.delenv("CT_PASS", raising=False)
    assert env_references(config) == ["CT_USER", "CT_PASS"]
    with pytest.raises(StoreError, match="needs the environment variables CT_USER, CT_PASS"):
        check_store_config(_settings(config))
    monkeypatch.setenv("CT_USER", "alice")
    assert missing_env_vars(config) == ["CT_PASS"]
    with pytest.raises(StoreError, match="needs the environment variable CT_PASS, which is not"):
        check_store_config(_settings(config))
    monkeypatch.setenv("CT_PASS", "s3cret")
    check_store_config(_settings(config))
    spec = mongo_spec(_settings(config))
    assert spec["docs_store"]["username"] == "alice"
    assert spec["additional_stores"]["uri"]["uri"] == "mongodb://alice:s3cret@db.example.org/x"


def test_server_timeout_defaults_short_and_follows_the_settings(config, monkeypatch):
    monkeypatch.setenv("CT_USER", "alice")
    monkeypatch.setenv("CT_PASS", "s3cret")
    spec = mongo_spec(_settings(config))
    for store in (spec["docs_store"], *spec["additional_stores"].values()):
        assert store["mongoclient_kwargs"]["serverSelectionTimeoutMS"] == DEFAULT_TIMEOUT_S * 1000
    spec = mongo_spec(_settings(config, timeout_s=0.25))
    assert spec["docs_store"]["mongoclient_kwargs"]["serverSelectionTimeoutMS"] == 250


def test_unreachable_server_is_one_message_naming_it(config, closed_port, monkeypatch, tmp_path):
    monkeypatch.setenv("CT_USER", "alice")
    monkeypatch.setenv("CT_PASS", "s3cret")
    with pytest.raises(StoreError) as caught:
        job_store(_settings(config, timeout_s=0.2), tmp_path, create=False)
    message = str(caught.value)
    assert message == (
        f"MongoDB server 127.0.0.1:{closed_port} (store.config_file '{config}') did not answer "
        "within 0.2 s: check that it is running and that this machine can reach it (host, port, "
        "firewall, VPN), or raise store.timeout_s"
    )
    assert not (tmp_path / "store").exists()


def test_refused_credentials_name_the_user_never_the_password():
    from pymongo.errors import OperationFailure

    store = SimpleNamespace(host="db.example.org", port=27017, username="alice", password="s3cret")
    failure = OperationFailure("Authentication failed.", code=18)
    message = mongo_problem(failure, store, _settings("db/jobflow.yaml"))
    assert message.startswith(
        "MongoDB server db.example.org:27017 (store.config_file 'db/jobflow.yaml') refused the "
        "credentials of user 'alice'"
    )
    uri_store = SimpleNamespace(uri="mongodb://alice:s3cret@db.example.org/x")
    message = mongo_problem(failure, uri_store, None)
    assert "s3cret" not in message and "mongodb://***@db.example.org/x" in message
