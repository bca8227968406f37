"""The embedded store persists on disk, is shared between processes, and keeps bulky data apart."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ctaflow.campaign.execution import StoreSettings
from ctaflow.errors import StoreError
from ctaflow.store import job_store, state_store
from tests.conftest import subprocess_env

WRITER = """
import sys
from ctaflow.store import job_store
store = job_store(None, sys.argv[1])
store.connect()
store.update({"uuid": "from-child", "index": 1, "output": {"energy_ev": -1.5}, "metadata": {}})
print(store.count())
"""


def test_embedded_store_round_trip_across_processes(workdir):
    parent = job_store(None, workdir)
    parent.connect()
    parent.update(
        {"uuid": "from-parent", "index": 1, "output": {"energy_ev": -3.0}, "metadata": {}}
    )
    child = subprocess.run(
        [sys.executable, "-c", WRITER, str(workdir)],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        check=True,
    )
    assert child.stdout.strip() == "2"  # the child saw the parent's document and added one
    reopened = job_store(None, workdir, create=False)
    reopened.connect()
    assert reopened.query_one({"uuid": "from-child"})["output"]["energy_ev"] == -1.5
    assert reopened.query_one({"uuid": "from-parent"})["output"]["energy_ev"] == -3.0


def test_bulky_objects_go_to_the_data_store(stores):
    import numpy as np
    from jobflow import job, run_locally
    from pymatgen.core import Lattice, Structure
    from pymatgen.core.trajectory import Trajectory

    jobs, _ = stores
    s = Structure(Lattice.cubic(4.0), ["Na"], [[0, 0, 0]])

    @job(data=[Trajectory])
    def make_traj():
        coords = np.zeros((50, 1, 3)) + np.linspace(0, 0.5, 50)[:, None, None]
        return {
            "n_frames": 50,
            "trajectory": Trajectory(species=s.species, coords=coords, lattice=s.lattice),
        }

    j = make_traj()
    run_locally(j, store=jobs, log=False, ensure_success=True)
    doc = jobs.docs_store.query_one({"uuid": j.uuid})
    assert doc["output"]["trajectory"]["@class"] == "Trajectory"  # a reference only
    assert "blob_uuid" in doc["output"]["trajectory"]
    assert jobs.additional_stores["data"].count({"job_uuid": j.uuid}) == 1
    traj = Trajectory.from_dict(jobs.get_output(j.uuid, load=True)["trajectory"])
    assert len(traj) == 50
    assert traj[-1].frac_coords[0] == pytest.approx([0.5, 0.5, 0.5])
    assert len(json.dumps(doc, default=str)) < 2000


def test_missing_store_is_an_error_not_a_new_store(tmp_path):
    with pytest.raises(StoreError, match="no ctaflow store in .*nowhere"):
        job_store(None, tmp_path / "nowhere", create=False)
    assert not (tmp_path / "nowhere").exists()


def test_mongodb_store_from_jobflow_yaml_with_env_credentials(tmp_path, monkeypatch):
    config = tmp_path / "jobflow.yaml"
    config.write_text(
        """
JOB_STORE:
  docs_store: {type: MongoStore, database: ctaflow, collection_name: outputs,
               host: localhost, port: 27017, username: "${DB_USER}", password: "${DB_PASS}"}
  additional_stores:
    data: {type: GridFSStore, database: ctaflow, collection_name: outputs_data,
           host: localhost, port: 27017, username: "${DB_USER}", password: "${DB_PASS}"}
"""
    )
    settings = StoreSettings(kind="mongodb", config_file=config)
    with pytest.raises(StoreError, match="needs the environment variables DB_USER, DB_PASS"):
        job_store(settings, tmp_path)
    monkeypatch.setenv("DB_USER", "alice")
    monkeypatch.setenv("DB_PASS", "s3cret")
    store = job_store(settings, tmp_path)
    assert type(store.docs_store).__name__ == "MongoStore"
    assert type(store.additional_stores["data"]).__name__ == "GridFSStore"
    assert store.docs_store.username == "alice"
    states = state_store(settings, tmp_path)
    assert states.collection_name == "ctaflow_jobs" and states.database == "ctaflow"
    # the campaign's store section never holds the credentials themselves
    assert "s3cret" not in settings.model_dump_json()


def test_mongodb_needs_a_config_file():
    with pytest.raises(ValueError, match="needs config_file"):
        StoreSettings(kind="mongodb")
