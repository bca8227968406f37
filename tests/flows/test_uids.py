"""Deterministic job uuids: a rebuilt campaign gets the same uuids (its finished jobs are found),
and a change to ctaflow's source gives new ones (no job is handed the output of another)."""

from __future__ import annotations

import shutil
from pathlib import Path

import ctaflow
from ctaflow.analysis.provenance import source_fingerprint, sources_fingerprint
from ctaflow.campaign import load_campaign
from ctaflow.flows import campaign as campaign_module
from ctaflow.structures import demo_structure

CAMPAIGN = """\
name: u1
structure: {source: demo}
engines:
  labeller: {kind: mlip, model: CHGNet}
stages:
  relax: {fmax_ev_per_a: 0.05, max_steps: 50}
  md: {temperatures_k: [500, 600, 700], supercell_min_width_a: 9.0}
"""


def _uuids(tmp_path) -> list[str]:
    path = tmp_path / "c.yaml"
    path.write_text(CAMPAIGN)
    built = campaign_module.build_campaign_flow(load_campaign(path), demo_structure())
    return [job.uuid for stage in built.stages.values() for job in stage.jobs]


def test_rebuilt_campaign_has_the_same_uuids_and_changed_code_new_ones(tmp_path, monkeypatch):
    first = _uuids(tmp_path)
    assert first == _uuids(tmp_path) and len(set(first)) == len(first)
    monkeypatch.setattr(campaign_module, "source_fingerprint", lambda: "another-commit")
    changed = _uuids(tmp_path)
    assert len(changed) == len(first) and not set(changed) & set(first)


def test_the_source_fingerprint_follows_every_byte_of_the_package(tmp_path):
    package = Path(ctaflow.__file__).parent
    assert source_fingerprint() == sources_fingerprint(package)
    copy = tmp_path / "ctaflow"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert sources_fingerprint(copy) == source_fingerprint()  # contents, not location
    target = copy / "makers" / "md.py"
    target.write_text(target.read_text() + "\n")
    assert sources_fingerprint(copy) != source_fingerprint()
