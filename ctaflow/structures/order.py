"""Ordering of partial occupancy into distinct ordered supercells with exact stoichiometry.

How it works
------------
1. Sites are grouped the way pymatgen's
   :class:`~pymatgen.transformations.standard_transformations.OrderDisorderedStructureTransformation`
   groups them: same species and occupancies (``Composition.almost_equals``) and, with
   ``group_by="label"`` (default), the same ``label`` site property, so that every crystallographic
   site (e.g. Na4, Na5) keeps its own occupancy after ordering. With ``group_by="species"`` all
   sites with the same partial occupancy form one group (pymatgen's default).
2. The supercell multiplicity ``k`` is the smallest integer for which every group holds a whole
   number of atoms of every species (within ``atom_tolerance``); the supercell is the diagonal
   ``[a, b, c]`` with ``a·b·c = k`` whose smallest perpendicular width is largest. A supercell given
   by the caller is checked the same way.
3. Oxidation states (guessed, bond valence or given) decorate the supercell; the transformation
   (``algo=ALGO_FAST``, an Ewald branch and bound) returns a ranked list of orderings, duplicates
   by symmetry are removed with :class:`~pymatgen.analysis.structure_matcher.StructureMatcher`.
4. Optionally the distinct orderings are re-ranked by an MLIP energy function.

Step 3 stops after ``max_enumeration_s`` seconds with a :class:`StructureError` that names the
setting: pymatgen's branch and bound has no limit of its own and can take minutes for a few dozen
partially occupied sites (a rock-salt 2x2x1 supercell with half the Na and half the Cl sites
empty, 165,636,900 labelled orderings, took 79 s for the lowest ordering and 185 s for 500 on
this 2-core machine).

The transformation keeps site properties; ctaflow additionally resets pymatgen labels to the
``label`` property (pymatgen appends ``_1``, ``_2`` in supercells) and sets ``host_species`` of
every formerly disordered site to the element now on it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, Field
from pymatgen.core import Composition, Species, Structure

from ctaflow.errors import StructureError
from ctaflow.structures._common import (
    derived_provenance,
    element_symbol,
    ensure_labels,
    oxidation_states_for,
    sync_labels,
)
from ctaflow.structures._timelimit import Deadline, DeadlineExceeded, ewald_deadline
from ctaflow.structures.energies import EnergyFunction, describe_energy_function
from ctaflow.structures.ordering_cells import (
    GroupBy,
    as_matrix,
    diagonal_supercell,
    group_totals,
    n_orderings,
    ordering_groups,
    required_multiplicity,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

logger = logging.getLogger(__name__)


class OrderedCandidate(BaseModel):
    """One ordered supercell. Energies in eV."""

    structure: Structure = Field(description="Ordered supercell, oxidation states as in input.")
    rank: int = Field(description="Final rank, 0 = best (by Ewald or by the MLIP).")
    ewald_rank: int = Field(description="Rank among the distinct orderings by Ewald energy.")
    ewald_energy_ev: float = Field(description="Ewald energy of the supercell, eV.")
    ewald_energy_above_minimum_ev_per_atom: float = Field(
        description="Ewald energy above the lowest ordering found, eV/atom."
    )
    mlip_energy_ev_per_atom: float | None = Field(
        None, description="Energy from the energy function, eV/atom (None when not used)."
    )


class OrderingResult(BaseModel):
    """Distinct ordered supercells of one disordered structure, best first."""

    candidates: list[OrderedCandidate]
    supercell: list[list[int]] = Field(description="Supercell matrix applied to the input cell.")
    multiplicity: int = Field(description="Number of input cells in the supercell.")
    oxidation_states: dict[str, float]
    n_requested: int
    n_orderings_total: int = Field(description="Number of labelled orderings (before symmetry).")
    settings: dict[str, Any] = Field(default_factory=dict)

    @property
    def structures(self) -> list[Structure]:
        """The ordered structures, best first."""
        return [c.structure for c in self.candidates]


def order_structure(
    structure: Structure,
    supercell: Sequence[int] | Sequence[Sequence[int]] | None = None,
    n_structures: int = 3,
    rank_by: Literal["ewald", "mlip"] = "ewald",
    energy_function: EnergyFunction | None = None,
    oxidation_states: dict[str, float] | str = "guess",
    group_by: GroupBy = "label",
    atom_tolerance: float = 0.05,
    max_multiplicity: int = 64,
    max_candidates: int = 500,
    seed: int = 0,
    max_enumeration_s: float | None = 300.0,
) -> OrderingResult:
    """Order partial occupancies into ``n_structures`` distinct ordered supercells.

    Parameters
    ----------
    structure
        Structure with partial occupancies (vacancies and mixed occupancy both work).
    supercell
        ``[a, b, c]`` or a 3x3 matrix; ``None`` chooses the smallest supercell that makes every
        partial occupancy a whole number of atoms (:func:`required_multiplicity`).
    n_structures
        Number of distinct (not equivalent by StructureMatcher) orderings to return.
    rank_by
        ``"ewald"`` or ``"mlip"`` (re-rank the Ewald-preselected distinct orderings by
        ``energy_function`` energy per atom).
    energy_function
        Callable ``structure -> total energy (eV)``, e.g.
        :func:`ctaflow.structures.energies.calculator_energy_function`. When given with
        ``rank_by="ewald"`` its energies are only recorded.
    oxidation_states
        Dict ``{element: charge}``, ``"guess"`` or ``"bv"``; see
        :func:`ctaflow.structures._common.oxidation_states_for`.
    group_by
        ``"label"`` keeps the occupancy of each labelled site; ``"species"`` lets atoms move
        between sites of equal occupancy.
    atom_tolerance
        Accepted deviation from whole atoms per group (see :func:`required_multiplicity`).
    max_multiplicity
        Largest automatic supercell (number of cells).
    max_candidates
        Number of lowest-Ewald orderings requested from the transformation (one call; the
        branch and bound costs nearly the same for 1 or 500), among which the distinct ones are
        collected. A symmetric supercell repeats each ordering up to (number of symmetry
        operations) times, so raise it when fewer distinct orderings than asked come back.
    seed
        Seed of the random orderings drawn when the disorder is isovalent without vacancies
        (e.g. Na/Li, Cl/Br): then every ordering has the same Ewald energy, the branch and bound
        cannot prune and would enumerate them all, so ctaflow samples ``max_candidates``
        orderings instead, records ``ewald_degenerate: true`` and logs a warning (use
        ``rank_by="mlip"`` to rank them).
    max_enumeration_s
        Wall-time limit in seconds for finding the orderings (Ewald branch and bound or random
        sampling, and the removal of symmetry-equivalent ones); ``None``: no limit. When it is
        reached the search is stopped and a :class:`StructureError` says which setting to change.

    Returns
    -------
    OrderingResult
        Candidates best first; fewer than ``n_structures`` only when fewer distinct orderings
        exist (a warning is logged).

    Raises
    ------
    StructureError
        Already ordered input, a supercell that leaves fractional atoms (the message names the
        multiplicity needed), missing oxidation states, ``rank_by="mlip"`` without a function,
        or orderings not found within ``max_enumeration_s``.
    """
    from pymatgen.transformations.standard_transformations import (
        OrderDisorderedStructureTransformation,
    )

    if structure.is_ordered:
        raise StructureError("the structure has no partial occupancy; there is nothing to order")
    if rank_by not in ("ewald", "mlip"):
        raise StructureError(f"rank_by={rank_by!r} is not known; use 'ewald' or 'mlip'")
    if rank_by == "mlip" and energy_function is None:
        raise StructureError("rank_by='mlip' needs an energy_function (structure -> energy, eV)")
    if n_structures < 1:
        raise StructureError(f"n_structures={n_structures}; ask for at least one structure")
    if max_enumeration_s is not None and max_enumeration_s <= 0:
        raise StructureError(f"max_enumeration_s={max_enumeration_s}; give a positive time or None")
    deadline = Deadline(max_enumeration_s)
    work = structure.copy()
    ensure_labels(work)
    input_has_oxi = any(isinstance(sp, Species) for sp in work.composition)
    needed = required_multiplicity(work, group_by, atom_tolerance, max_multiplicity)
    if supercell is None:
        matrix = np.diag(diagonal_supercell(work, needed)).tolist()
    else:
        matrix = as_matrix(supercell)
        k = round(abs(np.linalg.det(matrix)))
        if k % needed:
            raise StructureError(
                f"supercell {supercell!r} holds {k} cell(s), which leaves fractional atoms on "
                f"the partially occupied sites; the number of cells must be a multiple of "
                f"{needed}, e.g. supercell={diagonal_supercell(work, needed)} (or supercell=None "
                "to choose it automatically)"
            )
    multiplicity = round(abs(np.linalg.det(matrix)))
    big = work.make_supercell(matrix, in_place=False)
    big_groups = ordering_groups(big, group_by)
    oxi = _oxidation_states(big, oxidation_states)
    decorated = big.copy()
    decorated.remove_oxidation_states()
    decorated.add_oxidation_state_by_element(oxi)
    target = _prepare_for_transformation(decorated, big_groups, group_by)
    n_total = n_orderings(big, big_groups)

    degenerate = _ewald_degenerate(big, big_groups, oxi)
    n_considered = min(n_total, max_candidates)
    try:
        if degenerate:
            logger.warning(
                "isovalent disorder without vacancies: every ordering has the same Ewald energy; "
                "orderings are sampled at random (seed %d); rank them with rank_by='mlip'",
                seed,
            )
            entries = _random_orderings(decorated, big_groups, n_total, max_candidates, seed)
            distinct, n_considered = _distinct(entries, n_structures, deadline)
        else:
            transformation = OrderDisorderedStructureTransformation(
                algo=OrderDisorderedStructureTransformation.ALGO_FAST,
                symmetrized_structures=group_by == "label",
                occ_tol=atom_tolerance + 1e-6,
            )
            # one call: the branch and bound costs about as much for 1 as for hundreds of
            # orderings (rock-salt case of the module docstring: 79 s for 1, 109 s for 20)
            with ewald_deadline(deadline):
                ranked = transformation.apply_transformation(
                    target, return_ranked_list=n_considered
                )
            distinct, _ = _distinct(ranked, n_structures, deadline)
    except DeadlineExceeded as stop:
        n_sites = sum(len(g) for g in big_groups)
        raise StructureError(
            f"ordering the partial occupancies did not finish within max_enumeration_s = "
            f"{max_enumeration_s:g} s and was stopped during {stop.args[0]} (supercell "
            f"{matrix}, {n_sites} partially occupied sites, {n_total:.3g} labelled orderings, "
            f"the {n_considered} lowest asked for); raise max_enumeration_s (campaign file: "
            "structure.order.max_enumeration_s), or make the problem smaller: a smaller "
            "supercell (structure.order.supercell), fewer orderings (max_candidates; campaign "
            "file: structure.order.max_orderings) or occupancies that need a smaller cell"
        ) from None
    if len(distinct) < n_structures:
        exhausted = n_considered >= n_total
        logger.warning(
            "only %d distinct orderings %s (%d asked for)",
            len(distinct),
            "exist"
            if exhausted
            else f"among the {n_considered} examined; raise max_candidates (campaign file: "
            "structure.order.max_orderings) for more",
            n_structures,
        )

    e_min = distinct[0]["energy"]
    candidates = []
    for ewald_rank, entry in enumerate(distinct):
        ordered = _finish(entry["structure"], big, input_has_oxi)
        e_mlip = None
        if energy_function is not None:
            e_mlip = float(energy_function(ordered)) / len(ordered)
        candidates.append(
            {
                "structure": ordered,
                "ewald_rank": ewald_rank,
                "ewald_energy_ev": float(entry["energy"]),
                "ewald_energy_above_minimum_ev_per_atom": float(entry["energy"] - e_min)
                / len(ordered),
                "mlip_energy_ev_per_atom": e_mlip,
            }
        )
    if rank_by == "mlip":
        candidates.sort(key=lambda c: c["mlip_energy_ev_per_atom"])
    settings = {
        "transformation": "pymatgen OrderDisorderedStructureTransformation",
        "algo": "fast",
        "group_by": group_by,
        "rank_by": rank_by,
        "atom_tolerance": atom_tolerance,
        "energy_function": describe_energy_function(energy_function),
        "structure_matcher": "pymatgen StructureMatcher defaults",
        "ewald_degenerate": degenerate,
        "selection": (
            f"random orderings (seed {seed}); Ewald energy identical for all (isovalent)"
            if degenerate
            else "lowest Ewald energies (branch and bound, ALGO_FAST)"
        ),
        "n_orderings_considered": n_considered,
        "max_enumeration_s": max_enumeration_s,
    }
    out = []
    for rank, cand in enumerate(candidates):
        step = {
            "step": "order",
            **settings,
            "supercell": matrix,
            "multiplicity": multiplicity,
            "oxidation_states": oxi,
            "rank": rank,
            "ewald_rank": cand["ewald_rank"],
            "ewald_energy_ev": cand["ewald_energy_ev"],
            "ewald_energy_above_minimum_ev_per_atom": cand[
                "ewald_energy_above_minimum_ev_per_atom"
            ],
            "mlip_energy_ev_per_atom": cand["mlip_energy_ev_per_atom"],
            "n_distinct": len(candidates),
            "composition": cand["structure"].composition.formula,
        }
        cand["structure"].properties = {
            **(structure.properties or {}),
            "provenance": derived_provenance(structure, step),
        }
        out.append(OrderedCandidate(rank=rank, **cand))
    return OrderingResult(
        candidates=out,
        supercell=matrix,
        multiplicity=multiplicity,
        oxidation_states=oxi,
        n_requested=n_structures,
        n_orderings_total=n_total,
        settings=settings,
    )


def _ewald_degenerate(big: Structure, groups: list[list[int]], oxi: dict[str, float]) -> bool:
    """True when every group mixes species of one charge and has no vacancies."""
    for group, totals in zip(groups, group_totals(big, groups), strict=True):
        charges = {oxi[element_symbol(sp)] for sp in big[group[0]].species}
        if len(charges) > 1 or round(sum(totals.values())) != len(group):
            return False
    return True


def _random_orderings(
    decorated: Structure, groups: list[list[int]], n_total: int, n_max: int, seed: int
) -> Iterator[dict]:
    """Up to ``n_max`` different random labelled orderings, drawn lazily.

    All share one Ewald energy (the caller checked that the disorder is isovalent).
    """
    from pymatgen.analysis.ewald import EwaldSummation

    rng = np.random.default_rng(seed)
    totals = group_totals(decorated, groups)
    seen: set[tuple] = set()
    energy = None
    attempts = 0
    while len(seen) < min(n_max, n_total) and attempts < 20 * n_max:
        attempts += 1
        species_of: dict[int, str] = {}
        for group, counts in zip(groups, totals, strict=True):
            order = rng.permutation(group).tolist()
            for sp, n in counts.items():
                for _ in range(round(n)):
                    species_of[order.pop()] = sp
        key = tuple(sorted(species_of.items()))
        if key in seen:
            continue
        seen.add(key)
        ordered = decorated.copy()
        for idx, sp in species_of.items():
            ordered[idx].species = Composition({sp: 1})
        if energy is None:
            energy = float(EwaldSummation(ordered).total_energy)
        yield {"structure": ordered, "energy": energy}


def _distinct(
    entries: Iterable[dict], n_structures: int, deadline: Deadline | None = None
) -> tuple[list[dict], int]:
    """The first ``n_structures`` entries not equivalent by StructureMatcher to an earlier one.

    Equivalent orderings have equal Ewald energies, so only entries within ``1e-6`` eV per atom
    of each other are compared with the matcher. Returns the distinct entries and the number
    of entries examined. Raises :class:`DeadlineExceeded` once ``deadline`` has passed.
    """
    from pymatgen.analysis.structure_matcher import StructureMatcher

    matcher = StructureMatcher()
    distinct: list[dict] = []
    n_seen = 0
    for entry in entries:
        if deadline is not None:
            deadline.check("the removal of symmetry-equivalent orderings")
        n_seen += 1
        tol = 1e-6 * len(entry["structure"])
        ties = [d for d in distinct if abs(d["energy"] - entry["energy"]) <= tol]
        reduced = _reduced(entry["structure"]) if ties else None
        if not any(matcher.fit(reduced, d["reduced"], skip_structure_reduction=True) for d in ties):
            distinct.append({**entry, "reduced": reduced or _reduced(entry["structure"])})
        if len(distinct) == n_structures:
            break
    return distinct, n_seen


def _oxidation_states(big: Structure, requested: dict[str, float] | str) -> dict[str, float]:
    """Oxidation states for the supercell; an existing one-charge-per-element decoration wins."""
    found: dict[str, set[float]] = {}
    for sp in big.composition:
        if getattr(sp, "oxi_state", None) is not None:
            found.setdefault(element_symbol(sp), set()).add(float(sp.oxi_state))
    complete = len(found) == len(big.composition.elements)
    if requested == "guess" and complete and all(len(v) == 1 for v in found.values()):
        return {el: next(iter(v)) for el, v in found.items()}
    plain = big.copy()
    plain.remove_oxidation_states()
    return oxidation_states_for(plain, requested)


def _prepare_for_transformation(decorated: Structure, groups: list[list[int]], group_by: GroupBy):
    """With ``group_by="label"`` wrap the structure so that the transformation groups by label.

    The transformation groups sites by symmetry when handed a ``SymmetrizedStructure``
    (``symmetrized_structures=True``); giving it one whose "equivalent sites" are the label
    groups makes it keep each label's occupancy. No symmetry analysis is run.
    """
    if group_by != "label":
        return decorated
    from pymatgen.symmetry.structure import SymmetrizedStructure

    group_of = np.arange(len(decorated)) + len(groups)  # ordered sites: one group each
    for g, group in enumerate(groups):
        group_of[group] = g
    letters = [str(x) for x in decorated.site_properties["label"]]
    return SymmetrizedStructure(decorated, None, group_of.tolist(), letters)


def _finish(ordered: Structure, disordered: Structure, keep_oxi: bool) -> Structure:
    """Labels as CIF labels, ``host_species`` of formerly disordered sites, oxidation states."""
    out = Structure.from_sites(ordered)
    if not keep_oxi:
        out.remove_oxidation_states()
    # the transformation keeps site properties; pymatgen labels carry supercell suffixes
    sync_labels(out)
    # map each ordered site to its disordered parent by position to set host_species
    parents = _match_sites(out, disordered)
    hosts = list(out.site_properties.get("host_species", [None] * len(out)))
    for i, p in enumerate(parents):
        if not disordered[p].is_ordered or hosts[i] is None:
            hosts[i] = element_symbol(out[i].specie)
    out.add_site_property("host_species", hosts)
    return out


def _reduced(structure: Structure) -> Structure:
    """Niggli-reduced primitive cell without site properties (what StructureMatcher compares)."""
    bare = Structure(structure.lattice, structure.species, structure.frac_coords)
    return bare.get_reduced_structure("niggli").get_primitive_structure()


def _match_sites(ordered: Structure, disordered: Structure) -> list[int]:
    dist = disordered.lattice.get_all_distances(ordered.frac_coords, disordered.frac_coords)
    parents = dist.argmin(axis=1)
    if float(dist[np.arange(len(ordered)), parents].max()) > 1e-3:
        raise StructureError("internal: ordered sites do not sit on the disordered ones")
    return parents.tolist()


def count_by_label(structure: Structure) -> dict[str, dict[str, int]]:
    """``{label: {element: count}}`` of an ordered structure (for checks and reports)."""
    out: dict[str, dict[str, int]] = {}
    for site, label in zip(structure, structure.site_properties["label"], strict=True):
        counts = out.setdefault(str(label), {})
        el = element_symbol(site.specie)
        counts[el] = counts.get(el, 0) + 1
    return out


__all__ = ["OrderedCandidate", "OrderingResult", "count_by_label", "order_structure"]
