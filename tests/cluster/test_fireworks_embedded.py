"""FireWorks without a MongoDB server (mongomock file, one process at a time): submit a campaign,
submit it again (nothing added), rlaunch it from a fresh process, read the results with query;
bad backend / LaunchPad input is one message. Also the job store that travels in fireworks."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CTAFLOW, subprocess_env

SMALL = """\
name: small
structure: {source: demo}
engines:
  labeller: {kind: mlip}
stages:
  relax:
    fmax_ev_per_a: 0.05
    max_steps: 60
    minimum: {rattles: 1, max_cycles: 1}   # one rattled re-relaxation, added while it runs
execution: {backend: fireworks, launchpad_file: my_launchpad.yaml}
"""


def _run(cmd: list[str], env: dict, cwd: Path, check: bool = True):
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def embedded(tmp_path):
    """A campaign and a LaunchPad file for FireWorks' mongomock mode."""
    (tmp_path / "small.yaml").write_text(SMALL)
    (tmp_path / "my_launchpad.yaml").write_text("host: localhost\nname: ctaflow_embedded\n")
    env = subprocess_env()
    env["MONGOMOCK_SERVERSTORE_FILE"] = str(tmp_path / "fireworks.json")
    return tmp_path, env


@pytest.mark.slow
def test_embedded_fireworks_submit_once_rlaunch_query(embedded):
    root, env = embedded
    ctaflow = [CTAFLOW]
    first = _run([*ctaflow, "submit", "small.yaml", "-w", "work"], env, root)
    assert "4 of 4 jobs added to the LaunchPad" in first.stdout
    assert (root / "fireworks.json").is_file()  # written when the submitting process exited
    again = _run([*ctaflow, "submit", "small.yaml", "-w", "work"], env, root)
    assert "already on the LaunchPad (fw_ids 1-4): nothing added" in again.stdout
    status = _run([*ctaflow, "status", "-w", "work"], env, root).stdout
    assert "READY" in status and "WAITING" in status and "COMPLETED" not in status

    rlaunch = str(Path(CTAFLOW).with_name("rlaunch"))
    _run([rlaunch, "-l", str(root / "my_launchpad.yaml"), "rapidfire"], env, root / "work")

    # FireWorks' own record, written to the file when rlaunch exited
    states = json.loads((root / "fireworks.json").read_text())["ctaflow_embedded"]["fireworks"]
    fw_states = [doc["state"] for _, doc in states["documents"]]
    assert fw_states == ["COMPLETED"] * len(fw_states) and len(fw_states) > 4  # checks added
    status = _run([*ctaflow, "status", "-w", "work"], env, root).stdout
    assert "COMPLETED" in status and "WAITING" not in status
    rows = json.loads(_run([*ctaflow, "query", "-w", "work", "--format", "json"], env, root).stdout)
    assert {(r["stage"], r["name"]) for r in rows} == {
        ("structure", "structure"),
        ("relax", "relax summary"),
        ("relax", "minimum check 0 verdict"),  # a job the check added on the LaunchPad
    }
    (summary,) = [r for r in rows if r["name"] == "relax summary"]
    (verdict,) = [r for r in rows if r["name"] == "minimum check 0 verdict"]
    # the check's result: the lowest of the relaxed and re-relaxed structures, at its tighter fmax
    assert verdict["converged"] and verdict["fmax_target_ev_per_a"] == 0.01
    assert verdict["energy_ev"] <= summary["energy_ev"]
    assert summary["energy_ev"] < summary["initial_energy_ev"]
    assert all(r["campaign"] == "small" for r in rows)

    # a changed relax stage is a new campaign fingerprint: the finished structure job (same
    # uuid, output in the store) is not submitted again, the relax jobs are
    (root / "small.yaml").write_text(SMALL.replace("max_steps: 60", "max_steps: 61"))
    changed = _run([*ctaflow, "submit", "small.yaml", "-w", "work"], env, root)
    assert "3 of 4 jobs added to the LaunchPad" in changed.stdout
    assert "1 reused from the store" in changed.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backend", "slurm"], "unknown backend 'slurm' for submit; use --backend fireworks"),
        (["--launchpad", "gone.yaml"], "LaunchPad file"),
    ],
)
def test_bad_backend_or_launchpad_is_one_message(embedded, args, message):
    root, env = embedded
    proc = _run([CTAFLOW, "submit", "small.yaml", "-w", "work", *args], env, root, check=False)
    assert proc.returncode == 1
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not (root / "work").exists()


def test_local_backend_is_not_submitted(embedded):
    root, env = embedded
    (root / "local.yaml").write_text(SMALL.replace("backend: fireworks", "backend: local"))
    proc = _run([CTAFLOW, "submit", "local.yaml"], env, root, check=False)
    assert proc.returncode == 1
    assert "unknown backend 'local' for submit" in proc.stderr
    assert "'ctaflow run' to run locally" in proc.stderr


def test_unknown_backend_in_campaign_names_the_line(embedded):
    root, env = embedded
    (root / "bad.yaml").write_text(SMALL.replace("backend: fireworks", "backend: slurm"))
    proc = _run([CTAFLOW, "submit", "bad.yaml"], env, root, check=False)
    assert proc.returncode == 1
    lines = SMALL.splitlines()
    line = 1 + next(i for i, text in enumerate(lines) if text.startswith("execution:"))
    assert f"bad.yaml:{line}: execution.backend" in proc.stderr
    assert "'fireworks'" in proc.stderr


def test_job_store_travels_as_configuration_without_password(tmp_path, monkeypatch):
    from maggma.stores import GridFSStore, MongoStore
    from monty.json import MontyDecoder

    from ctaflow.campaign.execution import StoreSettings
    from ctaflow.execution.fireworks import ConfiguredJobStore
    from tests.conftest import REPO

    monkeypatch.setenv("CTAFLOW_DB_USER", "alice")
    monkeypatch.setenv("CTAFLOW_DB_PASSWORD", "s3cret-on-the-submit-host")
    settings = StoreSettings(kind="mongodb", config_file=REPO / "launchpad" / "jobflow.yaml")
    store = ConfiguredJobStore.from_settings(settings, tmp_path)
    assert isinstance(store.docs_store, MongoStore)
    text = json.dumps(store.as_dict())
    assert "s3cret" not in text and "alice" not in text
    monkeypatch.setenv("CTAFLOW_DB_PASSWORD", "other-on-the-worker")
    rebuilt = json.loads(text, cls=MontyDecoder)
    assert isinstance(rebuilt, ConfiguredJobStore)
    assert rebuilt.docs_store.password == "other-on-the-worker"
    assert isinstance(rebuilt.additional_stores["data"], GridFSStore)
    embedded = json.loads(
        json.dumps(ConfiguredJobStore.from_settings(None, tmp_path).as_dict()), cls=MontyDecoder
    )
    assert embedded.docs_store.database_path == str(tmp_path / "store")


def test_launchpad_file_is_relative_to_the_campaign(tmp_path, monkeypatch):
    from ctaflow.campaign import load_campaign

    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.yaml").write_text(SMALL)
    settings = load_campaign(tmp_path / "sub" / "c.yaml")
    assert settings.execution.launchpad_file == tmp_path / "sub" / "my_launchpad.yaml"
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "sub" / "h.yaml").write_text(
        SMALL.replace("launchpad_file: my_launchpad.yaml", "launchpad_file: ~/lp.yaml")
    )
    assert (
        load_campaign(tmp_path / "sub" / "h.yaml").execution.launchpad_file == tmp_path / "lp.yaml"
    )
    # where a job runs is not science: the fingerprint ignores execution
    assert settings.fingerprint == load_campaign(tmp_path / "sub" / "h.yaml").fingerprint


def test_missing_jobflow_remote_project_is_one_message(embedded):
    root, env = embedded
    env["JFREMOTE_PROJECTS_FOLDER"] = str(root / "no-projects")
    (root / "no-projects").mkdir()
    proc = _run(
        [CTAFLOW, "submit", "small.yaml", "--backend", "jobflow-remote"], env, root, check=False
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "jobflow-remote project (default)" in proc.stderr
    assert "launchpad/jobflow_remote_project.yaml" in proc.stderr
