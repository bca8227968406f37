"""Mobile-ion sites, their migration network, and symmetry-distinct hops.

Classification rules (all settable, all recorded in the result)
---------------------------------------------------------------
1. **Hop**: two sites of the analysed species (periodic images included) closer than
   ``hop_cutoff`` (Å) are joined by a candidate hop along the straight segment between them.
2. **Open window**: a hop is kept only if no blocking atom comes closer to the segment than
   ``min_clearance`` (Å). Blocking atoms are all atoms of other elements (the framework) unless
   ``blocking_species`` names them. This is a geometric bottleneck test on the straight path,
   not an energy barrier; curved real paths can pass windows it rejects.
3. **Percolation**: the kept hops form connected components. A component's dimension (0–3) is the
   rank of the lattice translations it connects a site to its own images with (a 1D channel has
   dimension 1). Sites in components of dimension ≥ ``min_dimension`` are ``mobile``; all other
   sites of the species are ``pillar``.

Sites of other elements keep their ``site_class``; where they had none they become ``framework``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, Field

from ctaflow.errors import StructureError
from ctaflow.structures._common import element_symbol

if TYPE_CHECKING:
    from pymatgen.core import Structure


#: blocking atoms are searched this far beyond the hop's half length (Å); clearances are capped here
CLEARANCE_SEARCH_A = 4.0


class NetworkRules(BaseModel):
    """The settable rules of :func:`migration_network`. Lengths in Å."""

    species: str
    hop_cutoff_a: float = Field(4.0, description="Longest hop between sites, Å.")
    min_clearance_a: float = Field(
        1.5, description="Closest approach of a blocking atom to the straight hop path, Å."
    )
    min_dimension: int = Field(1, description="Smallest percolation dimension called mobile.")
    blocking_species: list[str] | None = Field(
        None, description="Elements that block windows; None = every other element."
    )


class NetworkHop(BaseModel):
    """One candidate hop ``i -> j + image``. Lengths in Å."""

    i: int = Field(description="Index of the start site in the structure.")
    j: int = Field(description="Index of the end site in the structure.")
    image: tuple[int, int, int] = Field(description="Lattice translation of the end site.")
    length_a: float
    clearance_a: float = Field(description="Closest blocking atom to the straight path, Å.")
    open: bool = Field(description="clearance_a >= min_clearance_a.")


class MigrationNetwork(BaseModel):
    """The network of one species: hops, components, dimensions and the classification."""

    rules: NetworkRules
    site_indices: list[int] = Field(description="Indices of the species' sites.")
    hops: list[NetworkHop] = Field(description="Candidate hops (i < j, or i == j with images).")
    components: list[list[int]] = Field(description="Sites connected by open hops.")
    dimensions: list[int] = Field(description="Percolation dimension of each component.")
    site_class: dict[int, str] = Field(description="Structure index -> 'mobile' / 'pillar'.")

    @property
    def mobile_sites(self) -> list[int]:
        """Indices classified mobile."""
        return sorted(i for i, c in self.site_class.items() if c == "mobile")

    @property
    def pillar_sites(self) -> list[int]:
        """Indices classified pillar."""
        return sorted(i for i, c in self.site_class.items() if c == "pillar")


def migration_network(
    structure: Structure,
    species: str,
    hop_cutoff: float = 4.0,
    min_clearance: float = 1.5,
    min_dimension: int = 1,
    blocking_species: list[str] | None = None,
) -> MigrationNetwork:
    """Hops, connected components and their percolation dimension (see the module rules).

    Parameters
    ----------
    structure
        Ordered structure.
    species
        Element whose sites are analysed, e.g. ``"Na"``.
    hop_cutoff
        Longest hop, Å.
    min_clearance
        Smallest allowed distance of a blocking atom from the straight hop path, Å.
    min_dimension
        Components with at least this percolation dimension are mobile (1, 2 or 3).
    blocking_species
        Elements that block; default every element other than ``species``.
    """
    rules = NetworkRules(
        species=species,
        hop_cutoff_a=hop_cutoff,
        min_clearance_a=min_clearance,
        min_dimension=min_dimension,
        blocking_species=blocking_species,
    )
    if not structure.is_ordered:
        raise StructureError("partial occupancies: order the structure before analysing sites")
    sites = [i for i, s in enumerate(structure) if element_symbol(s.specie) == species]
    if not sites:
        present = sorted({element_symbol(s.specie) for s in structure})
        raise StructureError(
            f"no {species} sites in the structure (elements: {', '.join(present)}); "
            "check the species"
        )
    if not 1 <= min_dimension <= 3:
        raise StructureError(f"min_dimension={min_dimension}; use 1, 2 or 3")
    blockers = set(blocking_species) if blocking_species is not None else None
    hop_list = _candidate_hops(structure, sites, hop_cutoff, min_clearance, species, blockers)
    components, dimensions = _components(sites, [h for h in hop_list if h.open])
    site_class = {}
    for comp, dim in zip(components, dimensions, strict=True):
        for i in comp:
            site_class[i] = "mobile" if dim >= min_dimension else "pillar"
    return MigrationNetwork(
        rules=rules,
        site_indices=sites,
        hops=hop_list,
        components=components,
        dimensions=dimensions,
        site_class=site_class,
    )


def classify_sites(
    structure: Structure, species: str, **rules: Any
) -> tuple[Structure, MigrationNetwork]:
    """A copy of ``structure`` with ``site_class`` set by :func:`migration_network`.

    ``rules`` are passed to :func:`migration_network`; they are also written to
    ``properties["provenance"]["steps"]`` of the returned structure.
    """
    network = migration_network(structure, species, **rules)
    out = structure.copy()
    old = out.site_properties.get("site_class", [None] * len(out))
    classes = [network.site_class.get(i, old[i] or "framework") for i in range(len(out))]
    out.add_site_property("site_class", classes)
    prov = dict((out.properties or {}).get("provenance", {}))
    step = {
        "step": "classify_sites",
        **network.rules.model_dump(),
        "n_mobile": len(network.mobile_sites),
        "n_pillar": len(network.pillar_sites),
        "component_dimensions": network.dimensions,
    }
    prov["steps"] = [*prov.get("steps", []), step]
    out.properties = {**(out.properties or {}), "provenance": prov}
    return out, network


def _candidate_hops(structure, sites, cutoff, min_clearance, species, blockers) -> list[NetworkHop]:
    from pymatgen.core import Structure

    sub = Structure.from_sites([structure[i] for i in sites])
    centre, neigh, images, dist = sub.get_neighbor_list(cutoff)
    out, seen = [], set()
    for a, b, img, d in zip(centre, neigh, images, dist, strict=True):
        i, j, image = sites[int(a)], sites[int(b)], tuple(int(x) for x in np.rint(img))
        key = min((i, j, image), (j, i, tuple(-x for x in image)))  # i->j+n is j->i-n
        if key in seen:
            continue
        seen.add(key)
        i, j, image = key
        start = structure[i].coords
        end = structure.lattice.get_cartesian_coords(structure[j].frac_coords + np.array(image))
        clearance = _clearance(structure, start, end, species, blockers)
        out.append(
            NetworkHop(
                i=i,
                j=j,
                image=image,
                length_a=float(d),
                clearance_a=clearance,
                open=clearance >= min_clearance,
            )
        )
    return out


def _clearance(structure, start, end, species, blockers) -> float:
    """Smallest distance (Å) from a blocking atom (any image) to the segment start-end.

    Capped at ``CLEARANCE_SEARCH_A`` (atoms farther away are not searched), so the value stays
    finite and JSON-serialisable.
    """
    mid, half = (start + end) / 2, np.linalg.norm(end - start) / 2
    best = float(CLEARANCE_SEARCH_A)  # lower bound when no blocking atom is that close
    seg = end - start
    for nb in structure.get_sites_in_sphere(mid, half + CLEARANCE_SEARCH_A):
        el = element_symbol(nb.specie)
        if el == species if blockers is None else el not in blockers:
            continue
        t = np.clip(np.dot(nb.coords - start, seg) / np.dot(seg, seg), 0.0, 1.0)
        best = min(best, float(np.linalg.norm(nb.coords - (start + t * seg))))
    return best


def _components(sites: list[int], hops: list[NetworkHop]) -> tuple[list[list[int]], list[int]]:
    """Connected components and their percolation dimension (rank of closed-loop translations)."""
    adjacency: dict[int, list[tuple[int, np.ndarray]]] = {i: [] for i in sites}
    for h in hops:
        img = np.array(h.image)
        adjacency[h.i].append((h.j, img))
        adjacency[h.j].append((h.i, -img))
    offset: dict[int, np.ndarray] = {}
    components, dimensions = [], []
    for root in sites:
        if root in offset:
            continue
        offset[root] = np.zeros(3, dtype=int)
        stack, members, loops = [root], [root], []
        while stack:
            u = stack.pop()
            for v, img in adjacency[u]:
                expected = offset[u] + img
                if v not in offset:
                    offset[v] = expected
                    members.append(v)
                    stack.append(v)
                elif np.any(expected != offset[v]):
                    loops.append(expected - offset[v])
        components.append(sorted(members))
        dimensions.append(int(np.linalg.matrix_rank(np.array(loops))) if loops else 0)
    return components, dimensions


class Hop(BaseModel):
    """A symmetry-distinct hop for NEB. Lengths in Å, coordinates fractional."""

    label: int = Field(description="Index of the hop class, shortest first.")
    length_a: float
    start_index: int = Field(description="Index of the start site in the structure.")
    end_index: int = Field(description="Index of the end site (its image is end_image).")
    end_image: tuple[int, int, int]
    start_frac: tuple[float, float, float]
    end_frac: tuple[float, float, float] = Field(description="End position incl. the image.")
    multiplicity: int = Field(description="Number of equivalent hops in the cell (undirected).")
    clearance_a: float = Field(description="Closest atom of another element to the path, Å.")
    start_label: str | None = None
    end_label: str | None = None


def hops(structure: Structure, species: str, max_length: float, symprec: float = 0.1) -> list[Hop]:
    """Symmetry-distinct hops of ``species`` up to ``max_length`` Å, shortest first.

    Two hops are equivalent when a space-group operation of the whole structure (found once by
    spglib with ``symprec``) plus a lattice translation maps one pair of end points onto the
    other, in either direction. This is the grouping of
    ``pymatgen.analysis.diffusion``'s ``MigrationGraph.unique_hops`` (the tests compare the two)
    without its per-hop symmetry analysis, which took seconds for a 40-atom cell.
    """
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    plain = structure.copy()
    plain.remove_oxidation_states()
    sites = [i for i, s in enumerate(plain) if element_symbol(s.specie) == species]
    if not sites:
        raise StructureError(f"no {species} sites in the structure; check the species")
    ops = SpacegroupAnalyzer(plain, symprec=symprec).get_symmetry_operations()
    rot = np.array([op.rotation_matrix for op in ops])
    trans = np.array([op.translation_vector for op in ops])
    candidates = _candidate_hops(plain, sites, max_length, 0.0, species, None)
    labels = structure.site_properties.get("label")
    reps: list[dict] = []
    for h in sorted(candidates, key=lambda h: (h.length_a, h.i, h.j)):
        p = plain[h.i].frac_coords
        q = plain[h.j].frac_coords + np.array(h.image)
        for rep in reps:
            if abs(rep["length"] - h.length_a) < symprec and _equivalent(
                plain.lattice, rot, trans, p, q, rep["p"], rep["q"], symprec
            ):
                rep["count"] += 1
                break
        else:
            reps.append({"hop": h, "p": p, "q": q, "length": h.length_a, "count": 1})
    return [
        Hop(
            label=n,
            length_a=rep["length"],
            start_index=rep["hop"].i,
            end_index=rep["hop"].j,
            end_image=rep["hop"].image,
            start_frac=tuple(float(x) for x in rep["p"]),
            end_frac=tuple(float(x) for x in rep["q"]),
            multiplicity=rep["count"],
            clearance_a=rep["hop"].clearance_a,
            start_label=None if labels is None else str(labels[rep["hop"].i]),
            end_label=None if labels is None else str(labels[rep["hop"].j]),
        )
        for n, rep in enumerate(reps)
    ]


def _equivalent(lattice, rot, trans, p, q, p_ref, q_ref, tol) -> bool:
    """Whether some operation maps the hop (p, q) onto (p_ref, q_ref) or (q_ref, p_ref)."""
    a = rot @ p + trans  # (n_ops, 3)
    b = rot @ q + trans
    for start, end in ((p_ref, q_ref), (q_ref, p_ref)):
        shift = np.round(a - start)
        da = lattice.get_cartesian_coords(a - start - shift)
        db = lattice.get_cartesian_coords(b - end - shift)
        close = (np.linalg.norm(da, axis=1) < tol) & (np.linalg.norm(db, axis=1) < tol)
        if close.any():
            return True
    return False
