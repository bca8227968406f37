"""Builders on a small campaign's store: the derived documents hold the job outputs (and the fits
over them), a second run writes nothing, and a new task rebuilds exactly its group."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from ctaflow.builders import MLFFBuilder, RelaxBuilder, TransportBuilder, run_builder
from ctaflow.query import builders_for
from ctaflow.store import job_store
from tests.builders.conftest import (
    ENGINE_A,
    ENGINE_B,
    K_B_EV,
    derived_docs,
    make_builder,
    one_transport_task,
    outputs,
    run,
)


def test_transport_documents_hold_the_job_outputs_and_the_arrhenius_fit(filled):
    stats = run_builder(make_builder(TransportBuilder, filled))
    assert (stats.n_tasks, stats.n_groups, stats.n_groups_built) == (5, 2, 2)
    docs = {
        (d["engine"], d["species"], d["site_class"]): d for d in derived_docs(filled, "transport")
    }
    # per engine: all Li, the mobile walkers, the rattling pillar Li; engines never mixed
    assert set(docs) == {
        (e, "Li", c) for e in (ENGINE_A, ENGINE_B) for c in (None, "mobile", "pillar")
    }
    assert docs[(ENGINE_A, "Li", "mobile")]["temperatures_k"] == [500.0, 600.0]
    assert docs[(ENGINE_B, "Li", "mobile")]["temperatures_k"] == [600.0, 700.0, 800.0]

    # every point is the DiffusionResult of a stored TransportSummary of the same group, with
    # the verdict of its checks
    stored = {
        (doc["metadata"]["engine"], r["species"], r["site_class"], r["temperature_k"]): (doc, k)
        for doc in outputs(filled, **{"metadata.stage": "transport"})
        if doc["output"]["@class"] == "TransportSummary"
        for k, r in enumerate(doc["output"]["results"])
    }
    for (engine, species, site_class), doc in docs.items():
        assert doc["state"] == "successful" and doc["skipped"] == []
        for point in doc["points"]:
            task, k = stored[(engine, species, site_class, point["temperature_k"])]
            result, check = task["output"]["results"][k], task["output"]["checks"][k]
            assert point["task_uuid"] == task["uuid"]
            assert point["diffusivity_cm2_per_s"] == result["diffusivity_cm2_per_s"]
            assert point["conductivity_std_s_per_cm"] == result["conductivity_std_s_per_cm"]
            assert point["md_duration_ps"] == task["output"]["md_duration_ps"]
            assert point["reasons"] == check["reasons"]
            assert point["status"] == ("excluded" if check["reasons"] else "used")

    # the rattling pillar Li never left their sites: refused, with the reason, at every T
    for engine in (ENGINE_A, ENGINE_B):
        pillar = docs[(engine, "Li", "pillar")]
        assert pillar["status"] == "not fitted" and pillar["activation_energy_ev"] is None
        for point in pillar["points"]:
            assert point["status"] == "excluded"
            assert any("have not left their sites" in r for r in point["reasons"])
    # two temperatures are not enough for an activation energy
    mobile_a = docs[(ENGINE_A, "Li", "mobile")]
    assert mobile_a["status"] == "not fitted" and mobile_a["activation_energy_ev"] is None
    assert "2 temperature(s) passed the checks, 3 needed" in mobile_a["reasons"][0]

    # three passing temperatures: Ea of the weighted fit of ln D against 1/(k T) by numpy
    mobile = docs[(ENGINE_B, "Li", "mobile")]
    assert [p["status"] for p in mobile["points"]] == ["used"] * 3
    t = np.array([p["temperature_k"] for p in mobile["points"]])
    d = np.array([p["diffusivity_cm2_per_s"] for p in mobile["points"]])
    err = np.array([p["diffusivity_std_cm2_per_s"] for p in mobile["points"]])
    slope, _ = np.polyfit(-1 / (K_B_EV * t), np.log(d), 1, w=d / err)
    assert mobile["activation_energy_ev"] == pytest.approx(slope, rel=1e-9)
    assert mobile["arrhenius_conductivity"]["quantity"] == "conductivity"
    extrapolation = mobile["conductivity_extrapolation"]
    assert extrapolation["temperature_k"] == 300.0 and "extrapolated" in extrapolation["label"]
    lo, hi = extrapolation["interval_68"]
    assert lo < extrapolation["value"] < hi
    # ... and equals the stage's own Arrhenius job over the same runs
    (arrhenius,) = [
        d
        for d in outputs(filled, **{"metadata.stage": "transport", "metadata.engine": ENGINE_B})
        if d["output"]["@class"] == "ArrheniusSummary"
    ]
    for checked in arrhenius["output"]["fits"]:
        doc = docs[(ENGINE_B, checked["species"], checked["site_class"])]
        assert doc[f"fit_{checked['quantity']}"]["status"] == checked["status"]
        if checked["fit"] is None:
            assert doc[f"arrhenius_{checked['quantity']}"] is None
            continue
        fit, mine = checked["fit"], doc[f"arrhenius_{checked['quantity']}"]
        assert mine["activation_energy_ev"] == pytest.approx(fit["activation_energy_ev"], rel=1e-9)
        assert mine["activation_energy_std_ev"] == pytest.approx(
            fit["activation_energy_std_ev"], rel=1e-9
        )


def test_relax_and_mlff_documents(filled):
    run_builder(make_builder(RelaxBuilder, filled))
    (relax,) = derived_docs(filled, "relax")  # the training_data relaxation is another stage
    (source,) = outputs(filled, **{"metadata.stage": "relax"})
    assert relax["task_uuids"] == [source["uuid"]]
    assert relax["formula"] == "NaCl" and relax["engine"] == ENGINE_A
    assert relax["energy_per_atom_ev"] == pytest.approx(-3.5)  # -7.0 eV / 2 atoms
    assert relax["initial_energy_per_atom_ev"] == pytest.approx(-3.25)  # -6.5 eV / 2 atoms
    assert relax["converged"] is True and relax["notes"] == []
    assert relax["volume_a3"] == pytest.approx(4.2**3)

    run_builder(make_builder(MLFFBuilder, filled))
    docs = {d["test_composition"]: d for d in derived_docs(filled, "mlff")}
    (model,) = outputs(filled, **{"metadata.stage": "mlff"})
    per = {c["composition"]: c for c in model["output"]["per_composition"]}
    assert set(docs) == set(per) == {"Li3ClO", "Na3ClO"}
    # energies predicted 10 and 30 meV/atom too high: the RMSE is exactly that
    assert docs["Li3ClO"]["rmse_energy_mev_per_atom"] == pytest.approx(10.0)
    assert docs["Na3ClO"]["rmse_energy_mev_per_atom"] == pytest.approx(30.0)
    for comp, doc in docs.items():
        assert doc["rmse_force_mev_per_a"] == per[comp]["rmse_force_mev_per_a"]
        assert doc["n_test_frames"] == 4 and doc["epochs"] == 2
        assert doc["rmse_energy_all_mev_per_atom"] == model["output"]["rmse_energy_mev_per_atom"]


def test_second_run_writes_nothing(filled):
    first = [run_builder(b) for b in builders_for(filled)]
    assert sum(s.n_docs_written for s in first) == 1 + 2 + 6
    before = {name: derived_docs(filled, name) for name in ("relax", "mlff", "transport")}
    second = [run_builder(b) for b in builders_for(filled)]
    assert [s.n_groups for s in second] == [s.n_groups for s in first]
    assert sum(s.n_groups_built + s.n_docs_written + s.n_docs_removed for s in second) == 0
    after = {name: derived_docs(filled, name) for name in ("relax", "mlff", "transport")}
    assert after == before  # same documents, same built_at


def test_documents_built_by_other_code_are_rebuilt(filled, monkeypatch):
    """Same tasks, other ctaflow sources (an upgrade): every group is built again, once."""
    first = [run_builder(b) for b in builders_for(filled)]
    import ctaflow.builders.base as base

    monkeypatch.setattr(base, "source_fingerprint", lambda: "other-code")
    again = [run_builder(b) for b in builders_for(filled)]
    assert [s.n_groups_built for s in again] == [s.n_groups for s in first]
    assert {d["ctaflow_source"] for d in derived_docs(filled, "transport")} == {"other-code"}
    assert sum(run_builder(b).n_groups_built for b in builders_for(filled)) == 0


def test_a_new_task_rebuilds_exactly_its_group(filled):
    builder = make_builder(TransportBuilder, filled)
    run_builder(builder)
    before = {d["derived_id"]: d for d in derived_docs(filled, "transport")}
    run(one_transport_task(700.0, ENGINE_A, seed=5), filled)  # a third temperature for A

    stats = run_builder(builder)
    assert (stats.n_groups, stats.n_groups_built, stats.n_docs_written) == (2, 1, 3)
    after = {d["derived_id"]: d for d in derived_docs(filled, "transport")}
    assert set(after) == set(before)
    for key, doc in after.items():
        old = before[key]
        if doc["engine"] == ENGINE_B:  # untouched
            assert doc == old
            continue
        assert doc["built_at"] > old["built_at"] and doc["last_updated"] > old["last_updated"]
        assert doc["temperatures_k"] == [500.0, 600.0, 700.0]
        assert len(doc["tasks"]) == 3
    mobile = next(
        d for d in after.values() if (d["engine"], d["site_class"]) == (ENGINE_A, "mobile")
    )
    # a third temperature makes the fit: walkers that follow Ea = 0.25 eV give about that
    assert mobile["status"] == "fitted" and mobile["used_temperatures_k"] == [500.0, 600.0, 700.0]
    assert mobile["arrhenius_diffusivity"]["chi2_reduced"] is not None
    assert mobile["activation_energy_ev"] == pytest.approx(
        0.25, abs=4 * mobile["activation_energy_std_ev"]
    )


def test_a_second_run_at_a_temperature_replaces_the_first(filled):
    """The same temperature run again under a new uuid (a campaign run again after an upgrade):
    the newer run is the point, the older one is listed as superseded, not fitted twice."""
    builder = make_builder(TransportBuilder, filled)
    run_builder(builder)
    before = {d["derived_id"]: d for d in derived_docs(filled, "transport")}
    run(one_transport_task(600.0, ENGINE_A, seed=7), filled)  # 600 K again for A
    run_builder(builder)
    after = {d["derived_id"]: d for d in derived_docs(filled, "transport")}
    for key, doc in after.items():
        if doc["engine"] != ENGINE_A:
            assert doc == before[key]
            continue
        assert doc["temperatures_k"] == [500.0, 600.0]  # one point per temperature
        new = {p["task_uuid"] for p in doc["points"]} - set(before[key]["task_uuids"])
        assert len(new) == 1  # the 600 K point is the new run's
        (old,) = set(before[key]["task_uuids"]) - set(doc["task_uuids"])
        assert any(s["uuid"] == old and "superseded" in s["reason"] for s in doc["skipped"])


def _transport_task_b_700(workdir):
    """The job store and engine B's stored 700 K TransportSummary task (without its _id)."""
    jobs = job_store(None, workdir)
    jobs.connect()
    task = jobs.query_one(
        {
            "metadata.engine": ENGINE_B,
            "output.@class": "TransportSummary",
            "output.temperature_k": 700.0,
        }
    )
    del task["_id"]
    return jobs, task


def test_a_rerun_task_is_rebuilt_from_its_newest_version(filled):
    """A job run again writes its uuid again (same index, or a higher one after a replace):
    only its group is rebuilt, from the newest document."""
    builder = make_builder(TransportBuilder, filled)
    run_builder(builder)
    before = {d["derived_id"]: d for d in derived_docs(filled, "transport")}
    jobs, task = _transport_task_b_700(filled)
    for result in task["output"]["results"]:
        result["diffusivity_cm2_per_s"] *= 2
    jobs.update({**task, "completed_at": datetime.now().isoformat()}, key=["uuid", "index"])

    assert run_builder(builder).n_groups_built == 1
    mobile = {(d["engine"], d["site_class"]): d for d in derived_docs(filled, "transport")}
    point = mobile[(ENGINE_B, "mobile")]["points"][1]
    old = before[mobile[(ENGINE_B, "mobile")]["derived_id"]]["points"][1]
    assert point["diffusivity_cm2_per_s"] == 2 * old["diffusivity_cm2_per_s"]
    assert mobile[(ENGINE_A, "mobile")] == before[mobile[(ENGINE_A, "mobile")]["derived_id"]]

    for result in task["output"]["results"]:
        result["diffusivity_cm2_per_s"] *= 3
    jobs.update({**task, "index": 2}, key=["uuid", "index"])  # the replacing job's output
    assert run_builder(builder).n_groups_built == 1
    doc = next(
        d
        for d in derived_docs(filled, "transport")
        if (d["engine"], d["site_class"]) == (ENGINE_B, "mobile")
    )
    assert doc["points"][1]["diffusivity_cm2_per_s"] == 6 * old["diffusivity_cm2_per_s"]
    assert [(t["uuid"], t["index"]) for t in doc["tasks"]].count((task["uuid"], 2)) == 1
    assert len(doc["tasks"]) == 3


def test_the_report_shows_the_job_outputs_through_the_derived_documents(filled):
    """``collect_report`` reads the derived collections; its records equal the job outputs, and
    each engine's transport rows carry that engine's own activation energy."""
    from ctaflow.report.build import collect_report

    builders = builders_for(filled)
    for builder in builders:
        run_builder(builder)
    jobs = job_store(None, filled)
    jobs.connect()
    report = collect_report(jobs, {b.collection: b.derived for b in builders})

    (relax_out,) = [
        d["output"]
        for d in outputs(filled, **{"metadata.stage": "relax"})
        if "formula" in d["output"]
    ]
    (row,) = report["relaxations"]
    for key in ("formula", "n_atoms", "energy_per_atom_ev", "max_force_ev_per_a", "converged"):
        assert row[key] == relax_out[key], key

    (mlff_out,) = [d["output"] for d in outputs(filled, **{"metadata.stage": "mlff"})]
    per_comp = {c["composition"]: c for c in mlff_out["per_composition"]}
    assert {r["composition"] for r in report["mlff"]} == set(per_comp)
    for r in report["mlff"]:
        assert r["rmse_force_mev_per_a"] == per_comp[r["composition"]]["rmse_force_mev_per_a"]

    points = {}
    for d in outputs(
        filled, **{"metadata.stage": "transport", "output.@class": "TransportSummary"}
    ):
        for res in d["output"]["results"]:
            key = (d["metadata"]["engine"], res["species"], res["site_class"], res["temperature_k"])
            points[key] = res["diffusivity_cm2_per_s"]
    assert len(report["transport"]) == len(points) == 15
    for r in report["transport"]:
        key = (r["engine"], r["species"], r["site_class"], r["temperature_k"])
        assert r["diffusivity_cm2_per_s"] == points[key]
    ea = {
        (d["engine"], d["species"], d["site_class"]): d["activation_energy_ev"]
        for d in derived_docs(filled, "transport")
    }
    for r in report["transport"]:
        assert r["activation_energy_ev"] == ea[(r["engine"], r["species"], r["site_class"])]
        assert r["status"] in ("used", "excluded") and bool(r["reasons"]) == (
            r["status"] == "excluded"
        )
    # A has two temperatures (no fit), B three: only B's walkers have an activation energy
    assert {
        r["activation_energy_ev"] is None for r in report["transport"] if r["engine"] == ENGINE_A
    } == {True}
    assert ea[(ENGINE_B, "Li", "mobile")] is not None


def test_the_transport_section_states_every_verdict_and_only_labelled_extrapolations(filled):
    """Each row says used / excluded with the reasons; the fit lines give E_a from the passing
    runs or say why there is none; σ at 300 K appears only as a labelled extrapolation with its
    interval; the Arrhenius figure is drawn."""
    from ctaflow.report.build import collect_report, make_figures
    from ctaflow.report.data import ReportData
    from ctaflow.report.sections.transport import transport_fit_lines

    builders = builders_for(filled)
    for builder in builders:
        run_builder(builder)
    jobs = job_store(None, filled)
    jobs.connect()
    derived = {b.collection: b.derived for b in builders}
    report = collect_report(jobs, derived)
    rows = report["transport"]
    excluded = [r for r in rows if r["status"] == "excluded"]
    assert {r["site_class"] for r in excluded} >= {"pillar"} and all(r["reasons"] for r in excluded)
    lines = transport_fit_lines(rows)
    b_mobile = next(line for line in lines if line.startswith(f"- Li (mobile, {ENGINE_B})"))
    assert "E_a = " in b_mobile and "600, 700, 800 K" in b_mobile
    a_mobile = next(line for line in lines if line.startswith(f"- Li (mobile, {ENGINE_A})"))
    assert "no activation energy: 2 temperature(s) passed the checks" in a_mobile
    sigma = [line for line in lines if "σ(300 K)" in line]
    assert sigma and all("extrapolated from the fit" in s and "68 % interval" in s for s in sigma)
    figures = make_figures(report, ReportData(jobs, derived))
    png, caption = figures["transport"]["arrhenius.png"]
    assert png.startswith(b"\x89PNG") and caption.strip()


def test_a_run_that_left_the_trust_window_is_fitted_but_flagged(filled):
    """A production run whose committee σ_F reached the window's upper bound (the model
    extrapolated in some frames): its point stays in the fit, flagged with the reason, and the
    fit says which temperature it rests on."""
    from ctaflow.analysis.active_learning import trust_check
    from ctaflow.settings import TrustWindow

    builder = make_builder(TransportBuilder, filled)
    run_builder(builder)
    jobs, task = _transport_task_b_700(filled)
    window = TrustWindow(lower_ev_per_a=0.05, upper_ev_per_a=0.3)
    sigma = [0.1] * 99 + [0.35]  # 1 of 100 frames at or above 0.3 eV/Å
    trust = trust_check(sigma, window, committee_size=2)
    assert trust.status == "flagged"
    task["output"]["trust"] = trust.model_dump(mode="json")
    jobs.update({**task, "completed_at": datetime.now().isoformat()}, key=["uuid", "index"])
    run_builder(builder)
    doc = next(
        d
        for d in derived_docs(filled, "transport")
        if (d["engine"], d["site_class"]) == (ENGINE_B, "mobile")
    )
    by_t = {p["temperature_k"]: p for p in doc["points"]}
    assert by_t[700.0]["status"] == "flagged"
    assert by_t[700.0]["reasons"] == [f"trust: {r}" for r in trust.reasons]
    assert by_t[700.0]["trust"]["deviation_max_ev_per_a"] == pytest.approx(0.35)
    assert {by_t[600.0]["status"], by_t[800.0]["status"]} == {"used"}
    assert doc["used_temperatures_k"] == [600.0, 700.0, 800.0]  # still in the fit
    (caveat,) = [r for r in doc["reasons"] if "trust window" in r]
    assert caveat.startswith("the MD at 700 K left")
