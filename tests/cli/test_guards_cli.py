"""Campaigns refused before anything is written: one message, exit status 1, no work directory
(``run``), no settings printed (``validate``)."""

from __future__ import annotations

import socket
import subprocess

import pytest

from tests.conftest import CTAFLOW, subprocess_env

ONE_NA = "one\n1.0\n5 0 0\n0 5 0\n0 0 5\nNa\n1\ndirect\n0 0 0\n"
JOB_STORE = """\
JOB_STORE:
  docs_store: {{type: MongoStore, host: 127.0.0.1, port: {port}, database: d,
               collection_name: outputs, username: "${{CT_GUARD_USER}}"}}
  additional_stores:
    data: {{type: GridFSStore, host: 127.0.0.1, port: {port}, database: d,
           collection_name: outputs_data}}
"""


def ctaflow(*args: str, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CTAFLOW, *args],
        capture_output=True,
        text=True,
        env=env or subprocess_env(),
        cwd=cwd,
        timeout=600,
    )


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


BAD = {
    "too large": (
        "name: big\nstages:\n  relax: {enabled: false}\n  md: {supercell_min_width_a: 150}\n",
        "stages.md: the md cell has 148,955 atoms; chgnet MD on it needs about",
    ),
    "text number": (
        'name: t\nstages:\n  md: {equilibrate_temperature_k: "600"}\n',
        "stages.md.equilibrate_temperature_k: a number, not a string ('600'); write it without "
        "quotes",
    ),
    "no hop": (
        "name: one\nstructure: {source: file, path: one.vasp}\n"
        "stages:\n  relax: {enabled: false}\n  neb: {species: Na}\n",
        "stages.neb: no Na hop between mobile sites up to 4 Å in the 8-atom NEB supercell",
    ),
    "unset variable": (
        "name: m\nstore: {kind: mongodb, config_file: db/jobflow.yaml}\n",
        "db/jobflow.yaml' needs the environment variable CT_GUARD_USER, which is not set",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_refused_campaign_is_one_message_and_writes_nothing(tmp_path, closed_port, case):
    text, message = BAD[case]
    (tmp_path / "one.vasp").write_text(ONE_NA)
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "jobflow.yaml").write_text(JOB_STORE.format(port=closed_port))
    campaign = tmp_path / "c.yaml"
    campaign.write_text(text)
    env = subprocess_env()
    env.pop("CT_GUARD_USER", None)
    elsewhere = tmp_path / "elsewhere"  # paths in the campaign are the campaign file's
    elsewhere.mkdir()
    for command in (["run", str(campaign), "-w", str(tmp_path / "w")], ["validate", str(campaign)]):
        proc = ctaflow(*command, env=env, cwd=elsewhere)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert message in proc.stderr
        assert proc.stderr.count("error:") == 1 and "Traceback" not in proc.stderr
        assert proc.stdout == ""
    assert not (tmp_path / "w").exists()
    assert list(elsewhere.iterdir()) == []


def test_allow_large_lets_validate_pass_and_says_so(tmp_path):
    campaign = tmp_path / "c.yaml"
    campaign.write_text(BAD["too large"][0])
    proc = ctaflow("validate", str(campaign), "--allow-large")
    assert proc.returncode == 0, proc.stderr
    assert "warning: stages.md: the md cell has 148,955 atoms" in proc.stderr
    assert "(allowed by --allow-large)" in proc.stderr
    assert "n_atoms: 148955" in proc.stdout


def test_unreachable_server_is_one_message_within_the_timeout(tmp_path, closed_port):
    (tmp_path / "jobflow.yaml").write_text(JOB_STORE.format(port=closed_port))
    campaign = tmp_path / "c.yaml"
    campaign.write_text(
        "name: m\nstages: {relax: {enabled: false}}\n"
        "store: {kind: mongodb, config_file: jobflow.yaml, timeout_s: 0.5}\n"
    )
    env = {**subprocess_env(), "CT_GUARD_USER": "alice"}
    proc = ctaflow("run", str(campaign), "-w", str(tmp_path / "w"), env=env)
    assert proc.returncode == 1
    assert (
        f"error: MongoDB server 127.0.0.1:{closed_port} (store.config_file "
        f"'{tmp_path / 'jobflow.yaml'}') did not answer within 0.5 s" in proc.stderr
    )
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "w").exists()


def test_submit_refuses_an_unset_store_variable_before_the_launchpad(tmp_path, closed_port):
    (tmp_path / "jobflow.yaml").write_text(JOB_STORE.format(port=closed_port))
    campaign = tmp_path / "c.yaml"
    campaign.write_text(
        "name: m\nexecution: {backend: fireworks, launchpad_file: missing_launchpad.yaml}\n"
        "store: {kind: mongodb, config_file: jobflow.yaml}\n"
    )
    env = subprocess_env()
    env.pop("CT_GUARD_USER", None)
    proc = ctaflow("submit", str(campaign), "-w", str(tmp_path / "w"), env=env)
    assert proc.returncode == 1
    assert proc.stderr.startswith(
        f"error: store configuration '{tmp_path / 'jobflow.yaml'}' needs the environment "
        "variable CT_GUARD_USER, which is not set"
    )
    assert not (tmp_path / "w").exists()
