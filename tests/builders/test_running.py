"""Builders run by maggma's ``mrun`` on a serialised builder; where the derived collections live."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from monty.serialization import dumpfn, loadfn

from ctaflow.builders import TransportBuilder
from ctaflow.campaign.schema import StoreSettings
from ctaflow.store import derived_store, job_store
from tests.builders.conftest import derived_docs
from tests.conftest import subprocess_env

MRUN = str(Path(sys.executable).with_name("mrun"))


def test_mrun_on_a_serialised_builder_against_the_embedded_store(filled, tmp_path):
    builder = TransportBuilder(
        job_store(None, filled),
        derived_store(None, filled, "transport"),
        query={"metadata.engine": "mlip:B"},
    )
    spec = tmp_path / "transport_builder.json"
    dumpfn(builder, spec)
    again = loadfn(spec)
    assert isinstance(again, TransportBuilder) and again.query == {"metadata.engine": "mlip:B"}

    def mrun() -> subprocess.CompletedProcess:
        return subprocess.run(
            [MRUN, "--no_bars", str(spec)],
            capture_output=True,
            text=True,
            env=subprocess_env(),
            timeout=300,
            check=True,
        )

    mrun()
    docs = derived_docs(filled, "transport")
    assert {(d["engine"], d["site_class"]) for d in docs} == {
        ("mlip:B", c) for c in (None, "mobile", "pillar")
    }
    assert all(d["temperatures_k"] == [600.0, 700.0] for d in docs)
    mrun()  # nothing new: the documents are not rewritten
    assert derived_docs(filled, "transport") == docs


def test_derived_collections_live_next_to_the_job_documents(tmp_path, monkeypatch):
    embedded = derived_store(None, tmp_path, "transport")
    assert embedded.collection_name == "derived_transport" and embedded.key == "derived_id"
    assert embedded.database_path == job_store(None, tmp_path).docs_store.database_path
    config = tmp_path / "jobflow.yaml"
    config.write_text(
        "JOB_STORE:\n"
        "  docs_store: {type: MongoStore, database: results, collection_name: outputs,\n"
        "               host: db.example, port: 27017, username: u, password: '${DB_PASS}'}\n"
    )
    monkeypatch.setenv("DB_PASS", "secret")
    mongo = derived_store(StoreSettings(kind="mongodb", config_file=config), tmp_path, "mlff")
    assert type(mongo).__name__ == "MongoStore"
    assert (mongo.database, mongo.collection_name, mongo.host) == (
        "results",
        "derived_mlff",
        "db.example",
    )
    assert mongo.key == "derived_id"
