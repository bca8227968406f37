"""The templates in launchpad/ load with the real FireWorks / jobflow / maggma classes, and every
value a user must change is marked, with no credential in them."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.conftest import REPO

LAUNCHPAD = REPO / "launchpad"


def test_launchpad_template_loads_without_connecting():
    from fireworks import LaunchPad

    lp = LaunchPad.from_file(str(LAUNCHPAD / "my_launchpad.yaml"))
    assert (lp.host, lp.port, lp.name) == ("mongodb.example.org", 27017, "ctaflow_fireworks")
    assert lp.username is None and lp.password is None


def test_fworker_template_loads():
    from fireworks import FWorker

    worker = FWorker.from_file(str(LAUNCHPAD / "my_fworker.yaml"))
    assert worker.name == "my_cluster"
    assert "_category" not in str(worker.query)  # no category: runs every ctaflow job


@pytest.mark.parametrize(
    ("name", "q_type", "directives"),
    [
        (
            "my_qadapter_slurm.yaml",
            "SLURM",
            ["#SBATCH --partition=compute", "#SBATCH --cpus-per-task=4", "#SBATCH --time=04:00:00"],
        ),
        ("my_qadapter_pbs.yaml", "PBS", ["#PBS -q workq", "#PBS -l nodes=1:ppn=4"]),
    ],
)
def test_qadapter_templates_render_a_job_script(name, q_type, directives):
    from fireworks.user_objects.queue_adapters.common_adapter import CommonAdapter

    adapter = CommonAdapter.from_file(str(LAUNCHPAD / name))
    assert adapter.q_type == q_type
    script = adapter.get_script_str("/scratch/launch")
    for line in directives:
        assert line in script
    assert "rlaunch -l /home/USER/.fireworks/my_launchpad.yaml" in script
    assert "cd /scratch/launch" in script
    assert "$${" not in script  # every template key was filled or dropped


def test_qadapter_vasp_profile_is_valid_when_uncommented():
    from fireworks.user_objects.queue_adapters.common_adapter import CommonAdapter

    text = (LAUNCHPAD / "my_qadapter_slurm.yaml").read_text()
    mlip, vasp = text.split("# --- profile VASP")
    mlip_head = mlip.split("# --- profile MLIP")[0]
    vasp_lines = [re.sub(r"^# ?", "", line) for line in vasp.splitlines()[1:]]
    spec = yaml.safe_load(mlip_head + "\n".join(vasp_lines))
    adapter = CommonAdapter(q_type="SLURM", **{k: v for k, v in spec.items() if k[0] != "_"})
    script = adapter.get_script_str(".")
    assert "#SBATCH --ntasks-per-node=64" in script and "#SBATCH --time=24:00:00" in script
    assert "module load vasp/6.4" in script


def test_jobflow_store_template_is_a_mongo_job_store_with_gridfs_data(monkeypatch):
    from maggma.stores import GridFSStore, MongoStore

    from ctaflow.campaign.execution import StoreSettings
    from ctaflow.store import job_store as make_job_store
    from ctaflow.store_mongo import mongo_spec

    monkeypatch.setenv("CTAFLOW_DB_USER", "alice")
    monkeypatch.setenv("CTAFLOW_DB_PASSWORD", "from-the-environment")
    settings = StoreSettings(kind="mongodb", config_file=LAUNCHPAD / "jobflow.yaml")
    store = make_job_store(settings, ".")
    assert isinstance(store.docs_store, MongoStore)
    assert store.docs_store.collection_name == "outputs"
    data = store.additional_stores["data"]
    assert isinstance(data, GridFSStore) and data.collection_name == "outputs_data"
    assert data.password == "from-the-environment"
    assert mongo_spec(settings)["docs_store"]["username"] == "alice"


def test_jobflow_remote_project_template_is_a_valid_project():
    """jobflow-remote's own Project model accepts it; its stores are valid maggma/jobflow ones."""
    from jobflow import JobStore
    from jobflow_remote.config.base import Project
    from maggma.stores import MongoStore

    project = yaml.safe_load((LAUNCHPAD / "jobflow_remote_project.yaml").read_text())
    parsed = Project(**project)
    assert parsed.workers["cluster"].scheduler_type == "slurm"
    assert project["name"] == "ctaflow"
    (worker,) = project["workers"].values()
    assert worker["scheduler_type"] == "slurm" and worker["work_dir"].startswith("/")
    store = JobStore.from_dict_spec(project["jobstore"])
    assert store.docs_store.collection_name == "outputs"
    assert store.additional_stores["data"].collection_name == "outputs_data"
    queue = project["queue"]["store"]
    assert MongoStore(**{k: v for k, v in queue.items() if k != "type"}).collection_name == "jobs"


@pytest.mark.parametrize("path", sorted(LAUNCHPAD.glob("*.yaml")), ids=lambda p: p.name)
def test_templates_mark_what_to_change_and_hold_no_secret(path):
    text = path.read_text()
    assert "CHANGE ME" in text
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "password":
            value = value.split("#")[0].strip()
            assert value in {"null", "PASSWORD", "${CTAFLOW_DB_PASSWORD}"}, line
