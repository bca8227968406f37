"""Substitution series: species A replaced by B on chosen sites, evenly spaced in composition.

For the study's Na(5−x)Li(x)SmSi4O12 series: ``substitution_series(s, "Na", "Li", sites="mobile")``.

Rules
-----
- *Chosen sites* are the sites holding A selected by ``sites``: ``"all"``, a site class
  (``"mobile"``, ``"pillar"``, ``"framework"``, from the ``site_class`` property) or one or more
  ``label`` values (e.g. ``["Na4", "Na5"]``).
- With M chosen sites and ``n_compositions`` = n, member j has ``k_j = j·M/(n−1)`` substituted
  sites, so ``x = k/M`` runs evenly from 0 to 1; M must be divisible by n−1.
  ``x_per_formula_unit = k/Z`` with Z the formula units of the input cell (the study's x).
- For each intermediate k, ``n_samples`` arrangements are drawn (all of them when there are fewer;
  seeded). They are ranked by Ewald energy (point charges; pymatgen ``EwaldSummation``), ties
  broken by the largest smallest B–B distance (substituents spread out), then by draw order. For
  an isovalent substitution (Na⁺→Li⁺) every arrangement has the same Ewald energy, which is
  recorded as ``ewald_degenerate: true``: only the tie-breaks (and an energy function) decide.
- With an ``energy_function`` the ``mlip_top`` best arrangements by the rule above are
  re-ranked by its energy per atom.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, Field
from pymatgen.core import Composition, Element, Structure

from ctaflow.errors import StructureError
from ctaflow.structures._common import (
    derived_provenance,
    element_symbol,
    oxidation_states_for,
    sync_labels,
)
from ctaflow.structures.energies import EnergyFunction, describe_energy_function, ewald_energy

if TYPE_CHECKING:
    from collections.abc import Sequence

logger = logging.getLogger(__name__)

SITE_CLASSES = ("mobile", "pillar", "framework")


class SeriesMember(BaseModel):
    """One composition of the series. Energies in eV."""

    structure: Structure
    x: float = Field(description="Fraction of the chosen sites substituted (0 to 1).")
    x_per_formula_unit: float = Field(description="Substituted atoms per formula unit of input.")
    n_substituted: int
    composition: str
    ewald_energy_ev: float = Field(description="Ewald energy of the chosen arrangement, eV.")
    sampled_ewald_energies_ev: list[float] = Field(description="All sampled arrangements, eV.")
    mlip_energy_ev_per_atom: float | None = None
    n_arrangements_total: int = Field(description="C(M, k): all possible arrangements.")


class SeriesResult(BaseModel):
    """A substitution series, from x = 0 to x = 1."""

    members: list[SeriesMember]
    chosen_sites: list[int] = Field(description="Indices of the chosen sites in the input.")
    formula_unit: str = Field(description="Reduced formula whose units x_per_formula_unit counts.")
    n_formula_units: int
    ewald_degenerate: bool = Field(description="True when A and B carry the same charge.")
    settings: dict[str, Any] = Field(default_factory=dict)

    @property
    def structures(self) -> list[Structure]:
        """Structures from x = 0 to x = 1."""
        return [m.structure for m in self.members]


def choose_sites(
    structure: Structure, species: str, sites: str | Sequence[str] = "all"
) -> list[int]:
    """Indices of the sites of ``species`` selected by ``sites`` (see the module docstring).

    Raises
    ------
    StructureError
        When nothing matches; the message lists the labels and classes that hold ``species``.
    """
    on_species = [i for i, site in enumerate(structure) if element_symbol(site.specie) == species]
    if not on_species:
        present = sorted({element_symbol(s.specie) for s in structure})
        raise StructureError(
            f"no {species} in the structure (elements: {', '.join(present)}); check 'replace'"
        )
    props = structure.site_properties
    if isinstance(sites, str) and sites == "all":
        return on_species
    if isinstance(sites, str) and sites in SITE_CLASSES:
        classes = props.get("site_class")
        if classes is None:
            raise StructureError(
                f"sites='{sites}' needs the site_class property; classify the sites first "
                "(ctaflow.structures.sites.classify_sites) or choose sites by label or 'all'"
            )
        chosen = [i for i in on_species if classes[i] == sites]
    else:
        wanted = {sites} if isinstance(sites, str) else set(sites)
        labels = props.get("label", [s.label for s in structure])
        chosen = [i for i in on_species if labels[i] in wanted]
    if not chosen:
        labels = sorted({str(props.get("label", [None] * len(structure))[i]) for i in on_species})
        classes = sorted(
            {str(props.get("site_class", [None] * len(structure))[i]) for i in on_species}
        )
        raise StructureError(
            f"sites={sites!r} selects no {species} site; {species} sits on labels "
            f"{', '.join(labels)} with site classes {', '.join(classes)}"
        )
    return chosen


def substitution_series(
    structure: Structure,
    replace: str,
    by: str,
    sites: str | Sequence[str] = "all",
    n_compositions: int = 5,
    n_samples: int = 20,
    seed: int = 0,
    energy_function: EnergyFunction | None = None,
    mlip_top: int = 3,
    oxidation_states: dict[str, float] | str = "guess",
) -> SeriesResult:
    """Replace ``replace`` by ``by`` on the chosen sites in ``n_compositions`` even steps.

    Parameters
    ----------
    structure
        Ordered structure (order partial occupancies first with
        :func:`ctaflow.structures.order.order_structure`).
    replace, by
        Element symbols, e.g. ``"Na"`` and ``"Li"``.
    sites
        ``"all"``, a site class or label(s); see the module docstring.
    n_compositions
        Number of members including both end members (≥ 2).
    n_samples
        Arrangements drawn per intermediate composition.
    seed
        Seed of the draws (numpy ``default_rng``).
    energy_function
        Optional ``structure -> total energy (eV)``; re-ranks the ``mlip_top`` best.
    mlip_top
        How many of the best arrangements by Ewald / spread the energy function sees.
    oxidation_states
        For the Ewald sums: dict, ``"guess"`` or ``"bv"`` for the input; ``by`` takes the charge
        of ``replace`` when that is one of its common oxidation states, else its most common one.

    Raises
    ------
    StructureError
        Disordered input, unknown elements, no matching sites, or a number of chosen sites that
        cannot be split into ``n_compositions − 1`` equal steps (the message lists the n that
        work and the supercell that makes the requested n work).
    """
    if not structure.is_ordered:
        raise StructureError(
            "the structure has partial occupancies; order it first "
            "(ctaflow.structures.order.order_structure)"
        )
    for symbol in (replace, by):
        if not Element.is_valid_symbol(symbol):
            raise StructureError(f"unknown element '{symbol}'; use a symbol such as Na or Li")
    if n_compositions < 2:
        raise StructureError(f"n_compositions={n_compositions}; a series needs at least 2 members")
    chosen = choose_sites(structure, replace, sites)
    n_sites, steps = len(chosen), n_compositions - 1
    if n_sites % steps:
        working = [d + 1 for d in range(1, n_sites + 1) if n_sites % d == 0]
        factor = steps // math.gcd(n_sites, steps)
        raise StructureError(
            f"{n_sites} chosen {replace} sites cannot be split into {steps} equal steps for "
            f"n_compositions={n_compositions}; with {n_sites} sites n_compositions can be "
            f"{', '.join(map(str, working))}, or make a supercell with a multiple of {factor} "
            f"cells (then {n_sites * factor} sites)"
        )
    oxi = _charges(structure, replace, by, oxidation_states)
    degenerate = oxi[replace] == oxi[by]
    if not degenerate:
        logger.warning(
            "%s (%+g) and %s (%+g) differ in charge: substituted cells carry a net charge, "
            "which the Ewald sums compensate with a uniform background",
            replace,
            oxi[replace],
            by,
            oxi[by],
        )
    reduced, n_fu = structure.composition.get_reduced_composition_and_factor()
    rng = np.random.default_rng(seed)
    members = []
    for j in range(n_compositions):
        k = j * n_sites // steps
        draws = _draw(chosen, k, n_samples, rng)
        scored = []
        for order, subset in enumerate(draws):
            candidate = substitute_sites(structure, subset, by)
            energy = scored[0]["ewald"] if degenerate and scored else ewald_energy(candidate, oxi)
            scored.append(
                {"structure": candidate, "subset": subset, "ewald": energy, "order": order}
            )
        for entry in scored:
            entry["spread"] = _min_distance(entry["structure"], entry["subset"])
        scored.sort(key=lambda e: (round(e["ewald"], 6), -e["spread"], e["order"]))
        best, e_mlip = scored[0], None
        if energy_function is not None:
            for entry in scored[:mlip_top]:
                entry["mlip"] = float(energy_function(entry["structure"])) / len(structure)
            best = min(scored[:mlip_top], key=lambda e: e["mlip"])
            e_mlip = best["mlip"]
        members.append(_member(structure, chosen, best, scored, k, n_fu, e_mlip))
    settings = {
        "replace": replace,
        "by": by,
        "sites": sites if isinstance(sites, str) else list(sites),
        "n_compositions": n_compositions,
        "n_samples": n_samples,
        "seed": seed,
        "mlip_top": mlip_top,
        "oxidation_states": oxi,
        "energy_function": describe_energy_function(energy_function),
        "selection": "lowest Ewald, then largest smallest B-B distance, then draw order"
        + (
            "; then lowest energy_function energy among the best mlip_top"
            if energy_function
            else ""
        ),
    }
    for m in members:
        step = m.structure.properties.pop("_step")
        m.structure.properties["provenance"] = derived_provenance(
            structure, {"step": "substitute", **settings, **step, "ewald_degenerate": degenerate}
        )
    return SeriesResult(
        members=members,
        chosen_sites=chosen,
        formula_unit=reduced.reduced_formula,
        n_formula_units=int(n_fu),
        ewald_degenerate=degenerate,
        settings=settings,
    )


def _charges(
    structure: Structure, replace: str, by: str, requested: dict[str, float] | str
) -> dict[str, float]:
    if isinstance(requested, dict) and by in requested:
        host = {k: v for k, v in requested.items() if k != by}
        return {**oxidation_states_for(structure, host), by: float(requested[by])}
    oxi = oxidation_states_for(structure, requested)
    common = Element(by).common_oxidation_states
    if oxi[replace] in common or not common:
        oxi[by] = oxi[replace]
    else:
        oxi[by] = float(common[0])
    return oxi


def _draw(chosen: list[int], k: int, n_samples: int, rng: np.random.Generator) -> list[tuple]:
    """All k-subsets when there are at most ``n_samples``, else ``n_samples`` distinct ones."""
    total = math.comb(len(chosen), k)
    if total <= n_samples:
        import itertools

        return [tuple(c) for c in itertools.combinations(chosen, k)]
    seen: dict[tuple, None] = {}
    while len(seen) < n_samples:
        pick = tuple(sorted(rng.choice(chosen, size=k, replace=False).tolist()))
        seen.setdefault(pick, None)
    return list(seen)


def substitute_sites(structure: Structure, subset: tuple, by: str) -> Structure:
    """A copy with the sites ``subset`` set to ``by``; ``host_species`` keeps what stood there."""
    out = structure.copy()
    out.remove_oxidation_states()
    hosts = list(out.site_properties.get("host_species", [element_symbol(s.specie) for s in out]))
    for i in subset:
        hosts[i] = element_symbol(structure[i].specie)
        out[i].species = Composition({by: 1})
    out.add_site_property("host_species", hosts)
    sync_labels(out)
    return out


def _min_distance(structure: Structure, subset: tuple) -> float:
    """Smallest distance (Å, periodic) between substituted sites; inf for fewer than two."""
    if len(subset) < 2:
        return math.inf
    coords = structure.frac_coords[list(subset)]
    dist = structure.lattice.get_all_distances(coords, coords)
    return float(dist[~np.eye(len(subset), dtype=bool)].min())


def _member(structure, chosen, best, scored, k, n_fu, e_mlip) -> SeriesMember:
    out = best["structure"]
    n_sites, n_total = len(chosen), math.comb(len(chosen), k)
    labels = out.site_properties.get("label", [site.label for site in out])
    step = {
        "n_substituted": k,
        "x": k / n_sites,
        "x_per_formula_unit": k / n_fu,
        "n_chosen_sites": n_sites,
        "chosen_site_indices": [int(i) for i in chosen],
        "chosen_labels": sorted({str(labels[i]) for i in chosen}),
        "substituted_site_indices": [int(i) for i in best["subset"]],
        "composition": out.composition.formula,
        "ewald_energy_ev": best["ewald"],
        "sampled_ewald_energies_ev": [e["ewald"] for e in sorted(scored, key=lambda e: e["order"])],
        "n_sampled": len(scored),
        "n_arrangements_total": n_total,
        "mlip_energy_ev_per_atom": e_mlip,
    }
    out.properties = {**(structure.properties or {}), "_step": step}
    return SeriesMember(
        structure=out,
        x=k / n_sites,
        x_per_formula_unit=k / n_fu,
        n_substituted=k,
        composition=out.composition.formula,
        ewald_energy_ev=best["ewald"],
        sampled_ewald_energies_ev=step["sampled_ewald_energies_ev"],
        mlip_energy_ev_per_atom=e_mlip,
        n_arrangements_total=n_total,
    )
