"""A fast engine for protocol tests: the embedded MLIP engine's makers with ASE's EMT calculator,
and the structure it is made for: L1₂ Cu₃Au (the antiperovskite's cation arrangement: Cu on the
face centres, where Na sits in Na₃OCl), with the Cu classified mobile and the Au framework, and
formal charges Cu +1 / Au −3 so that the defect recipes apply. Not ionic physics: it makes MD
segments of a stable crystal cost milliseconds."""

from __future__ import annotations

from typing import Any

from pymatgen.core import Lattice, Structure

from ctaflow.engines.mlip import MLIPEngine

#: EMT's equilibrium lattice parameter of Cu₃Au (Å), near the experimental 3.75 Å
CU3AU_A = 3.73
#: formal charges that make Cu₃Au neutral for the defect recipes (Cu⁺, Au³⁻: not chemistry)
CU3AU_CHARGES = {"Cu": 1.0, "Au": -3.0}


class EMTEngine(MLIPEngine):
    """:class:`MLIPEngine` whose calculator is ASE's EMT (see module docstring)."""

    def __init__(self, spec) -> None:
        super().__init__(spec)
        self.label = "test:emt"

    def _force_field(self) -> dict[str, Any]:
        return {
            "force_field_name": {"@module": "ase.calculators.emt", "@callable": "EMT"},
            "calculator_meta": None,
            "calculator_kwargs": {},
        }


def cu3au() -> Structure:
    """The L1₂ Cu₃Au unit cell with site classes (Cu mobile, Au framework) and labels."""
    return Structure(
        Lattice.cubic(CU3AU_A),
        ["Au", "Cu", "Cu", "Cu"],
        [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]],
        site_properties={
            "site_class": ["framework", "mobile", "mobile", "mobile"],
            "label": ["Au1", "Cu1", "Cu1", "Cu1"],
            "host_species": ["Au", "Cu", "Cu", "Cu"],
        },
    )
