"""open_run and verify against a MongoDB server (the wire-protocol stand-in the cluster tests
use): the run records its store only once the server answered; verify finds a lost blob."""

from __future__ import annotations

import json

import pytest

from ctaflow.campaign.schema import StoreSettings
from ctaflow.execution.local import run_flow
from ctaflow.store import job_store, open_run
from ctaflow.verify import verify_store
from tests.store.jobs import toy_flow


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from tests.cluster import mongo

    running = mongo.start(tmp_path_factory.mktemp("secantus") / "db")
    yield running
    running.stop()


def test_run_into_mongodb_then_verify_finds_a_lost_blob(server, tmp_path):
    config = tmp_path / "jobflow.yaml"
    server_at = f"host: 127.0.0.1, port: {server.port}, database: store_tests"
    config.write_text(
        "JOB_STORE:\n"
        f"  docs_store: {{type: MongoStore, {server_at}, collection_name: outputs}}\n"
        "  additional_stores:\n"
        f"    data: {{type: GridFSStore, {server_at}, collection_name: outputs_data}}\n"
    )
    settings = StoreSettings(kind="mongodb", config_file=config)
    workdir = tmp_path / "work"
    info = {"campaign": "toy", "store": settings.model_dump(mode="json")}
    with open_run(workdir, settings, info) as opened:
        opened.release_lock()  # run_flow takes it (until it accepts lock_held)
        assert run_flow(toy_flow(), opened.jobs, opened.states, workdir).n_ran == 3
    assert json.loads((workdir / "ctaflow-run.json").read_text())["store"]["kind"] == "mongodb"
    report = verify_store(workdir)
    assert report.ok and report.n_jobs == 3 and report.n_blobs == 8
    assert report.summary().endswith("documents read: 3 in outputs, 3 in ctaflow_jobs")

    store = job_store(settings, workdir, create=False)
    segment = store.docs_store.query_one({"name": "segment"})
    lost = segment["output"]["trajectory"][1]["chunk_arrays"]["blob_uuid"]
    store.additional_stores["data"].remove_docs({"blob_uuid": lost})
    assert [str(p) for p in verify_store(workdir).problems] == [
        f"outputs_data: segment (68a37006): trajectory chunk 1 (frames 3–5): blob {lost} is "
        "missing from the data store"
    ]
