"""Checks before a campaign writes anything: the size of every stage's cells (by hand for the
cubic 5-atom demo cell, a = 4.84 Å), memory refusals, and the mobile-ion network that the neb
and transport stages need."""

from __future__ import annotations

import math

import pytest
from pymatgen.core import Lattice, Structure

from ctaflow.campaign import CampaignSettings, load_campaign
from ctaflow.campaign.guards import check_campaign, network_problems
from ctaflow.campaign.sources import DemoStructureSource
from ctaflow.resources import estimate_md_memory_mb
from ctaflow.structures import load_structure
from tests.conftest import REPO

A = 4.84  # the demo cell's lattice parameter, Å


@pytest.fixture(scope="module")
def demo():
    return load_structure(DemoStructureSource())


def _cells(check) -> dict[tuple[str, str], object]:
    return {(e.stage, e.label): e for e in check.estimates}


def test_demo_campaign_cells_by_hand(demo, tmp_path):
    campaign = load_campaign(REPO / "campaigns" / "demo.yaml")
    assert demo.lattice.abc == pytest.approx((A, A, A))
    check = check_campaign(campaign, demo, available_mb=1e9)
    cells = _cells(check)
    n9 = 5 * math.ceil(9.0 / A) ** 3  # 9 Å faces: 2 x 2 x 2 cells
    assert n9 == 40
    md = cells[("md", "md cell")].cell
    # 1.0 ps equilibration at 1000 K, then per temperature (900, 1000, 1100 K) 0.5 ps cooling or
    # heating and 2.0 ps production, 2 fs (extensions are not counted: they are conditional)
    assert (md.n_atoms, md.runs, md.md_steps) == (40, 1 + 3, 500 + 3 * (250 + 1000))
    td = cells[("training_data", "labelling md cell")].cell
    # the trained model runs the md stage only (the melt-quench runs on CHGNet): x = 0 at the md
    # temperatures 900, 1000, 1100 K; the two Li members at one temperature (1000 K, the middle
    # one); the defective cell at the 3 md temperatures and at its hop temperatures, 2000 and
    # 3000 K. Each run 0.3 ps of 2 fs = 150 steps.
    runs = 3 + 2 * 1 + 3 + 2
    assert (td.n_atoms, td.runs, td.md_steps) == (40, runs, runs * 150)
    al = cells[("active_learning", "exploration md cell")].cell
    # conditions of use: 6 md segments (equilibration, 2 temperature changes, 3 productions);
    # x = 0 and the defective cell explore all 6 (the Li members are not used by the model);
    # two explorations (one relabelling round), 100 steps each
    runs = 2 * (6 + 6)
    assert (al.n_atoms, al.runs, al.md_steps) == (40, runs, runs * 100)
    am = cells[("amorphous", "melt-quench cell")].cell
    # melt_start: random melts every sample from its own positions. Per composition 3 x (melt
    # 0.5 ps = 250 steps of 2 fs, hold 0.2 ps = 100, quench 1700 K at 12000 K/ps = 0.142 ps =
    # 70.8 steps, rounded up to whole samples of 5: 75)
    assert (am.n_atoms, am.runs, am.md_steps) == (40, 3 * 6, 3 * 3 * (250 + 100 + 75))
    # melt_start: crystal: one melt per composition, shared by its samples
    text = (REPO / "campaigns" / "demo.yaml").read_text()
    shared = text.replace("    melt_start: random", "    melt_start: crystal", 1)
    assert shared != text
    path = tmp_path / "crystal.yaml"
    path.write_text(shared)
    am = _cells(check_campaign(load_campaign(path), demo, available_mb=1e9))
    am = am[("amorphous", "melt-quench cell")].cell
    assert (am.runs, am.md_steps) == (3 * 4, 3 * (250 + 3 * (100 + 75)))
    assert cells[("neb", "neb supercell")].cell.n_atoms == 5 * math.ceil(8.0 / A) ** 3
    assert cells[("relax", "structure")].cell.n_atoms == 5
    # the demo campaign's own comment: "Na cell 50 atoms, Li cell 18 atoms"
    assert cells[("interfaces", "crystalline | Na")].cell.n_atoms == 50
    assert cells[("interfaces", "crystalline | Li")].cell.n_atoms == 18
    # the md stage runs on the trained (float64, benchmark-sized) MACE: 40 atoms is below the
    # smallest benchmark case, whose memory it takes
    assert cells[("md", "md cell")].memory_mb == estimate_md_memory_mb(100, "mace")
    assert check.errors == [] and check.warnings == []
    report = check.report()["stages"]
    assert report["md"]["estimated_as"] == "mace"
    assert report["md"]["cells"]["md cell"]["n_atoms"] == 40


def _md_campaign(width: float, **md) -> CampaignSettings:
    return CampaignSettings(
        name="big",
        stages={"relax": {"enabled": False}, "md": {"supercell_min_width_a": width, **md}},
    )


def test_too_large_md_cell_is_refused_naming_the_setting(demo):
    campaign = _md_campaign(20.0)  # 5 x 5 x 5 cells, CHGNet (the default engine)
    check = check_campaign(campaign, demo, available_mb=3000.0)
    need = estimate_md_memory_mb(625, "chgnet")
    assert round(need) == 3366
    assert check.errors == [
        "stages.md: the md cell has 625 atoms; chgnet MD on it needs about 3,366 MB, more than "
        "the 3,000 MB available here: lower stages.md.supercell_min_width_a (now 20 Å), or pass "
        "--allow-large to run it anyway"
    ]
    allowed = check_campaign(campaign, demo, available_mb=3000.0, allow_large=True)
    assert allowed.errors == []
    assert allowed.warnings == [
        "stages.md: the md cell has 625 atoms; chgnet MD on it needs about 3,366 MB, more than "
        "the 3,000 MB available here (allowed by --allow-large)"
    ]


def test_the_reported_60_a_md_cell_is_refused_at_its_relaxed_size(demo):
    """The finding: 60 Å validated ("n_atoms: 5") and run built 13,720 atoms for CHGNet MD; the
    relaxation shrinks the prototype's cell (4.84 -> 4.54 Å), so the count after it is judged."""
    campaign = CampaignSettings(name="big", stages={"md": {"supercell_min_width_a": 60.0}})
    loaded, relaxed = 5 * math.ceil(60 / A) ** 3, 5 * math.ceil(60 / (A * 0.93)) ** 3
    assert (loaded, relaxed) == (10985, 13720)
    check = check_campaign(campaign, demo, available_mb=20000.0)
    assert check.errors == [
        "stages.md: the md cell has 10,985 atoms (13,720 if the relaxation shrinks the cell by "
        "7 %); chgnet MD on it needs about 61,756 MB, more than the 20,000 MB available here: "
        "lower stages.md.supercell_min_width_a (now 60 Å), or pass --allow-large to run it anyway"
    ]
    assert round(estimate_md_memory_mb(relaxed, "chgnet")) == 61756
    cell = check.report()["stages"]["md"]["cells"]["md cell"]
    assert (cell["n_atoms"], cell["n_atoms_if_relaxed_smaller"]) == (loaded, relaxed)


def test_cells_that_fit_alone_but_not_with_every_worker(demo):
    campaign = _md_campaign(20.0)  # equilibration + one production temperature: 2 runs
    assert check_campaign(campaign, demo, workers=1, available_mb=6000.0).errors == []
    (error,) = check_campaign(campaign, demo, workers=2, available_mb=6000.0).errors
    assert error == (
        "stages.md: the md cell has 625 atoms; 2 chgnet runs on it at the same time (workers) "
        "need about 6,732 MB, more than the 6,000 MB available here: run with --workers 1, "
        "lower stages.md.supercell_min_width_a (now 20 Å), or pass --allow-large to run it anyway"
    )


def test_a_cell_of_millions_of_atoms_is_counted_not_built(demo):
    campaign = _md_campaign(500.0)
    check = check_campaign(campaign, demo, available_mb=1e5)
    n = 5 * math.ceil(500.0 / A) ** 3
    assert _cells(check)[("md", "md cell")].cell.n_atoms == n > 5_000_000
    assert check.errors and check.errors[0].startswith(f"stages.md: the md cell has {n:,} atoms")


def test_engines_without_a_benchmark_are_sized_but_not_refused(demo):
    campaign = CampaignSettings(
        name="gpu",
        engines={"labeller": {"kind": "mlip", "device": "cuda"}},
        stages={"relax": {"enabled": False}, "md": {"supercell_min_width_a": 60.0}},
    )
    check = check_campaign(campaign, demo, available_mb=100.0)
    assert check.errors == []
    assert _cells(check)[("md", "md cell")].memory_mb is None
    assert "GPU" in check.report()["stages"]["md"]["note"]


# --------------------------------------------------------------------------- mobile-ion network
def _one_na(a: float = 5.0) -> Structure:
    """One Na in a cubic cell: Na-Na 5 Å, longer than the 4 Å hops NEB considers."""
    return Structure(Lattice.cubic(a), ["Na"], [[0, 0, 0]])


def test_neb_without_a_hop_is_refused_naming_the_stage():
    campaign = CampaignSettings(name="one", stages={"neb": {"species": "Na"}})
    errors, _ = network_problems(campaign, _one_na())
    assert errors == [
        "stages.neb: no Na hop between mobile sites up to 4 Å in the 8-atom NEB supercell: the "
        "structure has no migration network for the stage: raise stages.neb.max_hop_length_a or "
        "disable stages.neb (checked on the unrelaxed structure)"
    ]
    # a 3.5 Å cell has hops: nothing to say
    assert network_problems(campaign, _one_na(3.5)) == ([], [])


def test_neb_asking_for_more_hops_than_the_structure_has(demo):
    campaign = CampaignSettings(name="demo", stages={"neb": {"species": "Na", "n_hops": 3}})
    (error,), _ = network_problems(campaign, demo)
    assert error.startswith("stages.neb: only 1 symmetry-distinct Na hop(s) between mobile sites")


def test_transport_needs_mobile_sites_or_a_species():
    structure = _one_na()
    structure.add_site_property("site_class", ["pillar"])
    campaign = CampaignSettings(name="one", stages={"md": {}, "transport": {}})
    (error,), _ = network_problems(campaign, structure)
    assert error.startswith(
        "stages.transport analyses the ions on mobile sites, but no site of the structure (Na) "
        "has site_class 'mobile': set stages.transport.species"
    )
    named = CampaignSettings(name="one", stages={"md": {}, "transport": {"species": ["Na", "Li"]}})
    errors, warnings = network_problems(named, structure)
    assert errors == []
    assert warnings == [
        "stages.transport: no Na site has site_class 'mobile' (no percolating Na network in "
        "structure.classify): the stage measures caged Na ions",
        "stages.transport.species lists Li, which the md cell does not contain (the md stage "
        "runs on Na): no result for it",
    ]


def test_a_campaign_for_cluster_workers_is_warned_not_refused(demo):
    campaign = CampaignSettings(
        name="big",
        stages={"relax": {"enabled": False}, "md": {"supercell_min_width_a": 20.0}},
        execution={"backend": "fireworks"},
    )
    check = check_campaign(campaign, demo, available_mb=3000.0, runs_here=False)
    assert check.errors == []
    assert check.warnings == [
        "stages.md: the md cell has 625 atoms; chgnet MD on it needs about 3,366 MB, more than "
        "the 3,000 MB available here (on this machine; the campaign runs on fireworks workers)"
    ]
