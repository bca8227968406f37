"""ctaflow's band (pymatgen IDPP images, atomate2's ASE NEB runner, ``barrier_profile``) against
a plain-ASE climbing-image NEB (``tests/analysis/ase_reference.py``) for a vacancy hop in fcc Cu
with ASE's EMT potential: 31 atoms, a symmetric hop between relaxed, checked minima."""

from __future__ import annotations

import numpy as np
import pytest

from ctaflow.analysis.minimum import assess_minimum, rattle
from ctaflow.analysis.neb import assess_band, barrier_profile, images_for_path
from tests.analysis.ase_reference import ase_reference_barrier

FMAX = 0.01  # eV/Å, NEB
ENDPOINT_FMAX = 0.002  # eV/Å: tight, so the two end points are the same minimum to < 0.1 meV


def _relax(structure, fmax=ENDPOINT_FMAX):
    from ase.calculators.emt import EMT
    from ase.optimize import FIRE
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.calc = EMT()
    assert FIRE(atoms, logfile=None).run(fmax=fmax, steps=2000)
    return AseAtomsAdaptor.get_structure(atoms), float(atoms.get_potential_energy())


@pytest.fixture(scope="module")
def ends():
    """Vacancy at site 0 of a 2x2x2 fcc Cu cell; its nearest neighbour hops into it. Both end
    points are rattled (seeded) before relaxing, so neither can sit on a symmetric saddle."""
    from ase.build import bulk
    from pymatgen.io.ase import AseAtomsAdaptor

    perfect = AseAtomsAdaptor.get_structure(bulk("Cu", "fcc", a=3.59, cubic=True) * (2, 2, 2))
    d = perfect.distance_matrix[0]
    neighbour = int(np.argsort(d)[1])  # a nearest neighbour of site 0, a/√2 away
    hop_a = float(d[neighbour])
    start = perfect.copy()
    start.remove_sites([0])
    end = start.copy()
    n = neighbour - 1  # index after the removal
    end.replace(n, "Cu", perfect[0].frac_coords)
    start, e_start = _relax(rattle(start, 0.05, 0))
    end, e_end = _relax(rattle(end, 0.05, 1))
    return start, e_start, end, e_end, n, hop_a


def test_the_end_points_are_minima(ends):
    start, e_start, *_ = ends
    trials = [_relax(rattle(start, 0.1, seed), fmax=ENDPOINT_FMAX) for seed in (10, 11)]
    check = assess_minimum(start, e_start, [t[0] for t in trials], [t[1] for t in trials])
    assert check.is_minimum
    assert abs(check.energy_drop_ev) < 1e-3  # every rattle comes back to the same energy
    assert check.max_displacement_a < 0.01  # ... and the same positions


def test_barrier_profile_of_ctaflows_band_equals_the_plain_ase_barrier(ends):
    from ase.calculators.emt import EMT
    from atomate2.ase.utils import AseNebInterface
    from pymatgen.io.ase import AseAtomsAdaptor

    from ctaflow.structures.neb_paths import interpolate_band

    start, e_start, end, e_end, mover, hop_a = ends
    assert hop_a == pytest.approx(3.59 / np.sqrt(2))
    n_images = images_for_path(hop_a)  # 2.54 Å × 1.5 per Å = 3.8 → 4 → odd: 5
    assert n_images == 5
    assert e_start == pytest.approx(e_end, abs=1e-4)  # the same minimum, twice

    reference = ase_reference_barrier(start, end, n_images, EMT(), fmax_ev_per_a=FMAX)
    assert reference.converged

    images = interpolate_band(start, end, n_images, method="idpp")
    run = AseNebInterface(calculator=EMT(), optimizer="FIRE").run_neb(
        images,
        fmax=FMAX,
        steps=1000,
        neb_kwargs={"k": 0.1, "climb": True, "method": "improvedtangent"},
        neb_doc_kwargs={},
    )
    assert run.state == "successful"
    inner = run.images[1:-1]
    forces = []
    for image in inner:
        atoms = AseAtomsAdaptor.get_atoms(image)
        atoms.calc = EMT()
        forces.append(atoms.get_forces())
    energies = [e_start, *run.energies[1:-1], e_end]
    profile = barrier_profile([start, *inner, end], energies, forces, FMAX)

    assert profile.converged and profile.ends_are_lowest
    assert profile.highest_image == 3  # the middle of 5: the saddle of a symmetric hop
    assert profile.forward_barrier_ev == pytest.approx(reference.forward_barrier_ev, abs=1e-3)
    assert profile.forward_barrier_ev == pytest.approx(profile.backward_barrier_ev, abs=1e-3)
    assert profile.forward_barrier_ev > 0.3  # a real barrier (EMT Cu vacancy hop)
    # the moving atom travels the hop between the relaxed ends, the others barely move
    travel = [start[k].distance(end[k]) for k in range(len(start))]
    assert int(np.argmax(travel)) == mover
    verdict = assess_band(profile, True, True)
    assert verdict.status == "valid" and verdict.kind == "single"
    assert verdict.barrier_ev == profile.forward_barrier_ev
