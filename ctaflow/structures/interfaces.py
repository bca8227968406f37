"""Electrolyte | alkali-metal interfaces: slabs, lattice matching and the stacked cell.

Construction (pymatgen pieces, the same ones :class:`CoherentInterfaceBuilder` uses inside)
---------------------------------------------------------------------------------------------
1. **Electrolyte slab.** Crystalline: :class:`~pymatgen.core.surface.SlabGenerator` on the bulk
   cell (``primitive=False``, no symmetrisation), so the slab holds whole oriented unit cells and
   is exactly stoichiometric; ``termination`` picks one of ``get_slabs()`` (label from
   :func:`pymatgen.core.interface.label_termination`). Amorphous: no Miller index, the periodic
   cell itself is opened along ``c`` at the widest gap between atomic planes (fewest bonds cut),
   repeated ``repeats`` times — again exactly stoichiometric.
2. **Metal slab.** bcc metal (conventional cell), ``metal_miller`` (default (1,1,0), the densest
   bcc plane), whole oriented unit cells with a stacking vector normal to the surface
   (``max_normal_search``), so that the slab is also a periodic bulk cell along the normal.
3. **Lattice match.** :class:`~pymatgen.analysis.interfaces.zsl.ZSLGenerator` between the metal
   (film) and electrolyte (substrate) surface lattices; among the matches with area ≤
   ``max_area_a2`` and metal strain ≤ ``max_strain_pct`` the smallest area (then the smallest
   strain) is used. **All strain is on the metal**: the electrolyte keeps its bulk lattice.
4. **Stack.** :meth:`pymatgen.core.interface.Interface.from_slabs` (metal strained onto the
   electrolyte's in-plane lattice, ``gap_a`` between them). Without vacuum the cell is a periodic
   electrolyte | metal | electrolyte … stack with ``gap_a`` at **both** interfaces, so
   ``n_interfaces = 2`` (for a slab with two different faces, both faces touch the metal and γ is
   their average). With ``vacuum_a > 0`` there is one interface (``n_interfaces = 1``) and two free
   surfaces, whose energy is then part of any bulk-referenced excess energy.

Strain is the largest principal in-plane engineering strain of the metal, |λ − 1|, with λ² the
generalised eigenvalues of the Gram matrices of the matched super-lattice vectors (frame
independent). Sites carry ``interface_part`` (``electrolyte`` / ``metal``) besides ``label``,
``site_class`` (metal sites: ``metal``) and ``host_species``.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np
from pydantic import BaseModel, Field
from pymatgen.core import Composition, Element, Lattice, Structure

from ctaflow.errors import StructureError
from ctaflow.structures._common import derived_provenance, element_symbol

#: bcc alkali metals this builder knows
BCC_METALS = ("Li", "Na", "K", "Rb", "Cs")
#: site properties every interface site carries
INTERFACE_PROPERTIES = ("label", "site_class", "host_species", "interface_part")


class LatticeMatch(BaseModel):
    """The chosen ZSL match. Lengths in Å, areas in Å², strain in %."""

    area_a2: float = Field(description="In-plane area of the interface cell, Å².")
    strain_pct: float = Field(description="Largest principal in-plane strain of the metal, %.")
    principal_strains_pct: tuple[float, float]
    metal_supercell: list[list[int]] = Field(description="2×2 in-plane supercell of the metal.")
    electrolyte_supercell: list[list[int]] = Field(description="2×2 supercell of the electrolyte.")
    n_candidates: int = Field(description="ZSL matches within the area and strain limits.")


class InterfaceBuild(BaseModel):
    """An electrolyte | metal cell and what γ needs to know about it."""

    structure: Structure = Field(description="The stacked cell (site property interface_part).")
    metal_reference: Structure = Field(
        description="Bulk metal strained in-plane exactly as in the interface (periodic along "
        "the normal, the same atoms as the metal slab): the strained-consistent reference."
    )
    phase: str = Field(description="'crystalline' or 'amorphous'.")
    metal: str
    miller: tuple[int, int, int] | None = Field(description="Electrolyte plane (None: amorphous).")
    metal_miller: tuple[int, int, int]
    termination: str = Field(description="Electrolyte termination label (pymatgen).")
    metal_lattice_a: float = Field(description="Unstrained bcc lattice parameter used, Å.")
    area_a2: float
    strain_pct: float
    n_interfaces: int = Field(description="2: periodic stack (no vacuum); 1: with vacuum.")
    gap_a: float
    vacuum_a: float
    n_electrolyte_atoms: int
    n_metal_atoms: int
    electrolyte_counts: dict[str, int] = Field(description="Atoms per element, electrolyte part.")
    electrolyte_formula: str = Field(description="Reduced formula of the bulk electrolyte.")
    n_formula_units: int = Field(description="Whole formula units of the electrolyte slab.")
    electrolyte_thickness_a: float = Field(description="Extent of the electrolyte slab along z.")
    metal_thickness_a: float = Field(description="Extent of the metal slab along z.")
    match: LatticeMatch


# --------------------------------------------------------------------------- pieces
def _check_metal(metal: str) -> None:
    if metal not in BCC_METALS:
        raise StructureError(
            f"metal '{metal}' is not a bcc alkali metal this builder knows; use one of "
            f"{', '.join(BCC_METALS)}"
        )


def bcc_lattice_estimate(metal: str) -> float:
    """Starting bcc lattice parameter a = 4 r / √3 from pymatgen's metallic radius, Å
    (an estimate to be relaxed by the engine, not a result)."""
    _check_metal(metal)
    return 4.0 * float(Element(metal).metallic_radius) / math.sqrt(3.0)


def bcc_metal(metal: str, lattice_a: float | None = None) -> Structure:
    """Conventional bcc cell (2 atoms) of ``metal``; ``lattice_a`` None → the estimate of
    :func:`bcc_lattice_estimate`. Provenance says which."""
    _check_metal(metal)
    a = bcc_lattice_estimate(metal) if lattice_a is None else float(lattice_a)
    source = "given" if lattice_a is not None else "estimate 4 r_metallic / sqrt(3) (pymatgen)"
    return Structure(
        Lattice.cubic(a),
        [metal, metal],
        [[0, 0, 0], [0.5, 0.5, 0.5]],
        site_properties=_metal_props(metal, 2),
        properties={
            "provenance": {
                "source": "ctaflow bcc metal",
                "generated": True,
                "experimental_structure": False,
                "lattice_a": a,
                "lattice_source": source,
            }
        },
    )


def _metal_props(metal: str, n: int) -> dict[str, list]:
    return {
        "label": [f"{metal}_metal"] * n,
        "site_class": ["metal"] * n,
        "host_species": [metal] * n,
        "interface_part": ["metal"] * n,
    }


def _electrolyte_props(structure: Structure) -> Structure:
    """Copy with exactly the interface site properties (defaults where missing)."""
    out = structure.copy()
    props = out.site_properties
    n = len(out)
    symbols = [element_symbol(s.specie) for s in out]
    keep = {
        "label": props.get("label", symbols),
        "site_class": props.get("site_class", ["unclassified"] * n),
        "host_species": props.get("host_species", symbols),
        "interface_part": ["electrolyte"] * n,
    }
    for key in list(props):
        out.remove_site_property(key)
    for key, values in keep.items():
        out.add_site_property(key, list(values))
    return out


def _check_miller(miller: tuple[int, int, int], what: str) -> tuple[int, int, int]:
    miller = tuple(int(i) for i in miller)
    if len(miller) != 3 or not any(miller):
        raise StructureError(f"{what} {miller} is not a plane; give three integers, not all 0")
    return miller  # type: ignore[return-value]


def electrolyte_slab(
    bulk: Structure, miller: tuple[int, int, int], thickness_a: float, termination: int = 0
):
    """Stoichiometric slab (whole oriented unit cells) of a crystalline electrolyte.

    Returns the pymatgen ``Slab`` and its termination label.
    """
    from pymatgen.core.interface import label_termination
    from pymatgen.core.surface import SlabGenerator

    miller = _check_miller(miller, "electrolyte Miller index")
    try:
        gen = SlabGenerator(
            _electrolyte_props(bulk),
            miller,
            thickness_a,
            5.0,
            in_unit_planes=False,
            center_slab=False,
            primitive=False,
            max_normal_search=max(abs(i) for i in miller) + 1,
        )
        slabs = gen.get_slabs(symmetrize=False)
    except Exception as exc:  # pymatgen raises ValueError/ZeroDivisionError on odd planes
        raise StructureError(
            f"no slab for Miller index {miller} ({type(exc).__name__}: {exc}); choose a low "
            "index such as (0, 0, 1) or (1, 0, 0)"
        ) from exc
    if not slabs:
        raise StructureError(
            f"Miller index {miller} gives no slab of this electrolyte; choose a low index such as "
            "(0, 0, 1) or (1, 0, 0)"
        )
    labels = [label_termination(s) for s in slabs]
    if not 0 <= termination < len(slabs):
        raise StructureError(
            f"termination {termination} does not exist for {miller}; choose 0..{len(slabs) - 1} "
            f"({', '.join(labels)})"
        )
    return slabs[termination], labels[termination]


def amorphous_slab(structure: Structure, repeats: int = 1) -> Structure:
    """An amorphous (or any) periodic cell opened along ``c`` into a slab.

    The cut goes through the widest gap between the atoms' fractional ``c`` coordinates (fewest
    bonds broken); atoms are unwrapped to one contiguous block above it, the cell is repeated
    ``repeats`` times along ``c``, and ``c`` is replaced by the surface normal (the slab is no
    longer periodic along it). Every atom of the cell is kept, so the slab has the bulk sample's
    exact composition and its energy reference is that sample's energy.
    """
    if repeats < 1:
        raise StructureError(f"repeats must be ≥ 1 (got {repeats})")
    cell = _electrolyte_props(structure)
    cell.make_supercell([1, 1, repeats])
    z = np.sort(np.mod(cell.frac_coords[:, 2], 1.0))
    gaps = np.diff(np.append(z, z[0] + 1.0))
    cut = (z[int(np.argmax(gaps))] + gaps.max() / 2.0) % 1.0
    frac = cell.frac_coords.copy()
    frac[:, 2] = np.mod(frac[:, 2] - cut, 1.0)
    cart = cell.lattice.get_cartesian_coords(frac)
    a, b, c = cell.lattice.matrix
    normal = np.cross(a, b) / np.linalg.norm(np.cross(a, b))
    height = float(np.dot(c, normal))
    lattice = Lattice([a, b, normal * (height + 10.0)])  # room above; heights are what matters
    return Structure(
        lattice,
        cell.species,
        cart,
        coords_are_cartesian=True,
        site_properties=cell.site_properties,
    )


def metal_slab(metal_bulk: Structure, miller: tuple[int, int, int], thickness_a: float):
    """Whole oriented unit cells of the bcc metal, no vacuum: a slab that is also a periodic
    bulk cell along the normal (the stacking vector is checked to be normal)."""
    from pymatgen.core.surface import SlabGenerator

    miller = _check_miller(miller, "metal Miller index")
    metal = element_symbol(metal_bulk[0].specie)
    bulk = metal_bulk.copy(site_properties=_metal_props(metal, len(metal_bulk)))
    gen = SlabGenerator(
        bulk,
        miller,
        thickness_a,
        0.0,
        in_unit_planes=False,
        center_slab=False,
        primitive=False,
        max_normal_search=max(abs(i) for i in miller) + 1,
    )
    slab = gen.get_slabs(symmetrize=False)[0]
    m = slab.lattice.matrix
    normal = np.cross(m[0], m[1])
    if abs(abs(np.dot(normal, m[2])) / np.linalg.norm(normal) - np.linalg.norm(m[2])) > 1e-6:
        raise StructureError(
            f"metal plane {miller} has no stacking vector normal to it within the search; use "
            "(1, 0, 0), (1, 1, 0) or (1, 1, 1)"
        )
    return slab


# --------------------------------------------------------------------------- matching
def principal_strains(film_vectors: np.ndarray, substrate_vectors: np.ndarray) -> np.ndarray:
    """Principal in-plane engineering strains (λ − 1) that map the film's 2D super-lattice onto
    the substrate's: λ² are the generalised eigenvalues of the Gram matrices G_s x = λ² G_f x."""
    from scipy.linalg import eigh

    f = np.asarray(film_vectors, dtype=float)[:2]
    s = np.asarray(substrate_vectors, dtype=float)[:2]
    lam2 = eigh(s @ s.T, f @ f.T, eigvals_only=True)
    return np.sqrt(lam2) - 1.0


def match_lattices(
    metal_vectors: np.ndarray,
    electrolyte_vectors: np.ndarray,
    max_strain_pct: float,
    max_area_a2: float,
) -> tuple[Any, LatticeMatch]:
    """The smallest-area ZSL match with metal strain ≤ ``max_strain_pct``.

    Raises
    ------
    StructureError
        When no match satisfies both limits; the message names the settings to change.
    """
    from pymatgen.analysis.interfaces.zsl import ZSLGenerator

    tol = max_strain_pct / 100.0
    zsl = ZSLGenerator(
        max_area_ratio_tol=2.5 * tol,
        max_area=max_area_a2,
        max_length_tol=tol,
        max_angle_tol=tol,
        bidirectional=False,
    )
    candidates = []
    for m in zsl(np.asarray(metal_vectors)[:2], np.asarray(electrolyte_vectors)[:2], lowest=False):
        eps = principal_strains(m.film_sl_vectors, m.substrate_sl_vectors)
        area = float(np.linalg.norm(np.cross(*np.asarray(m.substrate_sl_vectors)[:2])))
        strain = float(np.max(np.abs(eps))) * 100.0
        if strain <= max_strain_pct + 1e-9 and area <= max_area_a2 + 1e-9:
            candidates.append((round(area, 6), strain, m, eps))
    if not candidates:
        raise StructureError(
            f"no lattice match with metal strain ≤ {max_strain_pct} % and area ≤ {max_area_a2} "
            "Å²; raise max_strain_pct or max_area_a2, or choose another metal_miller / miller"
        )
    candidates.sort(key=lambda c: (c[0], c[1]))
    area, strain, match, eps = candidates[0]
    return match, LatticeMatch(
        area_a2=area,
        strain_pct=strain,
        principal_strains_pct=tuple(float(e) * 100.0 for e in sorted(eps)),
        metal_supercell=[[round(x) for x in row] for row in match.film_transformation],
        electrolyte_supercell=[[round(x) for x in row] for row in match.substrate_transformation],
        n_candidates=len(candidates),
    )


def _supercell_to(slab, target_vectors) -> Any:
    """``slab`` repeated in-plane so that its a, b are ``target_vectors`` (as in pymatgen's
    CoherentInterfaceBuilder)."""
    from pymatgen.analysis.interfaces.coherent_interfaces import from_2d_to_3d, get_2d_transform

    transform = np.round(
        from_2d_to_3d(get_2d_transform(slab.lattice.matrix[:2], target_vectors))
    ).astype(int)
    out = slab.copy()
    out.make_supercell(transform)
    if not np.allclose(out.lattice.matrix[:2], target_vectors, atol=1e-6):
        raise StructureError("internal: the matched super-lattice is not a supercell of the slab")
    return out


# --------------------------------------------------------------------------- the interface
def build_interface(
    electrolyte: Structure,
    metal: str,
    phase: str = "crystalline",
    miller: tuple[int, int, int] | None = (0, 0, 1),
    termination: int = 0,
    electrolyte_thickness_a: float = 10.0,
    metal_lattice_a: float | None = None,
    metal_miller: tuple[int, int, int] = (1, 1, 0),
    metal_thickness_a: float = 8.0,
    max_strain_pct: float = 5.0,
    max_area_a2: float = 200.0,
    gap_a: float = 2.0,
    vacuum_a: float = 0.0,
    amorphous_repeats: int = 1,
) -> InterfaceBuild:
    """An electrolyte | bcc-metal cell (see the module docstring for every convention).

    Parameters
    ----------
    electrolyte
        Bulk electrolyte: the relaxed crystal (``phase='crystalline'``) or a relaxed amorphous
        sample (``phase='amorphous'``, cut along ``c``; ``miller`` is ignored).
    metal
        Element of the bcc metal (Li, Na, K, Rb, Cs).
    metal_lattice_a
        Unstrained bcc lattice parameter, Å (e.g. from the engine's relaxation); None: the
        metallic-radius estimate.
    max_strain_pct, max_area_a2
        Limits of the lattice match (strain on the metal, interface area).
    gap_a, vacuum_a
        Distance between the slabs at the interface(s), Å; vacuum above the metal, Å (0: periodic
        stack with two interfaces).
    """
    _check_metal(metal)
    if phase not in ("crystalline", "amorphous"):
        raise StructureError(f"phase '{phase}' is unknown; use 'crystalline' or 'amorphous'")
    if gap_a <= 0 or vacuum_a < 0:
        raise StructureError("gap_a must be > 0 and vacuum_a ≥ 0 (Å)")
    from pymatgen.core.interface import Interface

    if phase == "crystalline":
        if miller is None:
            raise StructureError("a crystalline interface needs a Miller index, e.g. (0, 0, 1)")
        el_slab, term = electrolyte_slab(electrolyte, miller, electrolyte_thickness_a, termination)
        el_slab = el_slab.get_orthogonal_c_slab()
    else:
        el_slab, term, miller = (
            amorphous_slab(electrolyte, amorphous_repeats),
            "amorphous cut",
            None,
        )
    metal_bulk = bcc_metal(metal, metal_lattice_a)
    m_slab = metal_slab(metal_bulk, metal_miller, metal_thickness_a)
    match, info = match_lattices(
        m_slab.lattice.matrix, el_slab.lattice.matrix, max_strain_pct, max_area_a2
    )
    m_super = _supercell_to(m_slab, match.film_sl_vectors)
    e_super = _supercell_to(el_slab, match.substrate_sl_vectors)
    iface = Interface.from_slabs(
        substrate_slab=e_super,
        film_slab=m_super,
        gap=gap_a,
        vacuum_over_film=vacuum_a if vacuum_a > 0 else gap_a,  # periodic: gap at both faces
    )
    props = {key: iface.site_properties[key] for key in INTERFACE_PROPERTIES}
    structure = Structure(iface.lattice, iface.species, iface.frac_coords, site_properties=props)
    parts = structure.site_properties["interface_part"]
    el_idx = [i for i, p in enumerate(parts) if p == "electrolyte"]
    m_idx = [i for i, p in enumerate(parts) if p == "metal"]
    counts = Composition(
        Counter(element_symbol(structure[i].specie) for i in el_idx)
    ).get_el_amt_dict()
    bulk_comp = electrolyte.composition
    per_fu = bulk_comp.reduced_composition.num_atoms
    n_fu = len(el_idx) / per_fu
    same = Composition(counts).reduced_formula == bulk_comp.reduced_formula
    if not same or abs(n_fu - round(n_fu)) > 1e-8:
        raise StructureError(
            f"internal: the electrolyte slab ({Composition(counts).formula}) is not whole "
            f"formula units of {bulk_comp.reduced_formula}"
        )
    z = structure.cart_coords[:, 2]
    reference = strained_metal_reference(structure, m_idx, float(m_slab.lattice.c))
    structure.properties = {
        "provenance": derived_provenance(
            electrolyte,
            {
                "step": "interface",
                "metal": metal,
                "phase": phase,
                "miller": list(miller) if miller else None,
                "metal_miller": list(metal_miller),
                "termination": term,
                "strain_pct": info.strain_pct,
            },
        )
    }
    return InterfaceBuild(
        structure=structure,
        metal_reference=reference,
        phase=phase,
        metal=metal,
        miller=miller,
        metal_miller=tuple(metal_miller),
        termination=term,
        metal_lattice_a=float(metal_bulk.lattice.a),
        area_a2=float(structure.lattice.volume / structure.lattice.c),
        strain_pct=info.strain_pct,
        n_interfaces=1 if vacuum_a > 0 else 2,
        gap_a=gap_a,
        vacuum_a=vacuum_a,
        n_electrolyte_atoms=len(el_idx),
        n_metal_atoms=len(m_idx),
        electrolyte_counts={k: round(v) for k, v in counts.items()},
        electrolyte_formula=bulk_comp.reduced_formula,
        n_formula_units=round(n_fu),
        electrolyte_thickness_a=float(np.ptp(z[el_idx])),
        metal_thickness_a=float(np.ptp(z[m_idx])),
        match=info,
    )


def strained_metal_reference(
    interface: Structure, metal_indices: list[int], period_a: float
) -> Structure:
    """The metal of ``interface`` as a bulk crystal: its in-plane cell is the interface's (so it
    carries exactly the interface's strain) and its normal period is the metal slab's
    ``period_a`` (whole oriented unit cells). The interface cell's ``c`` must be normal to
    ``a``, ``b`` (true for :meth:`Interface.from_slabs`)."""
    a, b, _c = interface.lattice.matrix
    normal = np.cross(a, b) / np.linalg.norm(np.cross(a, b))
    lattice = Lattice([a, b, normal * period_a])
    sites = [interface[i] for i in metal_indices]
    ref = Structure(
        lattice,
        [s.specie for s in sites],
        [s.coords for s in sites],
        coords_are_cartesian=True,
        to_unit_cell=True,
        site_properties={
            k: [interface.site_properties[k][i] for i in metal_indices]
            for k in INTERFACE_PROPERTIES
        },
    )
    dmin = _min_distance(ref)
    if dmin < 1.5:
        raise StructureError(
            f"internal: the strained metal reference has atoms {dmin:.2f} Å apart; the metal slab "
            "is not a whole number of stacking periods"
        )
    return ref


def _min_distance(structure: Structure) -> float:
    if len(structure) < 2:
        return float(min(structure.lattice.abc))
    d = structure.distance_matrix + np.eye(len(structure)) * 1e9
    return float(d.min())
