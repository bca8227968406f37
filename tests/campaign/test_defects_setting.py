"""The campaign's ``defects:`` setting: validated where it is written, applied to the MD supercell,
and part of the settings hash of exactly the stages that use it."""

from __future__ import annotations

import pytest

from ctaflow.campaign import CampaignSettings, load_campaign
from ctaflow.errors import CampaignError

CAMPAIGN = """\
name: t1
structure: {source: demo}
engines:
  labeller: {kind: mlip, model: CHGNet}
stages:
  relax: {fmax_ev_per_a: 0.05, max_steps: 50}
  md: {temperatures_k: [500, 600, 700], supercell_min_width_a: 9.0}
  transport: {}
"""


def _load(tmp_path, text) -> CampaignSettings:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return load_campaign(path)


def test_defects_change_the_md_and_transport_hashes_only(tmp_path):
    plain = _load(tmp_path, CAMPAIGN)
    defective = _load(tmp_path, CAMPAIGN + "defects: {kind: schottky, species: Na, seed: 1}\n")
    assert plain.defects is None and defective.defects.kind == "schottky"
    for stage in ("structure", "relax"):
        assert plain.stage_settings_hash(stage) == defective.stage_settings_hash(stage)
    for stage in ("md", "transport"):
        assert plain.stage_settings_hash(stage) != defective.stage_settings_hash(stage)
    other_seed = _load(tmp_path, CAMPAIGN + "defects: {kind: schottky, species: Na, seed: 2}\n")
    assert other_seed.stage_settings_hash("md") != defective.stage_settings_hash("md")


def test_a_defect_without_its_compensation_is_refused_where_it_is_written(tmp_path):
    with pytest.raises(CampaignError) as info:
        _load(tmp_path, CAMPAIGN + "defects: {kind: aliovalent, species: Na}\n")
    assert "defects" in str(info.value) and "replace" in str(info.value)


def test_the_md_stage_makes_its_defects_after_the_supercell(tmp_path):
    from ctaflow.flows.campaign import build_campaign_flow
    from ctaflow.structures import demo_structure

    settings = _load(tmp_path, CAMPAIGN + "defects: {kind: schottky, species: Na}\n")
    flow = build_campaign_flow(settings, demo_structure()).stages["md"]
    names = [job.name for job in flow.jobs]
    assert names[:5] == [
        "md supercell",
        "md defects",
        "md start relax",
        "md start at rest",
        "md equilibrate",
    ]
    defects_job = flow.jobs[1]
    assert defects_job.function_args[0].uuid == flow.jobs[0].uuid  # made from the supercell
    # the MD starts from the relaxed defective cell, not from the cell as built
    assert flow.jobs[4].function_args[0].uuid == flow.jobs[3].uuid
    # the protocol's segments: no cooling segment at the equilibration temperature (600 K)
    assert "md cool to 600 K" not in names and "md cool to 500 K" in names
    assert "md heat to 700 K" in names


TRAINED = """\
name: t2
structure: {source: demo, classify: {species: Na, hop_cutoff_a: 4.0}}
series: {replace: Na, by: Li, sites: mobile, n_compositions: 3}
defects: {kind: interstitial, species: Na, count: 2, replace: Cl, by: O}
engines:
  labeller: {kind: mlip, model: CHGNet}
  mlff: {kind: mace}
stages:
  relax: {fmax_ev_per_a: 0.05, max_steps: 50}
  training_data: {supercell_min_width_a: 9.0, md_ps: 0.1}
  mlff: {stress_weight: 1.0}
  md: {engine: mlff, temperatures_k: [900, 1100], equilibrate_temperature_k: 1000,
       supercell_min_width_a: 9.0}
  amorphous: {engine: mlff, melt_temperature_k: 3000, supercell_min_width_a: 9.0}
"""


def test_training_data_label_the_defective_cell_where_the_md_runs_and_members_where_theirs(
    tmp_path,
):
    """The md stage runs the trained model on the defective x = 0 cell at 900 / 1000 / 1100 K;
    the amorphous stage on every member at 3000 K and the quench. The labelling follows: the
    defective cell at the md temperatures, x = 0 at all of them, the other members at the melt
    and its quench only."""
    from ctaflow.flows.campaign import build_campaign_flow
    from ctaflow.structures import demo_structure

    settings = _load(tmp_path, TRAINED)
    assert settings.defect_temperatures() == [900.0, 1000.0, 1100.0]
    assert settings.stage_settings_hash("training_data") != _load(
        tmp_path, TRAINED.replace("count: 2", "count: 1")
    ).stage_settings_hash("training_data")
    flow = build_campaign_flow(settings, demo_structure()).stages["training_data"]
    names = {job.name for job in flow.jobs if job.name.startswith("labelling md")}
    assert names == {
        "labelling md defects 900 K",
        "labelling md defects 1000 K",
        "labelling md defects 1100 K",
        *(f"labelling md {t} K x=0" for t in (900, 1000, 1100, 3000)),
        "labelling md 3000 -> 300 K x=0",
        *(f"labelling md {t} x={x}" for t in ("3000 K", "3000 -> 300 K") for x in ("0.5", "1")),
    }
    (defects,) = [job for job in flow.jobs if job.name == "training defects"]
    (relax0,) = [job for job in flow.jobs if job.name == "relax member 0"]
    assert defects.function_args[0].uuid in {j.uuid for j in relax0.jobs}  # made from x = 0
    (train,) = build_campaign_flow(settings, demo_structure()).stages["mlff"].jobs
    assert train.name == "train mace" and train.metadata.get("cores", 1) == 1
    # with active learning, a committee of 3 trains side by side, one thread each: the
    # training job claims 3 cores from the local runner
    (tmp_path / "al").mkdir()
    committee = _load(tmp_path / "al", TRAINED + "  active_learning: {enabled: true}\n")
    assert committee.stages.active_learning.committee_size == 3
    (train,) = build_campaign_flow(committee, demo_structure()).stages["mlff"].jobs
    assert train.name == "train mace committee of 3" and train.metadata["cores"] == 3


def test_hop_temperatures_label_the_defective_cell_only_and_only_when_it_is_used(tmp_path):
    """training_data.defect_hop_temperatures_k: the defective cell is labelled there too (and
    the perfect members are not); without a stage running the model on the defective cell, the
    setting labels nothing."""
    from ctaflow.flows.campaign import build_campaign_flow
    from ctaflow.structures import demo_structure

    hot = TRAINED.replace("md_ps: 0.1}", "md_ps: 0.1, defect_hop_temperatures_k: [2000]}")
    settings = _load(tmp_path, hot)
    assert settings.defect_labelling_temperatures() == [900.0, 1000.0, 1100.0, 2000.0]
    flow = build_campaign_flow(settings, demo_structure()).stages["training_data"]
    names = {job.name for job in flow.jobs if job.name.startswith("labelling md")}
    assert "labelling md defects 2000 K" in names
    assert not any(name.startswith("labelling md 2000 K") for name in names)
    plain = _load(tmp_path, TRAINED)
    assert settings.stage_settings_hash("training_data") != plain.stage_settings_hash(
        "training_data"
    )
    # md on CHGNet: the trained model never sees the defective cell, so no defect labelling
    unused = _load(tmp_path, hot.replace("md: {engine: mlff, ", "md: {engine: labeller, "))
    assert unused.defect_labelling_temperatures() == []


def test_a_melt_from_random_positions_is_labelled_from_random_positions(tmp_path):
    """melt_start: random: the labeller's run at the melt temperature starts from a random
    packing of each member (the liquid the model will make), and its quench continues from it;
    the md temperatures still start from the crystal."""
    from ctaflow.flows.campaign import build_campaign_flow
    from ctaflow.structures import demo_structure

    text = TRAINED.replace("amorphous: {", "amorphous: {melt_start: random, ")
    flow = build_campaign_flow(_load(tmp_path, text), demo_structure()).stages["training_data"]
    jobs = {job.name: job for job in flow.jobs}

    def start_of(job):  # the uuid of the job whose output a job (or the first of a flow) uses
        return getattr(job, "jobs", [job])[0].function_args[0].uuid

    for member, x in enumerate(("0", "0.5", "1")):
        pack = jobs[f"labelling random start 3000 K x={x}"]
        melt = jobs[f"labelling md 3000 K x={x} (random start)"]
        quench = jobs[f"labelling md 3000 -> 300 K x={x}"]
        assert start_of(pack) in {j.uuid for j in jobs[f"relax member {member}"].jobs}
        assert start_of(melt) == pack.uuid
        assert start_of(quench) in {j.uuid for j in getattr(melt, "jobs", [melt])}
    assert "labelling md 3000 K x=0" not in jobs  # the crystal is not melted as well
    assert "labelling random start 900 K x=0" not in jobs


def test_a_cell_engine_relaxes_every_composition_before_the_stage_engine(tmp_path):
    """cell_engine: each member's cell and positions are relaxed by that engine, and the stage's
    crystalline reference starts from that cell (the cells the trained model saw); an engine
    name that is not defined is refused."""
    from ctaflow.campaign.sources import SeriesSettings
    from ctaflow.campaign.stages import AmorphousStageSettings
    from ctaflow.engines import get_engine
    from ctaflow.engines.specs import MLIPEngineSpec
    from ctaflow.makers.amorphous import AmorphousStageMaker
    from ctaflow.structures import demo_structure

    text = TRAINED.replace("amorphous: {", "amorphous: {relax_cell: false, cell_engine: labeller, ")
    assert _load(tmp_path, text).stages.amorphous.cell_engine == "labeller"
    with pytest.raises(CampaignError, match="cell_engine is 'dft'"):
        _load(tmp_path, text.replace("cell_engine: labeller", "cell_engine: dft"))
    # the campaign-trained MACE exists only after the mlff stage: refused before anything runs
    with pytest.raises(CampaignError, match="the MACE model this campaign trains"):
        _load(tmp_path, text.replace("cell_engine: labeller", "cell_engine: mlff"))

    labeller = get_engine(MLIPEngineSpec())
    st = AmorphousStageSettings(relax_cell=False, elemental_references=False, n_samples=1)
    series = SeriesSettings(replace="Na", by="Li", sites="all", n_compositions=2)
    flow = AmorphousStageMaker(engine=labeller, cell_engine=labeller, settings=st, series=series)
    jobs = {job.name: job for job in flow.make(demo_structure()).jobs}
    for x in ("0", "1"):
        cell, crystal = jobs[f"composition cell x={x}"], jobs[f"crystalline reference x={x}"]
        assert cell.jobs[0].maker.relax_cell is True  # the cell relaxes here ...
        assert crystal.jobs[0].maker.relax_cell is False  # ... and stays in the stage's relaxation
        assert crystal.jobs[0].function_args[0].uuid in {j.uuid for j in cell.jobs}


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ("md: {engine: mlff, ", "stages.md runs an NPT barostat"),
        ("amorphous: {engine: mlff, ", "stages.amorphous relaxes the cells"),
    ],
)
def test_cell_changes_on_a_model_trained_without_stresses_are_refused(tmp_path, change, says):
    """A barostat or a cell relaxation on the campaign's MACE needs it trained on stresses: the
    demo's glass relaxed on a stress-free model swelled from 9 to 13 Å per side."""
    text = TRAINED.replace("mlff: {stress_weight: 1.0}", "mlff: {}")
    if "md" in change:
        text = text.replace(
            "  amorphous: {engine: mlff,", "  amorphous: {relax_cell: false, engine: mlff,"
        )
        text = text.replace(change, change + "equilibrate_ensemble: npt, ")
    else:
        text = text.replace(
            "  md: {engine: mlff,", "  md: {equilibrate_ensemble: nvt, engine: mlff,"
        )
    with pytest.raises(CampaignError) as info:
        _load(tmp_path, text)
    assert says in str(info.value) and "stages.mlff.stress_weight" in str(info.value)
    # with stresses in the training, or without the cell change, the campaign loads
    _load(tmp_path, text.replace("mlff: {}", "mlff: {stress_weight: 1.0}"))
