"""End points and images of migration paths for NEB: single vacancy hops and concerted
two-ion moves.

Conventions
-----------
A hop ``i -> j`` of the mobile species is taken from :func:`ctaflow.structures.sites.hops` on
the NEB supercell. Both sites are occupied in the perfect crystal, so the band needs a vacancy:

* **vacancy**: the ion at ``j`` is removed; the ion at ``i`` moves into the empty site ``j``.
  Start = vacancy at ``j``; end = vacancy at ``i``.
* **concerted**: the same vacancy at ``j``; the ion at ``i`` moves to ``j`` while its neighbour
  ``k`` (a third mobile site, the one before ``i`` on the path ``k -> i -> j``) moves to ``i`` in
  the same band. Start = vacancy at ``j``; end = vacancy at ``k``.

Both mechanisms share the start structure, so a concerted barrier is directly comparable with
the single-hop barrier of the same segment ``i -> j``. Indices in the returned structures refer to
the structure after the vacancy was made; moving ions keep their index from start to end.

Geometry is always measured by the minimum image in the cell of the band (:func:`hop_in_cell`):
a hop chosen on one host (say the Na host) and replayed on another (the relaxed Li host, whose
cell and wrapped fractional coordinates differ) keeps its sites, not the lattice translation that
was recorded with it. A hop or a concerted chain must be shorter than half the smallest face
width of the cell, so that its minimum image is unique.
"""

from __future__ import annotations

from itertools import product
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import BaseModel, Field
from pymatgen.core import Structure

from ctaflow.errors import StructureError
from ctaflow.structures._common import derived_provenance, element_symbol, moved
from ctaflow.structures.sites import Hop, hops
from ctaflow.structures.supercell import minimum_image, perpendicular_widths

if TYPE_CHECKING:
    pass

Mechanism = Literal["vacancy", "concerted"]

#: lattice translations searched around ``rint`` for the minimum image, (0, 0, 0) first so that
#: an exact tie keeps the plain ``rint`` image


class ConcertedGeometry(BaseModel):
    """The chain ``k -> i -> j`` of a concerted move, by the minimum image. Lengths in Å."""

    path_sites: list[int] = Field(description="[k, i, j]: supercell indices before the vacancy.")
    k_to_i_a: float
    i_to_j_a: float
    angle_kij_deg: float = Field(description="Angle k-i-j at i; 180 = a straight chain.")
    span_a: float = Field(description="|(k→i) + (i→j)|: end-to-end length of the chain.")
    min_width_a: float = Field(description="Smallest face width of the cell.")
    max_span_fraction: float = Field(description="Largest span_a / min_width_a allowed.")
    width_needed_a: float = Field(description="span_a / max_span_fraction: narrowest cell, Å.")
    closest_image_approach_a: float = Field(
        description="Smallest distance between a moving ion and a periodic image of either "
        "moving ion during the straight, simultaneous move."
    )
    fits: bool = Field(description="span_a < max_span_fraction × min_width_a.")

    def too_small(self, n_atoms: int) -> str:
        """Why the cell is too small for this chain, and the width it needs."""
        k, i, j = self.path_sites
        return (
            f"concerted chain {k}->{i}->{j} spans {self.span_a:.2f} Å, "
            f"{self.span_a / self.min_width_a:.0%} of the {self.min_width_a:.2f} Å face width of "
            f"this {n_atoms}-atom cell (at most {self.max_span_fraction:.0%}), so a periodic "
            "image of the vacancy can be as near the second ion as its own. A supercell at least "
            f"{self.width_needed_a:.2f} Å wide (stages.neb.min_image_distance_a, or "
            "grow_cell_for_concerted: true) removes that"
        )


class PathEnds(BaseModel):
    """The two end points of one NEB band and what moves. Lengths in Å."""

    model_config = {"arbitrary_types_allowed": True}

    mechanism: Mechanism
    species: str = Field(description="Element of the moving ions.")
    hop: Hop = Field(description="The segment i -> j (indices of the perfect supercell).")
    moving: list[int] = Field(description="Indices (after the vacancy) of the ions that move.")
    path_sites: list[int] = Field(
        description="Perfect-supercell indices along the path: [i, j] or [k, i, j]."
    )
    displacement_a: list[float] = Field(description="Straight-line distance each ion moves, Å.")
    start: Structure
    end: Structure
    end_operations: list[tuple[list[list[float]], list[float]]] = Field(
        default_factory=list,
        description="Space-group operations (rotation, translation; fractional, supercell basis) "
        "of the perfect crystal that map the start configuration onto the end one.",
    )
    concerted: ConcertedGeometry | None = Field(
        None, description="Geometry of the chain k -> i -> j (concerted moves only)."
    )


def select_hops(
    supercell: Structure, species: str, max_length_a: float, n_hops: int, symprec: float = 0.1
) -> list[Hop]:
    """The ``n_hops`` shortest symmetry-distinct hops between **mobile** sites of ``species``.

    Sites count as mobile when their ``site_class`` is ``mobile``, or when the structure has no
    site classes. Raises :class:`StructureError` when fewer hops exist than asked for.
    """
    classes = supercell.site_properties.get("site_class")
    found = [
        h
        for h in hops(supercell, species, max_length_a, symprec=symprec)
        if classes is None or (classes[h.start_index] == classes[h.end_index] == "mobile")
    ]
    if len(found) < n_hops:
        raise StructureError(
            f"only {len(found)} symmetry-distinct {species} hop(s) between mobile sites up to "
            f"{max_length_a} Å; lower stages.neb.n_hops or raise stages.neb.max_hop_length_a"
        )
    return found[:n_hops]


def check_cell_for_path(supercell: Structure, max_length_a: float) -> None:
    """The band must not reach a periodic image of itself: face widths > 2 × hop length."""

    width = float(min(perpendicular_widths(supercell.lattice)))
    if width < 2 * max_length_a:
        raise StructureError(
            f"NEB supercell is only {width:.2f} Å wide but hops may be {max_length_a} Å long; "
            "raise stages.neb.min_image_distance_a to at least twice max_hop_length_a"
        )


def hop_in_cell(structure: Structure, hop: Hop, max_length_change: float = 0.15) -> Hop:
    """``hop`` (sites ``start_index -> end_index``) measured in ``structure`` by the minimum image.

    A hop chosen on one host and replayed on another of the same supercell (the Na host and the
    relaxed Li host) keeps its site indices, but its recorded lattice translation ``end_image``
    need not hold in the other host: a fractional coordinate that wrapped differently (0 vs 0.999)
    shifts a site by a lattice vector, and ``end_frac - start_frac`` then spans a periodic image
    (on main a 2.77 Å Li hop was reported as 6.18 Å). Here ``end_frac``, ``end_image`` and
    ``length_a`` are recomputed from the sites of ``structure`` by the minimum image.

    Raises
    ------
    StructureError
        When the hop is at least half the smallest face width long (its minimum image is then
        not unique), or when its length differs by more than ``max_length_change`` (relative)
        from the recorded hop vector measured in this cell: the two indices then no longer name
        the same kind of hop in this host.
    """
    i, j = hop.start_index, hop.end_index
    lattice = structure.lattice
    start = structure[i].frac_coords
    cart, frac = minimum_image(lattice, start, structure[j].frac_coords)
    length = float(np.linalg.norm(cart))
    width = float(min(perpendicular_widths(lattice)))
    if length >= width / 2:
        raise StructureError(
            f"hop {i}->{j} is {length:.2f} Å long in a cell {width:.2f} Å wide: a hop must be "
            "shorter than half the cell; use a larger supercell (stages.neb.min_image_distance_a)"
        )
    recorded = float(np.linalg.norm(minimum_image(lattice, hop.start_frac, hop.end_frac)[0]))
    if abs(length - recorded) > max_length_change * recorded:
        raise StructureError(
            f"hop {i}->{j} is {length:.2f} Å long in this host but {recorded:.2f} Å as recorded "
            "(measured in this cell): the site order of the host differs from the structure the "
            "hop was chosen on; choose the hops on this host"
        )
    end = start + frac
    image = np.rint(end - structure[j].frac_coords).astype(int)
    return hop.model_copy(
        update={
            "length_a": length,
            "start_frac": tuple(float(x) for x in start),
            "end_frac": tuple(float(x) for x in end),
            "end_image": tuple(int(x) for x in image),
        }
    )


def vacancy_hop(supercell: Structure, hop: Hop) -> PathEnds:
    """End points of the single vacancy hop ``i -> j`` (see the module conventions).

    The hop is re-measured in ``supercell`` by the minimum image first (:func:`hop_in_cell`), so
    ``hop.length_a`` and ``displacement_a`` of the result are the distance the ion really moves.
    """
    hop = hop_in_cell(supercell, hop)
    i, j = hop.start_index, hop.end_index
    target = supercell.lattice.get_cartesian_coords(hop.end_frac)
    start = _without(supercell, j, f"vacancy at site {j} for NEB hop {i}->{j}")
    ii = _after_removal(i, j)
    end = start.copy()
    _move(end, ii, target)
    return PathEnds(
        mechanism="vacancy",
        species=element_symbol(supercell[i].specie),
        hop=hop,
        moving=[ii],
        path_sites=[i, j],
        displacement_a=[float(np.linalg.norm(target - supercell[i].coords))],
        start=start,
        end=end,
    )


def concerted_partner(
    supercell: Structure, hop: Hop, max_length_a: float, max_span_fraction: float = 0.5
) -> ConcertedGeometry:
    """The third site ``k`` of the concerted move ``k -> i`` while ``i -> j``, and the geometry
    of the chain, without judging it (:func:`concerted_hop` refuses chains that do not fit).

    Choice of ``k``: a mobile site of the same species, not ``i`` or ``j`` (so not a periodic
    image of either: images share the index), at the shortest distance from ``i`` up to
    ``max_length_a``; among those the one making the largest angle k-i-j, i.e. the chain goes
    on straight rather than turning back, and the two ions move in step in the same direction
    (the knock-on form of a concerted move). Ties go to the lowest index.

    Why the span limit: the chain's end-to-end vector ``(k→i) + (i→j)`` is the distance from
    the moving ion ``k`` to the vacancy ``j``. When it is as long as half the smallest face width
    ``w``, another periodic image of the vacancy is as close to ``k`` as ``j`` itself (in the
    2×2×2 antiperovskite cell the straight chain spans exactly half the cell along two axes),
    so the move is not one local event in the cell. Below ``w/2`` the vector is the unique
    minimum image and every moving ion stays more than ``w - span`` from the periodic images of
    the pair, hence the default ``max_span_fraction = 0.5``.
    """
    hop = hop_in_cell(supercell, hop)
    i, j = hop.start_index, hop.end_index
    species = element_symbol(supercell[i].specie)
    classes = supercell.site_properties.get("site_class")
    lattice = supercell.lattice
    forward = lattice.get_cartesian_coords(hop.end_frac) - supercell[i].coords  # i -> j
    candidates = []
    for nb in supercell.get_neighbors(supercell[i], max_length_a):
        k = int(nb.index)
        if k in (i, j) or element_symbol(nb.specie) != species:
            continue
        if classes is not None and classes[k] != "mobile":
            continue
        k_to_i, _ = minimum_image(lattice, supercell[k].frac_coords, supercell[i].frac_coords)
        if abs(np.linalg.norm(k_to_i) - nb.nn_distance) > 1e-6:
            continue  # a farther image of k; its nearest one is listed as well
        cos = float(np.dot(-k_to_i, forward) / np.linalg.norm(k_to_i) / np.linalg.norm(forward))
        candidates.append((round(float(nb.nn_distance), 3), round(cos, 6), k, k_to_i))
    if not candidates:
        raise StructureError(
            f"no second mobile {species} ion within {max_length_a} Å of site {i} for a "
            "concerted move; raise stages.neb.max_hop_length_a or drop 'concerted'"
        )
    _, cos, k, k_to_i = min(candidates, key=lambda c: c[:3])
    span = float(np.linalg.norm(k_to_i + forward))
    width = float(min(perpendicular_widths(lattice)))
    return ConcertedGeometry(
        path_sites=[k, i, j],
        k_to_i_a=float(np.linalg.norm(k_to_i)),
        i_to_j_a=float(np.linalg.norm(forward)),
        angle_kij_deg=float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))),
        span_a=span,
        min_width_a=width,
        max_span_fraction=max_span_fraction,
        width_needed_a=span / max_span_fraction,
        closest_image_approach_a=_closest_image_approach(lattice, k_to_i, forward),
        fits=span < max_span_fraction * width,
    )


def _closest_image_approach(lattice, k_to_i: np.ndarray, i_to_j: np.ndarray) -> float:
    """Smallest distance between a moving ion and a periodic image (translation ≠ 0) of either
    moving ion while ion k moves along k→i and ion i along i→j in step (21 points each)."""
    t = np.linspace(0.0, 1.0, 21)[:, None]
    pos_k = -k_to_i + t * k_to_i  # relative to site i
    pos_i = t * i_to_j
    shifts = np.array([v for v in product(range(-2, 3), repeat=3) if any(v)], dtype=float)
    translations = lattice.get_cartesian_coords(shifts)  # (n, 3)
    best = float(np.min(np.linalg.norm(translations, axis=1)))  # each ion and its own image
    for rel in (pos_i - pos_k, pos_k - pos_i):
        d = np.linalg.norm(rel[:, None, :] + translations[None, :, :], axis=2)
        best = min(best, float(d.min()))
    return best


def concerted_hop(
    supercell: Structure,
    hop: Hop,
    max_length_a: float,
    max_span_fraction: float = 0.5,
    strict: bool = True,
) -> PathEnds:
    """End points of the concerted move ``k -> i`` while ``i -> j`` (module conventions); ``k``
    and the span limit as in :func:`concerted_partner`. With ``strict=False`` a chain too long
    for the cell is built anyway; ``PathEnds.concerted.fits`` says so (the barrier analysis then
    flags the band with :meth:`ConcertedGeometry.too_small`).

    Raises
    ------
    StructureError
        (``strict``) When the chain spans ``max_span_fraction`` of the smallest face width or
        more; the message gives the face width the supercell needs.
    """
    geometry = concerted_partner(supercell, hop, max_length_a, max_span_fraction)
    k, i, j = geometry.path_sites
    if strict and not geometry.fits:
        raise StructureError(f"{geometry.too_small(len(supercell))}; or drop 'concerted'")
    hop = hop_in_cell(supercell, hop)
    i_to_j = supercell.lattice.get_cartesian_coords(hop.end_frac) - supercell[i].coords
    k_to_i = _vector(supercell, k, i)
    start = _without(supercell, j, f"vacancy at site {j} for concerted NEB {k}->{i}->{j}")
    ii, kk = _after_removal(i, j), _after_removal(k, j)
    end = start.copy()
    # both ions move by their minimum-image vectors, so Cartesian end minus start is the move
    _move(end, ii, supercell[i].coords + i_to_j)
    _move(end, kk, supercell[k].coords + k_to_i)
    return PathEnds(
        mechanism="concerted",
        species=element_symbol(supercell[i].specie),
        hop=hop,
        moving=[ii, kk],
        path_sites=[k, i, j],
        displacement_a=[float(np.linalg.norm(i_to_j)), float(np.linalg.norm(k_to_i))],
        start=start,
        end=end,
        concerted=geometry,
    )


def _vector(structure: Structure, a: int, b: int) -> np.ndarray:
    """Minimum-image Cartesian vector from site ``a`` to site ``b``, Å."""
    return minimum_image(structure.lattice, structure[a].frac_coords, structure[b].frac_coords)[0]


def interpolate_band(
    start: Structure,
    end: Structure,
    n_images: int,
    method: Literal["idpp", "linear"] = "idpp",
    min_distance_a: float = 1.0,
) -> list[Structure]:
    """``n_images`` intermediate images between ``start`` and ``end`` (both included in the
    returned list), by IDPP (pymatgen-analysis-diffusion's ``IDPPSolver``, through atomate2) or
    linear interpolation; fixed cell.

    Raises :class:`StructureError` when an image brings two atoms closer than
    ``min_distance_a`` Å.
    """
    from atomate2.common.jobs.neb import NebInterpolation, _get_images_from_endpoints

    if len(start) != len(end) or [s.species for s in start] != [s.species for s in end]:
        raise StructureError("NEB end points must have the same atoms in the same order")
    how = NebInterpolation.IDPP if method == "idpp" else NebInterpolation.LINEAR
    # sort_tol=0: never re-match atoms by position (a concerted move ends one ion where another
    # started, and matching would undo it)
    extra = {"sort_tol": 0} if how == NebInterpolation.IDPP else {}
    images = _get_images_from_endpoints([start, end], n_images, interpolation_method=how, **extra)
    for n, image in enumerate(images):
        d = image.distance_matrix + np.eye(len(image)) * 1e9
        a, b = np.unravel_index(np.argmin(d), d.shape)
        if d[a, b] < min_distance_a:
            raise StructureError(
                f"{method} image {n} puts atoms {a} ({image[a].specie}) and {b} "
                f"({image[b].specie}) {d[a, b]:.2f} Å apart (< {min_distance_a} Å); use more "
                "images, the other interpolation, or check the end points"
            )
    props = {k: start.site_properties[k] for k in start.site_properties}
    out = []
    for image in images:
        image = image.copy(site_properties=props)
        image.properties = dict(start.properties or {})
        out.append(image)
    return out


def _move(structure: Structure, index: int, cart: np.ndarray) -> None:
    """Move one site in place, keeping its species, label and site properties."""
    site = structure[index]
    structure.replace(
        index,
        site.species,
        cart,
        coords_are_cartesian=True,
        properties=dict(site.properties),
        label=site.label,
    )


def _without(structure: Structure, index: int, why: str) -> Structure:
    out = structure.copy()
    out.remove_sites([index])
    out.properties = {
        **(structure.properties or {}),
        "provenance": derived_provenance(
            structure, {"step": "neb_vacancy", "removed_site": index, "why": why}
        ),
    }
    return out


def _after_removal(index: int, removed: int) -> int:
    if index == removed:
        raise StructureError(f"site {index} is the vacancy itself")
    return index - 1 if index > removed else index


def symmetry_operations(structure: Structure, symprec: float = 0.1) -> list[tuple[list, list]]:
    """Space-group operations of ``structure`` (fractional, its own basis; spglib)."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    plain = structure.copy()
    plain.remove_oxidation_states()
    ops = SpacegroupAnalyzer(plain, symprec=symprec).get_symmetry_operations()
    return [(op.rotation_matrix.tolist(), op.translation_vector.tolist()) for op in ops]


def find_mappings(
    start: Structure, end: Structure, operations: list[tuple[list, list]], tol_a: float = 0.1
) -> list[tuple[list, list]]:
    """The operations that map the configuration ``start`` onto ``end`` as a set of atoms
    (same species on the same sites, any atom order)."""
    species = np.array([element_symbol(s.specie) for s in start])
    if sorted(species) != sorted(element_symbol(s.specie) for s in end):
        return []
    found = []
    end_species = np.array([element_symbol(s.specie) for s in end])
    same = species[:, None] == end_species[None, :]
    for rot, trans in operations:
        mapped = start.frac_coords @ np.asarray(rot).T + np.asarray(trans)
        diff = mapped[:, None, :] - end.frac_coords[None, :, :]
        dist = np.linalg.norm(start.lattice.get_cartesian_coords(diff - np.rint(diff)), axis=2)
        hit = (dist < tol_a) & same
        if hit.any(axis=1).all() and hit.any(axis=0).all():
            found.append((rot, trans))
    return found


def symmetric_end(
    relaxed_start: Structure, operations: list[tuple[list, list]], end_sites: Structure
) -> Structure:
    """The end point as a symmetry image of the relaxed start.

    Each operation is applied to ``relaxed_start`` and every image atom given to the atom of
    ``end_sites`` (the unrelaxed end) nearest to it; of all operations the one whose image moves
    the atoms least from the relaxed start (sum of squared displacements) is kept, so the band
    changes only what the hop changes.
    """
    best = None
    for op in operations:
        coords = _assign(relaxed_start, op, end_sites)
        diff = coords - relaxed_start.frac_coords
        cost = float(np.sum(relaxed_start.lattice.get_cartesian_coords(diff - np.rint(diff)) ** 2))
        if best is None or cost < best[0]:
            best = (cost, coords, op)
    if best is None:
        raise StructureError("no symmetry operation maps the start onto the end point")
    _, coords, (rot, trans) = best
    step = {"step": "neb_symmetric_end", "rotation": rot, "translation": trans}
    return moved(relaxed_start, coords, step)


def _assign(relaxed_start: Structure, operation: tuple[list, list], end_sites: Structure):
    """Fractional coordinates of the end: the image atoms given to the nearest end sites."""
    rot, trans = np.asarray(operation[0]), np.asarray(operation[1])
    mapped = relaxed_start.frac_coords @ rot.T + trans
    species = [element_symbol(s.specie) for s in relaxed_start]
    coords = np.empty_like(mapped)
    taken: set[int] = set()
    for a, site in enumerate(end_sites):
        diff = mapped - site.frac_coords
        diff -= np.rint(diff)
        dist = np.linalg.norm(end_sites.lattice.get_cartesian_coords(diff), axis=1)
        dist[[b for b in range(len(mapped)) if species[b] != species[a] or b in taken]] = np.inf
        b = int(np.argmin(dist))
        if not np.isfinite(dist[b]) or dist[b] > 1.0:
            raise StructureError(
                f"symmetry image of the relaxed start has no {species[a]} within 1 Å of end "
                f"site {a}; the start relaxed too far (set stages.neb.endpoint_rattle_a lower)"
            )
        taken.add(b)
        coords[a] = site.frac_coords + diff[b]
    return coords
