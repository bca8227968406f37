"""Training data for machine-learned force fields: labelled frames, deduplication, splits, extxyz.

Energies in eV, forces in eV/Å, stress in GPa (ASE sign: positive = tensile), lengths in Å.
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
from pydantic import BaseModel, Field


class LabelledFrame(BaseModel):
    """One configuration with its labels and where it came from."""

    species: list[str]
    positions_a: list[list[float]]
    cell_a: list[list[float]]
    energy_ev: float
    forces_ev_per_a: list[list[float]]
    stress_gpa: list[list[float]] | None = None
    composition: str = Field(description="Reduced formula.")
    li_fraction: float | None = Field(None, description="x of the substitution series, if any.")
    temperature_k: float | None = Field(None, description="MD temperature (None: relaxation).")
    source: str = Field(description="e.g. 'md 1000 K' or 'relaxation'.")
    labeller: str = Field(description="Engine that produced the labels.")


def frames_from_arrays(
    arrays: dict[str, np.ndarray], species: list[str], **provenance: Any
) -> list[LabelledFrame]:
    """Frames from per-frame arrays (see :mod:`ctaflow.analysis.chunks`).

    Raises ``ValueError`` (naming the source and frame) for labels that are not finite or arrays
    whose atom count differs from ``species``: such frames must never reach training.
    """
    stresses = arrays.get("stresses_gpa")
    where = ", ".join(f"{k}={v}" for k, v in provenance.items() if v is not None) or "the run"
    for name in ("positions_a", "forces_ev_per_a"):
        if np.shape(arrays[name])[1] != len(species):
            raise ValueError(
                f"{where}: {name} has {np.shape(arrays[name])[1]} atoms per frame but the "
                f"structure has {len(species)} species; the trajectory does not belong to it"
            )
    for name in ("energies_ev", "forces_ev_per_a", "stresses_gpa"):
        if name in arrays and arrays[name] is not None:
            values = np.asarray(arrays[name], dtype=float)
            bad = ~np.isfinite(values.reshape(len(values), -1)).all(axis=1)
            if bad.any():
                raise ValueError(
                    f"{where}: {name} is not finite (NaN or inf) in frame {int(np.argmax(bad))} "
                    f"of {len(values)}; the labeller's run diverged: rerun it (smaller time step, "
                    "lower temperature) instead of training on it"
                )
    return [
        LabelledFrame(
            species=species,
            positions_a=arrays["positions_a"][i].tolist(),
            cell_a=arrays["cells_a"][i].tolist(),
            energy_ev=float(arrays["energies_ev"][i]),
            forces_ev_per_a=arrays["forces_ev_per_a"][i].tolist(),
            stress_gpa=None if stresses is None else stresses[i].tolist(),
            **provenance,
        )
        for i in range(len(arrays["energies_ev"]))
    ]


def frames_from_ionic_steps(steps: list, **provenance: Any) -> list[LabelledFrame]:
    """Frames of a relaxation from its ionic steps (see ``Engine.relax_outputs``): structure,
    energy (``e_0_energy`` if present, else ``energy``), forces and stress (kbar, VASP sign →
    GPa, ASE sign). Steps without a structure are skipped."""
    from pymatgen.core import Structure

    kept = []
    for step in steps:
        step = step if isinstance(step, dict) else step.model_dump()
        structure = step.get("structure") or step.get("mol_or_struct")
        if structure is None:
            continue
        if not isinstance(structure, Structure):
            structure = Structure.from_dict(structure)
        energy = step.get("e_0_energy", step.get("energy"))
        kept.append((structure, energy, step["forces"], step.get("stress")))
    if not kept:
        return []
    arrays = {
        "positions_a": np.array([s.cart_coords for s, *_ in kept], dtype=float),
        "cells_a": np.array([s.lattice.matrix for s, *_ in kept], dtype=float),
        "energies_ev": np.array([e for _, e, *_ in kept], dtype=float),
        "forces_ev_per_a": np.array([f for *_, f, _ in kept], dtype=float),
    }
    if all(st is not None for *_, st in kept):
        arrays["stresses_gpa"] = -np.array([st for *_, st in kept], dtype=float) / 10.0
    species = [site.specie.symbol for site in kept[0][0]]
    provenance.setdefault("composition", kept[0][0].composition.reduced_formula)
    return frames_from_arrays(arrays, species, **provenance)


def deduplicate(frames: list[LabelledFrame], position_tol_a: float = 0.01) -> list[LabelledFrame]:
    """Drop frames whose atoms all lie within ``position_tol_a`` of an earlier frame of the same
    species list and cell (e.g. the last steps of a converged relaxation)."""
    kept: list[LabelledFrame] = []
    signatures: list[tuple[tuple, np.ndarray, np.ndarray]] = []
    for frame in frames:
        pos, cell = np.asarray(frame.positions_a), np.asarray(frame.cell_a)
        key = tuple(frame.species)
        duplicate = any(
            k == key
            and np.allclose(c, cell, atol=position_tol_a)
            and np.max(np.abs(p - pos)) < position_tol_a
            for k, p, c in signatures
        )
        if not duplicate:
            kept.append(frame)
            signatures.append((key, pos, cell))
    return kept


def split_indices(n: int, fractions: tuple[float, float, float], seed: int) -> dict[str, list[int]]:
    """Reproducible train/valid/test split of ``n`` items (each non-empty split gets ≥ 1 item)."""
    if n < 3:
        raise ValueError(f"a dataset needs at least 3 frames for train/valid/test, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    n_valid = max(1, round(fractions[1] * n))
    n_test = max(1, round(fractions[2] * n))
    n_train = n - n_valid - n_test
    if n_train < 1:
        raise ValueError(f"split {fractions} of {n} frames leaves no training data")
    return {
        "train": sorted(order[:n_train].tolist()),
        "valid": sorted(order[n_train : n_train + n_valid].tolist()),
        "test": sorted(order[n_train + n_valid :].tolist()),
    }


def stratified_split(
    strata: list[tuple[str, str]],
    fractions: tuple[float, float, float],
    seed: int,
    min_test_per_group: int = 10,
) -> dict[str, list[int]]:
    """Train/valid/test split stratified by ``(group, stratum)`` of every item.

    ``strata[i]`` is item i's group (the composition) and its stratum within the group (where it
    came from: e.g. ``md 900 K``, ``relaxation``). Each group gets ``max(min_test_per_group,
    round(test_fraction × n_group))`` test items and ``max(1, round(valid_fraction × n_group))``
    validation items, shared among its strata in proportion to their sizes (largest remainders,
    every stratum with at least two items giving at least one test item), so the test errors of
    every composition rest on enough frames and on every condition the frames came from. The
    choice within a stratum is random with ``seed``.

    Raises ValueError when a group has too few items to keep at least as many for training as
    for testing (say how many it needs).
    """
    rng = np.random.default_rng(seed)
    groups: dict[str, dict[str, list[int]]] = {}
    for index, (group, stratum) in enumerate(strata):
        groups.setdefault(group, {}).setdefault(stratum, []).append(index)
    out: dict[str, list[int]] = {"train": [], "valid": [], "test": []}
    for group in sorted(groups):
        by_stratum = {k: rng.permutation(v).tolist() for k, v in sorted(groups[group].items())}
        n = sum(len(v) for v in by_stratum.values())
        n_test = max(min_test_per_group, round(fractions[2] * n))
        n_valid = max(1, round(fractions[1] * n))
        if n - n_test - n_valid < n_test:
            raise ValueError(
                f"{group}: {n} frames cannot give {n_test} test and {n_valid} validation frames "
                f"and still keep at least {n_test} for training; it needs {2 * n_test + n_valid} "
                "(label more frames: a longer md_ps or a smaller sample_every)"
            )
        test = _shares(by_stratum, n_test)
        rest = {k: v[test[k] :] for k, v in by_stratum.items()}
        valid = _shares(rest, n_valid)
        for k, items in by_stratum.items():
            out["test"] += items[: test[k]]
            out["valid"] += rest[k][: valid[k]]
            out["train"] += rest[k][valid[k] :]
    return {name: sorted(idx) for name, idx in out.items()}


def _shares(by_stratum: dict[str, list[int]], total: int) -> dict[str, int]:
    """``total`` shared among the strata in proportion to their sizes (largest remainders),
    every stratum with two or more items getting at least one while there are enough."""
    sizes = {k: len(v) for k, v in by_stratum.items()}
    n = sum(sizes.values())
    exact = {k: total * size / n for k, size in sizes.items()}
    share = {k: min(sizes[k], int(value)) for k, value in exact.items()}
    for k in sorted(sizes, key=lambda k: sizes[k], reverse=True):
        if share[k] == 0 and sizes[k] >= 2 and sum(share.values()) < total:
            share[k] = 1
    for k in sorted(exact, key=lambda k: exact[k] - int(exact[k]), reverse=True):
        if sum(share.values()) >= total:
            break
        if share[k] < min(sizes[k], math.ceil(exact[k])):
            share[k] += 1
    while sum(share.values()) < total:  # strata already full: take from the largest left
        k = max((k for k in sizes if share[k] < sizes[k]), key=lambda k: sizes[k] - share[k])
        share[k] += 1
    while sum(share.values()) > total:  # the minimum of one per stratum overshot
        k = max(share, key=lambda k: share[k])
        share[k] -= 1
    return share


def to_extxyz(frames: list[LabelledFrame]) -> str:
    """extxyz text with ``REF_energy``, ``REF_forces``, ``REF_stress`` (eV/Å³, ASE Voigt), the
    composition as ``config_type``, the ``source`` and the series member's ``x``."""
    from ase import Atoms, units
    from ase.io import write

    images = []
    for frame in frames:
        atoms = Atoms(frame.species, positions=frame.positions_a, cell=frame.cell_a, pbc=True)
        atoms.info["REF_energy"] = frame.energy_ev
        atoms.arrays["REF_forces"] = np.asarray(frame.forces_ev_per_a)
        if frame.stress_gpa is not None:
            s = np.asarray(frame.stress_gpa) * units.GPa
            atoms.info["REF_stress"] = np.array(
                [s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]]
            )
        atoms.info["config_type"] = frame.composition
        atoms.info["source"] = frame.source
        if frame.li_fraction is not None:
            atoms.info["x"] = frame.li_fraction  # the series member it belongs to
        images.append(atoms)
    buffer = io.StringIO()
    write(buffer, images, format="extxyz")
    return buffer.getvalue()


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    """Root-mean-square difference."""
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))
