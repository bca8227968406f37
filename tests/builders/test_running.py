"""Running builders: maggma's ``mrun`` on a serialised builder, any maggma store as the target;
where the derived collections live."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from maggma.stores import MemoryStore
from monty.serialization import dumpfn, loadfn

from ctaflow.builders import TransportBuilder, run_builder
from ctaflow.campaign.execution import StoreSettings
from ctaflow.store import derived_store, job_store
from tests.builders.conftest import derived_docs, one_transport_task, run
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
    assert all(d["temperatures_k"] == [600.0, 700.0, 800.0] for d in docs)
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


@pytest.mark.parametrize("target", ["embedded", "mongomock"])
def test_documents_of_a_group_are_replaced_in_any_maggma_store(filled, target):
    """A group whose documents change shape (a placeholder, then per-species documents) keeps
    no stale document, in the embedded store and in a MongoDB-like one (mongomock)."""
    derived = (
        derived_store(None, filled, "transport")
        if target == "embedded"
        else MemoryStore("derived_transport", key="derived_id")
    )
    builder = TransportBuilder(job_store(None, filled), derived)
    assert run_builder(builder).n_docs_written == 6

    jobs = job_store(None, filled)
    jobs.connect()
    broken = jobs.query_one({"output.@class": "TransportSummary"})
    del broken["_id"], broken["output"]["results"]
    broken["metadata"]["engine"] = "mlip:C"
    jobs.update({**broken, "uuid": "broken", "completed_at": datetime.now().isoformat()})
    stats = run_builder(builder)
    assert (stats.n_groups_built, stats.n_docs_written, stats.n_docs_removed) == (1, 1, 0)
    (placeholder,) = derived.query({"engine": "mlip:C"})
    assert placeholder["species"] is None and placeholder["skipped"][0]["uuid"] == "broken"

    run(one_transport_task(600.0, "mlip:C", seed=3), filled)
    stats = run_builder(builder)
    assert (stats.n_groups_built, stats.n_docs_written, stats.n_docs_removed) == (1, 3, 1)
    docs = list(derived.query({"engine": "mlip:C"}))
    assert sorted(str(d["site_class"]) for d in docs) == ["None", "mobile", "pillar"]
    assert all(d["skipped"][0]["uuid"] == "broken" for d in docs)
    assert derived.count() == 9
