"""The committee force deviation along a stored MD trajectory: how far the campaign-trained model
strayed from what it was trained on, judged against the trust window of active learning.

Member 0 is the model that ran the MD: its forces are the trajectory's own. The other members
evaluate the same stored frames (at most ``max_frames``, evenly spaced); σ_F per frame is
:func:`ctaflow.analysis.active_learning.force_deviation`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms

from ctaflow.analysis.active_learning import TrustCheck, force_deviation, trust_check
from ctaflow.engines.calculators import mace_calculator
from ctaflow.settings import TrustWindow

#: frames judged per trajectory (evenly spaced); the others cost time and add little
MAX_FRAMES = 100


def trajectory_trust(
    arrays: dict[str, np.ndarray],
    species: Sequence[str],
    committee: Sequence[str],
    window: TrustWindow,
    device: str = "cpu",
    dtype: str = "float64",
    max_frames: int = MAX_FRAMES,
) -> TrustCheck:
    """σ_F on the frames of a trajectory (``positions_a``, ``cells_a``, ``forces_ev_per_a`` of
    member 0, per frame) with the other ``committee`` members' model files."""
    n = len(arrays["positions_a"])
    picked = np.unique(np.linspace(0, n - 1, min(n, max_frames)).round().astype(int))
    calculators = [mace_calculator(str(path), device=device, dtype=dtype) for path in committee]
    deviations = []
    for f in picked:
        atoms = Atoms(list(species), positions=arrays["positions_a"][f], cell=arrays["cells_a"][f])
        atoms.pbc = True
        forces = [np.asarray(arrays["forces_ev_per_a"][f])]
        for calc in calculators:
            atoms.calc = calc
            forces.append(atoms.get_forces())
        deviations.append(force_deviation(np.stack(forces)))
    return trust_check(deviations, window, committee_size=len(committee) + 1)
