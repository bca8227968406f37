"""Is a relaxed structure a minimum? Rattle it, relax again, and compare (issue #22, rule 1).

A relaxation started on a symmetric configuration keeps that symmetry: the forces of a symmetric
structure are symmetric, so a symmetric saddle is a fixed point of every optimiser. On main the
cubic Na3OCl prototype was such a saddle for CHGNet: its NEB end points relaxed further by
0.26 eV (Na) and 0.11 eV (Li) once displaced. The test used here is the practical one — displace
the atoms at random (seeded), relax again, and see whether the energy drops:

* :func:`rattle` makes the displaced copies (positions only, cell fixed, site properties kept);
* the caller relaxes each one with the same engine, force criterion and cell constraint as the
  reference (a dynamic jobflow loop: relax → rattle × seeds → relax → :func:`assess_minimum` →
  continue from the lowest structure while the energy still drops; defaults below);
* :func:`assess_minimum` compares the energies and reports the drop, how far the lowest
  structure is from the original and the space group before and after.

Units: eV, Å.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, Field
from pymatgen.core import Structure

from ctaflow.structures._common import moved

# Defaults of the check, from a measurement with CHGNet 0.3.0 on the 2x2x2 Na3OCl demo cell
# (perfect cell with its cell relaxed; one Na vacancy, Na or Li host, fixed cell; FIRE; issue #22
# notes). The symmetric starts are saddles 0.45 eV (perfect), 0.26 eV (Na vacancy) and 0.10 eV
# (Li vacancy) above the minima the rattles find.

#: drop (eV, whole cell) below which a structure counts as a minimum; see :func:`assess_minimum`
MINIMUM_TOLERANCE_EV = 0.01

#: force criterion (eV/Å) of the reference and of every re-relaxation. At 0.05 eV/Å a relaxation
#: stops on the flat slopes of these saddles: the first cycle lowered the energy by only 3-40 meV
#: (3 of 6 runs ≤ 10 meV, i.e. "a minimum"), and relaxations returning to one basin scattered by
#: 1-20 meV. At 0.01 eV/Å the first cycle found the whole drop in all four vacancy runs
#: (0.10-0.26 eV), the second came back within 2.6 meV, and the scatter was 0.2-1.7 meV (the
#: perfect cell's own relaxation at 0.01 eV/Å left the cubic saddle for Pnma through round-off,
#: and its rattles confirmed that minimum to 0.3 meV).
CHECK_FMAX_EV_PER_A = 0.01

#: rattle amplitude (Å, Gaussian standard deviation per Cartesian component). 0.05 Å also worked
#: at 0.01 eV/Å, but at 0.05 eV/Å it missed the perfect cell's 0.45 eV instability in the first
#: cycle (drop 10.0 meV) where 0.1 Å found 0.39 eV.
RATTLE_AMPLITUDE_A = 0.1

#: rattles per cycle: in the Li vacancy cell one of three 0.05 Å rattles stayed on the saddle
#: (1.3 meV lower) and one of three 0.1 Å rattles found only 63 of the 103 meV.
RATTLES_PER_CYCLE = 3

#: cycles (rattle × seeds, relax, compare, continue from the lowest) before giving up; every
#: 0.01 eV/Å run met the tolerance by the second cycle. A structure still dropping after the last
#: cycle is not confirmed as a minimum.
MAX_CYCLES = 3

#: spglib tolerance (Å) for the space groups before and after
SYMPREC_A = 0.1


class MinimumCheck(BaseModel):
    """Result of the rattle-and-relax test of one relaxed structure. Units in the field names."""

    is_minimum: bool = Field(description="energy_drop_ev ≤ tolerance_ev.")
    n_atoms: int
    reference_energy_ev: float = Field(description="Energy of the structure tested.")
    trial_energies_ev: list[float] = Field(description="Energies of the re-relaxed rattles.")
    lowest_trial: int = Field(description="Index of the lowest trial.")
    lowest_energy_ev: float
    energy_drop_ev: float = Field(
        description="reference − lowest trial; > 0: a lower structure was found."
    )
    energy_drop_ev_per_atom: float
    tolerance_ev: float
    max_displacement_a: float = Field(
        description="Largest displacement of an atom, lowest trial vs reference (minimum image, "
        "net translation removed)."
    )
    rms_displacement_a: float
    most_displaced_atom: int
    space_group_before: str = Field(description="International symbol, e.g. 'Pm-3m'.")
    space_group_number_before: int
    space_group_after: str = Field(description="Space group of the lowest trial.")
    space_group_number_after: int
    symmetry_operations_before: int = Field(
        description="Operations of the structure in its own cell (pure translations included)."
    )
    symmetry_operations_after: int
    symmetry_lowered: bool = Field(
        description="The lowest trial has fewer operations: it did not come back to the "
        "reference's symmetry (information; the verdict is by energy)."
    )
    symprec_a: float = Field(description="spglib distance tolerance of both space groups, Å.")

    def rattles_text(self) -> str:
        n = len(self.trial_energies_ev)
        return f"{n} rattled cop{'y' if n == 1 else 'ies'}"


def rattle(
    structure: Structure,
    amplitude_a: float,
    seed: int,
    distribution: Literal["gaussian", "uniform"] = "gaussian",
) -> Structure:
    """A copy of ``structure`` with every atom displaced at random; cell, species, site and
    structure properties kept.

    ``gaussian``: each Cartesian component drawn from N(0, ``amplitude_a``²), as ASE's
    ``Atoms.rattle(stdev)``. ``uniform``: a random direction and a length uniform in
    [0, ``amplitude_a``], as pymatgen's ``Structure.perturb``. The mean displacement is
    subtracted (a rigid translation changes nothing but makes the displacement of the result
    harder to read). The generator is ``numpy.random.default_rng(seed)``, so a seed gives the
    same displacements on every machine.
    """
    if amplitude_a < 0:
        raise ValueError(f"amplitude_a={amplitude_a}: a rattle amplitude cannot be negative")
    rng = np.random.default_rng(seed)
    n = len(structure)
    if distribution == "gaussian":
        shift = rng.normal(0.0, amplitude_a, size=(n, 3))
    elif distribution == "uniform":
        direction = rng.normal(size=(n, 3))
        direction /= np.linalg.norm(direction, axis=1)[:, None]
        shift = direction * rng.uniform(0.0, amplitude_a, size=(n, 1))
    else:
        raise ValueError(f"distribution must be 'gaussian' or 'uniform', not {distribution!r}")
    shift -= shift.mean(axis=0)
    step = {
        "step": "rattle",
        "amplitude_a": amplitude_a,
        "seed": seed,
        "distribution": distribution,
    }
    return moved(structure, structure.cart_coords + shift, step, cartesian=True)


def displacements_a(reference: Structure, other: Structure) -> np.ndarray:
    """Per-atom displacement vectors (n, 3), Å, from ``reference`` to ``other``: minimum image
    in the reference cell, mean (rigid translation) removed. Same atoms in the same order."""
    if len(reference) != len(other):
        raise ValueError(f"{len(reference)} vs {len(other)} atoms: not the same structure")
    df = other.frac_coords - reference.frac_coords
    d = reference.lattice.get_cartesian_coords(df - np.rint(df))
    return d - d.mean(axis=0)


def space_group(structure: Structure, symprec_a: float = SYMPREC_A) -> tuple[str, int]:
    """International symbol and number (spglib through pymatgen, angle tolerance 5°)."""
    symbol, number, _ = _symmetry(structure, symprec_a)
    return symbol, number


def _symmetry(structure: Structure, symprec_a: float) -> tuple[str, int, int]:
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    plain = Structure(structure.lattice, structure.species, structure.frac_coords)
    plain.remove_oxidation_states()
    sga = SpacegroupAnalyzer(plain, symprec=symprec_a)
    return (
        sga.get_space_group_symbol(),
        int(sga.get_space_group_number()),
        len(sga.get_symmetry_operations()),
    )


def assess_minimum(
    reference: Structure,
    reference_energy_ev: float,
    trials: list[Structure],
    trial_energies_ev: list[float],
    tolerance_ev: float = MINIMUM_TOLERANCE_EV,
    symprec_a: float = SYMPREC_A,
) -> MinimumCheck:
    """Whether ``reference`` (relaxed, energy ``reference_energy_ev``) is a minimum, given the
    re-relaxed rattled copies ``trials`` and their energies.

    It is a minimum when no trial ends more than ``tolerance_ev`` below it. The tolerance is an
    absolute energy of the whole cell, not per atom, because what it protects is a barrier, a
    difference of two total energies of the same cell: an end point ``x`` eV above its minimum
    shifts the barrier by ``x`` eV whatever the cell size (1 meV/atom would allow 40 meV in the
    40-atom demo cell and 135 meV in its 3×3×3 cell). The default 0.01 eV equals the tolerance
    of ``ends_are_lowest`` in :func:`ctaflow.analysis.neb.barrier_profile`, so the two checks
    ask the same question at the same resolution. It must stay above the scatter of
    re-relaxations that return to the same minimum (relaxations stop at fmax, not at the
    minimum): with CHGNet in the 39/40-atom demo cells that scatter was 0.2-1.7 meV at
    0.01 eV/Å but 1-20 meV at 0.05 eV/Å, hence :data:`CHECK_FMAX_EV_PER_A`.

    ``symprec_a``: a re-relaxation stopped at fmax 0.05 eV/Å leaves displacements of ~0.01 Å
    from the exact minimum, so at spglib's 0.01 Å every relaxed rattle would look P1; at 0.1 Å
    the space group is that of the minimum the relaxation approaches, while the 0.5–0.8 Å moves
    seen on main change it.
    """
    if len(trials) != len(trial_energies_ev) or not trials:
        raise ValueError(
            f"{len(trials)} trial structures and {len(trial_energies_ev)} energies: give one "
            "energy per re-relaxed rattle, at least one"
        )
    energies = np.asarray(trial_energies_ev, dtype=float)
    low = int(np.argmin(energies))
    drop = float(reference_energy_ev - energies[low])
    d = np.linalg.norm(displacements_a(reference, trials[low]), axis=1)
    before = _symmetry(reference, symprec_a)
    after = _symmetry(trials[low], symprec_a)
    return MinimumCheck(
        is_minimum=drop <= tolerance_ev,
        n_atoms=len(reference),
        reference_energy_ev=float(reference_energy_ev),
        trial_energies_ev=energies.tolist(),
        lowest_trial=low,
        lowest_energy_ev=float(energies[low]),
        energy_drop_ev=drop,
        energy_drop_ev_per_atom=drop / len(reference),
        tolerance_ev=tolerance_ev,
        max_displacement_a=float(d.max()),
        rms_displacement_a=float(np.sqrt(np.mean(d**2))),
        most_displaced_atom=int(np.argmax(d)),
        space_group_before=before[0],
        space_group_number_before=before[1],
        space_group_after=after[0],
        space_group_number_after=after[1],
        symmetry_operations_before=before[2],
        symmetry_operations_after=after[2],
        symmetry_lowered=after[2] < before[2],
        symprec_a=symprec_a,
    )


class MinimumSummary(BaseModel):
    """What the minimum check of one relaxation found, over all its cycles. Units in the names.

    ``first_*`` describe the structure the relaxation itself ended in (before any rattle);
    ``final_*`` the structure kept: the lowest found, confirmed or not.
    """

    is_minimum: bool = Field(description="The kept structure passed its last check.")
    start_was_minimum: bool = Field(
        description="The relaxation's own end point passed the first check (nothing lower found)."
    )
    verdict: str = Field(description="One sentence for reports.")
    first_energy_ev: float
    final_energy_ev: float
    energy_drop_ev: float = Field(description="first − final; > 0: a lower structure was found.")
    energy_drop_mev_per_atom: float
    space_group_first: str
    space_group_final: str
    n_cycles: int
    checks: list[MinimumCheck] = Field(description="One per cycle, in order.")


def summarise_minimum(
    checks: list[MinimumCheck], first_energy_ev: float, final_energy_ev: float
) -> MinimumSummary:
    """The summary of a finished minimum search (``checks``: one per cycle; the last decides)."""
    if not checks:
        raise ValueError("a minimum search has at least one check")
    first, last = checks[0], checks[-1]
    drop = float(first_energy_ev - final_energy_ev)
    n_atoms = first.n_atoms
    found = last.space_group_after if not last.is_minimum else last.space_group_before
    if first.is_minimum:
        verdict = (
            f"a minimum: {first.rattles_text()} relaxed back within {first.tolerance_ev:g} eV "
            f"({first.space_group_before})"
        )
    elif last.is_minimum:
        verdict = (
            f"not a minimum: rattled copies relaxed {1000 * drop / n_atoms:.3g} meV/atom "
            f"({drop:.3g} eV) lower, {first.space_group_before} -> {found}; the lower structure "
            f"is confirmed after {len(checks)} cycles and kept"
        )
    else:
        verdict = (
            f"no minimum confirmed: still {last.energy_drop_ev:.3g} eV lower after "
            f"{len(checks)} cycles ({drop:.3g} eV below the relaxation in all); the lowest "
            "structure found is kept"
        )
    return MinimumSummary(
        is_minimum=last.is_minimum,
        start_was_minimum=first.is_minimum,
        verdict=verdict,
        first_energy_ev=float(first_energy_ev),
        final_energy_ev=float(final_energy_ev),
        energy_drop_ev=drop,
        energy_drop_mev_per_atom=1000.0 * drop / n_atoms,
        space_group_first=first.space_group_before,
        space_group_final=found,
        n_cycles=len(checks),
        checks=checks,
    )
