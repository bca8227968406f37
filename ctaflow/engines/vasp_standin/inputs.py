"""Reading a directory of VASP inputs: INCAR, POSCAR, KPOINTS (or KSPACING), POTCAR[.spec].

An NEB (``IMAGES = N``) is read as VASP reads it: INCAR, KPOINTS and POTCAR[.spec] from the head
directory, one POSCAR from each of ``00/`` … ``{N+1}/`` (:func:`read_band`).

Only pymatgen readers are used. POTCARs are optional: atomate2 writes ``POTCAR.spec`` (one
POTCAR symbol per line) when called with ``write_input_set_kwargs={"potcar_spec": True}``; the
stand-in takes the symbols from there and never needs pseudopotentials. A real POTCAR, if present,
is read only for its TITEL lines and valence charges (to check that the cell is neutral).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
from pymatgen.core import Structure
from pymatgen.io.vasp import Incar, Kpoints, Poscar, Potcar

from ctaflow.engines.incar_types import use_real_incar_tags
from ctaflow.engines.vasp_standin.errors import StandinError

use_real_incar_tags()  # SPRING = -0.1 must not read as 0

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: placeholder pseudopotential type written where VASP writes e.g. ``PAW_PBE``
NO_POTCAR_TYPE = "NONE"


@dataclass(frozen=True)
class KpointSet:
    """The k-points VASP would use; the stand-in only echoes them into vasprun.xml.

    Parameters
    ----------
    style
        ``"Gamma"``, ``"Monkhorst-Pack"`` or ``"Explicit"`` (list given in KPOINTS).
    divisions
        Subdivisions along the reciprocal lattice vectors (None for explicit lists).
    shift
        User shift in units of the subdivisions.
    kpoints
        Fractional reciprocal coordinates, shape (n, 3), not reduced by symmetry.
    weights
        Weights normalised to sum to 1, shape (n,).
    """

    style: str
    divisions: tuple[int, int, int] | None
    shift: tuple[float, float, float]
    kpoints: np.ndarray
    weights: np.ndarray


@dataclass(frozen=True)
class SpeciesBlock:
    """One POSCAR species block: element, count and the POTCAR symbol that would be used."""

    element: str
    count: int
    potcar_symbol: str
    potcar_type: str = NO_POTCAR_TYPE
    valence: float | None = None

    @property
    def pseudopotential(self) -> str:
        """Text for vasprun's ``atomtypes``; ``split()[1]`` is the POTCAR symbol as pymatgen
        expects, the first word says no pseudopotential was used."""
        if self.potcar_type == NO_POTCAR_TYPE:
            return f"{NO_POTCAR_TYPE} {self.potcar_symbol} (symbol only; no pseudopotential used)"
        return f"{self.potcar_type} {self.potcar_symbol} (header read; not used)"


@dataclass(frozen=True)
class VaspInputs:
    """Everything read from the run directory."""

    directory: Path
    incar: Incar
    structure: Structure
    velocities_a_per_fs: np.ndarray | None
    species: tuple[SpeciesBlock, ...]
    kpoints: KpointSet
    potcar_source: str
    comment: str = ""
    neutral_nelect: float | None = field(default=None)


def read_incar(directory: str | Path = ".") -> Incar:
    """The INCAR of ``directory`` (a :class:`StandinError` if missing or unreadable)."""
    return _read(Path(directory) / "INCAR", Incar.from_file, "INCAR")


def read_inputs(directory: str | Path = ".", head: str | Path | None = None) -> VaspInputs:
    """Read the VASP inputs in ``directory``.

    ``head``: where INCAR, KPOINTS and POTCAR[.spec] are read from, if not ``directory`` (an NEB
    image directory reads only its POSCAR).

    Raises
    ------
    StandinError
        If INCAR or POSCAR is missing or unreadable, or POTCAR symbols do not match POSCAR.
    """
    directory = Path(directory)
    head = directory if head is None else Path(head)
    incar = read_incar(head)
    poscar = _read(directory / "POSCAR", Poscar.from_file, "POSCAR")
    structure = poscar.structure
    if poscar.velocities is not None:
        velocities = np.asarray(poscar.velocities, dtype=float)
        if not np.any(velocities):
            velocities = None
    else:
        velocities = None

    elements = [str(site.specie.symbol) for site in structure]
    blocks = [(el, len(list(group))) for el, group in itertools.groupby(elements)]
    species, source, neutral_nelect = _species_blocks(head, blocks, structure)
    kpoints = _kpoints(head, incar, structure)
    return VaspInputs(
        directory=directory,
        incar=incar,
        structure=structure,
        velocities_a_per_fs=velocities,
        species=species,
        kpoints=kpoints,
        potcar_source=source,
        comment=poscar.comment or structure.formula,
        neutral_nelect=neutral_nelect,
    )


def read_band(directory: str | Path, n_images: int) -> list[VaspInputs]:
    """The ``n_images + 2`` images of an NEB run in ``directory`` (end points first and last).

    Raises
    ------
    StandinError
        If an image directory or POSCAR is missing, or the images differ in atoms (species
        order) or cell: the stand-in runs fixed-cell bands of one set of atoms.
    """
    directory = Path(directory)
    band = []
    for index in range(n_images + 2):
        image_dir = directory / f"{index:02d}"
        if not image_dir.is_dir():
            raise StandinError(
                f"IMAGES = {n_images} needs image directories 00 ... {n_images + 1:02d}; "
                f"{image_dir.name}/ is missing in {directory.resolve()}"
            )
        band.append(read_inputs(image_dir, head=directory))
    first = band[0].structure
    for index, image in enumerate(band[1:], start=1):
        structure = image.structure
        if [str(s) for s in structure.species] != [str(s) for s in first.species]:
            raise StandinError(
                f"image {index:02d} has other atoms or another atom order than image 00 "
                f"({structure.formula} vs {first.formula})"
            )
        if not np.allclose(structure.lattice.matrix, first.lattice.matrix, atol=1e-6):
            raise StandinError(
                f"image {index:02d} has another cell than image 00: the NEB runs at fixed cell"
            )
    return band


def _read(path: Path, reader: Callable[[str], T], name: str) -> T:
    """``reader(path)``, with missing or unreadable files turned into a :class:`StandinError`."""
    if not path.exists():
        raise StandinError(f"no {name} in {path.parent.resolve()}: write the VASP inputs first")
    try:
        return reader(str(path))
    except Exception as exc:
        raise StandinError(f"cannot read {name} ({path}): {exc}") from exc


def _species_blocks(
    directory: Path, blocks: list[tuple[str, int]], structure: Structure
) -> tuple[tuple[SpeciesBlock, ...], str, float | None]:
    """POTCAR symbols per POSCAR block from POTCAR (headers only) or POTCAR.spec or elements."""
    potcar_path, spec_path = directory / "POTCAR", directory / "POTCAR.spec"
    if potcar_path.exists():
        potcar = _read(potcar_path, Potcar.from_file, "POTCAR")
        _check_count(len(potcar), blocks, "POTCAR")
        out = []
        for (element, count), single in zip(blocks, potcar, strict=True):
            if single.element != element:
                raise StandinError(
                    f"POTCAR entry {single.symbol} does not match POSCAR species {element}"
                )
            kind = single.TITEL.split()[0] if single.TITEL else NO_POTCAR_TYPE
            out.append(SpeciesBlock(element, count, single.symbol, kind, float(single.ZVAL)))
        nelect = sum(b.count * (b.valence or 0.0) for b in out)
        return tuple(out), "POTCAR", nelect
    if spec_path.exists():
        symbols = [s.strip() for s in spec_path.read_text().splitlines() if s.strip()]
        _check_count(len(symbols), blocks, "POTCAR.spec")
        out = []
        for (element, count), symbol in zip(blocks, symbols, strict=True):
            if symbol.split("_")[0] != element:
                raise StandinError(
                    f"POTCAR.spec symbol {symbol} does not match POSCAR species {element}"
                )
            out.append(SpeciesBlock(element, count, symbol))
        return tuple(out), "POTCAR.spec", None
    logger.info("no POTCAR or POTCAR.spec: using element symbols as POTCAR symbols")
    return tuple(SpeciesBlock(el, n, el) for el, n in blocks), "POSCAR elements", None


def _check_count(n: int, blocks: list[tuple[str, int]], name: str) -> None:
    if n != len(blocks):
        raise StandinError(
            f"{name} has {n} entries but POSCAR has {len(blocks)} species blocks "
            f"({' '.join(el for el, _ in blocks)})"
        )


def _kpoints(directory: Path, incar: Incar, structure: Structure) -> KpointSet:
    path = directory / "KPOINTS"
    rec = structure.lattice.reciprocal_lattice_crystallographic  # |b| without 2π
    if not path.exists():
        spacing = float(incar.get("KSPACING", 0.5))
        if spacing <= 0:
            raise StandinError(f"KSPACING = {spacing} must be positive")
        divisions = tuple(max(1, int(np.ceil(2 * np.pi * b / spacing))) for b in rec.abc)
        gamma = bool(incar.get("KGAMMA", True))
        return _grid(divisions, (0.0, 0.0, 0.0), gamma=gamma)
    kpts = _read(path, Kpoints.from_file, "KPOINTS")
    style = kpts.style.name
    if style == "Line_mode":
        raise StandinError(
            "KPOINTS in line mode (band structure) is not supported: the stand-in computes "
            "no electronic structure"
        )
    if style == "Automatic":
        length = float(np.ravel(kpts.kpts)[0])
        divisions = tuple(max(1, int(length * b + 0.5)) for b in rec.abc)
        return _grid(divisions, (0.0, 0.0, 0.0), gamma=True)
    if style in {"Gamma", "Monkhorst"}:
        divisions = tuple(int(n) for n in kpts.kpts[0])
        shift = tuple(float(s) for s in (kpts.kpts_shift or (0.0, 0.0, 0.0)))
        return _grid(divisions, shift, gamma=style == "Gamma")
    # explicit list (Reciprocal or Cartesian)
    points = np.asarray(kpts.kpts, dtype=float)
    if style == "Cartesian":
        points = structure.lattice.reciprocal_lattice.get_fractional_coords(points)
    weights = np.asarray(kpts.kpts_weights or [1.0] * len(points), dtype=float)
    return KpointSet("Explicit", None, (0.0, 0.0, 0.0), points, weights / weights.sum())


def _grid(divisions: tuple[int, ...], shift: tuple[float, ...], gamma: bool) -> KpointSet:
    """Full (not symmetry-reduced) Γ-centred or Monkhorst–Pack grid in (-½, ½]."""
    if any(n < 1 for n in divisions):
        raise StandinError(f"k-point subdivisions {divisions} must be positive")
    axes = []
    for n, s in zip(divisions, shift, strict=True):
        idx = np.arange(n, dtype=float)
        k = (idx + s) / n if gamma else (idx + 0.5 + s) / n - 0.5
        k = k - np.round(k)
        k[np.isclose(k, -0.5)] = 0.5
        axes.append(k)
    points = np.array(list(itertools.product(*axes)), dtype=float).reshape(-1, 3)
    weights = np.full(len(points), 1.0 / len(points))
    style = "Gamma" if gamma else "Monkhorst-Pack"
    return KpointSet(style, tuple(int(n) for n in divisions), tuple(shift), points, weights)
