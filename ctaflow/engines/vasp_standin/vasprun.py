"""vasprun.xml in the layout pymatgen's ``Vasprun`` and emmet's ``TaskDoc`` read.

Floats are written with Python's shortest round-trip representation, so parsing the file gives
back exactly the energies, forces, stresses and structures of the run.

What is not DFT is said so: the generator names ``ctaflow-vasp-standin`` and the MLIP; the
version reads ``<ctaflow version>+standin.<family>-<model version>`` (a dotted number first, as
parsers expect). ``parameters`` describe what the stand-in did (non-spin-polarised, no
projections, 2 bands). The ``incar`` block echoes the INCAR, plus the effective IBRION if the
INCAR leaves it to VASP's default (emmet reads it).

The eigenvalues are a *placeholder* that tools chaining calculations need (pymatgen's input
sets read a band gap from the previous run; custodian's smearing handlers read it too): two
flat bands at ``PLACEHOLDER_BANDS_EV`` at every k-point, i.e. an obviously unphysical 100 eV
"gap". No density of states is written, so emmet reports no band gap in the task document.
"""

from __future__ import annotations

import platform
import xml.etree.ElementTree as ET
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from pymatgen.core import Element

from ctaflow.engines.vasp_standin.identity import PROGRAM

if TYPE_CHECKING:
    from pathlib import Path

    from pymatgen.core import Structure

    from ctaflow.engines.vasp_standin.run import RunContext

PLACEHOLDER_BANDS_EV = (-50.0, 50.0)  # occupied, empty
PLACEHOLDER_EFERMI_EV = 0.0
N_BANDS = len(PLACEHOLDER_BANDS_EV)


def _num(x: Any) -> str:
    if isinstance(x, bool | np.bool_):
        return "T" if x else "F"
    if isinstance(x, int | np.integer):
        return str(int(x))
    return repr(float(x))


def _i(parent: ET.Element, name: str, value: Any) -> ET.Element:
    """``<i>`` element with VASP's type attribute (none for floats)."""
    el = ET.SubElement(parent, "i", name=name)
    if isinstance(value, bool | np.bool_):
        el.set("type", "logical")
    elif isinstance(value, int | np.integer):
        el.set("type", "int")
    elif isinstance(value, str):
        el.set("type", "string")
        el.text = f" {value} "
        return el
    el.text = f" {_num(value)} "
    return el


def _v_param(parent: ET.Element, name: str, values: list) -> ET.Element:
    el = ET.SubElement(parent, "v", name=name)
    if all(isinstance(v, bool) for v in values):
        el.set("type", "logical")
    elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        el.set("type", "int")
    elif any(isinstance(v, str) for v in values):
        el.set("type", "string")
        el.text = " " + " ".join(str(v) for v in values) + " "
        return el
    el.text = " " + " ".join(_num(v) for v in values) + " "
    return el


def _param(parent: ET.Element, name: str, value: Any) -> None:
    if isinstance(value, list | tuple):
        _v_param(parent, name, list(value))
    else:
        _i(parent, name, value)


def _varray(parent: ET.Element, name: str, rows: np.ndarray) -> ET.Element:
    arr = ET.SubElement(parent, "varray", name=name)
    for row in np.atleast_2d(rows):
        ET.SubElement(arr, "v").text = " " + " ".join(_num(x) for x in row) + " "
    return arr


def _structure(parent: ET.Element, structure: Structure, name: str | None = None) -> None:
    el = ET.SubElement(parent, "structure", **({"name": name} if name else {}))
    crystal = ET.SubElement(el, "crystal")
    _varray(crystal, "basis", structure.lattice.matrix)
    _i(crystal, "volume", float(structure.volume))
    _varray(crystal, "rec_basis", structure.lattice.reciprocal_lattice_crystallographic.matrix)
    _varray(el, "positions", structure.frac_coords)


def _energy_block(parent: ET.Element, energy: float, extra: dict[str, float] | None = None) -> None:
    block = ET.SubElement(parent, "energy")
    for key in ("e_fr_energy", "e_wo_entrp", "e_0_energy"):
        _i(block, key, energy)
    for key, value in (extra or {}).items():
        _i(block, key, value)


def generator_version(ctx: RunContext) -> str:
    """``<ctaflow version>+standin.<family>-<model version>``."""
    return f"{ctx.program_version}+standin.{ctx.model.family}-{ctx.model.version}"


def write_vasprun(path: Path, ctx: RunContext) -> None:
    """Write vasprun.xml for the finished run described by ``ctx``."""
    root = ET.Element("modeling")
    root.append(
        ET.Comment(
            f" Written by {PROGRAM}: energies, forces and stresses from the MLIP "
            f"{ctx.model.label} ({ctx.model.training_theory}); NOT a DFT calculation. "
            f"Eigenvalues are placeholders ({PLACEHOLDER_BANDS_EV} eV). "
        )
    )
    now = datetime.now()
    gen = ET.SubElement(root, "generator")
    _i(gen, "program", PROGRAM)
    _i(gen, "version", generator_version(ctx))
    _i(gen, "subversion", f"MLIP {ctx.model.label} trained on {ctx.model.training_theory}")
    _i(
        gen,
        "platform",
        f"{platform.system()} {platform.machine()} Python {platform.python_version()}",
    )
    _i(gen, "date", now.strftime("%Y %m %d"))
    _i(gen, "time", now.strftime("%H:%M:%S"))

    incar = ET.SubElement(root, "incar")
    for key, value in ctx.inputs.incar.items():
        _param(incar, key, value)
    if "IBRION" not in ctx.inputs.incar:
        # emmet reads incar["IBRION"] when it cannot build a band structure (no DOS here)
        _param(incar, "IBRION", ctx.settings.ibrion)

    _kpoints(root, ctx)

    params = ET.SubElement(root, "parameters")
    general = ET.SubElement(params, "separator", name="general")
    for key, value in ctx.parameters().items():
        _param(general, key, value)

    _atominfo(root, ctx)
    _structure(root, ctx.inputs.structure, "initialpos")

    steps = ctx.result.steps
    for index, step in enumerate(steps):
        calc = ET.SubElement(root, "calculation")
        scstep = ET.SubElement(calc, "scstep")
        _energy_block(scstep, step.energy_ev)
        _structure(calc, step.structure)
        _varray(calc, "forces", step.forces_ev_per_a)
        _varray(calc, "stress", step.stress_kbar)
        extra = None
        if step.kinetic_energy_ev is not None:
            extra = {
                "kinetic": step.kinetic_energy_ev,
                "lattice kinetic": 0.0,
                "nosepot": 0.0,
                "nosekinetic": 0.0,
                "total": step.energy_ev + step.kinetic_energy_ev,
            }
        _energy_block(calc, step.energy_ev, extra)
        if index == len(steps) - 1:
            _eigenvalues(calc, len(ctx.inputs.kpoints.weights))
    _structure(root, ctx.result.final.structure, "finalpos")

    ET.indent(root, space=" ")
    tree = ET.ElementTree(root)
    tree.write(path, encoding="ISO-8859-1", xml_declaration=True)


def _kpoints(root: ET.Element, ctx: RunContext) -> None:
    kp = ctx.inputs.kpoints
    el = ET.SubElement(root, "kpoints")
    if kp.divisions is not None:
        gen = ET.SubElement(el, "generation", param=kp.style)
        ET.SubElement(gen, "v", type="int", name="divisions").text = " ".join(
            str(n) for n in kp.divisions
        )
        ET.SubElement(gen, "v", name="usershift").text = " ".join(_num(s) for s in kp.shift)
    _varray(el, "kpointlist", kp.kpoints)
    _varray(el, "weights", kp.weights[:, None])


def _atominfo(root: ET.Element, ctx: RunContext) -> None:
    species = ctx.inputs.species
    info = ET.SubElement(root, "atominfo")
    ET.SubElement(info, "atoms").text = f" {sum(b.count for b in species)} "
    ET.SubElement(info, "types").text = f" {len(species)} "
    atoms = ET.SubElement(info, "array", name="atoms")
    ET.SubElement(atoms, "dimension", dim="1").text = "ion"
    ET.SubElement(atoms, "field", type="string").text = "element"
    ET.SubElement(atoms, "field", type="int").text = "atomtype"
    rows = ET.SubElement(atoms, "set")
    for type_index, block in enumerate(species, start=1):
        for _ in range(block.count):
            rc = ET.SubElement(rows, "rc")
            ET.SubElement(rc, "c").text = f"{block.element:<2}"
            ET.SubElement(rc, "c").text = f"{type_index:4d}"
    types = ET.SubElement(info, "array", name="atomtypes")
    ET.SubElement(types, "dimension", dim="1").text = "type"
    for ftype, fname in (
        ("int", "atomspertype"),
        ("string", "element"),
        (None, "mass"),
        (None, "valence"),
        ("string", "pseudopotential"),
    ):
        ET.SubElement(types, "field", **({"type": ftype} if ftype else {})).text = fname
    rows = ET.SubElement(types, "set")
    for block in species:
        rc = ET.SubElement(rows, "rc")
        mass = float(Element(block.element).atomic_mass)
        valence = block.valence if block.valence is not None else 0.0
        for text in (f"{block.count:4d}", f"{block.element:<2}", _num(mass), _num(valence)):
            ET.SubElement(rc, "c").text = text
        ET.SubElement(rc, "c").text = block.pseudopotential


def _eigenvalues(calc: ET.Element, n_kpoints: int) -> None:
    """Placeholder eigenvalues: see the module docstring."""
    el = ET.SubElement(calc, "eigenvalues")
    arr = ET.SubElement(el, "array")
    for dim, name in ((1, "band"), (2, "kpoint"), (3, "spin")):
        ET.SubElement(arr, "dimension", dim=str(dim)).text = name
    ET.SubElement(arr, "field").text = "eigene"
    ET.SubElement(arr, "field").text = "occ"
    outer = ET.SubElement(arr, "set")
    spin = ET.SubElement(outer, "set", comment="spin 1")
    occupations = (1.0, 0.0)
    for k in range(n_kpoints):
        kset = ET.SubElement(spin, "set", comment=f"kpoint {k + 1}")
        for energy, occ in zip(PLACEHOLDER_BANDS_EV, occupations, strict=True):
            ET.SubElement(kset, "r").text = f" {energy:10.4f} {occ:8.4f} "
