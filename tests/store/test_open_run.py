"""open_run: the lock first, then the stores, then the records; and opening for reading never
writes."""

from __future__ import annotations

import json

import pytest

from ctaflow.errors import CtaflowError, StoreError
from ctaflow.store import derived_store, job_store, open_run, state_store
from tests.store.conftest import collection_file, snapshot

INFO = {"campaign": "second", "store": {"kind": "embedded"}}


def test_open_run_writes_its_records_only_once_it_holds_the_lock(tmp_path):
    workdir = tmp_path / "fresh"
    with open_run(workdir, None, INFO, {"campaign.effective.yaml": "name: second\n"}) as opened:
        assert json.loads((workdir / "ctaflow-run.json").read_text())["campaign"] == "second"
        assert (workdir / "campaign.effective.yaml").read_text() == "name: second\n"
        opened.jobs.docs_store.update({"uuid": "u", "index": 1, "output": 1.5})
        before = snapshot(workdir)
        # a second run of the same work directory (flock: even from this process) is refused
        with pytest.raises(CtaflowError, match="another ctaflow run"), open_run(workdir, None, {}):
            pass
        assert snapshot(workdir) == before
    assert (
        job_store(None, workdir, create=False).docs_store.query_one({"uuid": "u"})["output"] == 1.5
    )


def test_damaged_store_refuses_the_run_before_any_write(work):
    path = collection_file(work, "ctaflow_jobs")
    path.write_bytes(b"")
    before = snapshot(work)
    empty = r"ctaflow_jobs.collection' is empty \(0 bytes\)"
    with pytest.raises(StoreError, match=empty), open_run(work, None, INFO, {"x.yaml": "x"}):
        pass
    assert snapshot(work) == before  # not even the pid in .ctaflow.lock


def test_reading_never_writes(work):
    from ctaflow.query import find_derived, find_outputs, open_results
    from ctaflow.verify import verify_store

    relax = derived_store(None, work, "relax")  # a builder's collection, written first
    relax.connect()
    relax.update({"derived_id": "d1", "state": "successful", "campaign": "toy", "e_ev": -1.0})
    before = snapshot(work)
    store = open_results(work)
    assert len(find_outputs(store, stage="toy")) == 3
    summary = store.get_output("7a8a8ddc-deb8-50b7-9cf5-ea7dfa2c14a2", load=True)
    assert summary["model_bytes"] == 5000
    segment = store.get_output("68a37006-014d-5977-96b6-87e8a0775cb5", load=True)
    assert len(segment["trajectory"]) == 4 and "b64" in str(segment["trajectory"][0])
    states = state_store(None, work, create=False)
    assert states.count({"state": "COMPLETED"}) == 3
    assert find_derived(work, "relax")[0]["e_ev"] == -1.0
    assert verify_store(work).ok
    assert snapshot(work) == before  # same bytes, same mtimes, no side files left behind
    with pytest.raises(StoreError, match="was opened for reading only"):
        store.docs_store.update({"uuid": "x", "index": 1})


def test_a_damaged_blob_is_refused_when_loaded(work):
    path = collection_file(work, "outputs_data")
    raw = bytearray(path.read_bytes())
    at = raw.find(b"job_uuid\x00")  # a byte inside a data document's job uuid string
    raw[at + 20] ^= 0x01
    path.write_bytes(raw)
    from ctaflow.query import open_results

    store = open_results(work)
    with pytest.raises(
        StoreError, match=r"outputs_data.collection' holds a damaged document, blob"
    ):
        store.get_output("68a37006-014d-5977-96b6-87e8a0775cb5", load=True)
