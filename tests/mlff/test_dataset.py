"""Datasets and stored files: deduplication, reproducible splits, exact extxyz labels, checksums."""

from __future__ import annotations

import io

import numpy as np
import pytest
from ase.io import read

from ctaflow.analysis.blobs import pack_file, unpack_file
from ctaflow.analysis.dataset import deduplicate, frames_from_arrays, split_indices, to_extxyz
from ctaflow.analysis.mlff import validation_metrics
from ctaflow.mlff.train_worker import mace_argv


def _frames(n=6, n_atoms=4, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {
        "positions_a": rng.uniform(0, 5, size=(n, n_atoms, 3)),
        "cells_a": np.repeat(np.eye(3)[None] * 5.0, n, axis=0),
        "energies_ev": rng.normal(-10, 1, size=n),
        "forces_ev_per_a": rng.normal(size=(n, n_atoms, 3)),
        "stresses_gpa": np.repeat(np.diag([1.0, 2.0, 3.0])[None], n, axis=0),
    }
    return frames_from_arrays(
        arrays,
        ["Na", "Na", "Cl", "Cl"],
        composition="NaCl",
        temperature_k=1000.0,
        source="md 1000 K",
        labeller="test",
    )


def test_deduplicate_drops_only_near_copies():
    frames = _frames()
    copy = frames[2].model_copy(deep=True)
    copy.positions_a[0][0] += 0.001  # within 0.01 Å
    moved = frames[2].model_copy(deep=True)
    moved.positions_a[0][0] += 0.1
    kept = deduplicate([*frames, copy, moved], 0.01)
    assert len(kept) == 7  # the copy is dropped, the moved frame kept


def test_split_is_reproducible_disjoint_and_complete():
    a, b = split_indices(100, (0.8, 0.1, 0.1), seed=3), split_indices(100, (0.8, 0.1, 0.1), seed=3)
    assert a == b
    assert (len(a["train"]), len(a["valid"]), len(a["test"])) == (80, 10, 10)
    assert sorted(a["train"] + a["valid"] + a["test"]) == list(range(100))
    assert split_indices(100, (0.8, 0.1, 0.1), seed=4) != a
    with pytest.raises(ValueError, match="at least 3 frames"):
        split_indices(2, (0.8, 0.1, 0.1), 0)


def test_extxyz_keeps_labels_and_stress_in_ev_per_a3():
    from ase import units

    frames = _frames(2)
    images = read(io.StringIO(to_extxyz(frames)), index=":", format="extxyz")
    assert images[1].info["REF_energy"] == frames[1].energy_ev
    # ASE writes per-atom arrays with 8 decimals
    assert np.allclose(images[1].arrays["REF_forces"], frames[1].forces_ev_per_a, atol=1e-8)
    # 1, 2, 3 GPa on the diagonal -> Voigt eV/Å³
    assert images[0].info["REF_stress"][:3] == pytest.approx(np.array([1, 2, 3]) * units.GPa)
    assert images[0].info["config_type"] == "NaCl"


def test_file_parts_round_trip_and_detect_corruption():
    data = bytes(range(256)) * 5000  # 1.28 MB
    parts = pack_file(data, "model.bin", max_part_mb=0.3)
    assert len(parts) == 6 and all(len(p.part_b64) <= 0.3e6 for p in parts)
    assert unpack_file(list(reversed(parts))) == data
    bad = [p.model_copy() for p in parts]
    bad[1].part_b64 = bad[2].part_b64
    with pytest.raises(ValueError, match="checksum mismatch"):
        unpack_file(bad)
    with pytest.raises(ValueError, match="parts are missing"):
        unpack_file(parts[:-1])


def test_validation_metrics_by_hand():
    rows = [
        {
            "composition": "A",
            "n_atoms": 2,
            "energy_ref_ev": -2.0,
            "energy_pred_ev": -2.2,
            "forces_ref_ev_per_a": [[0, 0, 0], [0, 0, 0]],
            "forces_pred_ev_per_a": [[0.3, 0, 0], [0, 0.4, 0]],
        },
        {
            "composition": "B",
            "n_atoms": 1,
            "energy_ref_ev": -1.0,
            "energy_pred_ev": -1.0,
            "forces_ref_ev_per_a": [[1, 1, 1]],
            "forces_pred_ev_per_a": [[1, 1, 1]],
        },
    ]
    m = validation_metrics(rows)
    # per-atom energy errors 0.1 and 0 eV -> RMSE sqrt(0.01/2) = 70.71 meV/atom
    assert m["rmse_energy_mev_per_atom"] == pytest.approx(1000 * np.sqrt(0.005))
    # force components: 0.3, 0.4 and seven zeros -> RMSE sqrt(0.25/9) = 166.7 meV/Å
    assert m["rmse_force_mev_per_a"] == pytest.approx(1000 * np.sqrt(0.25 / 9))
    by = {c.composition: c for c in m["per_composition"]}
    assert by["B"].rmse_energy_mev_per_atom == 0 and by["A"].n_frames == 1
    # parity points keep their composition (one colour per composition in the report)
    assert m["parity"]["energy_composition"] == ["A", "B"]
    assert m["parity"]["force_composition"] == ["A"] * 6 + ["B"] * 3
    assert m["parity"]["force_pred_ev_per_a"][:2] == [0.3, 0.0]


def test_mace_options_follow_settings():
    argv = mace_argv(
        "m",
        {
            "num_channels": 8,
            "max_l": 0,
            "r_max_a": 4.5,
            "batch_size": 3,
            "stress_weight": 0.0,
            "default_dtype": "float64",
            "e0s": "average",
        },
    )
    assert "--num_channels=8" in argv and "--max_L=0" in argv and "--r_max=4.5" in argv
    assert "--E0s=average" in argv and "--valid_batch_size=3" in argv
    assert not any(a.startswith("--foundation_model") for a in argv)
    # warm start: mace starts from the given model's architecture and weights, single head
    warm = mace_argv("m", {"batch_size": 3}, "init.model")
    assert warm[-2:] == ["--foundation_model=init.model", "--multiheads_finetuning=False"]
    assert not any(a.startswith("--compute_stress") for a in argv)


def test_pair_repulsion_reaches_maces_own_parser():
    """ZBL pair repulsion is a flag of mace_run_train (no value): mace's parser must read it."""
    from mace.tools.arg_parser import build_default_arg_parser

    parser = build_default_arg_parser()
    on = mace_argv("m", {"batch_size": 3, "pair_repulsion": True})
    off = mace_argv("m", {"batch_size": 3, "pair_repulsion": False})
    assert "--pair_repulsion" in on and "--pair_repulsion" not in off
    assert parser.parse_args(on[1:]).pair_repulsion is True
    assert parser.parse_args(off[1:]).pair_repulsion is False


def test_md_sanity_flags_overlap_and_a_runaway_thermostat():
    from pymatgen.core import Lattice, Structure

    from ctaflow.analysis.mlff import md_sanity

    good = Structure(Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    bad = Structure(Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.05, 0.05, 0.05]])
    ok = md_sanity([good, good], [10, 20], [880.0, 920.0], 900.0, 1.0)
    assert ok.stable and ok.reason == "" and ok.closest_pair_a == pytest.approx(4.884, abs=1e-3)
    assert ok.mean_temperature_k == pytest.approx(900.0) and ok.n_steps == 20
    # Na–Cl at 0.49 Å (limit 0.5 × (1.8 + 1.0) = 1.4 Å) from the second sample on
    collapsed = md_sanity([good, bad], [10, 20], [900.0, 950.0], 900.0, 1.0)
    assert not collapsed.stable and collapsed.first_overlap_step == 20
    assert "overlap from step 20" in collapsed.reason
    hot = md_sanity([good, good], [10, 20], [2500.0, 2700.0], 900.0, 1.0)
    assert not hot.stable and "mean temperature 2600 K" in hot.reason


def test_frames_with_nan_forces_or_another_atom_count_are_refused():
    rng = np.random.default_rng(0)
    arrays = {
        "positions_a": rng.uniform(0, 5, size=(3, 2, 3)),
        "cells_a": np.repeat(np.eye(3)[None] * 5.0, 3, axis=0),
        "energies_ev": np.array([-1.0, -1.1, -1.2]),
        "forces_ev_per_a": rng.normal(size=(3, 2, 3)),
    }
    arrays["forces_ev_per_a"][2, 1, 0] = np.nan
    with pytest.raises(
        ValueError, match=r"source=md 900 K: forces_ev_per_a is not finite .* 2 of 3"
    ):
        frames_from_arrays(arrays, ["Na", "Cl"], source="md 900 K")
    arrays["forces_ev_per_a"][2, 1, 0] = 0.0
    with pytest.raises(ValueError, match="2 atoms per frame but the structure has 3 species"):
        frames_from_arrays(arrays, ["Na", "Cl", "Cl"], source="md 900 K")
    ok = frames_from_arrays(
        arrays, ["Na", "Cl"], source="md 900 K", composition="NaCl", labeller="t"
    )
    assert len(ok) == 3


def test_stratified_split_gives_every_composition_its_test_frames_from_every_source():
    from ctaflow.analysis.dataset import stratified_split

    # composition A: 60 MD frames at 900 K, 20 at 1500 K, 8 relaxation frames; B: 30 MD frames
    strata = [("A", "md 900 K")] * 60 + [("A", "md 1500 K")] * 20 + [("A", "relaxation")] * 8
    strata += [("B", "md 900 K")] * 30
    parts = stratified_split(strata, (0.8, 0.1, 0.1), seed=3, min_test_per_group=10)
    assert sorted(parts["train"] + parts["valid"] + parts["test"]) == list(range(len(strata)))
    test = [strata[i] for i in parts["test"]]
    # A: 10 test frames (max(10, 8.8)) shared 60:20:8 -> 6.8, 2.3, 0.9 -> 7, 2, 1 by hand
    assert test.count(("A", "md 900 K")) == 7
    assert test.count(("A", "md 1500 K")) == 2
    assert test.count(("A", "relaxation")) == 1
    assert test.count(("B", "md 900 K")) == 10  # the minimum, not 10 % of 30
    valid = [strata[i] for i in parts["valid"]]
    assert sum(g == "A" for g, _ in valid) == 9 and sum(g == "B" for g, _ in valid) == 3
    assert stratified_split(strata, (0.8, 0.1, 0.1), seed=3) == parts  # reproducible
    assert stratified_split(strata, (0.8, 0.1, 0.1), seed=4) != parts


def test_stratified_split_refuses_a_composition_with_too_few_frames():
    import pytest

    from ctaflow.analysis.dataset import stratified_split

    with pytest.raises(ValueError, match="C: 15 frames cannot give 10 test and 2 validation"):
        stratified_split([("C", "md")] * 15, (0.8, 0.1, 0.1), seed=0, min_test_per_group=10)
