"""Climbing-image NEB on the VASP path: atomate2's ``NebFromImagesMaker`` run by custodian
(``VaspNEBJob``), its ``NebIntermediateImagesDoc``, and a small job that takes the images' true
forces and the convergence flag out of the parsed calculations.

Where the numbers live in emmet's ``NebIntermediateImagesDoc`` (moving images only, in band
order): ``images`` are the final structures (CONTCAR), ``energies`` the final energies
(vasprun), ``calculations[i].output.ionic_steps[-1].forces`` the forces of the last ionic step,
and ``state`` is "successful" only if every image's vasprun.xml is converged (fewer ionic steps
than NSW, i.e. VTST stopped on EDIFFG, and the last SCF converged).

Which forces those are: in a VASP 5.4.4 + VTST 3.2 image OUTCAR (aiida-vasp's test data) the
``TOTAL-FORCE`` block has a tangential component equal to the printed
``NEB: projections on to tangent (spring, REAL)`` value, so it is the true force, not the NEB
force; in a VASP 6.2.0 + VTST 3.2 run (same source) the vasprun.xml forces equal ``TOTAL-FORCE``.
A statement on the VTST forum that "TOTAL-FORCE is the NEB force" disagrees: check one image of
a production run (``TOTAL-FORCE`` · tangent = REAL) before trusting these as true forces. The
stand-in writes the true MLIP forces.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from atomate2.vasp.jobs.neb import NebFromImagesMaker, vasp_neb_job
from jobflow import Flow, Maker, job

from ctaflow.errors import EngineError

if TYPE_CHECKING:
    from pathlib import Path

    from jobflow import Response
    from pymatgen.core import Structure


def check_band(images: list[Structure]) -> None:
    """Raise :class:`EngineError` unless the images share atoms, atom order and cell.

    The VASP inputs take POTCARs in the order of the first image and VASP reads every image's
    POSCAR with them; a fixed-cell band needs one cell.
    """
    if len(images) < 3:
        raise EngineError(f"an NEB needs two end points and at least one image; got {len(images)}")
    first = images[0]
    symbols = [site.species_string for site in first]
    for index, image in enumerate(images[1:], start=1):
        if [site.species_string for site in image] != symbols:
            raise EngineError(
                f"NEB image {index} has other atoms or another atom order than image 0 "
                f"({image.formula} vs {first.formula}): give every image the same atom order"
            )
        if not np.allclose(image.lattice.matrix, first.lattice.matrix, atol=1e-6):
            raise EngineError(f"NEB image {index} has another cell than image 0 (fixed-cell NEB)")


@dataclass
class StudyNebFromImagesMaker(NebFromImagesMaker):
    """atomate2's ``NebFromImagesMaker``, checking the band first and leaving the maker as it was.

    atomate2's ``make`` changes its maker while it runs (``kpoints_kludge`` becomes the first
    run's KPOINTS, ``write_input_set_kwargs`` gains ``from_prev``): a second band run in the same
    process from the same maker (``run_locally``) would get the first band's KPOINTS in its image
    directories. Each run here works on a copy.
    """

    @vasp_neb_job
    def make(self, images: list[Structure], prev_dir: str | Path | None = None) -> Response:
        check_band(images)
        return NebFromImagesMaker.make.original(copy.deepcopy(self), images, prev_dir=prev_dir)


def _get(obj: Any, key: str) -> Any:
    return obj[key] if isinstance(obj, dict) else getattr(obj, key)


@job
def vasp_neb_forces(calculations: list[Any], state: Any) -> dict[str, Any]:
    """True forces (eV/Å, last ionic step, one (n_atoms, 3) list per moving image) and whether
    the band converged, from a ``NebIntermediateImagesDoc``'s ``calculations`` and ``state``."""
    forces = []
    for calc in calculations:
        steps = _get(_get(calc, "output"), "ionic_steps")
        forces.append(np.asarray(_get(steps[-1], "forces"), dtype=float).tolist())
    return {"forces_ev_per_a": forces, "converged": getattr(state, "value", state) == "successful"}


@dataclass
class VaspNEBMaker(Maker):
    """The VASP NEB job followed by :func:`vasp_neb_forces`.

    ``make(images)`` returns a Flow whose output maps ``structures`` and ``energies_ev`` (into
    the NEB job's ``NebIntermediateImagesDoc``), ``forces_ev_per_a`` and ``converged`` to
    references (see :meth:`ctaflow.engines.base.Engine.neb_outputs`).
    """

    neb_maker: StudyNebFromImagesMaker = field(default_factory=StudyNebFromImagesMaker)
    name: str = "vasp neb"

    def make(self, images: list[Structure]) -> Flow:
        neb = self.neb_maker.make(images)
        forces = vasp_neb_forces(neb.output.calculations, neb.output.state)
        forces.name = "neb forces"
        output = {
            "structures": neb.output.images,
            "energies_ev": neb.output.energies,
            "forces_ev_per_a": forces.output["forces_ev_per_a"],
            "converged": forces.output["converged"],
        }
        return Flow([neb, forces], output=output, name=self.name)
