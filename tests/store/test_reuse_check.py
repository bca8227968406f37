"""check_job_outputs: what the runner asks before it reuses a finished job, and verify_store,
which asks it of every job."""

from __future__ import annotations

import pytest

from ctaflow.store import job_store
from ctaflow.verify import check_job_outputs, verify_store

SEGMENT, MODEL, SUMMARY = (
    "68a37006-014d-5977-96b6-87e8a0775cb5",
    "ed53ffb5-7532-5841-afa5-20ceb204a042",
    "7a8a8ddc-deb8-50b7-9cf5-ea7dfa2c14a2",
)


@pytest.fixture
def store(work):
    jobs = job_store(None, work)
    jobs.connect()
    return jobs


def _blob(store, uuid: str, which: str, n: int) -> str:
    doc = store.docs_store.query_one({"uuid": uuid})
    return doc["output"][which][n]["chunk_arrays" if which == "trajectory" else "part_b64"][
        "blob_uuid"
    ]


def _what(problems) -> list[str]:
    return [f"{p.collection}: {p.what}" for p in problems]


def test_intact_jobs_pass(store):
    assert [check_job_outputs(store, uuid, 1) for uuid in (SEGMENT, MODEL, SUMMARY)] == [[]] * 3
    assert check_job_outputs(store, "no-such-job") != []


def test_missing_chunk_blob(store):
    data = store.additional_stores["data"]
    data.remove_docs({"blob_uuid": _blob(store, SEGMENT, "trajectory", 3)})
    (problem,) = check_job_outputs(store, SEGMENT, 1)
    assert problem.collection == "outputs_data" and problem.subject == "segment (68a37006)"
    assert problem.what.startswith("trajectory chunk 3 (frames 9–11): blob ")
    assert problem.what.endswith("is missing from the data store")


def test_chunk_rewritten_with_other_frames(store):
    """Rewritten through the store API (so the data document's own checksum is fresh): only
    the chunk's checksum in the job document can tell."""
    data = store.additional_stores["data"]
    blob = data.query_one({"blob_uuid": _blob(store, SEGMENT, "trajectory", 1)})
    other = data.query_one({"blob_uuid": _blob(store, SEGMENT, "trajectory", 2)})
    data.update({**blob, "data": other["data"]}, key="blob_uuid")
    assert _what(check_job_outputs(store, SEGMENT, 1)) == [
        "outputs_data: trajectory chunk 1 (frames 3–5): checksum mismatch, the stored arrays "
        "are corrupt"
    ]


def test_missing_and_swapped_file_parts(store):
    data = store.additional_stores["data"]
    first, second = (_blob(store, MODEL, "model", i) for i in (0, 1))
    part0 = data.query_one({"blob_uuid": first})
    part1 = data.query_one({"blob_uuid": second})
    data.update({**part0, "data": part1["data"]}, key="blob_uuid")
    problems = check_job_outputs(store, MODEL, 1)
    assert str(problems[0]) == (
        "outputs_data: model file (ed53ffb5): toy.model part 1 of 4: checksum mismatch, the "
        "stored file is corrupt"
    )
    data.remove_docs({"blob_uuid": second})
    assert "toy.model part 2 of 4: blob " in check_job_outputs(store, MODEL, 1)[1].what


def test_output_that_no_longer_loads_as_its_class(store):
    doc = store.docs_store.query_one({"uuid": SEGMENT})
    doc["output"]["n_frames"] = "twelve"  # written back with a fresh checksum
    store.docs_store.update({k: v for k, v in doc.items() if k != "_sha256"}, key="uuid")
    (problem,) = check_job_outputs(store, SEGMENT, 1)
    assert problem.collection == "outputs"
    assert problem.what.startswith("output does not load as Segment (ValidationError")


def test_blob_of_another_job(store):
    data = store.additional_stores["data"]
    blob = data.query_one({"blob_uuid": _blob(store, SEGMENT, "trajectory", 0)})
    data.update({**blob, "job_uuid": MODEL}, key="blob_uuid")
    (problem,) = check_job_outputs(store, SEGMENT, 1)
    assert problem.what == f"trajectory chunk 0 (frames 0–2): blob belongs to job {MODEL}"


def test_verify_store_lists_every_fault_once(store, work):
    data = store.additional_stores["data"]
    data.remove_docs({"blob_uuid": _blob(store, SEGMENT, "trajectory", 0)})
    data.remove_docs({"blob_uuid": _blob(store, MODEL, "model", 3)})
    report = verify_store(work)
    # sorted: the pristine run's two independent jobs finish in either order (two workers)
    assert sorted(str(p).split(": blob ")[0] for p in report.problems) == [
        "outputs_data: model file (ed53ffb5): toy.model part 4 of 4",
        "outputs_data: segment (68a37006): trajectory chunk 0 (frames 0–2)",
    ]
    assert not report.ok and report.n_jobs == 3 and report.n_blobs == 8
    assert report.summary().startswith(f"{work}: 2 problems found; 3 job outputs and 8 blobs")


def test_the_runner_reruns_a_job_whose_stored_outputs_fail_the_check(store, work):
    """A missing trajectory chunk: ``run`` does not reuse the segment but runs it again, says
    why, and reuses the two intact jobs."""
    from ctaflow.execution.local import run_flow
    from ctaflow.store import state_store
    from tests.store.jobs import toy_flow

    data = store.additional_stores["data"]
    data.remove_docs({"blob_uuid": _blob(store, SEGMENT, "trajectory", 3)})
    assert check_job_outputs(store, SEGMENT, 1) != []
    report = run_flow(toy_flow(), store, state_store(None, work), work, workers=1)
    assert report.ok
    assert report.n_ran == 1 and report.n_reused == 2
    (line,) = report.rerun
    assert line.startswith("segment: trajectory chunk 3 (frames 9–11): blob ")
    assert check_job_outputs(store, SEGMENT, 1) == []  # stored again, whole
