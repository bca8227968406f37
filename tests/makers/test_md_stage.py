"""The MD stage's loops end to end on a fast engine (EMT Cu₃Au, 28 atoms after a Schottky set):
defects in the supercell, an equilibration that extends itself, no cooling segment at the
equilibration temperature, production runs that extend themselves until their MSD target or
their time limit, and the transport analysis of the joined segments."""

from __future__ import annotations

import numpy as np
import pytest
from ase import units
from monty.json import jsanitize
from pymatgen.core import Structure

from ctaflow.analysis.chunks import join_chunks
from ctaflow.campaign.stages import MDStageSettings
from ctaflow.engines.specs import MLIPEngineSpec
from ctaflow.makers.md import MDStageMaker
from ctaflow.makers.transport import transport_flow
from ctaflow.structures.defects import DefectSettings
from tests.makers.fast_engine import CU3AU_CHARGES, EMTEngine, cu3au

TRANSPORT = {
    "by_site_class": False,
    "fit_start_ps": None,
    "fit_end_ps": None,
    "collective": False,
    "n_samples": 50,
    "n_walkers": 8,
    "seed": 0,
    "min_msd_a2": None,
    "slope_tolerance": 0.25,
    "min_temperatures": 3,
}


def run_stage(tmp_path, **settings):
    from jobflow import Flow

    from ctaflow.execution.local import run_flow
    from ctaflow.store import job_store, state_store

    st = MDStageSettings(
        supercell_min_width_a=7.0,  # 2×2×2: 32 atoms, 28 after one Schottky set (3 Cu + Au)
        timestep_fs=2.0,
        sample_every=5,
        equilibrate_temperature_k=600.0,
        temperatures_k=[300.0, 600.0],
        cool_ps=0.1,
        barostat_damping_fs=200.0,
        **settings,
    )
    defects = DefectSettings(kind="schottky", species="Cu", oxidation_states=CU3AU_CHARGES)
    md = MDStageMaker(engine=EMTEngine(MLIPEngineSpec()), settings=st, defects=defects)
    flow = md.make(cu3au())
    transport = transport_flow([flow.output[0], flow.output[1]], None, TRANSPORT)
    flow.update_metadata({"stage": "md"})  # as the campaign does; jobs made later inherit it
    transport.update_metadata({"stage": "transport"})
    store, states = job_store(None, tmp_path), state_store(None, tmp_path)
    report = run_flow(Flow([flow, transport]), store, states, tmp_path, workers=1)
    assert report.ok, report.failed
    store.connect()
    runs = [store.get_output(flow.output[i].uuid, load=True) for i in range(2)]
    summaries = [store.get_output(j.output.uuid, load=True) for j in transport.jobs[:2]]
    # stored models come back as models: compare them as stored
    runs = [jsanitize(r, strict=True, enum_values=True) for r in runs]
    summaries = [jsanitize(s, strict=True, enum_values=True) for s in summaries]
    return store, runs, summaries


def md_rows(store) -> dict:
    from ctaflow.report.data import ReportData
    from ctaflow.report.sections.structures import md_records

    return {row["segment"]: row for row in md_records(ReportData(store, {}))}


def segments(store) -> dict:
    docs = store.query({"output.@class": "MDResult"}, properties=["uuid", "output"], load=True)
    return {d["output"]["segment"]: d for d in docs}


@pytest.mark.slow
def test_loops_extend_until_the_limit_and_transport_joins_the_segments(tmp_path):
    store, runs, summaries = run_stage(
        tmp_path,
        equilibrate_ps=0.06,  # shorter than the 100-fs window: never judged settled
        equilibrate_extensions=1,
        production_ps=0.1,
        max_production_ps=0.25,
        msd_target_a2=50.0,  # out of reach: the runs go to their limit
    )
    found = segments(store)
    assert sorted(found) == [
        "cool to 300 K",
        "equilibrate",
        "equilibrate (2)",
        "production 300 K",
        "production 300 K (2)",
        "production 300 K (3)",
        "production 600 K",  # no "cool to 600 K": the equilibration is at 600 K
        "production 600 K (2)",
        "production 600 K (3)",
    ]
    # the first segment started from the crystal at rest with velocities at exactly 2T, without
    # centre-of-mass motion
    first = join_chunks(found["equilibrate"]["output"]["trajectory"])
    assert first["temperatures_k"][0] == pytest.approx(1200.0, rel=1e-9)
    final = Structure.from_dict(found["equilibrate"]["output"]["final_structure"])
    p = (
        np.array([site.specie.atomic_mass for site in final])[:, None]
        * first["velocities_a_per_fs"][0]
    )
    assert np.abs(p.sum(axis=0)).max() < 1e-6 * np.abs(p).sum()  # masses: pymatgen's vs ASE's
    # ... from the fixed-cell relaxation of the defective cell on the MD engine (a cell at rest
    # off its minimum would heat itself above 2T/2): same lattice, site marks kept, lower
    # energy than the cell as built (the reference of the checks), forces below the criterion
    (rest,) = store.query({"name": "md start at rest"}, load=True)
    at_rest = Structure.from_dict(rest["output"])
    built = Structure.from_dict(runs[0]["reference_structure"])
    assert at_rest.lattice == built.lattice and at_rest.site_properties == built.site_properties
    assert np.allclose(first["positions_a"][0], at_rest.cart_coords, atol=1e-6)
    calc = EMTEngine(MLIPEngineSpec()).calculator()
    energies, forces = [], []
    for structure in (built, at_rest):
        atoms = structure.to_ase_atoms()
        atoms.calc = calc
        energies.append(atoms.get_potential_energy())
        forces.append(np.linalg.norm(atoms.get_forces(), axis=1).max())
    assert energies[1] < energies[0] and forces[0] > 0.05 >= forces[1], (energies, forces)
    # every segment carries its target check; the second continues the first's last frame
    assert all(d["output"]["target_check"] is not None for d in found.values())
    second = join_chunks(found["equilibrate (2)"]["output"]["trajectory"])
    assert np.allclose(second["positions_a"][0], first["positions_a"][-1], atol=1e-6)

    (equilibration,) = [d["output"] for d in store.query({"output.@class": "EquilibrationRun"})]
    assert equilibration["status"] == "flagged" and len(equilibration["segments"]) == 2
    # the report's MD section: every segment with target vs mean T, its verdict and reasons,
    # and one row per loop saying how it ended
    rows = md_rows(store)
    for name, doc in found.items():
        row, check = rows[name], doc["output"]["target_check"]
        assert row["target_temperature_k"] == check["target_temperature_k"]
        assert row["mean_temperature_k"] == doc["output"]["mean_temperature_k"]
        assert row["status"] == check["status"] and row["reasons"] == "; ".join(check["reasons"])
    assert rows["equilibrate"]["std_pressure_gpa"] is not None  # NPT: P ± std
    assert rows["equilibration (run)"]["status"] == "flagged"
    assert rows["production 300 K (run)"]["reasons"].startswith("time limit reached (MSD")
    assert "not on target after 2 segment(s)" in equilibration["reasons"][0]
    assert "never settled" in equilibration["reasons"][-1]

    for run, summary, t in zip(runs, summaries, (300.0, 600.0), strict=True):
        # the defective cell: 3 Cu and 1 Au removed, the sites recorded
        ref = run["reference_structure"]
        assert len(ref["sites"]) == 28
        assert sorted(ref["properties"]["defects"]["removed_species"]) == ["Au", "Cu", "Cu", "Cu"]
        # 0.1 + 0.1 (at most doubling) + 0.05 (up to the limit) ps
        assert [p["duration_ps"] for p in run["pieces"]] == pytest.approx([0.1, 0.1, 0.05])
        assert [found[p["segment"]]["uuid"] for p in run["pieces"]] == [
            p["uuid"] for p in run["pieces"]
        ]
        assert run["stopped_because"] == "time limit reached" and run["status"] == "flagged"
        assert any("MSD" in r and "< target 50.00" in r for r in run["reasons"])
        assert [b["segment"] for b in run["before"]] == (["cool to 300 K"] if t == 300 else [])
        # transport: the joined segments from the end of the start-up transient on, at the
        # measured temperature, refused from any fit with the reason
        assert summary["md_duration_ps"] == pytest.approx(0.25)
        assert summary["target_temperature_k"] == t
        assert summary["temperature_k"] == pytest.approx(run["mean_temperature_k"])
        assert summary["analysed_from_fs"] == run["analysed_from_fs"]
        (check,) = summary["checks"]
        assert check["status"] == "flagged"
        assert any("have not left their sites" in r for r in check["reasons"])
        # no MSD threshold given to transport: the squared Cu-Cu distance of L1₂, a²/2
        assert check["regime"]["min_msd_a2"] == pytest.approx(run["hop_length_a"]["Cu"] ** 2)
        assert run["hop_length_a"]["Cu"] == pytest.approx(3.73 / np.sqrt(2), rel=1e-6)


@pytest.mark.slow
def test_a_reached_target_ends_the_run_after_one_segment(tmp_path):
    store, runs, _ = run_stage(
        tmp_path,
        equilibrate_ps=0.3,
        equilibrate_extensions=2,
        production_ps=0.1,
        max_production_ps=1.0,
        msd_target_a2=0.01,  # thermal vibrations of Cu exceed it
    )
    (equilibration,) = [d["output"] for d in store.query({"output.@class": "EquilibrationRun"})]
    k = len(equilibration["segments"])
    assert equilibration["duration_ps"] == pytest.approx(0.3 * k)
    last = equilibration["segments"][-1]["target_check"]
    if equilibration["status"] == "ok":  # stopped as soon as a segment was on target
        assert last["status"] == "ok" and last["equilibrated_at_fs"] is not None
        assert all(
            s["target_check"]["status"] != "ok" or s["target_check"]["equilibrated_at_fs"] is None
            for s in equilibration["segments"][:-1]
        )
    else:  # or ran every extension
        assert k == 3 and equilibration["reasons"]
    for run in runs:
        assert run["stopped_because"] == "every species reached its MSD target"
        assert len(run["pieces"]) == 1 and run["msd_a2"]["Cu"] >= 0.01
        assert run["crystallinity"]["status"] == "ok"
    # velocities carried: the production at 600 K started from the equilibration's last frame
    found = segments(store)
    last = equilibration["segments"][-1]["segment"]
    end = join_chunks(found[last]["output"]["trajectory"])
    start = join_chunks(found["production 600 K"]["output"]["trajectory"])
    assert np.allclose(start["positions_a"][0], end["positions_a"][-1], atol=1e-6)
    assert np.allclose(
        start["velocities_a_per_fs"][0], end["velocities_a_per_fs"][-1], atol=1e-9 / units.fs
    )
