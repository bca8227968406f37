"""campaigns/paper.yaml: the study's protocol validates once the user's CIF path is filled in."""

from __future__ import annotations

import subprocess

import yaml

from tests.conftest import CTAFLOW, REPO, subprocess_env

PAPER = REPO / "campaigns" / "paper.yaml"


def _validate(campaign, env):
    return subprocess.run(
        [CTAFLOW, "validate", str(campaign)], capture_output=True, text=True, env=env, timeout=300
    )


def _filled(tmp_path):
    """paper.yaml with a CIF filled in (the demo prototype stands in for the user's file)."""
    from ctaflow.structures.demo import demo_structure

    cif = tmp_path / "mine.cif"
    demo_structure().to(filename=str(cif))
    text = PAPER.read_text().replace("structures/Na5SmSi4O12.cif", str(cif))
    text = text.replace("../launchpad/", f"{REPO}/launchpad/")
    text = text.replace("n_hops: 3", "n_hops: 1")  # the prototype has one distinct Na hop
    campaign = tmp_path / "paper.yaml"
    campaign.write_text(text)
    return campaign


def test_unfilled_paper_campaign_names_the_missing_cif():
    done = _validate(PAPER, subprocess_env())
    assert done.returncode == 1
    assert "paper.yaml:" in done.stderr and "Na5SmSi4O12.cif' does not exist" in done.stderr


def test_filled_paper_campaign_needs_potcars_then_validates_with_the_study_settings(tmp_path):
    campaign = _filled(tmp_path)
    env = subprocess_env()
    for name in ("CTAFLOW_DB_USER", "CTAFLOW_DB_PASSWORD"):
        env.pop(name, None)
    done = _validate(campaign, env)
    # the MongoDB store's config names its credentials' variables: unset, they are named
    assert done.returncode == 1
    assert "needs the environment variables CTAFLOW_DB_USER, CTAFLOW_DB_PASSWORD" in done.stderr
    env.update(CTAFLOW_DB_USER="alice", CTAFLOW_DB_PASSWORD="not-a-password")
    done = _validate(campaign, env)
    # VASP stages: the potentials of the structure and of the series' Li are named
    assert done.returncode == 1
    assert "PMG_VASP_PSP_DIR is not set" in done.stderr and "Li_sv" in done.stderr

    psp = tmp_path / "psp" / "POT_GGA_PAW_PBE_54"
    for symbol in ("Na_pv", "O", "Cl", "Li_sv"):
        (psp / symbol).mkdir(parents=True)
        (psp / symbol / "POTCAR").write_text("placeholder, not a potential\n")
    env["PMG_VASP_PSP_DIR"] = str(psp.parent)
    done = _validate(campaign, env)
    assert done.returncode == 0, done.stderr
    # the series' Li never enters the md cell (md runs on the structure)
    assert "stages.transport.species lists Li, which the md cell does not contain" in done.stderr
    effective = yaml.safe_load(done.stdout.split("\n\x1b")[0].split("valid:")[0])
    stages = effective["stages"]
    vasp = stages["relax"]["engine_effective"]
    assert vasp["kind"] == "vasp" and vasp["xc"] == "PBE"
    assert vasp["preset_incar"]["ENCUT"] == 520.0  # (study)
    assert vasp["preset_incar"]["EDIFF_PER_ATOM"] == 1e-4
    assert vasp["potcar_overrides"] == {"Sm": "Sm_3"}
    assert vasp["kpoints"]["spacing_per_a"] == 0.04
    md = stages["md"]
    assert (md["equilibrate_temperature_k"], md["equilibrate_ps"], md["cool_ps"]) == (600, 100, 100)
    assert md["production_ps"] == 200 and md["timestep_fs"] == 1.0
    assert stages["interfaces"]["engine"] == "universal"
    assert (stages["interfaces"]["anneal_temperature_k"], stages["interfaces"]["anneal_fs"]) == (
        500,
        1000,
    )
    assert set(stages) == {
        "relax",
        "training_data",
        "mlff",
        "active_learning",
        "md",
        "transport",
        "amorphous",
        "neb",
        "interfaces",
        "exchange",
    }
    assert effective["execution"]["backend"] == "fireworks"
    # recorded absolute, found from the campaign file's folder
    assert effective["store"]["config_file"] == str(REPO / "launchpad" / "jobflow.yaml")
    assert effective["store"]["timeout_s"] == 5.0
    sizes = effective["resources"]["stages"]
    # the 5-atom prototype: 20 Å faces -> 5 x 5 x 5 cells; the trained MACE runs on the GPU
    assert sizes["md"]["cells"]["md cell"]["n_atoms"] == 5 * 5**3
    assert sizes["md"]["estimated_as"] == "not estimated"
    assert sizes["exchange"]["cells"]["exchange stack"]["n_atoms"] == 2 * 5 * 5**3
