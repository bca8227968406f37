"""The embedded store's key lookups (ctaflow.store_index) answer exactly what MontyDB's full
scan answers, follow writes of other store objects (other processes), and write in place."""

from __future__ import annotations

from maggma.stores import MontyStore

from ctaflow.store import job_store, state_store


def _full_scan(store, criteria, sort=None):
    """MontyDB's own answer (maggma's MontyStore.query: every document decoded and filtered)."""
    return list(MontyStore.query(store, criteria, sort=sort))


def test_key_queries_agree_with_montydb_and_follow_other_writers(tmp_path):
    store = job_store(None, tmp_path)
    store.connect()
    docs = store.docs_store
    docs.update(
        [
            {"uuid": u, "index": i, "output": {"x": 10 * i + n}}
            for n, u in enumerate("ab")
            for i in (1, 2, 3)
        ],
        key=["uuid", "index"],
    )
    for criteria, sort in [
        ({"uuid": "a"}, {"index": -1}),
        ({"uuid": "b", "index": 2}, None),
        ({"uuid": "b", "output.x": {"$gt": 20}}, {"index": 1}),
        ({"uuid": "missing"}, None),
        ({"uuid": {"$in": ["b", "a", "missing"]}, "index": 3}, {"uuid": 1}),
    ]:
        assert list(docs.query(criteria, sort=sort)) == _full_scan(docs, criteria, sort)
    newest = docs.query_one({"uuid": "a"}, ["output"], sort={"index": -1})
    assert newest["output"] == {"x": 30} and "index" not in newest

    # a second store object (another process) writes, replaces and removes
    other = job_store(None, tmp_path)
    other.connect()
    other.docs_store.update({"uuid": "c", "index": 1, "output": {"x": 99}}, key=["uuid", "index"])
    other.docs_store.update({"uuid": "a", "index": 3, "output": {"x": -1}}, key=["uuid", "index"])
    other.docs_store.remove_docs({"uuid": "b"})
    assert docs.query_one({"uuid": "c"})["output"] == {"x": 99}
    assert docs.query_one({"uuid": "a"}, sort={"index": -1})["output"] == {"x": -1}
    assert list(docs.query({"uuid": "b"})) == []
    assert docs.count() == 4  # replaced in place: a1, a2, a3, c1


def test_an_update_by_key_replaces_the_document_it_names(tmp_path):
    states = state_store(None, tmp_path)
    states.connect()
    for state in ("READY", "RUNNING", "COMPLETED"):
        states.update({"uuid": "u1", "index": 1, "state": state}, key=["uuid", "index"])
    states.update({"uuid": "u1", "index": 2, "state": "READY"}, key=["uuid", "index"])
    # the same document twice in one call: the last one stays
    states.update(
        [{"uuid": "u2", "index": 1, "state": s} for s in ("READY", "FAILED")], key=["uuid", "index"]
    )
    assert _full_scan(states, {"uuid": "u2"})[0]["state"] == "FAILED"
    assert states.count() == 3
    assert _full_scan(states, {"uuid": "u1", "index": 1})[0]["state"] == "COMPLETED"
    # the document's row keeps its _id: a full scan and a key lookup return the same document
    assert (
        states.query_one({"uuid": "u1", "index": 1})
        == _full_scan(states, {"uuid": "u1", "index": 1})[0]
    )
