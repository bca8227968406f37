"""End to end on a real (one-node) SLURM and the MongoDB wire-protocol stand-in: a small campaign
submitted with ``ctaflow submit``, queued by FireWorks' queue launcher with the SLURM
CommonAdapter (reservation mode: one SLURM job per firework), results in MongoStore/GridFS,
read back with ``ctaflow query``."""

from __future__ import annotations

import json
import re
import statistics

import pytest

from tests.cluster import fw

CAMPAIGN = """\
name: small-cluster
structure: {source: demo}
engines:
  labeller: {kind: mlip}
stages:
  # no minimum check: its rattled re-relaxations are added while the flow runs
  relax: {fmax_ev_per_a: 0.05, max_steps: 60, minimum: {enabled: false}}
execution: {backend: fireworks, launchpad_file: my_launchpad.yaml}
store: {kind: mongodb, config_file: jobflow.yaml}
"""


@pytest.mark.slow
def test_campaign_through_fireworks_qlaunch_on_slurm(
    tmp_path, cluster_env, mongo_server, database, record_property
):
    from fireworks import FWorker, LaunchPad
    from fireworks.queue.queue_launcher import rapidfire

    lp_file = fw.write_launchpad(tmp_path / "my_launchpad.yaml", mongo_server, database)
    fw.write_job_store(tmp_path / "jobflow.yaml", mongo_server, database)
    (tmp_path / "campaign.yaml").write_text(CAMPAIGN)
    lp = LaunchPad.from_file(str(lp_file))
    lp.reset("", require_password=False)

    out = fw.ctaflow("submit", "campaign.yaml", "-w", "work", cwd=tmp_path)
    assert "3 of 3 jobs added to the LaunchPad" in out
    fw_ids = lp.get_fw_ids()
    assert len(fw_ids) == 3

    launch_dir = tmp_path / "launches"
    launch_dir.mkdir()
    rapidfire(
        lp,
        FWorker(),
        fw.slurm_adapter(lp_file),
        launch_dir=str(launch_dir),
        reserve=True,
        sleep_time=1,
        timeout=300,
    )  # returns when nothing is READY or WAITING on a running parent
    fw.wait_for(lambda: set(fw.states(lp, fw_ids).values()) == {"COMPLETED"}, 120, "3 COMPLETED")

    # SLURM ran every firework: one batch job each, COMPLETED with exit code 0
    timings = fw.launch_timings(lp, fw_ids)
    assert len(timings) == 3 and all(t["slurm_job_id"] for t in timings)
    for row in timings:  # the batch job ends a moment after its firework is COMPLETED
        info = fw.wait_for(
            lambda r=row: _finished(cluster_env.run("scontrol", "show", "job", r["slurm_job_id"])),
            60,
            f"SLURM job {row['slurm_job_id']} to finish",
        )
        assert "JobState=COMPLETED" in info and "ExitCode=0:0" in info
        assert re.search(r"Command=\S+/FW_submit\.script", info)
    assert len({t["slurm_job_id"] for t in timings}) == 3

    # results in the MongoDB job store (docs + GridFS data), read back through the CLI
    rows = json.loads(
        fw.ctaflow("query", "-w", "work", "--all-outputs", "--format", "json", cwd=tmp_path)
    )
    assert {(r["stage"], r["name"]) for r in rows} == {
        ("structure", "structure"),
        ("relax", "relax (mlip:CHGNet-0.3.0)"),
        ("relax", "relax summary"),
    }
    (summary,) = [r for r in rows if r["name"] == "relax summary"]
    assert summary["energy_ev"] < summary["initial_energy_ev"]
    (relax,) = [r for r in rows if r["name"].startswith("relax (")]
    with mongo_server.client() as client:
        db = client[database]
        assert db["outputs"].count_documents({"metadata.campaign": "small-cluster"}) == 3
        doc = db["outputs"].find_one({"uuid": relax["uuid"]})
        blob = doc["output"]["objects"]["trajectory"]  # a reference into the data store
        assert blob["store"] == "data" and "coords" not in blob
        assert db["outputs_data.files"].count_documents({"metadata.blob_uuid": blob["blob_uuid"]})
    from ctaflow.query import open_results

    loaded = open_results(tmp_path / "work").get_output(relax["uuid"], load=True)
    trajectory = loaded["objects"]["trajectory"]
    assert trajectory["@class"] == "Trajectory" and len(trajectory["coords"]) > 1
    fw.ctaflow("report", "-w", "work", cwd=tmp_path)  # derived collections in the same MongoDB
    report = json.loads((tmp_path / "work" / "report" / "report.json").read_text())
    assert report["relaxations"][0]["energy_per_atom_ev"] == pytest.approx(
        summary["energy_per_atom_ev"], abs=1e-9
    )
    status = fw.ctaflow("status", "-w", "work", cwd=tmp_path)
    assert re.search(r"relax\s+│\s+2", status) and re.search(r"structure\s+│\s+1", status)

    # a second submit adds nothing
    assert "nothing added" in fw.ctaflow("submit", "campaign.yaml", "-w", "work", cwd=tmp_path)
    assert len(lp.get_fw_ids()) == 3

    totals = [t["total_s"] for t in timings]
    queued = [t["queue_s"] for t in timings]
    record_property("submit_to_complete_s", totals)
    print(
        f"\nsubmit-to-complete per job: mean {statistics.mean(totals):.1f} s, max "
        f"{max(totals):.1f} s; submit-to-running mean {statistics.mean(queued):.1f} s"
    )


def _finished(info: str) -> str | None:
    return None if re.search(r"JobState=(PENDING|RUNNING|COMPLETING)", info) else info
