"""The amorphous (melt–quench) stage end to end on CHGNet, and its tolerance of failed samples.

The campaign deliberately "melts" at 300 K: the checks must flag every sample as not melted and
leave ΔE empty rather than report the energy of a shaken crystal as an amorphous phase.
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from ctaflow.analysis.amorphous import AmorphousSample, formation_energy_per_atom
from ctaflow.analysis.relax import RelaxResult
from tests.conftest import CTAFLOW, subprocess_env

CAMPAIGN = """
name: cold-melt
structure: {source: demo, classify: {species: Na, hop_cutoff_a: 4.0}}
series: {replace: Na, by: Li, sites: mobile, n_compositions: 2}
engines:
  labeller: {kind: mlip, model: CHGNet}
stages:
  relax: {fmax_ev_per_a: 0.05, max_steps: 100}
  amorphous:
    supercell_min_width_a: 4.0      # the 5-atom cell: a test, not a glass
    melt_temperature_k: 300         # far too cold to melt: the checks must say so
    melt_ps: 0.04
    hold_ps: 0.02
    quench_rate_k_per_ps: 10000
    quench_end_temperature_k: 100
    timestep_fs: 2.0
    sample_every: 5
    n_samples: 3
    fmax_ev_per_a: 0.05
    max_steps: 150
"""


def _ctaflow(*args: str) -> str:
    done = subprocess.run(
        [CTAFLOW, *args], capture_output=True, text=True, env=subprocess_env(), timeout=900
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def cold_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("amorphous")
    campaign = root / "cold.yaml"
    campaign.write_text(CAMPAIGN)
    workdir = root / "work"
    _ctaflow("run", str(campaign), "--workdir", str(workdir))
    _ctaflow("build", "--workdir", str(workdir))
    return workdir


@pytest.mark.slow
def test_a_melt_that_never_melted_is_flagged_and_gives_no_delta_e(cold_run):
    from ctaflow.query import find_derived, open_derived

    docs = list(open_derived(cold_run, "formation_energies").query({}))
    assert sorted(d["formula"] for d in docs) == ["Li3ClO", "Na3ClO"]
    for doc in docs:
        assert doc["n_requested"] == 3 and doc["n_failed"] == 3 and doc["n_samples"] == 0
        assert doc["delta_e_amorphous_minus_crystalline_mev_per_atom"] is None
        assert doc["crystal_energy_per_atom_ev"] < 0 and doc["crystal_converged"]
        assert doc["n_retried"] == 3  # sample_retries 1 (default): each made again once
        for sample in doc["samples"]:
            assert sample["status"] == "not melted"
            # a new hold from the shared melt, with its own seed: also not melted
            (earlier,) = sample["earlier_attempts"]
            assert earlier["status"] == "not melted" and earlier["seed"] != sample["seed"]
            assert sample["melt_msd_a2"] < 0.5  # vibrations only, far below the 2 Å² threshold
            assert sample["long_range_order"] > 0.5  # and the crystal order survived
        assert any("did not melt" in note for note in doc["notes"])
    rows = find_derived(cold_run, "formation_energies", composition="Li3ClO")
    assert [r["formula"] for r in rows] == ["Li3ClO"] and rows[0]["li_fraction"] == 1.0


@pytest.mark.slow
def test_formation_energy_is_recomputed_from_the_stored_references(cold_run):
    from ctaflow.query import open_results

    store = open_results(cold_run)
    out = next(
        d["output"]
        for d in store.query({"output.@class": "AmorphousCompositionResult"})
        if d["output"]["formula"] == "Na3ClO"
    )
    refs = {r["element"]: r for r in out["elemental_references"]}
    assert sorted(refs) == ["Cl", "Li", "Na", "O"]
    assert refs["O"]["provenance"]["kind"] == "molecule"
    assert refs["Na"]["provenance"]["kind"] == "solid"
    mu = {el: r["energy_per_atom_ev"] for el, r in refs.items()}
    n = out["n_atoms"]
    hand = (
        n * out["crystal_energy_per_atom_ev"]
        - (n * 3 / 5) * mu["Na"]
        - (n / 5) * mu["O"]
        - (n / 5) * mu["Cl"]
    ) / n
    assert out["formation_energy_crystal_ev_per_atom"] == pytest.approx(hand, abs=1e-9)
    assert out["formation_energy_crystal_ev_per_atom"] < -0.5  # an ionic solid, strongly bound


@pytest.mark.slow
def test_report_has_the_formation_energy_table_and_plot(cold_run):
    _ctaflow("report", "--workdir", str(cold_run))
    report = json.loads((cold_run / "report" / "report.json").read_text())
    rows = report["formation_energies"]
    assert [r["formula"] for r in rows] == ["Na3ClO", "Li3ClO"]  # ordered by x
    assert {"file": "delta_e.png"} in report["figures"]
    markdown = (cold_run / "report" / "report.md").read_text()
    assert "Amorphous vs crystalline" in markdown and "did not melt" in markdown


def _relax(energy_per_atom: float, n: int = 4) -> RelaxResult:
    s = Structure(
        Lattice.cubic(4.0),
        ["Na", "Cl", "Na", "Cl"],
        [[0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0.5, 0.5, 0]],
    )
    return RelaxResult(
        formula="NaCl",
        n_atoms=n,
        structure=s,
        energy_ev=energy_per_atom * n,
        energy_per_atom_ev=energy_per_atom,
        max_force_ev_per_a=0.01,
        fmax_target_ev_per_a=0.05,
        converged=True,
        initial_volume_a3=64.0,
        volume_a3=64.0,
        lattice_abc_a=(4.0, 4.0, 4.0),
        engine={"engine": "test"},
    )


def test_a_failed_sample_is_reported_and_the_rest_still_give_delta_e():
    from ctaflow.makers.amorphous import amorphous_composition

    good = [
        AmorphousSample(
            index=i,
            seed=i,
            status="ok",
            energy_ev=4 * e,
            energy_per_atom_ev=e,
            structure=_relax(e).structure,
        )
        for i, e in ((0, -3.99), (2, -3.97))
    ]
    result = amorphous_composition.original(
        _relax(-4.0),
        [good[0], None, good[1]],  # sample 1's job failed: its output never arrived
        [_relax(-1.0), _relax(-2.0)],
        [{"element": "Cl", "kind": "molecule"}, {"element": "Na", "kind": "solid"}],
        0.0,
        "Na->Li",
        _relax(-4.0).structure,
        {
            "melt_temperature_k": 3000.0,
            "melt_ps": 1.0,
            "hold_ps": 1.0,
            "quench_rate_k_per_ps": 100.0,
            "quench_end_temperature_k": 300.0,
            "timestep_fs": 1.0,
            "min_msd_a2": 2.0,
            "max_long_range_order": 0.25,
        },
        {"engine": "test"},
    )
    assert result.n_requested == 3 and result.n_failed == 1
    assert [s.status for s in result.samples] == ["ok", "failed", "ok"]
    assert result.delta_e.n_samples == 2
    assert result.delta_e.mean_mev_per_atom == pytest.approx(20.0)  # (10 + 30) / 2
    assert any("#1 failed" in w for w in result.warnings)
    # NaCl: E = −16 eV for 4 atoms, μ_Na = −2, μ_Cl = −1 -> (−16 + 4 + 2) / 4 = −2.5
    assert result.formation_energy_crystal_ev_per_atom == pytest.approx(
        formation_energy_per_atom(-16.0, "Na2Cl2", {"Na": -2.0, "Cl": -1.0})
    )
    assert result.formation_energy_crystal_ev_per_atom == pytest.approx(-2.5)


@pytest.mark.slow
def test_a_random_start_gives_every_sample_its_own_melt_from_its_own_positions(tmp_path):
    """melt_start: random (EMT Cu3Au, 32 atoms): each sample melts from its own random packing of
    the crystal's cell, and the melted check counts from the middle of that melt."""
    import numpy as np

    from ctaflow.analysis.amorphous import accumulated_msd, bragg_order
    from ctaflow.analysis.chunks import join_chunks
    from ctaflow.structures.random_packing import pair_minima

    st, flow, store, by_name = _emt_random_melts(
        tmp_path,
        melt_temperature_k=3000.0,
        melt_ps=0.4,
        n_samples=2,
        relax_cell=False,
        sample_retries=0,  # each sample's result is from the jobs made at build time
    )
    names = [j.name for j in flow.jobs]
    assert "melt" not in names  # no melt shared by the samples
    assert [n for n in names if n.endswith("melt")] == ["sample 0 melt", "sample 1 melt"]
    crystal = store.get_output(by_name["crystalline reference"].jobs[-1].uuid, load=True)
    crystal = crystal.structure  # a RelaxResult
    limits = pair_minima(crystal, st.random_min_distance_fraction)
    result = store.get_output(flow.output[0].uuid, load=True)
    firsts = []
    for s in range(2):
        start = Structure.from_dict(
            store.get_output(by_name[f"sample {s} random start"].uuid, load=True)
        )
        melt = store.get_output(by_name[f"sample {s} melt"].uuid, load=True)
        hold = store.get_output(by_name[f"sample {s} hold"].uuid, load=True)
        melt_pos = join_chunks(melt["trajectory"])["positions_a"]
        hold_pos = join_chunks(hold["trajectory"])["positions_a"]
        # the melt starts at the packing: no pair closer than its limit, no crystalline order
        assert np.allclose(melt_pos[0], start.cart_coords, atol=1e-6)
        d = start.distance_matrix
        sym = [site.specie.symbol for site in start]
        assert all(
            d[i, j] >= limits[sym[i], sym[j]] - 1e-9 for i in range(len(start)) for j in range(i)
        )
        assert bragg_order(crystal, start, ["Au"]) < 0.5
        firsts.append(melt_pos[0])
        # the melted check: Au over the second half of the melt and the hold (hand computation)
        au = [i for i, x in enumerate(sym) if x == "Au"]
        half = melt_pos[len(melt_pos) // 2 :]
        sample = result["samples"][s]
        measured = sample["checks"]["melt_msd_a2"]
        assert measured == pytest.approx(accumulated_msd([half, hold_pos], au))
        assert sample["checks"]["melt_msd_a2"] != pytest.approx(
            accumulated_msd([melt_pos, hold_pos], au)
        )
    assert not np.allclose(firsts[0], firsts[1])  # independent starts
    assert result["melt"]["melt_start"] == "random"


@pytest.mark.slow
def test_an_npt_melt_quench_lets_the_liquid_find_its_own_volume(tmp_path):
    """ensemble: npt (EMT Cu3Au, 32 atoms, 0 GPa, the default Berendsen barostat): melt, hold
    and quench run NPT at the set pressure, so the hot liquid expands beyond the crystal's cell
    (at the crystal's volume it is under pressure). NVT (the default) keeps the crystal's cell:
    the random-start test above."""
    _, _, store, by_name = _emt_random_melts(
        tmp_path,
        melt_temperature_k=2500.0,
        ensemble="npt",
        pressure_gpa=0.0,
        melt_ps=0.3,
        n_samples=1,
        relax_cell=True,
    )
    crystal = store.get_output(by_name["crystalline reference"].jobs[-1].uuid, load=True)
    v_crystal = crystal.structure.volume
    melt, hold, quench = (
        store.get_output(by_name[f"sample 0 {seg}"].uuid, load=True)
        for seg in ("melt", "hold", "quench")
    )
    for segment in (melt, hold, quench):
        assert segment["ensemble"] == "npt" and segment["pressure_gpa"] == 0.0
    # the liquid at 2,500 K and 0 GPa takes more room than the crystal at 0 K
    assert melt["final_volume_a3"] > 1.05 * v_crystal
    assert hold["mean_volume_a3"] > 1.05 * v_crystal
    # the random start is under pressure (12.9 GPa mean over the melt, EMT); the barostat
    # brings the hold near its target
    assert abs(hold["mean_pressure_gpa"]) < 0.5 * melt["mean_pressure_gpa"]


def _emt_random_melts(tmp_path, **settings):
    """The amorphous stage on EMT Cu3Au (2x2x2, 32 atoms) from random starts, run with the
    local runner: (settings, flow, store, jobs by name)."""
    from jobflow import Flow

    from ctaflow.campaign.stages import AmorphousStageSettings
    from ctaflow.engines.specs import MLIPEngineSpec
    from ctaflow.execution.local import run_flow
    from ctaflow.makers.amorphous import AmorphousStageMaker
    from ctaflow.store import job_store, state_store
    from tests.makers.fast_engine import EMTEngine, cu3au

    base = {
        "supercell_min_width_a": 7.0,
        "melt_start": "random",
        "hold_ps": 0.1,
        "quench_rate_k_per_ps": 20000.0,
        "timestep_fs": 2.0,
        "sample_every": 5,
        "elemental_references": False,
        "max_steps": 200,
    }
    st = AmorphousStageSettings(**{**base, **settings})
    flow = AmorphousStageMaker(engine=EMTEngine(MLIPEngineSpec()), settings=st).make(cu3au())
    store, states = job_store(None, tmp_path), state_store(None, tmp_path)
    report = run_flow(Flow([flow]), store, states, tmp_path, workers=1)
    assert report.ok, report.failed
    store.connect()
    return st, flow, store, {j.name: j for j in flow.jobs}


@pytest.mark.slow
def test_a_sample_that_fails_a_check_is_made_again_with_a_new_seed(tmp_path):
    """sample_retries: 1 with a long-range-order limit no glass can meet (EMT Cu3Au, random
    start): the sample is melted again from a new random packing (seed + ATTEMPT_SEED_STRIDE),
    fails again and stays excluded, and both attempts are reported."""
    from ctaflow.makers.melt_quench import ATTEMPT_SEED_STRIDE

    st, flow, store, by_name = _emt_random_melts(
        tmp_path,
        melt_temperature_k=3000.0,
        melt_ps=0.2,
        n_samples=1,
        relax_cell=False,
        min_msd_a2=1e-6,  # melted, whatever the short melt did
        max_long_range_order=1e-9,
        sample_retries=1,
    )
    result = store.get_output(flow.output[0].uuid, load=True)
    (sample,) = result["samples"]
    first_seed = st.seed + 1
    assert sample["status"] == "not amorphous"
    assert sample["seed"] == first_seed + ATTEMPT_SEED_STRIDE
    (earlier,) = sample["attempts"]
    assert earlier["seed"] == first_seed and earlier["status"] == "not amorphous"
    assert result["n_retried"] == 1 and result["n_failed"] == 1
    assert any("made again with a new seed" in w for w in result["warnings"])
    ran = {doc["name"]: doc["uuid"] for doc in store.query({}, properties=["name", "uuid"])}
    second = Structure.from_dict(store.get_output(ran["sample 0 attempt 2 random start"]))
    first = Structure.from_dict(store.get_output(by_name["sample 0 random start"].uuid, load=True))
    assert not np.allclose(first.cart_coords, second.cart_coords)  # its own random start
    assert "sample 0 attempt 3 random start" not in ran  # one retry only
