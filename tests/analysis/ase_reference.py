"""A plain-ASE climbing-image NEB, independent of ctaflow, to check ctaflow's bands against.

ASE's own interpolation (IDPP, minimum image), ``ase.mep.NEB`` with the improved tangent and a
climbing image, FIRE, and ASE's ``NEBTools`` barrier. Nothing from ctaflow is used.
"""

from __future__ import annotations

from dataclasses import dataclass

from pymatgen.core import Structure


@dataclass
class ReferenceBand:
    """The converged ASE band. Energies in eV."""

    forward_barrier_ev: float  # NEBTools.get_barrier(fit=False): max image energy - start
    fitted_barrier_ev: float  # NEBTools.get_barrier(fit=True): ASE's spline through the images
    reaction_energy_ev: float
    energies_ev: list[float]  # every image, end points included
    converged: bool
    n_steps: int


def ase_reference_barrier(
    start: Structure,
    end: Structure,
    n_images: int,
    calculator,
    fmax_ev_per_a: float = 0.01,
    steps: int = 1000,
    spring_ev_per_a2: float = 0.1,
) -> ReferenceBand:
    """Climbing-image NEB between two relaxed end points with ASE alone.

    Every image gets its own deep copy of ``calculator`` (as atomate2 does): a shared one would
    rebuild its neighbour list at every call, five times slower for EMT.
    """
    from copy import deepcopy

    from ase.mep import NEB, NEBTools
    from ase.optimize import FIRE
    from pymatgen.io.ase import AseAtomsAdaptor

    first, last = AseAtomsAdaptor.get_atoms(start), AseAtomsAdaptor.get_atoms(end)
    images = [first] + [first.copy() for _ in range(n_images)] + [last]
    for image in images:
        image.calc = deepcopy(calculator)
    neb = NEB(images, k=spring_ev_per_a2, climb=True, method="improvedtangent")
    neb.interpolate("idpp", mic=True)
    optimizer = FIRE(neb, logfile=None)
    converged = bool(optimizer.run(fmax=fmax_ev_per_a, steps=steps))
    energies = [float(image.get_potential_energy()) for image in images]
    tools = NEBTools(images)
    barrier, reaction = tools.get_barrier(fit=False)
    fitted, _ = tools.get_barrier(fit=True)
    return ReferenceBand(
        forward_barrier_ev=float(barrier),
        fitted_barrier_ev=float(fitted),
        reaction_energy_ev=float(reaction),
        energies_ev=energies,
        converged=converged,
        n_steps=int(optimizer.nsteps),
    )
