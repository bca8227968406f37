"""One force evaluation per Berendsen NPT step, checked against ASE's own NPTBerendsen."""

from __future__ import annotations

import numpy as np
import pytest
from ase import units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.md.nptberendsen import NPTBerendsen
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

from ctaflow.engines.berendsen import OneForceNPTBerendsen


class CountingEMT(EMT):
    """EMT that counts its evaluations."""

    calls = 0

    def calculate(self, *args, **kwargs):
        self.calls += 1
        super().calculate(*args, **kwargs)


def _run(integrator, n_steps: int):
    atoms = bulk("Cu", "fcc", a=3.70, cubic=True).repeat(2)  # 32 atoms, stretched: P < 0
    atoms.calc = CountingEMT()
    MaxwellBoltzmannDistribution(atoms, temperature_K=600, rng=np.random.default_rng(3))
    dyn = integrator(
        atoms,
        2.0 * units.fs,
        temperature_K=600,
        taut=100 * units.fs,
        taup=200 * units.fs,
        pressure_au=0.0,
        compressibility_au=1.0 / (140.0 * units.GPa),
    )
    volumes = []
    for _ in range(n_steps // 10):
        dyn.run(10)
        volumes.append(atoms.get_volume())
    return atoms, np.array(volumes)


def test_one_force_evaluation_per_step_and_the_same_trajectory_as_ase():
    n = 60
    ase_atoms, ase_volumes = _run(NPTBerendsen, n)
    ours, volumes = _run(OneForceNPTBerendsen, n)
    # ASE: one evaluation at the start, then two per step; ours: one per step
    assert ase_atoms.calc.calls == 2 * n + 1
    assert ours.calc.calls == n + 1
    # the stretched cell contracts towards 0 GPa under both integrators, by the same amount
    assert ase_volumes[-1] < 0.99 * (3.70**3 * 8)
    assert volumes == pytest.approx(ase_volumes, rel=1e-4)
    assert np.abs(ours.positions - ase_atoms.positions).max() < 2e-3
