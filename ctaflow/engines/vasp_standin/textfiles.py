"""OUTCAR, OSZICAR, XDATCAR and CONTCAR in the formats pymatgen, emmet and custodian read.

OUTCAR carries only what parsers and custodian look at (NBANDS, NPLWV, IBRION, per-step stress,
forces, ``total drift``, energies, MD kinetic energy, timing) under a header that names the
stand-in and the MLIP. In NEB image directories each step also carries the lines VTST prints
(tangent, ``NEB: projections on to tangent (spring, REAL)`` read by pymatgen's
``Outcar.read_neb``, NEB force maxima); as in VASP 5.4.4 + VTST 3.2 output, ``TOTAL-FORCE`` is
the true force and the NEB force enters only those lines. Words that pymatgen's ``Outcar``
reads as run information ("running", "serial") and VASP error strings are avoided on purpose.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from pymatgen.io.vasp import Poscar

from ctaflow.engines.vasp_standin.identity import PROGRAM
from ctaflow.engines.vasp_standin.vasprun import (
    N_BANDS,
    PLACEHOLDER_BANDS_EV,
    PLACEHOLDER_EFERMI_EV,
    generator_version,
)

if TYPE_CHECKING:
    from pathlib import Path

    from pymatgen.core import Structure

    from ctaflow.engines.vasp_standin.results import IonicStep, NEBStepInfo
    from ctaflow.engines.vasp_standin.run import RunContext
    from ctaflow.engines.vasp_standin.settings import NEBSettings

RULE = "-" * 104
VOIGT_ORDER = ((0, 0), (1, 1), (2, 2), (0, 1), (1, 2), (2, 0))  # VASP: XX YY ZZ XY YZ ZX


def oszicar_line(index: int, step: IonicStep, previous: IonicStep | None) -> str:
    """One OSZICAR ionic line (the same line goes to vasp.out)."""
    energy = step.energy_ev
    if step.kinetic_energy_ev is not None:
        total = energy + step.kinetic_energy_ev
        return (
            f"{index:6d} T= {step.temperature_k:9.2f} E= {total:.8E} F= {energy:.8E} "
            f"E0= {energy:.8E}  EK= {step.kinetic_energy_ev:.5E} SP= 0.00E+00 SK= 0.00E+00"
        )
    delta = energy - (previous.energy_ev if previous is not None else 0.0)
    return f"{index:4d} F= {energy:.8E} E0= {energy:.8E}  d E ={delta:.6E}"


def write_oszicar(path: Path, steps: list[IonicStep]) -> None:
    """OSZICAR: one ionic line per step; no electronic lines (there is no SCF loop)."""
    lines = [
        oszicar_line(i, step, steps[i - 2] if i > 1 else None)
        for i, step in enumerate(steps, start=1)
    ]
    path.write_text("\n".join(lines) + "\n")


def write_outcar(path: Path, ctx: RunContext) -> None:
    """OUTCAR for the finished run described by ``ctx``."""
    s, inputs = ctx.settings, ctx.inputs
    n_ions = len(inputs.structure)
    n_k = len(inputs.kpoints.weights)
    incar = inputs.incar
    out = [
        f" {PROGRAM} {generator_version(ctx)}",
        f" MLIP stand-in for VASP: {ctx.model.label}, trained on {ctx.model.training_theory}.",
        " NOT a DFT calculation: energies, forces and stresses come from the MLIP;",
        f" band energies are placeholders ({PLACEHOLDER_BANDS_EV[0]:g} / "
        f"{PLACEHOLDER_BANDS_EV[1]:g} eV).",
        f" executed on  {ctx.platform} date {ctx.started.strftime('%Y.%m.%d  %H:%M:%S')}",
        "",
        RULE,
        "",
    ]
    out += [f" POTCAR:    {block.pseudopotential}" for block in inputs.species]
    out += [
        f" POSCAR: {inputs.comment}",
        "",
        " Dimension of arrays:",
        f"   k-points           NKPTS = {n_k:6d}   k-points in BZ     NKDIM = {n_k:6d}"
        f"   number of bands    NBANDS= {N_BANDS:6d}",
        f"   number of dos      NEDOS =      0   number of ions     NIONS = {n_ions:6d}",
        "   total plane-waves  NPLWV =      0",
        "",
        " Startparameter for this run:",
        "   ISPIN  =      1    spin polarized calculation?",
        f"   NELM   = {s.nelm:6d}",
        f"   EDIFF  = {s.ediff:.1E}   stopping-criterion for ELM",
        f"   EDIFFG = {s.ediffg:.1E}   stopping-criterion for IOM",
        f"   NSW    = {s.nsw:6d}    number of steps for IOM",
        f"   IBRION = {s.ibrion:6d}    ionic relax: 0-MD 1-quasi-New 2-CG",
        f"   ISIF   = {s.isif:6d}    stress and relaxation",
        f"   POTIM  = {float(incar.get('POTIM', 0.5)):8.4f}    time-step for ionic-motion",
        f"   TEBEG  = {float(incar.get('TEBEG', 0.0)):7.1f};   "
        f"TEEND  = {float(incar.get('TEEND', incar.get('TEBEG', 0.0))):7.1f}",
        f"   PSTRESS= {float(incar.get('PSTRESS', 0.0)):7.1f} pullay stress",
        f"   stand-in mode: {s.mode.value}"
        + (f", {s.relax.optimizer}" if s.relax else "")
        + (f", {s.md.thermostat}, seed {s.md.seed}" if s.md else ""),
        "",
        *(_neb_header(s.neb) if s.neb else []),
        RULE,
    ]
    for index, step in enumerate(ctx.result.steps, start=1):
        out += _step_block(index, step)
    if (s.relax or s.neb) and ctx.result.converged:
        out.append(" reached required accuracy - stopping structural energy minimisation")
    out += [
        "",
        f" E-fermi : {PLACEHOLDER_EFERMI_EV:8.4f}     (placeholder: no electronic structure)",
        "",
        RULE,
        "",
        " General timing and accounting informations for this job:",
        " ========================================================",
        "",
        f"                  Total CPU time used (sec): {ctx.cpu_seconds:12.3f}",
        f"                            User time (sec): {ctx.user_seconds:12.3f}",
        f"                          System time (sec): {ctx.system_seconds:12.3f}",
        f"                         Elapsed time (sec): {ctx.elapsed_seconds:12.3f}",
        "",
        f"                   Maximum memory used (kb): {ctx.max_memory_kb:12.0f}.",
        "                   Average memory used (kb):          N/A",
        "",
    ]
    path.write_text("\n".join(out) + "\n")


def _neb_header(neb: NEBSettings) -> list[str]:
    return [
        " CHAIN: Running the NEB (ASE ase.mep.NEB, improved tangent; not VTST)",
        f" NEB:          SPRING {-neb.spring_ev_per_a2:12.6f}",
        f" NEB:          LCLIMB {'T' if neb.climb else 'F':>6}",
        f" OPT: ASE {neb.optimizer} optimizer ({neb.optimizer_source})",
        "",
    ]


def _neb_lines(neb: NEBStepInfo) -> list[str]:
    """VTST's per-step NEB block (VASP 5.4.4 + VTST 3.2 layout)."""
    forces = neb.neb_forces_ev_per_a
    norms = np.linalg.norm(forces, axis=1)
    return [
        "",
        " NEB: Tangent",
        " " + "-" * 46,
        *(" " + "".join(f"{t:13.5f}" for t in row) for row in neb.tangent),
        "",
        " NEB: forces: par spring, perp REAL, dneb "
        f"{neb.spring_projection_ev_per_a:12.6f}{neb.perpendicular_real_ev_per_a:12.6f}"
        f"{0.0:12.6f}",
        " NEB: distance to prev, next image, angle between "
        f"{neb.distance_previous_a:12.6f}{neb.distance_next_a:12.6f}{neb.angle_deg:12.6f}",
        " NEB: projections on to tangent (spring, REAL) "
        f"{neb.spring_projection_ev_per_a:12.6f}{neb.real_projection_ev_per_a:12.6f}",
        "",
        f"  FORCES: max atom, RMS {norms.max():12.6f}{np.sqrt(np.mean(norms**2)):12.6f}",
        f"  FORCE total and by dimension {np.linalg.norm(forces):12.6f}"
        f"{np.abs(forces).max():12.6f}",
    ]


def _step_block(index: int, step: IonicStep) -> list[str]:
    stress = [step.stress_kbar[i, j] for i, j in VOIGT_ORDER]
    pressure = float(np.trace(step.stress_kbar) / 3.0)
    lines = [
        "",
        f"{'-' * 39} Ionic step {index:6d}  {'-' * 43}",
        "",
        "  FORCE on cell =-STRESS in cart. coord.  units (kB):",
        "  Direction    XX          YY          ZZ          XY          YZ          ZX",
        "  " + "-" * 86,
        "  in kB  " + "".join(f"{x:12.5f}" for x in stress),
        f"  external pressure = {pressure:11.2f} kB  Pullay stress =        0.00 kB",
        "",
        " POSITION                                       TOTAL-FORCE (eV/Angst)",
        " " + "-" * 83,
    ]
    for xyz, force in zip(step.structure.cart_coords, step.forces_ev_per_a, strict=True):
        lines.append(
            " " + "".join(f"{x:13.5f}" for x in xyz) + "   " + "".join(f"{f:14.6f}" for f in force)
        )
    drift = step.drift_ev_per_a
    lines += [
        " " + "-" * 83,
        "    total drift:                         " + "".join(f"{d:14.6f}" for d in drift),
        "",
        "  FREE ENERGIE OF THE ION-ELECTRON SYSTEM (eV)",
        "  ---------------------------------------------------",
        f"  free  energy   TOTEN  = {step.energy_ev:18.8f} eV",
        "",
        f"  energy  without entropy= {step.energy_ev:18.8f}  "
        f"energy(sigma->0) = {step.energy_ev:18.8f}",
    ]
    if step.kinetic_energy_ev is not None:
        lines += [
            "",
            f"  kinetic energy EKIN   = {step.kinetic_energy_ev:18.6f}  "
            f"(temperature {step.temperature_k:8.2f} K)",
            f"  total energy   ETOTAL = {step.energy_ev + step.kinetic_energy_ev:18.6f} eV",
        ]
    if step.neb is not None:
        lines += _neb_lines(step.neb)
    return [*lines, "", RULE]


def write_xdatcar(path: Path, steps: list[IonicStep], comment: str, variable_cell: bool) -> None:
    """XDATCAR (VASP 5 format); the cell is repeated before every frame if it changes."""
    first = steps[0].structure
    poscar = Poscar(first)
    symbols, counts = poscar.site_symbols, poscar.natoms
    title = comment.strip() or first.formula

    def header(structure: Structure) -> list[str]:
        return [
            title,
            "           1",
            *("  " + "".join(f"{x:12.6f}" for x in row) for row in structure.lattice.matrix),
            "  " + "".join(f"{s:>5}" for s in symbols),
            "  " + "".join(f"{n:5d}" for n in counts),
        ]

    lines = [] if variable_cell else header(first)
    for index, step in enumerate(steps, start=1):
        if variable_cell:
            lines += header(step.structure)
        lines.append(f"Direct configuration= {index:6d}")
        lines += ["  " + "".join(f"{x:12.8f}" for x in row) for row in step.structure.frac_coords]
    path.write_text("\n".join(lines) + "\n")


def write_contcar(path: Path, ctx: RunContext) -> None:
    """CONTCAR: the last structure (with MD velocities in Å/fs, as VASP writes them)."""
    final = ctx.result.final
    structure = final.structure.copy()
    dynamics = ctx.inputs.structure.site_properties.get("selective_dynamics")
    if dynamics is not None:
        structure.add_site_property("selective_dynamics", dynamics)
    velocities = None
    if final.velocities_a_per_fs is not None:
        velocities = final.velocities_a_per_fs.tolist()
    Poscar(structure, comment=ctx.inputs.comment, velocities=velocities).write_file(path)
