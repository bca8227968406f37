"""VASP inputs with the study's settings: the preset, k-point meshes from a spacing, POTCAR checks.

The preset is the bottom layer; atomate2's per-calculation updates (relax, static, MD, NEB) come
next, then the campaign file's ``incar``/``kpoints``/``potcar``, then powerups in Python.
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from atomate2.vasp.sets.core import (
    MDSetGenerator,
    NebSetGenerator,
    RelaxSetGenerator,
    StaticSetGenerator,
)

from ctaflow.engines.incar_types import use_real_incar_tags
from ctaflow.errors import EngineError

use_real_incar_tags()  # SPRING is real: see ctaflow.engines.incar_types

if TYPE_CHECKING:
    from pymatgen.core import Lattice

    from ctaflow.engines.specs import VaspEngineSpec

#: INCAR of the study (PBE, 520 eV, EDIFF 1e-4 eV/atom; see campaigns/paper.yaml) on top of
#: atomate2's base set.
#: EDIFF scales with the number of atoms (pymatgen's EDIFF_PER_ATOM); plain PBE, so no +U and no
#: meta-GGA; charge-density/potential dumps of 400-atom cells are switched off.
STUDY_INCAR: dict[str, Any] = {
    "GGA": "PE",
    "ENCUT": 520,
    "EDIFF": None,
    "EDIFF_PER_ATOM": 1e-4,
    "LDAU": False,
    "LDAUU": None,
    "LDAUJ": None,
    "LDAUL": None,
    "LDAUTYPE": None,
    "LDAUPRINT": None,
    "LMIXTAU": None,
    "LAECHG": False,
    "LVTOT": False,
}


def study_config(spec: VaspEngineSpec) -> dict[str, Any]:
    """atomate2's base VASP config with the study preset and the spec's numbers applied."""
    from atomate2.vasp.sets.base import _BASE_VASP_SET

    config = copy.deepcopy(_BASE_VASP_SET)
    preset = {**STUDY_INCAR, "ENCUT": spec.encut_ev, "EDIFF_PER_ATOM": spec.ediff_per_atom_ev}
    for key, value in preset.items():
        if value is None:
            config["INCAR"].pop(key, None)
        else:
            config["INCAR"][key] = value
    config["POTCAR"] = {**config["POTCAR"], **spec.potcar}
    config["POTCAR_FUNCTIONAL"] = spec.potcar_functional
    return config


def kpoint_mesh(lattice: Lattice, spacing_per_a: float, convention: str) -> tuple[int, int, int]:
    """Mesh N_i = max(1, ceil(|b_i| / spacing)).

    ``no_2pi``: |b_i| without 2π (|b_i| = 1/d_i, d_i the interplanar spacing);
    ``vasp_kspacing``: |b_i| with 2π, as VASP's KSPACING tag.
    """
    recip = lattice.reciprocal_lattice_crystallographic
    lengths = np.array(recip.abc) * (2 * math.pi if convention == "vasp_kspacing" else 1.0)
    return tuple(max(1, math.ceil(round(b / spacing_per_a, 8))) for b in lengths)


def potcar_symbols(elements: list[str], config: dict[str, Any]) -> list[str]:
    """POTCAR symbols the config chooses for ``elements``."""
    return [config["POTCAR"].get(el, el) for el in elements]


def missing_potcars(elements: list[str], config: dict[str, Any]) -> tuple[str | None, list[str]]:
    """(PMG_VASP_PSP_DIR, POTCAR symbols not found there) for ``elements``."""
    from pymatgen.core import SETTINGS
    from pymatgen.io.vasp.inputs import PotcarSingle

    psp_dir = os.environ.get("PMG_VASP_PSP_DIR") or SETTINGS.get("PMG_VASP_PSP_DIR")
    symbols = potcar_symbols(elements, config)
    if not psp_dir:
        return None, symbols
    sub = PotcarSingle.functional_dir.get(config["POTCAR_FUNCTIONAL"], "")
    root = Path(psp_dir) / sub
    candidates = ("POTCAR", "POTCAR.gz", "POTCAR.Z")
    missing = [
        sym
        for sym in symbols
        if not any((root / sym / name).is_file() for name in candidates)
        and not any((root / f"POTCAR.{sym}{ext}").is_file() for ext in ("", ".gz", ".Z"))
    ]
    return psp_dir, missing


def potcar_error(elements: list[str], config: dict[str, Any]) -> str | None:
    """The message for missing POTCARs, or None if all are there."""
    psp_dir, missing = missing_potcars(elements, config)
    if not missing:
        return None
    from pymatgen.io.vasp.inputs import PotcarSingle

    functional = config["POTCAR_FUNCTIONAL"]
    sub = PotcarSingle.functional_dir.get(functional, functional)
    where = (
        "PMG_VASP_PSP_DIR is not set"
        if psp_dir is None
        else f"PMG_VASP_PSP_DIR={psp_dir} has no {sub}/<symbol>/POTCAR for them"
    )
    return (
        f"VASP inputs need POTCAR files for {', '.join(missing)} ({functional}): {where}. Set "
        f"PMG_VASP_PSP_DIR to the folder that holds {sub}/ with your licensed potentials "
        "(pymatgen layout), or use engine kind 'vasp-standin' or 'mlip', which need no POTCARs."
    )


@dataclass
class StudyInputMixin:
    """k-points from a spacing (study convention) and a clear POTCAR error."""

    kpoint_spacing_per_a: float = 0.04
    kpoint_convention: str = "no_2pi"
    kpoint_style: str = "monkhorst"

    @property
    def kpoints_updates(self):
        from pymatgen.io.vasp import Kpoints

        mesh = kpoint_mesh(
            self.structure.lattice, self.kpoint_spacing_per_a, self.kpoint_convention
        )
        make = (
            Kpoints.gamma_automatic if self.kpoint_style == "gamma" else Kpoints.monkhorst_automatic
        )
        kpoints = make(mesh)
        kpoints.comment = (
            f"ctaflow: {self.kpoint_style} mesh from spacing {self.kpoint_spacing_per_a} 1/Å "
            f"({self.kpoint_convention})"
        )
        return kpoints

    @property
    def potcar(self):
        message = potcar_error([el.symbol for el in self.structure.composition], self._config_dict)
        if message is not None:
            raise EngineError(message)
        return super().potcar


@dataclass
class StudyRelaxSetGenerator(StudyInputMixin, RelaxSetGenerator):
    """Relaxation inputs; EDIFFG from an energy criterion per atom (study) or a force."""

    ionic_criterion: str = "energy"
    ediffg_per_atom_ev: float = 1e-3
    fmax_ev_per_a: float = 0.05
    nsw: int = 99
    relax_cell: bool = True

    @property
    def incar_updates(self) -> dict:
        updates = dict(super().incar_updates)
        n_atoms = len(self.structure)
        updates["EDIFFG"] = (
            round(self.ediffg_per_atom_ev * n_atoms, 10)
            if self.ionic_criterion == "energy"
            else -abs(self.fmax_ev_per_a)
        )
        updates["NSW"] = self.nsw
        updates["ISIF"] = 3 if self.relax_cell else 2
        return updates


@dataclass
class StudyStaticSetGenerator(StudyInputMixin, StaticSetGenerator):
    """Single-point inputs with the study settings."""


@dataclass
class StudyMDSetGenerator(StudyInputMixin, MDSetGenerator):
    """AIMD inputs with the study settings (ensemble, thermostat from atomate2's MD set)."""


#: NEB optimiser of the stage → VTST ``IOPT`` (with ``IBRION = 3, POTIM = 0``). VTST has no
#: full-memory BFGS: BFGS is run as its LBFGS. MDMin (ASE) and quick-min (VTST) are the same
#: velocity-projection scheme.
VTST_IOPT = {"LBFGS": 1, "BFGS": 1, "MDMin": 3, "FIRE": 7}


@dataclass
class StudyNebSetGenerator(StudyInputMixin, NebSetGenerator):
    """Climbing-image NEB inputs on the study preset: the relaxation's INCAR (fixed cell) plus
    the NEB tags, with VTST's optimisers.

    atomate2's ``NebSetGenerator`` also sets ``EDIFF = 1e-6``, ``PREC = Normal``, no automatic
    smearing and ``IBRION = 2`` (VASP's CG) without a climbing image; here the electronic
    settings stay those of the study's relaxations (EDIFF per atom, PREC, ISMEAR/SIGMA), so the
    band and its relaxed end points are computed alike, and VTST's optimiser is used with or
    without climbing (``IBRION = 3, POTIM = 0, IOPT``, ``LCLIMB`` written either way). Needs a
    VASP built with the VTST tools, as atomate2's climbing-image set does. The images keep the
    atom order they are given in (``sort_structure = False``): POTCAR.spec follows the first
    image and every image POSCAR must match it.
    """

    auto_ismear: bool = True  # as the relax generator (atomate2's NEB set turns it off)
    sort_structure: bool = False
    fmax_ev_per_a: float = 0.05
    spring_ev_per_a2: float = 5.0
    nsw: int = 300
    optimizer: str = "FIRE"

    @property
    def incar_updates(self) -> dict:
        return {
            "IMAGES": self.num_images,
            "ISIF": 2,
            "IBRION": 3,
            "POTIM": 0,
            "IOPT": VTST_IOPT[self.optimizer],
            "LCLIMB": self.climbing_image,
            "SPRING": -abs(self.spring_ev_per_a2),
            "EDIFFG": -abs(self.fmax_ev_per_a),
            "NSW": self.nsw,
            "LCHARG": False,
        }
