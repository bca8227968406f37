"""Interfacial energies of electrolyte | metal cells (pure functions and result schema).

Convention (the same everywhere in ctaflow)::

    γ = (E_interface − N_el · e_el − N_metal · e_metal) / (n_interfaces · A)

with total energies in eV, per-atom bulk energies e in eV/atom, the in-plane area A of the cell
in Å², and γ converted to J/m² (1 eV/Å² = 16.021766 J/m²). ``n_interfaces`` is 2 for a periodic
stack without vacuum (the cell contains two electrolyte|metal interfaces, A counts each once) and
1 for a cell with vacuum; ctaflow's interface stage always uses the periodic stack, because with
vacuum the bulk-referenced excess would also contain the energies of two free surfaces.

References (see :mod:`ctaflow.structures.interfaces`): e_el is the relaxed bulk electrolyte (the
slab keeps its bulk in-plane lattice), e_metal is the bulk metal **strained in-plane exactly as in
the interface** and relaxed along the normal only (or at fixed cell, as the stage settings say),
so the elastic energy of the lattice mismatch is not counted as interfacial energy.
Positive γ: making the interface costs energy.

The electrolyte in the interface cell is annealed (NVT MD) and minimised before its energy is
taken; a glass has many minima and relaxes further under that treatment, which a bulk reference
that was only minimised does not. So the bulk electrolyte also gets the interface's anneal and
minimisation: e_el is the lower of the two bulk energies, and their difference, carried to γ
(``N_el · |Δe| / (n_interfaces · A)``), is γ's uncertainty from the reference. On the demo's glass
an interface treated this way and a reference that was not gave γ ≈ 0.007 J/m² against 0.23 for
the crystal: the glass's own relaxation had cancelled the interface's cost.
:func:`interface_verdict` flags γ when that uncertainty is a large part of it, when it is
negative, or when a relaxation it rests on did not converge.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field
from pymatgen.core import Structure

#: 1 eV/Å² in J/m² (1.602176634e-19 J / 1e-20 m²)
EV_PER_A2_IN_J_PER_M2 = 16.02176634


def interfacial_energy(
    e_interface_ev: float,
    e_bulk_ev: Sequence[float],
    area_a2: float,
    n_interfaces: int = 2,
) -> float:
    """γ in J/m² from the interface cell's total energy and the total energies of its bulk
    constituents (eV, each already N_i · e_i), the in-plane area (Å²) and the number of
    interfaces in the cell."""
    if area_a2 <= 0:
        raise ValueError(f"area must be positive (got {area_a2} Å²)")
    if n_interfaces not in (1, 2):
        raise ValueError(f"n_interfaces is 1 (vacuum) or 2 (periodic stack), got {n_interfaces}")
    excess = float(e_interface_ev) - float(sum(e_bulk_ev))
    return excess / (n_interfaces * area_a2) * EV_PER_A2_IN_J_PER_M2


def interfacial_energy_from_references(
    e_interface_ev: float,
    n_electrolyte: int,
    e_electrolyte_per_atom_ev: float,
    n_metal: int,
    e_metal_per_atom_ev: float,
    area_a2: float,
    n_interfaces: int = 2,
) -> float:
    """γ in J/m² with per-atom bulk references (eV/atom) and atom counts."""
    return interfacial_energy(
        e_interface_ev,
        [n_electrolyte * e_electrolyte_per_atom_ev, n_metal * e_metal_per_atom_ev],
        area_a2,
        n_interfaces,
    )


#: γ is flagged when its uncertainty from the bulk electrolyte reference exceeds this fraction
#: of |γ| (then the reference, not the interface, sets the number)
MAX_REFERENCE_UNCERTAINTY_FRACTION = 0.25


def reference_uncertainty(
    relaxed_per_atom_ev: float,
    annealed_per_atom_ev: float | None,
    n_electrolyte: int,
    area_a2: float,
    n_interfaces: int = 2,
) -> float | None:
    """γ's uncertainty (J/m²) from the bulk electrolyte reference: the spread of its relaxed
    and annealed-and-relaxed energies per atom, for the ``n_electrolyte`` atoms of the cell."""
    if annealed_per_atom_ev is None:
        return None
    spread = abs(relaxed_per_atom_ev - annealed_per_atom_ev) * n_electrolyte
    return interfacial_energy(spread, [], area_a2, n_interfaces)


def interface_verdict(
    gamma_j_per_m2: float,
    uncertainty_j_per_m2: float | None,
    unconverged: Sequence[str] = (),
    max_fraction: float = MAX_REFERENCE_UNCERTAINTY_FRACTION,
) -> tuple[Literal["valid", "flagged"], list[str]]:
    """(status, reasons) of one γ: flagged when a relaxation it rests on did not converge
    (``unconverged``: one text per relaxation), when γ < 0 (the cell found a state below its
    separated references: a reaction or reconstruction, or a reference that is not the lowest
    state: not the cost of an interface), or when the reference uncertainty exceeds
    ``max_fraction`` of |γ|."""
    reasons = list(unconverged)
    if gamma_j_per_m2 < 0:
        reasons.append(
            f"γ = {gamma_j_per_m2:.3g} J/m² < 0: the interface cell ended below its separated "
            "bulk references (a reaction or reconstruction at the interface, or a reference "
            "that is not the lowest state); not the cost of an interface"
        )
    if uncertainty_j_per_m2 is not None and uncertainty_j_per_m2 > max_fraction * abs(
        gamma_j_per_m2
    ):
        reasons.append(
            f"the bulk electrolyte reference moved under the interface's anneal and "
            f"minimisation: γ is uncertain by ±{uncertainty_j_per_m2:.3g} J/m², more than "
            f"{max_fraction:.0%} of |γ| = {abs(gamma_j_per_m2):.3g} J/m² (a glass relaxes "
            "further when annealed; anneal longer or average over samples)"
        )
    return ("flagged" if reasons else "valid"), reasons


class InterfaceEnergies(BaseModel):
    """Every energy that enters γ (eV, eV/atom)."""

    as_built_ev: float = Field(description="Interface cell as built, before MD, eV.")
    after_md_ev: float | None = Field(None, description="Last MD frame (potential), eV.")
    relaxed_ev: float = Field(description="Interface after MD and minimisation, eV.")
    electrolyte_bulk_per_atom_ev: float = Field(
        description="Bulk electrolyte reference, eV/atom: the lower of the relaxed and the "
        "annealed-and-relaxed bulk."
    )
    electrolyte_relaxed_per_atom_ev: float | None = Field(
        None, description="Relaxed bulk electrolyte (minimisation only), eV/atom."
    )
    electrolyte_annealed_per_atom_ev: float | None = Field(
        None,
        description="Bulk electrolyte after the interface's anneal and minimisation, eV/atom "
        "(None: not computed).",
    )
    metal_strained_per_atom_ev: float = Field(
        description="Bulk metal strained in-plane as in the interface, eV/atom."
    )
    metal_unstrained_per_atom_ev: float | None = Field(
        None, description="Relaxed unstrained bcc metal, eV/atom (for the strain energy)."
    )
    gamma_as_built_j_per_m2: float = Field(description="γ of the as-built cell, J/m².")


class InterfaceResult(BaseModel):
    """One electrolyte | metal interface after equilibration and minimisation."""

    phase: str = Field(description="'crystalline' or 'amorphous' electrolyte.")
    metal: str = Field(description="Element of the bcc metal electrode.")
    sample: int = Field(0, description="Electrolyte sample (amorphous phases have several).")
    miller: tuple[int, int, int] | None = Field(description="Electrolyte plane (None: amorphous).")
    metal_miller: tuple[int, int, int]
    termination: str
    electrolyte_formula: str
    gamma_j_per_m2: float = Field(description="Interfacial energy after MD + relaxation, J/m².")
    gamma_uncertainty_j_per_m2: float | None = Field(
        None,
        description="γ's uncertainty from the bulk electrolyte reference (the spread of its "
        "relaxed and annealed energies carried to γ), J/m²; None: not computed.",
    )
    status: Literal["valid", "flagged"] = Field(
        "valid", description="valid, or flagged with reasons (see interface_verdict)."
    )
    reasons: list[str] = Field(default_factory=list)
    area_a2: float = Field(description="In-plane area of the cell, Å² (each interface once).")
    strain_pct: float = Field(description="Largest principal in-plane strain of the metal, %.")
    n_interfaces: int = Field(description="Interfaces in the cell (2: periodic stack).")
    n_atoms: int
    n_electrolyte_atoms: int
    n_metal_atoms: int
    n_formula_units: int
    metal_lattice_a: float = Field(description="Unstrained bcc lattice parameter, Å.")
    metal_normal_strain_pct: float = Field(
        description="Strain of the strained metal reference along the normal after its "
        "relaxation (in-plane fixed, so V/V0 − 1), %; the Poisson response to strain_pct."
    )
    energies: InterfaceEnergies
    relaxed_converged: bool = Field(description="Interface minimisation reached fmax.")
    max_force_ev_per_a: float
    md_mean_temperature_k: float | None = None
    anneal_temperature_k: float
    anneal_fs: float
    structure: Structure = Field(description="Relaxed interface structure.")
    engine: dict[str, Any]
    settings: dict[str, Any]
    software: dict[str, str] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
