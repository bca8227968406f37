"""Elemental reference structures for formation energies, from ASE's tabulated data.

Nothing here is invented: solids come from ``ase.data.reference_states`` (crystal structure and
lattice constant at standard conditions, from Kittel's tables, as ASE ships them) and are built
with ``ase.build.bulk``; the elements that are diatomic gases at standard conditions (H, N, O,
F, Cl) are the molecule from ASE's G2 set (``ase.build.molecule``) in a cubic box. The engine
relaxes them before use (solids: cell and positions; molecules: positions only). Elements whose
reference state ``ase.build.bulk`` cannot build (e.g. rhombohedral α-Sm, orthorhombic Ga, S)
have none, and a formation energy that needs them is not reported.
"""

from __future__ import annotations

from typing import Any

from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

GAS_DIMERS = ("H", "N", "O", "F", "Cl")
BUILDABLE = ("bcc", "fcc", "hcp", "diamond", "sc")
MOLECULE_BOX_A = 12.0


def elemental_reference(element: str) -> tuple[Structure | None, dict[str, Any]]:
    """The reference structure of ``element`` and its provenance.

    Returns ``(None, provenance)`` with ``provenance["reason"]`` when ctaflow has no reference
    for it. ``provenance["kind"]`` is "molecule" or "solid"; a molecule is relaxed at fixed cell.
    """
    from ase.build import bulk, molecule
    from ase.data import atomic_numbers, reference_states

    if element not in atomic_numbers:
        raise ValueError(f"unknown element {element!r}")
    if element in GAS_DIMERS:
        atoms = molecule(f"{element}2")
        atoms.set_cell([MOLECULE_BOX_A] * 3)
        atoms.center()
        atoms.pbc = True
        prov = {
            "element": element,
            "kind": "molecule",
            "source": f"ase.build.molecule('{element}2') (G2 geometry) in a "
            f"{MOLECULE_BOX_A:g} Å cubic box",
            "generated": False,
            "spin": "not treated (the engine decides; MLIPs have no spin)",
        }
        return AseAtomsAdaptor.get_structure(atoms), prov
    state = reference_states[atomic_numbers[element]] or {}
    symmetry = state.get("symmetry")
    if symmetry not in BUILDABLE:
        return None, {
            "element": element,
            "reason": f"ASE reference state of {element} is {symmetry!r}, which ase.build.bulk "
            "cannot build; no formation energy for compositions containing it",
        }
    atoms = bulk(element)
    prov = {
        "element": element,
        "kind": "solid",
        "source": f"ase.build.bulk('{element}'): {symmetry}, a = {state.get('a')} Å "
        "(ase.data.reference_states)",
        "generated": False,
    }
    return AseAtomsAdaptor.get_structure(atoms), prov
