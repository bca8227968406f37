"""Charge-neutral mobile-ion defects in a supercell: vacancies and interstitials.

Why: a perfect crystal of a vacancy-mediated conductor (e.g. the antiperovskite Na3OCl) shows no
hops on an MD time scale; transport needs carriers. Three neutral recipes:

* ``schottky``: remove ``count`` formula-neutral sets of the mobile ion and one counter-ion. The
  set is the smallest neutral combination of the two (Na⁺ + Cl⁻ for Na3OCl; 2 Na⁺ + O²⁻ if the
  partner is O), unless ``partner`` names the counter-ion.
* ``aliovalent``: remove ``count`` mobile ions and compensate by substituting ``replace`` → ``by``
  where the charge rises (Na⁺ → Ca²⁺, O²⁻ → Cl⁻): ``count · q_ion / (q_by − q_replace)`` sites.
* ``interstitial``: add ``count`` mobile ions (given fractional positions, or the centres of the
  largest empty spheres, one after another) and compensate by a substitution that lowers the
  charge (Cl⁻ → O²⁻, Ca²⁺ → Na⁺).

The sites are drawn with a seeded generator among the sites of the ion whose ``site_class`` is
``mobile`` (``sites="mobile"``, the default) or among all its sites (``sites="any"``). The site
properties ``label``, ``site_class`` and ``host_species`` stay aligned with the sites; what was
done (parent indices, species, positions, seed, oxidation states) is recorded in
``properties["defects"]`` and as one step of ``properties["provenance"]``.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pymatgen.core import Element, Structure

from ctaflow.errors import StructureError
from ctaflow.structures._common import (
    derived_provenance,
    element_symbol,
    oxidation_states_for,
    sync_labels,
)
from ctaflow.structures.validate import closest_overlap


class DefectSettings(BaseModel):
    """Which defects to make in the (super)cell; a structure-level setting (md, neb, amorphous)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["schottky", "aliovalent", "interstitial"] = Field(
        description="schottky: remove neutral sets; aliovalent: vacancies compensated by "
        "substitution; interstitial: extra ions compensated by substitution."
    )
    species: str = Field(description="The mobile ion whose vacancies / interstitials are made.")
    count: int = Field(
        1,
        ge=1,
        description="schottky: neutral sets removed; aliovalent: vacancies; interstitial: ions "
        "added.",
    )
    partner: str | None = Field(
        None, description="schottky: the counter-ion (default: smallest neutral set)."
    )
    replace: str | None = Field(None, description="aliovalent / interstitial: element replaced.")
    by: str | None = Field(None, description="aliovalent / interstitial: element put in its place.")
    seed: int = Field(0, description="Seed of the choice of sites.")
    sites: Literal["mobile", "any"] = Field(
        "mobile", description="Vacancies on sites of site_class 'mobile' only, or on any site."
    )
    interstitial_positions: list[tuple[float, float, float]] | None = Field(
        None,
        description="interstitial: fractional positions to fill (default: largest empty spheres).",
    )
    oxidation_states: dict[str, float] | None = Field(
        None,
        description="Charges by element (default: guessed from the structure; 'by' from its "
        "common oxidation state with the sign of the element it replaces).",
    )
    max_fraction: float = Field(
        0.25,
        gt=0,
        le=1,
        description="Largest fraction of the sites of any element removed or replaced: a dilute "
        "defect, not another compound (raise the supercell size instead).",
    )

    @model_validator(mode="after")
    def _fields_of_kind(self) -> DefectSettings:
        if self.kind == "schottky" and (self.replace or self.by):
            raise ValueError("schottky defects take 'partner', not 'replace' / 'by'")
        if self.kind != "schottky" and self.partner:
            raise ValueError(f"{self.kind} defects take 'replace' and 'by', not 'partner'")
        if self.kind != "schottky" and not (self.replace and self.by):
            raise ValueError(
                f"{self.kind} defects need the compensating substitution: set 'replace' "
                "and 'by' (e.g. replace: Na, by: Ca)"
            )
        if self.kind != "interstitial" and self.interstitial_positions:
            raise ValueError("interstitial_positions is only for kind 'interstitial'")
        return self


class DefectRecord(BaseModel):
    """What :func:`make_defects` did. Indices refer to the parent structure's sites."""

    kind: str
    species: str
    count: int
    seed: int
    sites: str
    removed_indices: list[int] = Field(default_factory=list)
    removed_species: list[str] = Field(default_factory=list)
    removed_labels: list[str | None] = Field(default_factory=list)
    substituted_indices: list[int] = Field(default_factory=list)
    substituted_from: str | None = None
    substituted_to: str | None = None
    added_frac_coords: list[list[float]] = Field(default_factory=list)
    added_clearance_a: list[float] = Field(
        default_factory=list, description="Distance of each added ion to its nearest atom, Å."
    )
    oxidation_states: dict[str, float]
    total_charge_e: float = Field(description="Σ oxidation states of the defective cell (0).")


def make_defects(structure: Structure, settings: DefectSettings) -> Structure:
    """A copy of ``structure`` with the neutral defects of ``settings`` (see module docstring).

    Raises
    ------
    StructureError
        When the request cannot be neutral (wrong direction or non-integer number of
        substitutions, a partner of the same sign), names absent elements, or the cell is too
        small (more than ``max_fraction`` of an element's sites, or every one of them, changed).
    """
    ox = _charges(structure, settings)
    total = sum(ox[element_symbol(s.specie)] for s in structure)
    if abs(total) > 1e-6:
        raise StructureError(
            f"{structure.composition.reduced_formula} is not neutral with oxidation states {ox} "
            f"(total {total:+g} e); pass defects.oxidation_states that balance it"
        )
    rng = np.random.default_rng(settings.seed)
    record = DefectRecord(
        kind=settings.kind,
        species=settings.species,
        count=settings.count,
        seed=settings.seed,
        sites=settings.sites,
        oxidation_states=ox,
        total_charge_e=0.0,
    )
    out = structure.copy()
    q_ion = ox[settings.species]
    if settings.kind == "schottky":
        partner, n_ion, n_partner = schottky_set(ox, settings.species, settings.partner)
        ions = _draw(structure, _ion_sites(structure, settings), n_ion * settings.count, rng)
        others = _draw(
            structure, _element_sites(structure, partner), n_partner * settings.count, rng
        )
        _check_fraction(structure, settings, {settings.species: len(ions), partner: len(others)})
        removed = sorted(ions + others)
    else:
        dq = ox[settings.by] - ox[settings.replace]
        sign = -1.0 if settings.kind == "aliovalent" else 1.0  # charge change to compensate
        n_sub = _substitutions(sign * q_ion * settings.count, dq, settings)
        removed = []
        if settings.kind == "aliovalent":
            removed = sorted(_draw(structure, _ion_sites(structure, settings), settings.count, rng))
        pool = [i for i in _element_sites(structure, settings.replace) if i not in removed]
        subs = sorted(_draw(structure, pool, n_sub, rng))
        changed = {settings.replace: len(subs)}
        if removed:
            changed[settings.species] = changed.get(settings.species, 0) + len(removed)
        _check_fraction(structure, settings, changed)
        for i in subs:
            site = out[i]
            out.replace(
                i, settings.by, site.frac_coords, properties=dict(site.properties), label=site.label
            )
        record.substituted_indices = subs
        record.substituted_from, record.substituted_to = settings.replace, settings.by
    record.removed_indices = removed
    record.removed_species = [element_symbol(structure[i].specie) for i in removed]
    record.removed_labels = [
        structure.site_properties.get("label", [None] * len(structure))[i] for i in removed
    ]
    out.remove_sites(removed)
    if settings.kind == "interstitial":
        _add_interstitials(out, settings, rng, record)
    sync_labels(out)
    record.total_charge_e = float(sum(ox[element_symbol(s.specie)] for s in out))
    if abs(record.total_charge_e) > 1e-6:  # pragma: no cover - guarded by the arithmetic above
        raise StructureError(f"defective cell has charge {record.total_charge_e:+g} e")
    step = {"step": "defects", **record.model_dump()}
    out.properties = {
        **(structure.properties or {}),
        "defects": record.model_dump(),
        "provenance": derived_provenance(structure, step),
    }
    return out


def schottky_set(
    oxidation_states: dict[str, float], species: str, partner: str | None = None
) -> tuple[str, int, int]:
    """(partner, n_ion, n_partner): the smallest neutral set of ``species`` and a counter-ion.

    Among the elements of opposite charge (or ``partner``), the one whose set has the fewest
    atoms; ties go to the smaller charge, then the element symbol. Charges must be integers.
    """
    q = oxidation_states[species]
    if q == 0:
        raise StructureError(f"{species} has oxidation state 0: it cannot form a Schottky set")
    if partner is not None:
        if partner not in oxidation_states:
            raise StructureError(f"partner {partner} is not in the structure")
        candidates = [partner]
    else:
        candidates = [el for el, v in oxidation_states.items() if v * q < 0]
    best = None
    for el in candidates:
        qa = oxidation_states[el]
        if qa * q >= 0:
            raise StructureError(
                f"partner {el} ({qa:+g}) does not carry the opposite charge of {species} ({q:+g}); "
                "choose a counter-ion of opposite sign"
            )
        if not (float(q).is_integer() and float(qa).is_integer()):
            raise StructureError(
                f"non-integer oxidation states ({species} {q:+g}, {el} {qa:+g}): no integer "
                "neutral set; pass integer defects.oxidation_states"
            )
        g = math.gcd(int(abs(q)), int(abs(qa)))
        n_ion, n_el = int(abs(qa)) // g, int(abs(q)) // g
        key = (n_ion + n_el, abs(qa), el)
        if best is None or key < best[0]:
            best = (key, el, n_ion, n_el)
    if best is None:
        raise StructureError(f"no element of opposite charge to {species} for a Schottky set")
    return best[1], best[2], best[3]


def _charges(structure: Structure, settings: DefectSettings) -> dict[str, float]:
    """Oxidation states of the structure's elements and of ``settings.by``."""
    present = {el.symbol for el in structure.composition.elements}
    given = dict(settings.oxidation_states or {})
    known = {k: v for k, v in given.items() if k in present}
    ox = oxidation_states_for(structure, known or "guess")
    for name in (settings.species, settings.partner, settings.replace):
        if name is not None and name not in present:
            raise StructureError(
                f"{name} is not in {structure.composition.reduced_formula}; the defect needs "
                f"an element of the structure ({', '.join(sorted(present))})"
            )
    if settings.by is not None and settings.by not in ox:
        if settings.by in given:
            ox[settings.by] = float(given[settings.by])
        else:
            sign = np.sign(ox[settings.replace])
            states = [s for s in Element(settings.by).common_oxidation_states if s * sign > 0]
            if len(states) != 1:
                raise StructureError(
                    f"no unique common oxidation state of {settings.by} with the sign of "
                    f"{settings.replace} ({states}); set defects.oxidation_states: "
                    f"{{{settings.by}: ...}}"
                )
            ox[settings.by] = float(states[0])
    return ox


def _substitutions(charge_to_compensate: float, dq: float, settings: DefectSettings) -> int:
    """Number of ``replace → by`` substitutions whose charge change cancels the defects'."""
    what = "vacancies" if settings.kind == "aliovalent" else "interstitials"
    need = -charge_to_compensate  # the substitutions must bring this much charge
    if dq == 0 or need / dq <= 0:
        hint = (
            "a higher-charged ion on a lower-charged site, e.g. Na -> Ca or O -> Cl"
            if need > 0
            else "a lower-charged ion on a higher-charged site, e.g. Cl -> O or Ca -> Na"
        )
        raise StructureError(
            f"{settings.count} {settings.species} {what} leave {-need:+g} e, and "
            f"{settings.replace} -> {settings.by} changes the charge by {dq:+g} e per site: "
            f"this cannot be neutral; use {hint}"
        )
    n = need / dq
    if abs(n - round(n)) > 1e-6:
        raise StructureError(
            f"{settings.count} {settings.species} {what} need {n:g} {settings.replace} -> "
            f"{settings.by} substitutions, not a whole number; change count"
        )
    return round(n)


def _element_sites(structure: Structure, element: str) -> list[int]:
    return [i for i, s in enumerate(structure) if element_symbol(s.specie) == element]


def _ion_sites(structure: Structure, settings: DefectSettings) -> list[int]:
    """Sites of the mobile ion eligible for vacancies (site class ``mobile`` by default)."""
    sites = _element_sites(structure, settings.species)
    if settings.sites == "mobile":
        classes = structure.site_properties.get("site_class")
        if classes is None:
            raise StructureError(
                "sites='mobile' needs the site property 'site_class' (add structure.classify "
                "to the campaign) or use sites: any"
            )
        sites = [i for i in sites if classes[i] == "mobile"]
        if not sites:
            raise StructureError(
                f"no {settings.species} site has site_class 'mobile'; use sites: any or "
                "classify the structure"
            )
    return sites


def _draw(structure: Structure, pool: list[int], n: int, rng: np.random.Generator) -> list[int]:
    """``n`` distinct sites of ``pool`` drawn with ``rng``; all of them must not be taken."""
    if n >= len(pool):
        el = element_symbol(structure[pool[0]].specie) if pool else "?"
        raise StructureError(
            f"the cell has {len(pool)} eligible {el} sites and {n} are to change: too small "
            f"({structure.composition.reduced_formula}, {len(structure)} atoms); use a larger "
            "supercell (supercell_min_width_a) or a smaller count"
        )
    return [int(i) for i in rng.choice(pool, size=n, replace=False)]


def _check_fraction(structure: Structure, settings: DefectSettings, changed: dict) -> None:
    for el, n in changed.items():
        total = len(_element_sites(structure, el))
        if n > settings.max_fraction * total:
            raise StructureError(
                f"{n} of {total} {el} sites would change ({n / total:.0%} > max_fraction "
                f"{settings.max_fraction:.0%}): not a dilute defect in a "
                f"{len(structure)}-atom cell; use a larger supercell (supercell_min_width_a) "
                "or a smaller count"
            )


def empty_sphere_centres(
    structure: Structure, tol_a: float = 1e-3
) -> tuple[np.ndarray, np.ndarray]:
    """Centres (fractional) of locally largest empty spheres and their radii (Å), largest first.

    The vertices of the periodic Voronoi diagram of the atoms are the points locally farthest
    from every atom; the radius is the distance to the nearest atom. Duplicates within ``tol_a``
    (including periodic images) are merged.
    """
    from scipy.spatial import Voronoi, cKDTree

    lat = structure.lattice.matrix
    shifts = np.array([(i, j, k) for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)])
    frac = np.mod(structure.frac_coords, 1.0)
    images = (frac[None, :, :] + shifts[:, None, :]).reshape(-1, 3) @ lat
    vertices = Voronoi(images).vertices
    vfrac = vertices @ np.linalg.inv(lat)
    inside = np.all((vfrac >= -1e-9) & (vfrac < 1 - 1e-9), axis=1)
    vfrac = np.mod(vfrac[inside], 1.0)
    radii, _ = cKDTree(images).query(vfrac @ lat)
    order = np.argsort(-radii, kind="stable")
    kept: list[int] = []
    for i in order:
        if all(_periodic_distance(lat, vfrac[i], vfrac[j]) > tol_a for j in kept):
            kept.append(i)
    return vfrac[kept], radii[kept]


def _periodic_distance(lat: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    d = a - b
    d -= np.round(d)
    return float(np.linalg.norm(d @ lat))


def _add_interstitials(
    out: Structure, settings: DefectSettings, rng: np.random.Generator, record: DefectRecord
) -> None:
    """Add ``count`` ions: the given positions, or each time one of the largest empty spheres
    (ties within 0.05 Å, e.g. symmetry-equivalent voids, broken by ``rng``)."""

    given = settings.interstitial_positions
    if given is not None and len(given) < settings.count:
        raise StructureError(
            f"{len(given)} interstitial_positions for count {settings.count}; give one per ion"
        )
    keys = list(out.site_properties)
    for k in range(settings.count):
        if given is not None:
            pos = np.asarray(given[k], dtype=float)
        else:
            centres, radii = empty_sphere_centres(out)
            ties = np.flatnonzero(radii >= radii[0] - 0.05)
            pos = centres[int(rng.choice(ties))]
        props = {key: None for key in keys}
        props.update(
            label=f"{settings.species}_i", site_class="mobile", host_species=settings.species
        )
        out.append(settings.species, pos, properties={k_: props[k_] for k_ in keys})
        out[-1].label = f"{settings.species}_i"
        overlap = closest_overlap(out)
        if overlap is not None:
            i, j, dist, limit = overlap
            raise StructureError(
                f"interstitial {settings.species} at {np.round(pos, 4).tolist()} is {dist:.2f} Å "
                f"from atom {j if i == len(out) - 1 else i} (limit {limit:.2f} Å): no room; give "
                "other interstitial_positions or use vacancies"
            )
        dists = out.lattice.get_all_distances(pos, out.frac_coords[:-1])[0]
        record.added_frac_coords.append([float(x) for x in pos])
        record.added_clearance_a.append(float(dists.min()))
