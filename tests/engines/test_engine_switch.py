"""Switching the engine in a campaign changes the relax jobs and nothing else."""

from __future__ import annotations

from ctaflow.campaign import load_campaign
from ctaflow.flows.campaign import build_campaign_flow
from ctaflow.structures import load_structure

CAMPAIGN = """\
name: switch
structure: {{source: demo}}
engines:
  labeller: {engine}
stages:
  relax: {{fmax_ev_per_a: 0.02, max_steps: 100}}
"""


def _build(tmp_path, engine: str, tag: str):
    path = tmp_path / f"{tag}.yaml"
    path.write_text(CAMPAIGN.format(engine=engine))
    settings = load_campaign(path)
    return settings, build_campaign_flow(settings, load_structure(settings.structure))


def test_engine_switch_only_touches_the_relax_stage(tmp_path):
    s1, mlip = _build(tmp_path, "{kind: mlip}", "a")
    s2, standin = _build(tmp_path, "{kind: vasp-standin}", "b")
    assert s1.stages == s2.stages and s1.structure == s2.structure
    # the structure stage is the same job (same uuid: its stored result is reused)
    uuids = [j.uuid for j in mlip.stages["structure"].jobs]
    assert uuids == [j.uuid for j in standin.stages["structure"].jobs]
    # relax: other engine, other maker, other settings hash, same stage settings
    m1, m2 = mlip.metadata["relax"], standin.metadata["relax"]
    assert m1["engine"] == "mlip:CHGNet-0.3.0" and m2["engine"] == "vasp-standin:chgnet:0.3.0"
    assert m1["settings_hash"] != m2["settings_hash"]
    assert {
        k: v for k, v in m1.items() if k not in {"engine", "settings_hash", "campaign_fingerprint"}
    } == {
        k: v for k, v in m2.items() if k not in {"engine", "settings_hash", "campaign_fingerprint"}
    }
    calc1, calc2 = mlip.stages["relax"].jobs[0], standin.stages["relax"].jobs[0]
    assert type(calc1.maker).__name__ == "ForceFieldRelaxMaker"
    assert type(calc2.maker).__name__ == "RelaxMaker"
    assert calc2.maker.input_set_generator.nsw == 100  # the stage's max_steps reached VASP's NSW
    assert calc1.maker.steps == 100
