"""The built-in demo structure and its provenance.

Why this structure: no atomic coordinates of the Na5SmSi4O12 family are available offline, and the
demo must not invent any. The antiperovskite Na3OCl (space group Pm-3m, No. 221) is a real
sodium-ion conductor whose atomic positions are fixed by the space group alone: O at 1b
(½,½,½), Cl at 1a (0,0,0), Na at 3c (0,½,½), (½,0,½), (½,½,0). Nothing but the lattice
parameter is free, and that is taken from a relaxation with the campaign's engine, starting from
an estimate a₀ = 2 (r(Na⁺) + r(O²⁻)) = 2 (1.02 + 1.40) Å = 4.84 Å from Shannon's ionic radii
(coordination 6). Na→Li substitution leads to Li3OCl, another real antiperovskite conductor, so
the whole series of the campaign has real end members. All Na are equivalent and mobile (vacancy
hops along the O-centred octahedra); O and Cl form the framework.

It is NOT the experimental structure of Na5SmSi4O12 and is never reported as such.
"""

from __future__ import annotations

from pymatgen.core import Lattice, Structure

SHANNON_RADIUS_NA_PLUS_A = 1.02
SHANNON_RADIUS_O_2MINUS_A = 1.40
STARTING_LATTICE_PARAMETER_A = 2 * (SHANNON_RADIUS_NA_PLUS_A + SHANNON_RADIUS_O_2MINUS_A)

DEMO_PROVENANCE = {
    "source": "ctaflow built-in demo",
    "name": "Na3OCl-antiperovskite",
    "experimental_structure": False,
    "generated": False,
    "label": "symmetry-fixed prototype (not the experimental structure of any study material)",
    "description": (
        "Antiperovskite Na3OCl, Pm-3m: all atomic positions fixed by the space group "
        "(O 1b, Cl 1a, Na 3c); starting lattice parameter a0 = 4.84 Å = 2(r_Na+ + r_O2-) from "
        "Shannon ionic radii (CN 6), to be relaxed by the campaign engine. Not Na5SmSi4O12."
    ),
    "space_group": "Pm-3m (221)",
    "starting_lattice_parameter_a": STARTING_LATTICE_PARAMETER_A,
}


def demo_structure() -> Structure:
    """Na3OCl antiperovskite with site labels and classes; provenance in ``properties``."""
    structure = Structure(
        Lattice.cubic(STARTING_LATTICE_PARAMETER_A),
        ["Cl", "O", "Na", "Na", "Na"],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]],
        labels=["Cl1", "O1", "Na1", "Na1", "Na1"],
        site_properties={
            "label": ["Cl1", "O1", "Na1", "Na1", "Na1"],
            "site_class": ["framework", "framework", "mobile", "mobile", "mobile"],
            "host_species": ["Cl", "O", "Na", "Na", "Na"],
        },
        properties={"provenance": dict(DEMO_PROVENANCE)},
    )
    return structure
