"""Helpers shared by the structure builders: provenance steps, site properties, oxidation states.

Every builder (ordering, substitution series, search) returns structures whose
``properties["provenance"]`` keeps the parent's top-level fields (``source``, ``path``, ...) and
appends one entry to ``provenance["steps"]`` saying what was done, with which settings.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from ctaflow.errors import StructureError

if TYPE_CHECKING:
    from pymatgen.core import Structure

#: site properties ctaflow carries through every transformation (see DESIGN.md)
MEANING_PROPERTIES = ("label", "site_class", "host_species")


def parent_provenance(structure: Structure) -> dict[str, Any]:
    """A deep copy of ``structure.properties["provenance"]`` (empty dict when absent)."""
    return copy.deepcopy(dict((structure.properties or {}).get("provenance", {})))


def derived_provenance(
    parent: Structure, step: dict[str, Any], experimental: bool | None = False
) -> dict[str, Any]:
    """Provenance of a structure derived from ``parent`` by one step.

    Parameters
    ----------
    parent
        The structure the new one was made from.
    step
        What was done; must contain ``"step"`` (e.g. ``"order"``, ``"substitute"``).
    experimental
        Value of ``experimental_structure`` for the new structure. A model derived by ordering or
        substitution is not the experimental structure, hence the default ``False``; the parent's
        value is kept as ``parent_experimental_structure``.
    """
    prov = parent_provenance(parent)
    if "parent_experimental_structure" not in prov:
        prov["parent_experimental_structure"] = prov.get("experimental_structure")
    prov["experimental_structure"] = experimental
    prov["steps"] = [*prov.get("steps", []), step]
    return prov


def moved(
    structure: Structure, coords: Any, step: dict[str, Any], cartesian: bool = False
) -> Structure:
    """``structure`` with its atoms at ``coords`` (fractional, or Cartesian Å with
    ``cartesian``; same atoms in the same order): lattice, species, labels, site and structure
    properties kept, ``step`` added to its provenance (see :func:`derived_provenance`)."""
    from pymatgen.core import Structure

    return Structure(
        structure.lattice,
        structure.species,
        coords,
        coords_are_cartesian=cartesian,
        site_properties=dict(structure.site_properties),
        labels=structure.labels,
        properties={
            **(structure.properties or {}),
            "provenance": derived_provenance(structure, step),
        },
    )


def element_symbol(species: Any) -> str:
    """``"Na"`` for ``Na``, ``Na+`` or an element-like object."""
    return getattr(species, "symbol", None) or str(species)


def sync_labels(structure: Structure) -> None:
    """Set pymatgen's ``Site.label`` to the ``label`` site property (the CIF site label).

    pymatgen appends ``_1``, ``_2`` ... to labels when a supercell is made; ctaflow keeps the
    crystallographic label (e.g. ``Na4``) in both places so that it reads the same everywhere.
    """
    labels = structure.site_properties.get("label")
    if labels is None:
        return
    for site, label in zip(structure, labels, strict=True):
        if label is not None:
            site.label = str(label)


def label_by_orbit(structure: Structure) -> Structure:
    """A copy with ``label`` per symmetry orbit (``Si1``, ``O1``, ``O2`` ...; spglib at symprec
    0.1 Å) and ``host_species``, for structures that come without site labels."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    out = structure.copy()
    labels = [""] * len(out)
    try:
        groups = SpacegroupAnalyzer(out, symprec=0.1).get_symmetrized_structure()
        orbits = groups.equivalent_indices
    except Exception:  # spglib failure: one orbit per site
        orbits = [[i] for i in range(len(out))]
    counter: dict[str, int] = {}
    for orbit in sorted(orbits, key=min):
        el = element_symbol(out[orbit[0]].specie)
        counter[el] = counter.get(el, 0) + 1
        for i in orbit:
            labels[i] = f"{el}{counter[el]}"
    out.add_site_property("label", labels)
    out.add_site_property("host_species", [element_symbol(s.specie) for s in out])
    for site, label in zip(out, labels, strict=True):
        site.label = label
    return out


def ensure_labels(structure: Structure) -> None:
    """Add a ``label`` site property from pymatgen labels (or the species) when missing."""
    if "label" in structure.site_properties:
        return
    labels = [site.label if site.label else site.species_string for site in structure]
    structure.add_site_property("label", labels)


def oxidation_states_for(
    structure: Structure, oxidation_states: dict[str, float] | str = "guess"
) -> dict[str, float]:
    """Oxidation state per element for Ewald sums, as a ``{symbol: charge}`` dict.

    Parameters
    ----------
    structure
        Structure (ordered or with integer total occupancies).
    oxidation_states
        A dict (used as given; must name every element), ``"guess"``
        (:meth:`pymatgen.core.Composition.oxi_state_guesses`, then bond valence) or ``"bv"``
        (:class:`pymatgen.analysis.bond_valence.BVAnalyzer` first, then the guess).

    Raises
    ------
    StructureError
        When no charge-balanced assignment is found; the message says to pass a dict.
    """
    elements = sorted({el.symbol for el in structure.composition.elements})
    hint = "pass oxidation_states explicitly, e.g. oxidation_states=" + str(
        {el: "charge" for el in elements}
    ).replace("'charge'", "...")
    if isinstance(oxidation_states, dict):
        missing = [el for el in elements if el not in oxidation_states]
        if missing:
            raise StructureError(f"oxidation_states has no value for {', '.join(missing)}; {hint}")
        return {el: float(oxidation_states[el]) for el in elements}
    if oxidation_states not in ("guess", "bv"):
        raise StructureError(f"oxidation_states={oxidation_states!r} is not known; {hint}")
    order = [_guess, _bond_valence] if oxidation_states == "guess" else [_bond_valence, _guess]
    for method in order:
        found = method(structure)
        if found and any(v != 0 for v in found.values()):
            return {el: float(found[el]) for el in elements}
    raise StructureError(
        f"no charge-balanced oxidation states found for {structure.composition.reduced_formula} "
        f"(composition guess and bond valence both failed); {hint}"
    )


def _guess(structure: Structure) -> dict[str, float] | None:
    """Composition-based guess; totals within 0.1 of whole numbers are rounded first."""
    from pymatgen.core import Composition

    comp = structure.composition.element_composition
    if any(abs(v - round(v)) > 0.1 for v in comp.values()):
        return None
    try:
        guesses = Composition({el: round(v) for el, v in comp.items()}).oxi_state_guesses(
            max_sites=-50
        )
    except ValueError:
        return None
    return dict(guesses[0]) if guesses else None


def _bond_valence(structure: Structure) -> dict[str, float] | None:
    from pymatgen.analysis.bond_valence import BVAnalyzer

    try:
        decorated = BVAnalyzer().get_oxi_state_decorated_structure(structure)
    except ValueError:
        return None
    out: dict[str, set[float]] = {}
    for site in decorated:
        for sp in site.species:
            out.setdefault(sp.symbol, set()).add(float(sp.oxi_state))
    if any(len(v) > 1 for v in out.values()):
        return None  # mixed valence: one charge per element is not enough for this helper
    return {el: next(iter(v)) for el, v in out.items()}


def decorate(structure: Structure, oxidation_states: dict[str, float]) -> Structure:
    """A copy of ``structure`` with oxidation states by element (site properties kept)."""
    out = structure.copy()
    out.remove_oxidation_states()
    out.add_oxidation_state_by_element(oxidation_states)
    return out
