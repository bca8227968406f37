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
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, Field
from pymatgen.core import Structure

from ctaflow.errors import StructureError
from ctaflow.structures._common import derived_provenance, element_symbol
from ctaflow.structures.sites import Hop, hops
from ctaflow.structures.supercell import perpendicular_widths

Mechanism = Literal["vacancy", "concerted"]


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


def vacancy_hop(supercell: Structure, hop: Hop) -> PathEnds:
    """End points of the single vacancy hop ``i -> j`` (see the module conventions)."""
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


def concerted_hop(supercell: Structure, hop: Hop, max_length_a: float) -> PathEnds:
    """End points of the concerted move ``k -> i`` while ``i -> j`` (module conventions).

    ``k`` is the mobile site of the same species nearest to ``i`` (other than ``j`` and its
    images) within ``max_length_a``; among equally near sites the one most opposite to ``j``
    (largest angle k-i-j) is taken, i.e. the path continues rather than turns back.
    """
    i, j = hop.start_index, hop.end_index
    species = element_symbol(supercell[i].specie)
    classes = supercell.site_properties.get("site_class")
    origin = supercell[i].coords
    forward = supercell.lattice.get_cartesian_coords(hop.end_frac) - origin
    candidates = []
    for nb in supercell.get_neighbors(supercell[i], max_length_a):
        k = int(nb.index)
        if k in (i, j) or element_symbol(nb.specie) != species:
            continue
        if classes is not None and classes[k] != "mobile":
            continue
        back = nb.coords - origin
        cos = float(np.dot(back, forward) / np.linalg.norm(back) / np.linalg.norm(forward))
        candidates.append((round(float(nb.nn_distance), 3), cos, k, nb.coords))
    if not candidates:
        raise StructureError(
            f"no second mobile {species} ion within {max_length_a} Å of site {i} for a "
            "concerted move; raise stages.neb.max_hop_length_a or drop 'concerted'"
        )
    _, _, k, k_coords = min(candidates, key=lambda c: (c[0], c[1]))
    target_i = supercell.lattice.get_cartesian_coords(hop.end_frac)
    start = _without(supercell, j, f"vacancy at site {j} for concerted NEB {k}->{i}->{j}")
    ii, kk = _after_removal(i, j), _after_removal(k, j)
    end = start.copy()
    _move(end, ii, target_i)
    # k takes i's place; the band follows the shortest image path (shorter than half the cell)
    _move(end, kk, origin)
    return PathEnds(
        mechanism="concerted",
        species=species,
        hop=hop,
        moving=[ii, kk],
        path_sites=[k, i, j],
        displacement_a=[
            float(np.linalg.norm(target_i - origin)),
            float(np.linalg.norm(origin - k_coords)),
        ],
        start=start,
        end=end,
    )


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
    return Structure(
        relaxed_start.lattice,
        relaxed_start.species,
        coords,
        site_properties=dict(relaxed_start.site_properties),
        properties={
            **(relaxed_start.properties or {}),
            "provenance": derived_provenance(
                relaxed_start,
                {"step": "neb_symmetric_end", "rotation": rot, "translation": trans},
            ),
        },
    )


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
