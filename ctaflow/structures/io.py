"""Reading structures from campaign sources, with validation at the edge."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from ctaflow.engines.calculators import chgnet_calculator
from ctaflow.errors import StructureError
from ctaflow.structures.demo import demo_structure
from ctaflow.structures.materials_project import fetch_mp_structure
from ctaflow.structures.order import order_structure
from ctaflow.structures.search import CoordinationRule, best_structure, search_structures
from ctaflow.structures.sites import classify_sites
from ctaflow.structures.validate import validate_structure

if TYPE_CHECKING:
    from pymatgen.core import Structure

    from ctaflow.campaign.sources import SearchStructureSource, StructureSource


def read_structure_file(path: str | Path) -> Structure:
    """Read any pymatgen-readable structure file; errors say what is wrong with the file."""
    from pymatgen.core import Structure

    path = Path(path)
    if not path.is_file():
        raise StructureError(f"structure file '{path}' not found; check the path")
    if path.stat().st_size == 0:
        raise StructureError(f"structure file '{path}' is empty; give a CIF or POSCAR file")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            structure = Structure.from_file(path)
        except Exception as exc:  # pymatgen raises many types for unreadable files
            detail = str(exc).strip() or type(exc).__name__
            hints = [str(w.message) for w in caught if "element" in str(w.message).lower()]
            raise StructureError(
                f"could not read a structure from '{path}': {detail}"
                + (f" ({hints[0]})" if hints else "")
                + "; give a valid CIF/POSCAR file with real element symbols"
            ) from None
    labels = getattr(structure, "labels", None)
    if labels and "label" not in structure.site_properties:
        structure.add_site_property("label", list(labels))
    structure.properties = {
        **(structure.properties or {}),
        "provenance": {
            "source": "file",
            "path": str(path),
            "experimental_structure": None,
            "generated": False,
            "label": "user-supplied structure file",
            "description": f"read from {path.name} by pymatgen",
        },
    }
    return structure


def load_structure(source: StructureSource, check_charge: bool = True) -> Structure:
    """The validated starting structure of a campaign (raises :class:`StructureError`).

    Sources: the built-in demo, a file, a Materials Project id (fetched now, see
    :mod:`ctaflow.structures.materials_project`) or a structure search (run now, see
    :class:`ctaflow.campaign.schema.SearchStructureSource` for why before the flow).
    """

    loaders = {
        "demo": lambda s: demo_structure(),
        "file": lambda s: read_structure_file(s.path),
        "mp": lambda s: fetch_mp_structure(s.material_id, s.api_key_env, s.conventional_cell),
        "search": searched_structure,
    }
    structure = loaders[source.source](source)
    order = getattr(source, "order", None)
    if order is not None and not structure.is_ordered:
        result = order_structure(
            structure,
            supercell=order.supercell,
            n_structures=order.n_candidates,
            rank_by=order.rank_by,
            seed=order.seed,
            max_candidates=order.max_orderings,
            max_enumeration_s=order.max_enumeration_s,
        )
        structure = result.candidates[0].structure.copy()
        structure.remove_oxidation_states()  # engines take elements; Ewald ranking is done
    elif not structure.is_ordered:
        validate_structure(structure, name=_describe(source), check_charge=False)
    if source.classify is not None:
        rules = source.classify
        structure, _ = classify_sites(
            structure,
            rules.species,
            hop_cutoff=rules.hop_cutoff_a,
            min_clearance=rules.min_clearance_a,
            min_dimension=rules.min_dimension,
        )
    validate_structure(structure, name=_describe(source), check_charge=check_charge)
    return structure


def searched_structure(source: SearchStructureSource) -> Structure:
    """The best-ranked candidate of the structure search a campaign source asks for, relaxed
    with the embedded CHGNet (deterministic for given settings: one seeded generator, CPU)."""

    calculator = chgnet_calculator(source.model_version, "cpu", source.threads)
    result = search_structures(
        source.composition,
        calculator,
        space_groups=source.space_groups,
        formula_units=source.formula_units,
        n_candidates=source.n_candidates,
        seed=source.seed,
        fmax=source.fmax_ev_per_a,
        steps=source.steps,
        coordination=[CoordinationRule(**r.model_dump()) for r in source.coordination],
        volume_factor=source.volume_factor,
        max_generation_attempts=source.max_generation_attempts,
        keep_symmetry=source.keep_symmetry,
    )
    return best_structure(
        result, f"{source.model} {source.model_version}", source.model_dump(mode="json")
    )


def _describe(source: StructureSource) -> str:
    if source.source == "mp":
        return f"Materials Project {source.material_id}"
    if source.source == "search":
        return f"searched {source.composition} structure"
    return str(getattr(source, "path", None) or f"{source.source} structure")
