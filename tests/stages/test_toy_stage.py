"""Adding a stage is a maker, a pure analysis function, a settings model, a report section and one
registry entry. A toy ``density`` stage, written entirely in this file, becomes a campaign key,
runs in the campaign's flow after the relaxation it builds on, is stored with the metadata every
job carries, and gets its report section, without touching any other ctaflow module."""

from __future__ import annotations

from typing import Literal

import pytest
from jobflow import Flow, job
from pydantic import BaseModel, Field, create_model
from pymatgen.core import Structure

from ctaflow.campaign.stages import StageSettings
from ctaflow.report.data import ReportSection
from ctaflow.stages.spec import StageSpec

AMU_PER_A3_IN_G_PER_CM3 = 1.66053906660


# ----------------------------------------------------------------- what a new stage brings
class DensitySettings(StageSettings):  # the settings model (campaign/stages.py)
    """Density of the structure the later stages start from."""

    unit: Literal["g/cm3"] = "g/cm3"


class DensityResult(BaseModel):  # the result schema and the pure function (analysis/)
    formula: str
    density_g_per_cm3: float = Field(description="Mass over cell volume.")


def density(structure: Structure) -> DensityResult:
    return DensityResult(
        formula=structure.composition.reduced_formula,
        density_g_per_cm3=float(structure.composition.weight)
        / structure.volume
        * AMU_PER_A3_IN_G_PER_CM3,
    )


@job(output_schema=DensityResult)  # the maker (makers/)
def density_job(structure: Structure) -> DensityResult:
    return density(structure)


def build_density(ctx, settings: DensitySettings) -> Flow:  # the registry entry's build
    calc = density_job(ctx.start)
    calc.name = "density"
    return Flow([calc], output=calc.output, name="density")


SECTION = ReportSection(  # the report section (report/sections/)
    key="density",
    title="Density",
    records=lambda data: [d["output"] for d in data.outputs("density", DensityResult)],
    columns=("formula", "density_g_per_cm3"),
)
SPEC = StageSpec(  # the registry entry (stages/registry.py)
    name="density",
    settings=DensitySettings,
    build=build_density,
    output_schema=DensityResult,
    no_builder="one number per campaign",
    report=SECTION,
)


# ----------------------------------------------------------------- the test
@pytest.fixture
def registered(monkeypatch):
    """The toy stage in the registry, and a campaign model whose ``stages:`` knows it."""
    from ctaflow.campaign.schema import CampaignSettings, stages_model
    from ctaflow.stages.registry import CONFIGURABLE, STAGES

    monkeypatch.setitem(STAGES, "density", SPEC)
    monkeypatch.setitem(CONFIGURABLE, "density", SPEC)
    stages = stages_model(CONFIGURABLE)
    return create_model(
        "ToyCampaign",
        __base__=CampaignSettings,
        stages=(stages, Field(default_factory=stages)),
    )


def test_a_toy_stage_runs_in_the_campaign_flow_and_reaches_the_report(registered, stores, workdir):
    from ctaflow.execution.local import run_flow
    from ctaflow.flows.campaign import build_campaign_flow
    from ctaflow.query import builders_for
    from ctaflow.report.build import write_report
    from ctaflow.structures import demo_structure
    from ctaflow.workdir import write_run_info

    campaign = registered.model_validate(
        {
            "name": "toy",
            "stages": {"relax": {"fmax_ev_per_a": 0.1, "max_steps": 50}, "density": {}},
        }
    )
    assert list(campaign.enabled_stages()) == ["relax", "density"]
    with pytest.raises(ValueError, match="unknown key 'units'|Extra inputs"):
        registered.model_validate({"name": "toy", "stages": {"density": {"units": "x"}}})

    built = build_campaign_flow(campaign, demo_structure())
    flow = built.stages["density"]
    assert flow.jobs[0].metadata["stage"] == "density"
    assert flow.jobs[0].metadata["engine"] == "mlip:CHGNet-0.3.0"  # the stage's engine
    relax_uuids = {j.uuid for j in built.stages["relax"].jobs}
    assert {r.uuid for r in flow.jobs[0].input_references} <= relax_uuids  # builds on relax

    jobs, states = stores
    report = run_flow(built.flow, jobs, states, workdir)
    assert report.ok
    doc = jobs.query_one({"metadata.stage": "density"})
    relaxed = jobs.query_one({"metadata.stage": "relax", "output.@class": "RelaxResult"})
    structure = Structure.from_dict(relaxed["output"]["structure"])
    mass_amu = 3 * 22.98976928 + 15.999 + 35.453  # Na3OCl, by hand
    expected = mass_amu / structure.volume * AMU_PER_A3_IN_G_PER_CM3
    assert doc["output"]["density_g_per_cm3"] == pytest.approx(expected, rel=1e-4)
    assert doc["metadata"]["settings_hash"] == campaign.stage_settings_hash("density")

    write_run_info(workdir, {"campaign": "toy", "store": {"kind": "embedded"}})
    derived = {b.collection: b.derived for b in builders_for(workdir)}
    for store in derived.values():
        store.connect()
    page = write_report(jobs, derived, workdir / "report")
    markdown = (page.parent / "report.md").read_text()
    assert "## Density" in markdown
    assert f"| Na3ClO | {expected:.4g} |" in markdown
