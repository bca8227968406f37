"""Nudged elastic band with ASE (``ase.mep.NEB``, improved tangent), in VASP's step semantics.

The end points are held fixed and evaluated once. Every image has its own caching calculator in
front of the one MLIP, so a band evaluation costs one force call per moving image however often
ASE asks for forces. One *ionic step* is one evaluation of the band, as in VASP where every
image does one electronic minimisation per step: the first step is the starting band, at most
``NSW`` steps are made, and the band is converged when the largest NEB force on any atom of any
image (the climbing image included) is below |EDIFFG|, VTST's criterion and ASE's alike.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
from ase.calculators.calculator import Calculator, all_changes
from ase.mep import NEB
from ase.mep.neb import NEBState
from ase.optimize import BFGS, FIRE, LBFGS, MDMin

from ctaflow.engines.vasp_standin.results import NEBStepInfo, RunResult, record_step

if TYPE_CHECKING:
    from collections.abc import Callable

    from ase import Atoms

    from ctaflow.engines.vasp_standin.results import IonicStep
    from ctaflow.engines.vasp_standin.settings import NEBSettings

logger = logging.getLogger(__name__)

OPTIMIZERS = {"BFGS": BFGS, "LBFGS": LBFGS, "FIRE": FIRE, "MDMin": MDMin}
NEB_METHOD = "improvedtangent"


class ImageCalculator(Calculator):
    """Energy, forces and stress of one image from a shared calculator, cached per image."""

    implemented_properties = ("energy", "free_energy", "forces", "stress")

    def __init__(self, shared: Calculator) -> None:
        super().__init__()
        self.shared = shared

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        copy = self.atoms.copy()
        copy.calc = self.shared
        energy = float(copy.get_potential_energy())
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "forces": np.array(copy.get_forces(apply_constraint=False)),
            "stress": np.array(copy.get_stress()),
        }


@dataclass
class BandResult:
    """A finished band: one :class:`RunResult` per moving image, the end points' energies."""

    images: list[RunResult] = field(default_factory=list)
    endpoint_energies_ev: tuple[float, float] = (0.0, 0.0)
    converged: bool = False

    @property
    def n_steps(self) -> int:
        """Band evaluations made (ionic steps of every image)."""
        return len(self.images[0].steps) if self.images else 0


def nudged_elastic_band(
    band: list[Atoms],
    settings: NEBSettings,
    max_steps: int,
    calculator: Calculator,
    on_step: Callable[[int, list[IonicStep]], None] | None = None,
) -> BandResult:
    """Optimise the moving images of ``band`` (end points first and last, held fixed).

    ``on_step(index, steps)`` is called after every band evaluation with the ionic steps of
    the moving images (1-based index).
    """
    for atoms in band:
        atoms.calc = ImageCalculator(calculator)
    neb = NEB(
        band,
        k=settings.spring_ev_per_a2,
        climb=settings.climb,
        method=NEB_METHOD,
    )
    optimizer = OPTIMIZERS[settings.optimizer](neb, logfile=None)
    n_moving = len(band) - 2
    result = BandResult(
        images=[RunResult(converged=False) for _ in range(n_moving)],
        endpoint_energies_ev=(
            float(band[0].get_potential_energy()),
            float(band[-1].get_potential_energy()),
        ),
    )
    for converged in optimizer.irun(fmax=settings.fmax_ev_per_a, steps=max(max_steps - 1, 0)):
        steps = band_steps(neb)
        for run, step in zip(result.images, steps, strict=True):
            run.steps.append(step)
        if on_step:
            on_step(result.n_steps, steps)
        if converged:
            result.converged = True
            break
        if result.n_steps >= max_steps:
            break
    for run in result.images:
        run.converged = result.converged
    logger.info(
        "NEB %s after %d band evaluations",
        "converged" if result.converged else "not converged",
        result.n_steps,
    )
    return result


def band_steps(neb: NEB) -> list[IonicStep]:
    """Ionic steps of the moving images of ``neb`` at its current positions, with the NEB
    quantities VTST prints (tangent, projections, NEB forces)."""
    n_atoms = neb.natoms
    neb_forces = np.asarray(neb.get_forces()).reshape(-1, n_atoms, 3)  # cached: no model call
    state = NEBState(neb, neb.images, neb.energies)
    imax = state.imax
    steps = []
    spring1 = state.spring(0)
    for i in range(1, neb.nimages - 1):
        spring2 = state.spring(i)
        tangent = neb.neb_method.get_tangent(state, spring1, spring2, i)
        image = neb.images[i]
        forces = image.get_forces()  # with constraints, as ASE projects them
        real = float(np.vdot(forces, tangent))
        climbing = bool(neb.climb and i == imax)
        spring = 0.0 if climbing else float(spring2.nt * spring2.k - spring1.nt * spring1.k)
        cosine = np.vdot(-spring1.t, spring2.t) / max(spring1.nt * spring2.nt, 1e-12)
        info = NEBStepInfo(
            tangent=np.array(tangent).reshape(n_atoms, 3),
            spring_projection_ev_per_a=spring,
            real_projection_ev_per_a=real,
            perpendicular_real_ev_per_a=float(np.linalg.norm(forces - real * tangent)),
            distance_previous_a=float(spring1.nt),
            distance_next_a=float(spring2.nt),
            angle_deg=float(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))),
            neb_forces_ev_per_a=np.array(neb_forces[i - 1]),
            climbing=climbing,
        )
        steps.append(replace(record_step(image), neb=info))
        spring1 = spring2
    return steps
