"""Production runs that extend themselves until they measure transport, and the transport
analysis of their joined segments: hand calculations and synthetic trajectories of known D."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from ctaflow.analysis.chunks import chunk_trajectory
from ctaflow.analysis.md import MDResult, MDTolerances, check_segment_arrays
from ctaflow.analysis.production import (
    analysed_from_fs,
    equilibration_reached,
    equilibration_reasons,
    join_pieces,
    next_piece_ps,
    production_decision,
    tracer_msd_a2,
)
from ctaflow.analysis.transport_summary import analyse_production_run, checked_fits

A = 4.0  # Å: simple-cubic lattice of the walkers' sites, hop length a
N_SIDE = 3  # 27 walker sites, 12 Å cell
SETTINGS = {
    "by_site_class": False,
    "fit_start_ps": None,
    "fit_end_ps": None,
    "collective": False,
    "n_samples": 100,
    "n_walkers": 8,
    "seed": 0,
    "min_msd_a2": None,
    "slope_tolerance": 0.25,
}


def crystal() -> Structure:
    """Li on a simple-cubic lattice (a = 4 Å, mobile) with O at the cube centres (framework)."""
    grid = [(i, j, k) for i in range(N_SIDE) for j in range(N_SIDE) for k in range(N_SIDE)]
    li = [np.array(g) / N_SIDE for g in grid]
    o = [(np.array(g) + 0.5) / N_SIDE for g in grid]
    n = len(grid)
    return Structure(
        Lattice.cubic(A * N_SIDE),
        ["Li"] * n + ["O"] * n,
        li + o,
        site_properties={"site_class": ["mobile"] * n + ["framework"] * n},
    )


def lattice_walk(
    hop_rate_per_ps: float,
    n_frames: int,
    dt_fs: float = 10.0,
    seed: int = 0,
    rattle_a: float = 0.15,
    temperature_k: float = 600.0,
    temperatures_k: np.ndarray | None = None,
) -> tuple[Structure, dict]:
    """Independent lattice random walks of the Li (hops of a along ±x, ±y, ±z at
    ``hop_rate_per_ps``, so D = rate · a² / 6) with Gaussian vibrations on every atom; the O
    vibrate only. Returns the crystal and the per-frame arrays."""
    rng = np.random.default_rng(seed)
    ref = crystal()
    n_li = len(ref) // 2
    p_hop = hop_rate_per_ps * dt_fs / 1000.0
    directions = np.vstack([np.eye(3), -np.eye(3)]) * A
    hops = (rng.random((n_frames - 1, n_li)) < p_hop)[..., None] * directions[
        rng.integers(0, 6, (n_frames - 1, n_li))
    ]
    sites = np.concatenate([np.zeros((1, n_li, 3)), np.cumsum(hops, axis=0)])
    positions = np.repeat(ref.cart_coords[None], n_frames, axis=0)
    positions[:, :n_li] += sites
    positions += rng.normal(0.0, rattle_a, positions.shape)
    temps = np.full(n_frames, temperature_k) if temperatures_k is None else temperatures_k
    arrays = {
        "positions_a": positions,
        "cells_a": np.repeat(ref.lattice.matrix[None], n_frames, axis=0),
        "temperatures_k": temps,
        "times_fs": np.arange(n_frames) * dt_fs,
    }
    return ref, arrays


def md_piece(ref: Structure, arrays: dict, name: str, target_k: float = 600.0) -> MDResult:
    n = len(arrays["times_fs"])
    dt = float(arrays["times_fs"][1] - arrays["times_fs"][0])
    final = Structure(
        arrays["cells_a"][-1],
        ref.species,
        arrays["positions_a"][-1],
        coords_are_cartesian=True,
        site_properties=ref.site_properties,
    )
    check = check_segment_arrays(arrays["times_fs"], arrays["temperatures_k"], target_k)
    return MDResult(
        segment=name,
        ensemble="nvt",
        thermostat="test",
        temperature_start_k=target_k,
        temperature_end_k=target_k,
        timestep_fs=dt,
        n_steps=n - 1,
        sample_every=1,
        n_frames=n,
        duration_ps=(n - 1) * dt / 1000.0,
        seed=0,
        mean_temperature_k=float(np.mean(arrays["temperatures_k"])),
        std_temperature_k=float(np.std(arrays["temperatures_k"])),
        mean_volume_a3=ref.volume,
        final_volume_a3=ref.volume,
        mean_density_g_per_cm3=1.0,
        final_structure=final,
        trajectory=chunk_trajectory(arrays),
        target_check=check,
    )


def split(ref, arrays, at: int) -> list[MDResult]:
    """Two consecutive segments; the second stores the first one's last frame again."""
    first = {k: v[: at + 1] for k, v in arrays.items()}
    second = {k: v[at:] for k, v in arrays.items()}
    second["times_fs"] = second["times_fs"] - second["times_fs"][0]
    return [md_piece(ref, first, "production"), md_piece(ref, second, "production (2)")]


def test_join_pieces_drops_the_repeated_frame_and_continues_the_clock():
    ref, arrays = lattice_walk(1.0, 101)
    joined = join_pieces(split(ref, arrays, 60))
    assert np.array_equal(joined["positions_a"], arrays["positions_a"])
    assert np.allclose(joined["times_fs"], arrays["times_fs"])


def test_tracer_msd_by_hand_with_the_framework_drift_removed():
    positions = np.zeros((3, 3, 3))
    positions[-1, 0] = [3.0, 0.0, 0.0]  # the ion moves 3 Å along x ...
    positions[:, 1:] += np.array([1.0, 0.0, 0.0]) * np.arange(3)[:, None, None]  # ... all drift
    positions[-1, 0] += [2.0, 0.0, 0.0]  # the drift of 2 Å by the last frame moves it too
    assert tracer_msd_a2(positions, [0], [1, 2]) == pytest.approx(9.0)
    assert tracer_msd_a2(positions, [0], []) == pytest.approx(25.0)
    # from frame 1: the ion moved 5 Å, the framework 1 Å
    assert tracer_msd_a2(positions, [0], [1, 2], start=1) == pytest.approx((5.0 - 1.0) ** 2)


def test_next_piece_length_by_hand():
    # MSD 2 of 8 Å² after 1 ps: 3 ps more at a constant rate, capped at doubling the run
    assert next_piece_ps(1.0, 2.0, 8.0, 0.5, 10.0) == 1.0
    # almost there: at least the shortest segment
    assert next_piece_ps(4.0, 7.9, 8.0, 0.5, 10.0) == 0.5
    # never beyond the limit
    assert next_piece_ps(9.8, 1.0, 8.0, 0.5, 10.0) == pytest.approx(0.2)
    assert next_piece_ps(3.0, 6.0, 8.0, 0.5, 10.0) == pytest.approx(1.0)  # 3 · (8/6 − 1)


def test_analysed_frames_start_one_window_before_the_transient_ends():
    tol = MDTolerances()
    times = np.arange(0.0, 600.0 + 1, 5.0)
    temps = 600.0 * (1 - 0.5 * np.exp(-times / 100.0))
    check = check_segment_arrays(times, temps, 600.0)
    assert analysed_from_fs(check) == check.equilibrated_at_fs - tol.window_fs > 0
    assert analysed_from_fs(None) == 0.0
    assert equilibration_reached(check) and not equilibration_reasons(check)
    short = check_segment_arrays(times[:16], temps[:16], 600.0)  # 75 fs: no full window
    assert not equilibration_reached(short)
    assert any("never settled" in r for r in equilibration_reasons(short))


def test_a_walk_that_reached_the_hop_length_stops_and_its_known_d_is_recovered():
    # 2 hops per ps: D = 2 · 16 / 6 Å²/ps = 5.33 Å²/ps = 5.33e-4 cm²/s; in 4 ps the MSD is
    # ~43 Å², far above a² = 16 Å²
    rate, n = 2.0, 401
    ref, arrays = lattice_walk(rate, n, seed=1)
    pieces = split(ref, arrays, 150)
    run, next_ps = production_decision(
        pieces,
        ref,
        ["Li"],
        600.0,
        max_duration_ps=10.0,
        piece_ps=1.5,
        uuids=["a", "b"],
    )
    assert next_ps == 0 and run.status == "ok" and run.stopped_because.startswith("every")
    assert run.hop_length_a["Li"] == pytest.approx(A) and run.msd_target_a2["Li"] == 16.0
    assert run.msd_a2["Li"] > 16.0 and run.duration_ps == pytest.approx(4.0)
    assert run.crystallinity.status == "ok" and [p.uuid for p in run.pieces] == ["a", "b"]

    summary = analyse_production_run(run, pieces, None, SETTINGS)
    (result,), (check,) = summary.results, summary.checks
    d_true = rate * A**2 / 6 * 1e-4  # Å²/ps → cm²/s
    assert abs(result.diffusivity_cm2_per_s - d_true) < 3 * result.diffusivity_std_cm2_per_s
    assert result.diffusivity_cm2_per_s == pytest.approx(d_true, rel=0.35)
    assert check.status == "ok" and check.reasons == []
    assert check.regime.min_msd_a2 == 16.0 and check.regime.hops_per_ion > 1
    assert summary.md_duration_ps == pytest.approx(4.0) and summary.temperature_k == 600.0


def test_a_crystal_without_carriers_is_extended_then_refused_with_its_reason():
    # no hops: only vibrations (0.15 Å per axis), the MSD plateaus at 2·3·0.15² ≈ 0.14 Å²
    ref, arrays = lattice_walk(0.0, 101, seed=2)
    pieces = [md_piece(ref, arrays, "production")]
    run, next_ps = production_decision(
        pieces, ref, ["Li"], 600.0, max_duration_ps=3.0, piece_ps=1.0, uuids=["a"]
    )
    assert run.stopped_because == "running" and next_ps == 1.0  # doubled: 1 ps more
    run, next_ps = production_decision(
        pieces, ref, ["Li"], 600.0, max_duration_ps=1.0, piece_ps=1.0, uuids=["a"]
    )
    assert next_ps == 0 and run.status == "flagged" and run.stopped_because == "time limit reached"
    assert "have not left their sites" in run.reasons[0] and "add carriers" in run.reasons[0]

    summary = analyse_production_run(run, pieces, None, SETTINGS)
    (check,) = summary.checks
    assert check.status == "flagged"
    assert any("regime: MSD at the end of the fit window" in r for r in check.reasons)
    assert any("log-log slope" in r for r in check.reasons)


def test_a_disordered_framework_stops_the_run_and_is_named():
    ref, arrays = lattice_walk(2.0, 101, seed=3)
    rng = np.random.default_rng(0)
    n = len(ref) // 2
    arrays["positions_a"][-20:, n:] = rng.uniform(0, A * N_SIDE, (20, n, 3))  # O scattered
    run, next_ps = production_decision(
        [md_piece(ref, arrays, "production")],
        ref,
        ["Li"],
        600.0,
        max_duration_ps=10.0,
        piece_ps=1.0,
        uuids=["a"],
    )
    assert next_ps == 0 and run.status == "flagged"
    assert run.stopped_because == "the framework lost its long-range order"
    assert run.crystallinity.species == ["O"] and "melted or disordered" in run.reasons[0]


def test_a_run_off_its_temperature_is_flagged_and_analysed_at_its_measured_temperature():
    n = 301
    temps = np.full(n, 500.0)  # thermostat target 600 K, the run averaged 500 K
    ref, arrays = lattice_walk(2.0, n, seed=4, temperatures_k=temps)
    run, _ = production_decision(
        [md_piece(ref, arrays, "production")],
        ref,
        ["Li"],
        600.0,
        max_duration_ps=3.0,
        piece_ps=3.0,
        uuids=["a"],
    )
    assert run.mean_temperature_k == 500.0 and run.status == "flagged"
    assert any(r.startswith("md: mean temperature 500 K is -17%") for r in run.reasons)
    summary = analyse_production_run(run, [md_piece(ref, arrays, "production")], None, SETTINGS)
    assert summary.temperature_k == 500.0 and summary.target_temperature_k == 600.0
    assert summary.results[0].temperature_k == 500.0
    assert any(r.startswith("md: mean temperature") for r in summary.checks[0].reasons)


def test_checked_fits_use_only_the_passing_temperatures():
    """Three diffusive runs and one vibrating one: the fit uses three, lists the fourth with
    its reasons."""
    summaries = []
    for k, (t, rate) in enumerate([(500.0, 0.0), (600.0, 2.0), (700.0, 4.0), (800.0, 7.0)]):
        ref, arrays = lattice_walk(rate, 301, seed=10 + k, temperature_k=t)
        pieces = [md_piece(ref, arrays, "production", target_k=t)]
        run, _ = production_decision(
            pieces, ref, ["Li"], t, max_duration_ps=3.0, piece_ps=3.0, uuids=[str(k)]
        )
        summaries.append(analyse_production_run(run, pieces, None, SETTINGS))
    fits, skipped = checked_fits(summaries)
    assert skipped == [] and [f.quantity for f in fits] == ["diffusivity", "conductivity"]
    for fit in fits:
        assert fit.status == "fitted" and fit.used_temperatures_k == [600.0, 700.0, 800.0]
        (excluded,) = fit.excluded
        assert excluded.temperature_k == 500.0
        assert any("have not left their sites" in r for r in excluded.reasons)
    assert "extrapolated" in fits[1].extrapolation.label and fits[1].extrapolation.unit == "S/cm"


def test_the_hop_length_of_a_cell_with_an_interstitial_is_the_lattices():
    from ctaflow.analysis.production import msd_targets
    from ctaflow.structures.defects import DefectSettings, make_defects

    ref = crystal()  # Li on a 4-Å simple-cubic lattice, O at the cube centres
    inter = make_defects(
        ref,
        DefectSettings(
            kind="interstitial",
            species="Li",
            replace="O",
            by="N",
            oxidation_states={"Li": 1, "O": -1, "N": -2},  # LiO: formal charges
            interstitial_positions=[(0.5 / N_SIDE, 0.5 / N_SIDE, 0.0)],  # a face centre
        ),
    )
    assert inter.properties["defects"]["added_clearance_a"][0] == pytest.approx(2.0)
    hops, targets = msd_targets(inter, ["Li"], None)
    assert hops["Li"] == pytest.approx(A) and targets["Li"] == pytest.approx(A**2)


def test_a_cell_that_grew_beyond_thermal_expansion_is_not_the_crystal():
    from ctaflow.analysis.production import MAX_VOLUME_CHANGE, volume_reason

    assert volume_reason(1000.0, 1000.0 * (1 + MAX_VOLUME_CHANGE - 0.01)) is None
    assert "+34%" in volume_reason(748.0, 1000.0) and "nvt" in volume_reason(748.0, 1000.0)
    # a production run in a cell 1.1³ = 1.33 times the crystal's: flagged, with the change
    ref, arrays = lattice_walk(2.0, 301, seed=5)
    arrays["cells_a"] = arrays["cells_a"] * 1.1
    arrays["positions_a"] = arrays["positions_a"] * 1.1
    run, _ = production_decision(
        [md_piece(ref, arrays, "production")],
        ref,
        ["Li"],
        600.0,
        max_duration_ps=3.0,
        piece_ps=3.0,
        uuids=["a"],
    )
    assert run.volume_change_rel == pytest.approx(1.1**3 - 1)
    assert run.status == "flagged" and any("volume changed by +33%" in r for r in run.reasons)
