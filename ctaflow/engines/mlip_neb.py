"""Nudged elastic band with the embedded MLIP engines: atomate2's force-field NEB from images."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from atomate2.ase.utils import AseNebInterface
from atomate2.forcefields.neb import ForceFieldNebFromImagesMaker
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from ctaflow.analysis.neb import NEBRun
from ctaflow.jobs import result_job


@dataclass
class MLIPNebMaker(ForceFieldNebFromImagesMaker):
    """atomate2's force-field NEB from images, with the optimiser it is given (atomate2 0.1.5
    always used FIRE) and the true forces of the final images in the output."""

    name: str = "mlip neb"
    optimizer: str = "FIRE"
    engine_description: dict = field(default_factory=dict)

    @result_job(NEBRun)
    def make(self, images: list[Structure], prev_dir: str | None = None) -> NEBRun:
        """Run the band ``images`` (end points first and last, held fixed)."""
        return self._run_ase_safe(images=[im.copy() for im in images], prev_dir=prev_dir)

    def run_ase(self, images, prev_dir=None) -> NEBRun:
        interface = AseNebInterface(calculator=self.calculator, optimizer=self.optimizer)
        start = time.perf_counter()
        result = interface.run_neb(
            images,
            steps=self.steps,
            neb_kwargs=self.neb_kwargs,
            neb_doc_kwargs=self.neb_doc_kwargs,
            optimizer_kwargs=self.optimizer_kwargs,
            **self.relax_kwargs,
        )
        elapsed = time.perf_counter() - start
        inner = result.images[1:-1]
        forces = []
        for image in inner:
            atoms = AseAtomsAdaptor.get_atoms(image)
            atoms.calc = self.calculator
            forces.append(np.asarray(atoms.get_forces()).tolist())
        props = dict(images[0].site_properties) if hasattr(images[0], "site_properties") else {}
        return NEBRun(
            structures=[im.copy(site_properties=props) for im in inner],
            energies_ev=[float(e) for e in result.energies[1:-1]],
            forces_ev_per_a=forces,
            converged=result.state == "successful",
            elapsed_s=elapsed,
            engine=self.engine_description,
        )
