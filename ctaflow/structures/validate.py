"""Checks a structure must pass before any calculation is built from it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ctaflow.errors import StructureError

if TYPE_CHECKING:
    from pymatgen.core import Structure

#: two atoms closer than this fraction of the sum of their atomic radii are "overlapping"
OVERLAP_FRACTION = 0.5


def validate_structure(
    structure: Structure, name: str = "structure", check_charge: bool = True
) -> None:
    """Raise :class:`StructureError` listing every problem found, with how to fix it.

    Checks: at least one site; only real elements; full occupancy (partially occupied sites must
    be ordered first); no two atoms closer than ``OVERLAP_FRACTION`` × (r_i + r_j) with pymatgen's
    atomic radii; charge balance under common oxidation states (skipped for pure metals and when
    ``check_charge`` is False).
    """
    problems = []
    if len(structure) == 0:
        raise StructureError(f"{name}: no atoms; check the file")
    unknown = sorted(
        {getattr(sp, "symbol", str(sp)) for sp in structure.composition if not _is_real_element(sp)}
    )
    if unknown:
        problems.append(
            f"unknown element(s) {', '.join(unknown)}; use element symbols from the periodic table"
        )
    if not structure.is_ordered:
        partial = sorted(
            {
                f"{site.species.formula} at site {i}"
                for i, site in enumerate(structure)
                if not site.is_ordered
            }
        )[:5]
        problems.append(
            "partial occupancy (" + "; ".join(partial) + "); ctaflow calculates ordered cells "
            "only: add 'order: {}' under 'structure:' in the campaign (ordered supercell by "
            "Ewald ranking), or fix the occupancies in the file"
        )
    if not unknown:
        close = closest_overlap(structure)
        if close is not None:
            i, j, dist, limit = close
            problems.append(
                f"atoms {i} ({structure[i].species_string}) and {j} "
                f"({structure[j].species_string}) are {dist:.2f} Å apart, closer than "
                f"{limit:.2f} Å; remove duplicated sites or fix the coordinates"
            )
    charge_checked = check_charge and not unknown and structure.is_ordered
    if (
        charge_checked
        and not _is_metal(structure)
        and not structure.composition.oxi_state_guesses(max_sites=-50)
    ):
        problems.append(
            f"composition {structure.composition.reduced_formula} is not charge balanced "
            "with common oxidation states; check the stoichiometry or occupancies"
        )
    if problems:
        raise StructureError(f"{name}: " + "\n  ".join(problems))


def closest_overlap(structure: Structure) -> tuple[int, int, float, float] | None:
    """The pair (i, j, distance Å, limit Å) that overlaps the most, or None."""
    radii = {sp: _radius(sp) for sp in structure.composition.elements}
    max_limit = OVERLAP_FRACTION * 2 * max(radii.values())
    worst = None
    centre, neigh, _, dist = structure.get_neighbor_list(max_limit)
    for i, j, d in zip(centre, neigh, dist, strict=True):
        if i >= j and not (i == j and d > 1e-8):
            continue
        limit = OVERLAP_FRACTION * (
            radii[structure[int(i)].specie] + radii[structure[int(j)].specie]
        )
        ratio = d / limit
        if d < limit and (worst is None or ratio < worst[0]):
            worst = (ratio, int(i), int(j), float(d), float(limit))
    return None if worst is None else worst[1:]


def closest_distance(structure: Structure, cutoff_a: float = 6.0) -> float | None:
    """Shortest interatomic distance (Å, periodic images included); None if none within
    ``cutoff_a``."""
    _, _, _, dist = structure.get_neighbor_list(cutoff_a)
    return float(dist.min()) if len(dist) else None


def _radius(species) -> float:
    el = getattr(species, "element", species)
    r = el.atomic_radius
    return float(r) if r is not None else 1.0


def _is_real_element(species) -> bool:
    from pymatgen.core import DummySpecies

    return not isinstance(species, DummySpecies)


def _is_metal(structure: Structure) -> bool:
    return all(el.is_metal for el in structure.composition.elements)
