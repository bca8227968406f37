"""MD trajectories as plain arrays: the input of the transport analysis.

Units: positions and lattices in Å, times in fs, temperature in K. Nothing here reads files; the
constructors take objects already in memory (a pymatgen ``Trajectory`` or the ``as_dict()`` of a
pymatgen-analysis-diffusion ``DiffusionAnalyzer``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pymatgen.core import Structure
from pymatgen.core.periodic_table import get_el_sp

from ctaflow.errors import CtaflowError


class TransportInputError(CtaflowError):
    """A trajectory or a transport-analysis request cannot be analysed as given."""


@dataclass(frozen=True)
class MDTrajectory:
    """Positions of every atom in every stored frame, with the cell(s) and the time between frames.

    Parameters
    ----------
    positions_a
        Cartesian positions, shape ``(n_frames, n_atoms, 3)``, Å; wrapped into the cell or not.
    lattices_a
        Cell vectors as rows, Å: shape ``(3, 3)`` for a fixed cell or ``(n_frames, 3, 3)`` (NPT).
    species
        Element symbol of every atom (``n_atoms``).
    frame_interval_fs
        Time between two stored frames (MD time step × stride), fs.
    temperature_k
        Thermostat temperature, K (optional; the analysis can be given one instead).
    site_classes
        Optional class of every atom (``mobile`` / ``pillar`` / ``framework``, ...) for MSDs.
    positions_are_unwrapped
        ``True`` if the positions are continuous in time (no jumps back into the cell). Then the
        displacements are taken as given, exactly, even for a varying cell. ``False`` (default):
        positions may be wrapped and are unwrapped by kinisi with the per-frame cells.
    metadata
        Free-form provenance (source, engine, ...), carried into results.
    """

    positions_a: np.ndarray
    lattices_a: np.ndarray
    species: tuple[str, ...]
    frame_interval_fs: float
    temperature_k: float | None = None
    site_classes: tuple[str, ...] | None = None
    positions_are_unwrapped: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        pos = np.asarray(self.positions_a, dtype=float)
        lat = np.asarray(self.lattices_a, dtype=float)
        if pos.ndim != 3 or pos.shape[2] != 3:
            raise TransportInputError(
                f"positions_a must have shape (n_frames, n_atoms, 3), got {pos.shape}."
            )
        n_frames, n_atoms, _ = pos.shape
        if n_frames < 3:
            raise TransportInputError(f"Need at least 3 frames for an MSD, got {n_frames}.")
        if lat.shape not in ((3, 3), (n_frames, 3, 3)):
            raise TransportInputError(
                f"lattices_a must have shape (3, 3) or ({n_frames}, 3, 3), got {lat.shape}."
            )
        if len(self.species) != n_atoms:
            raise TransportInputError(
                f"{len(self.species)} species given for {n_atoms} atoms; give one per atom."
            )
        if self.site_classes is not None and len(self.site_classes) != n_atoms:
            raise TransportInputError(
                f"{len(self.site_classes)} site classes for {n_atoms} atoms; give one per atom."
            )
        if not self.frame_interval_fs > 0:
            raise TransportInputError(
                f"frame_interval_fs must be positive, got {self.frame_interval_fs}."
            )
        if np.any(np.abs(np.linalg.det(lat.reshape(-1, 3, 3))) < 1e-6):
            raise TransportInputError("A cell has (near) zero volume; check lattices_a.")
        object.__setattr__(self, "positions_a", pos)
        object.__setattr__(self, "lattices_a", lat)
        object.__setattr__(self, "species", tuple(str(s) for s in self.species))
        if self.site_classes is not None:
            object.__setattr__(self, "site_classes", tuple(str(c) for c in self.site_classes))

    @property
    def n_frames(self) -> int:
        """Number of stored frames."""
        return self.positions_a.shape[0]

    @property
    def n_atoms(self) -> int:
        """Number of atoms."""
        return self.positions_a.shape[1]

    @property
    def duration_ps(self) -> float:
        """Time from the first to the last stored frame, ps."""
        return (self.n_frames - 1) * self.frame_interval_fs / 1000.0

    @property
    def constant_cell(self) -> bool:
        """Whether one cell describes every frame."""
        return self.lattices_a.ndim == 2

    @property
    def lattice_per_frame(self) -> np.ndarray:
        """Cells of every frame, shape ``(n_frames, 3, 3)``, Å."""
        if self.constant_cell:
            return np.broadcast_to(self.lattices_a, (self.n_frames, 3, 3))
        return self.lattices_a

    @property
    def mean_volume_a3(self) -> float:
        """Cell volume averaged over the frames, Å³."""
        return float(np.mean(np.abs(np.linalg.det(self.lattices_a.reshape(-1, 3, 3)))))

    def indices(self, species: str | None = None, site_class: str | None = None) -> np.ndarray:
        """Indices of the atoms of ``species`` in ``site_class`` (``None``: any)."""
        mask = np.ones(self.n_atoms, dtype=bool)
        if species is not None:
            mask &= np.array([s == species for s in self.species])
        if site_class is not None:
            if self.site_classes is None:
                raise TransportInputError(
                    f"site_class={site_class!r} asked for, but the trajectory has no site classes; "
                    "build it with site_classes (e.g. from the structure's 'site_class' property)."
                )
            mask &= np.array([c == site_class for c in self.site_classes])
        return np.flatnonzero(mask)

    def fractional_positions(self) -> np.ndarray:
        """Fractional coordinates of every frame in that frame's cell (shape of positions)."""
        inv = np.linalg.inv(self.lattice_per_frame)
        return np.einsum("tnk,tkl->tnl", self.positions_a, inv)

    def subsample(self, step: int) -> MDTrajectory:
        """Every ``step``-th frame (to bound memory and time on long runs)."""
        if step < 1:
            raise TransportInputError(f"step must be >= 1, got {step}.")
        lat = self.lattices_a if self.constant_cell else self.lattices_a[::step]
        return MDTrajectory(
            positions_a=self.positions_a[::step],
            lattices_a=lat,
            species=self.species,
            frame_interval_fs=self.frame_interval_fs * step,
            temperature_k=self.temperature_k,
            site_classes=self.site_classes,
            positions_are_unwrapped=self.positions_are_unwrapped,
            metadata={**self.metadata, "subsampled_every": step},
        )

    @classmethod
    def from_pymatgen_trajectory(
        cls,
        trajectory: Any,
        time_step_fs: float | None = None,
        step_skip: int = 1,
        temperature_k: float | None = None,
        site_classes: Sequence[str] | None = None,
    ) -> MDTrajectory:
        """From a periodic :class:`pymatgen.core.trajectory.Trajectory` (fractional coordinates).

        ``time_step_fs`` defaults to ``trajectory.time_step``; the time between stored frames is
        ``time_step_fs * step_skip`` (give ``step_skip`` if only every n-th MD step was stored).
        Site classes default to the trajectory's ``site_class`` site property when present.
        """
        if trajectory.lattice is None:
            raise TransportInputError(
                "The trajectory has no lattice; transport needs a periodic cell."
            )
        dt = time_step_fs if time_step_fs is not None else trajectory.time_step
        if dt is None:
            raise TransportInputError(
                "The trajectory has no time_step; pass time_step_fs (fs between MD steps)."
            )
        frac = np.asarray(trajectory.coords, dtype=float)
        if trajectory.coords_are_displacement:  # frame i relative to frame i-1 (pymatgen docs)
            frac = np.asarray(trajectory.base_positions, dtype=float) + np.cumsum(frac, axis=0)
        lat = np.asarray(trajectory.lattice, dtype=float)
        lat_frames = np.broadcast_to(lat, (len(frac), 3, 3)) if lat.ndim == 2 else lat
        cart = np.einsum("tnk,tkl->tnl", frac, lat_frames)
        if site_classes is None:
            props = trajectory.site_properties
            props = props[0] if isinstance(props, list) else props
            site_classes = (props or {}).get("site_class")
        species = [get_el_sp(s).symbol for s in trajectory.species]
        return cls(
            positions_a=cart,
            lattices_a=lat,
            species=tuple(species),
            frame_interval_fs=float(dt) * step_skip,
            temperature_k=temperature_k,
            site_classes=None if site_classes is None else tuple(site_classes),
            positions_are_unwrapped=False,
            metadata={"source": "pymatgen Trajectory"},
        )

    @classmethod
    def from_diffusion_analyzer_dict(
        cls, d: Mapping[str, Any], site_classes: Sequence[str] | None = None
    ) -> MDTrajectory:
        """From ``DiffusionAnalyzer.as_dict()`` of pymatgen-analysis-diffusion.

        Positions at frame ``i`` are ``structure.cart_coords + displacements[:, i, :]`` (unwrapped);
        the time between frames is ``time_step * step_skip`` fs. An NPT ``lattices`` entry with one
        more cell than frames (the library prepends the first cell) is aligned to the frames.
        """
        structure = Structure.from_dict(d["structure"])
        disp = np.asarray(d["displacements"], dtype=float)
        if disp.ndim != 3 or disp.shape[0] != len(structure):
            raise TransportInputError(
                f"displacements must have shape (n_sites={len(structure)}, n_frames, 3), "
                f"got {disp.shape}."
            )
        positions = structure.cart_coords[None, :, :] + disp.transpose(1, 0, 2)
        n_frames = positions.shape[0]
        raw_lattices = d.get("lattices")
        if raw_lattices is None or len(raw_lattices) == 0:
            raw_lattices = [structure.lattice.matrix]
        lattices = np.asarray(raw_lattices, dtype=float)
        if len(lattices) == n_frames + 1:
            lattices = lattices[1:]
        if len(lattices) == 1:
            lattices = lattices[0]
        elif len(lattices) != n_frames:
            raise TransportInputError(
                f"{len(lattices)} lattices for {n_frames} frames; expected 1, n_frames or "
                "n_frames + 1."
            )
        if site_classes is None:
            site_classes = structure.site_properties.get("site_class")
        return cls(
            positions_a=positions,
            lattices_a=lattices,
            species=tuple(site.specie.symbol for site in structure),
            frame_interval_fs=float(d["time_step"]) * float(d["step_skip"]),
            temperature_k=None if d.get("temperature") is None else float(d["temperature"]),
            site_classes=None if site_classes is None else tuple(site_classes),
            positions_are_unwrapped=True,
            metadata={"source": "pymatgen-analysis-diffusion DiffusionAnalyzer dict"},
        )
