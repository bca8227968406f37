"""MD that runs until it has measured what it is for: the equilibration until its running means
are on target, the production until the mobile ions have left their sites (issue #24).

The MD stage runs both as dynamic loops of segments (:mod:`ctaflow.makers.md`); the decisions
are the pure functions here, and their records the documents below.

* **Equilibration** (:func:`equilibration_reached`): a segment is on target when its mean
  temperature (and, NPT, pressure) is within the tolerances of
  :class:`~ctaflow.analysis.md.MDTolerances` *and* there is a time after which the trailing-window
  means and the mean of the rest of the segment are (``equilibrated_at``): the running means
  have settled on the target instead of drifting through it.
* **Production** (:func:`production_decision`): the production run at one temperature is
  extended, segment by segment, until the drift-corrected tracer MSD of every analysed species
  reaches its target (the squared hop length by default: about one hop per ion, the criterion
  of :func:`ctaflow.analysis.regime.diffusive_regime`), the framework loses its long-range order
  (a melted crystal's D is not the crystal's, :func:`~ctaflow.analysis.regime.crystallinity_check`)
  or the time limit is reached. The MSD is the one the transport analysis fits at the end of its
  window: from the first analysed frame to the last, averaged over the ions (one time origin).
* **What is analysed** (:func:`analysed_from_fs`): the frames before the end of the start-up
  transient of the first production segment (its ``equilibrated_at`` minus one averaging window:
  that window was already on target) are left out; the measured mean temperature of the
  analysed frames, not the target, is the temperature of the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field
from pymatgen.core import Structure

from ctaflow.analysis.chunks import join_chunks
from ctaflow.analysis.md import MDResult, MDTolerances, SegmentCheck, check_segment_arrays
from ctaflow.analysis.regime import CrystallinityCheck, crystallinity_check, hop_length

#: frames whose framework order is averaged for the crystallinity check of a production run
CRYSTALLINITY_FRAMES = 10
#: Largest relative change of the cell volume from the crystal the MD started from. Thermal
#: expansion of an ionic crystal up to its melting point is a few per cent (volumetric
#: coefficient ~5e-5 /K × 600 K ≈ 3 %); 15 % means the cell melted or the barostat ran away on a
#: force field without a trained stress (measured: the demo's tiny MACE, trained on fixed-volume
#: frames with stress weight 0, grew the 40-atom cell from 748 to 24,568 Å³ in 2 ps of NPT).
MAX_VOLUME_CHANGE = 0.15


class SegmentRecord(BaseModel):
    """One MD segment of a loop: the job that stored its :class:`MDResult`, and its check."""

    uuid: str = Field(description="uuid of the job whose output is the segment's MDResult.")
    segment: str
    duration_ps: float
    target_check: SegmentCheck | None = None


class EquilibrationRun(BaseModel):
    """The equilibration: its segments, whether the running means reached the targets."""

    status: Literal["ok", "flagged"]
    reasons: list[str] = Field(default_factory=list)
    temperature_k: float
    pressure_gpa: float | None = None
    duration_ps: float = Field(description="All equilibration segments together, ps.")
    max_duration_ps: float
    volume_change_rel: float | None = Field(
        None, description="Final volume / volume of the MD cell before any MD − 1."
    )
    segments: list[SegmentRecord]
    final_structure: Structure = Field(description="Last frame, with velocities.")


class ProductionRun(BaseModel):
    """The production run at one temperature: its segments (one continuous trajectory), the
    MSD it reached and why it stopped. Times in ps, MSD in Å², temperatures in K."""

    temperature_k: float = Field(description="Target temperature, K.")
    status: Literal["ok", "flagged"] = Field(
        description="ok: every species reached its MSD target in a crystal that stayed one."
    )
    reasons: list[str] = Field(default_factory=list)
    stopped_because: str
    species: list[str] = Field(description="Species whose MSD decides the run length.")
    hop_length_a: dict[str, float] = Field(default_factory=dict)
    msd_target_a2: dict[str, float] = Field(default_factory=dict)
    msd_a2: dict[str, float] = Field(
        default_factory=dict,
        description="Drift-corrected tracer MSD from the first analysed frame to the last, Å².",
    )
    duration_ps: float = Field(description="All production segments together, ps.")
    max_duration_ps: float
    analysed_from_fs: float = Field(description="Frames before this time are left out, fs.")
    mean_temperature_k: float = Field(description="Mean temperature of the analysed frames, K.")
    volume_change_rel: float | None = Field(
        None, description="Mean volume of the analysed frames / volume before any MD − 1."
    )
    target_check: SegmentCheck | None = Field(
        None, description="Temperature check of the analysed frames (the whole production)."
    )
    crystallinity: CrystallinityCheck | None = None
    pieces: list[SegmentRecord]
    before: list[SegmentRecord] = Field(
        default_factory=list, description="Segments between equilibration and production."
    )
    reference_structure: Structure = Field(
        description="The MD cell before any MD (the crystal, with its defects)."
    )


# --------------------------------------------------------------------------- equilibration
def equilibration_reached(check: SegmentCheck | None) -> bool:
    """Whether a segment ended on target: means within tolerance and a settled running mean."""
    return check is not None and check.status == "ok" and check.equilibrated_at_fs is not None


def equilibration_reasons(check: SegmentCheck | None) -> list[str]:
    """Why a segment is not on target (see :func:`equilibration_reached`)."""
    if check is None:
        return ["no target check of the segment"]
    reasons = list(check.reasons)
    if check.equilibrated_at_fs is None:
        reasons.append(
            "the trailing-window means never settled within tolerance of the target for the "
            "rest of the segment (still drifting)"
        )
    return reasons


def volume_reason(start_volume_a3: float, volume_a3: float) -> str | None:
    """Why a cell whose volume went from ``start_volume_a3`` to ``volume_a3`` is no longer the
    crystal's (None: within :data:`MAX_VOLUME_CHANGE`)."""
    change = volume_a3 / start_volume_a3 - 1.0
    if abs(change) <= MAX_VOLUME_CHANGE:
        return None
    return (
        f"the cell volume changed by {change:+.0%} from the crystal's {start_volume_a3:.0f} Å³ "
        f"(more than ±{MAX_VOLUME_CHANGE:.0%}): the crystal melted or the barostat ran away "
        "(a force field without a trained stress: run NVT, equilibrate_ensemble: nvt)"
    )


# --------------------------------------------------------------------------- joined trajectory
def join_pieces(pieces: Sequence[MDResult]) -> dict[str, np.ndarray]:
    """The per-frame arrays of consecutive segments as one run.

    Each segment starts from the previous one's last frame, which it stores again as its first:
    that duplicate is dropped, and the times continue from the previous segment's.
    """
    joined: dict[str, list[np.ndarray]] = {}
    last_time = None
    last_positions = None
    for md in pieces:
        arrays = join_chunks(md.trajectory)
        times = np.asarray(arrays["times_fs"], dtype=float) - float(arrays["times_fs"][0])
        start = 0
        if last_positions is not None:
            interval = md.sample_every * md.timestep_fs
            if np.allclose(arrays["positions_a"][0], last_positions, atol=1e-6):
                start, times = 1, times + last_time
            else:
                times = times + last_time + interval
        for name, values in arrays.items():
            joined.setdefault(name, []).append(
                times[start:] if name == "times_fs" else np.asarray(values)[start:]
            )
        last_time = float(times[-1])
        last_positions = np.asarray(arrays["positions_a"][-1])
    return {name: np.concatenate(parts) for name, parts in joined.items()}


def analysed_from_fs(first: SegmentCheck | None, tolerances: MDTolerances | None = None) -> float:
    """Start of the analysed frames (fs): the first production segment's ``equilibrated_at``
    minus one averaging window (whose mean was already on target), or 0 if it never settled
    (the run is then flagged by its temperature check)."""
    tol = tolerances or MDTolerances()
    if first is None or first.equilibrated_at_fs is None:
        return 0.0
    return max(0.0, first.equilibrated_at_fs - tol.window_fs)


def tracer_msd_a2(
    positions_a: np.ndarray, indices: Sequence[int], reference: Sequence[int], start: int = 0
) -> float:
    """Mean squared displacement (Å²) of the atoms ``indices`` from frame ``start`` to the last
    frame, with the mean displacement of the ``reference`` atoms (the framework) removed."""
    pos = np.asarray(positions_a, dtype=float)
    d = pos[-1] - pos[start]
    if len(reference):
        d = d - d[list(reference)].mean(axis=0)
    return float(np.mean(np.sum(d[list(indices)] ** 2, axis=1)))


def species_indices(structure: Structure, species: str) -> list[int]:
    return [i for i, s in enumerate(structure) if s.specie.symbol == species]


def frames_as_structures(arrays: dict[str, np.ndarray], like: Structure, n: int) -> list:
    """The last ``n`` frames as structures with the species of ``like``."""
    count = min(n, len(arrays["positions_a"]))
    return [
        Structure(
            arrays["cells_a"][k],
            like.species,
            arrays["positions_a"][k],
            coords_are_cartesian=True,
        )
        for k in range(len(arrays["positions_a"]) - count, len(arrays["positions_a"]))
    ]


# --------------------------------------------------------------------------- production
def lattice_of(structure: Structure) -> Structure:
    """``structure`` without the interstitials :func:`ctaflow.structures.defects.make_defects`
    added (its last sites): the sites of the lattice, whose distances are the hops."""
    record = (structure.properties or {}).get("defects") or {}
    added = len(record.get("added_frac_coords") or [])
    if not added:
        return structure
    return Structure.from_sites(structure.sites[: len(structure) - added])


def msd_targets(
    reference: Structure, species: Sequence[str], msd_target_a2: float | None
) -> tuple[dict[str, float], dict[str, float]]:
    """(hop length per species in Å, MSD target per species in Å²): the set target, else the
    squared hop length (:func:`ctaflow.analysis.regime.hop_length`) between lattice sites (an
    interstitial's distance to its neighbour is not a hop of the lattice)."""
    lattice = lattice_of(reference)
    hops = {sp: hop_length(lattice, sp) for sp in species}
    targets = {sp: msd_target_a2 if msd_target_a2 else hops[sp] ** 2 for sp in species}
    return hops, targets


def next_piece_ps(
    done_ps: float, msd_a2: float, target_a2: float, min_ps: float, max_ps: float
) -> float:
    """Length of the next production segment (ps).

    Assuming the MSD grows linearly from 0, ``done_ps · (target / msd − 1)`` more reach the
    target; the segment is at least ``min_ps`` (short segments cost a job each), at most
    ``done_ps`` (the run at most doubles: the MSD of a few hops is noisy) and never beyond
    ``max_ps`` in all.
    """
    remaining = max_ps - done_ps
    needed = done_ps * (target_a2 / msd_a2 - 1.0) if msd_a2 > 0 else np.inf
    return float(max(0.0, min(remaining, max(min_ps, min(needed, done_ps)))))


def production_decision(
    pieces: Sequence[MDResult],
    reference: Structure,
    species: Sequence[str],
    temperature_k: float,
    *,
    msd_target_a2: float | None = None,
    max_duration_ps: float,
    piece_ps: float,
    uuids: Sequence[str],
    before: Sequence[SegmentRecord] = (),
    tolerances: MDTolerances | None = None,
) -> tuple[ProductionRun, float]:
    """The state of a production run after its segments ``pieces`` (job uuids ``uuids``) and the
    length of the next segment in ps (0: the run is finished).

    ``reference`` is the MD cell before any MD (the crystal with its defects: the reference of
    the crystallinity check and of the hop lengths); ``species`` decide the run length (none:
    one segment, no MSD criterion).
    """
    tol = tolerances or MDTolerances()
    arrays = join_pieces(pieces)
    times = arrays["times_fs"]
    cut_fs = analysed_from_fs(pieces[0].target_check, tol)
    start = int(np.searchsorted(times, cut_fs - 1e-9))
    start = min(start, len(times) - 2)
    duration_ps = float(sum(p.duration_ps for p in pieces))
    check = check_segment_arrays(
        times[start:], arrays["temperatures_k"][start:], temperature_k, tolerances=tol
    )
    hops, targets = msd_targets(reference, species, msd_target_a2)
    msd = {}
    for sp in species:
        idx = species_indices(reference, sp)
        others = [i for i in range(len(reference)) if i not in set(idx)]
        msd[sp] = tracer_msd_a2(arrays["positions_a"], idx, others, start)
    crystal = crystallinity_check(
        reference, frames_as_structures(arrays, reference, CRYSTALLINITY_FRAMES)
    )
    volume = float(np.mean(np.abs(np.linalg.det(arrays["cells_a"][start:]))))
    reasons: list[str] = []
    next_ps = 0.0
    short = {sp: msd[sp] for sp in species if msd[sp] < targets[sp]}
    if crystal.status != "ok":
        stopped = "the framework lost its long-range order"
        reasons.append(crystal.reason)
    elif not species:
        stopped = "no mobile species: nothing decides the run length"
        reasons.append(
            "no species to follow (no site of class 'mobile'; set stages.transport.species): "
            "one production segment, not extended"
        )
    elif not short:
        stopped = "every species reached its MSD target"
    elif duration_ps >= max_duration_ps - 1e-9:
        stopped = "time limit reached"
        reasons += [
            f"{sp} MSD {m:.2f} Å² < target {targets[sp]:.2f} Å² after {duration_ps:g} ps "
            f"(max_production_ps {max_duration_ps:g}): the ions have not left their sites; "
            "run hotter or longer, or add carriers (defects)"
            for sp, m in short.items()
        ]
    else:
        slowest = min(short, key=lambda sp: short[sp] / targets[sp])
        next_ps = next_piece_ps(
            duration_ps, short[slowest], targets[slowest], piece_ps, max_duration_ps
        )
        stopped = "running"
    records = [
        SegmentRecord(
            uuid=u, segment=p.segment, duration_ps=p.duration_ps, target_check=p.target_check
        )
        for u, p in zip(uuids, pieces, strict=True)
    ]
    if check.status != "ok":
        reasons += [f"md: {r}" for r in check.reasons]
    if volume_reason(reference.volume, volume):
        reasons.append(f"md: {volume_reason(reference.volume, volume)}")
    run = ProductionRun(
        temperature_k=temperature_k,
        status="ok" if not reasons else "flagged",
        reasons=reasons,
        stopped_because=stopped,
        species=list(species),
        hop_length_a=hops,
        msd_target_a2=targets,
        msd_a2=msd,
        duration_ps=duration_ps,
        max_duration_ps=max_duration_ps,
        analysed_from_fs=float(times[start]),
        mean_temperature_k=check.mean_temperature_k,
        volume_change_rel=volume / reference.volume - 1.0,
        target_check=check,
        crystallinity=crystal,
        pieces=records,
        before=list(before),
        reference_structure=reference,
    )
    return run, next_ps
