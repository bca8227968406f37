"""CHGNet's forces and stress from one backward pass.

chgnet 0.4's ``CHGNet._compute`` takes forces and stress as two ``torch.autograd.grad`` calls,
each with ``create_graph=True`` (the graph of the gradients, which only training needs, is built
at every MD or relaxation step too). :func:`inference_model` gives a loaded model a ``_compute``
that, outside training, runs chgnet's own forward for the energy and then takes the gradient
with respect to the atom positions and the strains in one call without that graph: the same
derivatives of the same energy, in about half the time of a whole evaluation (0.133 → 0.073 s
per call for the 40-atom demo cell, single thread; forces equal to 5e-6 eV/Å, float32
round-off). Energies and magnetic moments are untouched; in training mode (``model.train()``)
chgnet's own ``_compute`` runs.
"""

from __future__ import annotations

import types
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from chgnet.graph.crystalgraph import BatchedGraph
    from chgnet.model import CHGNet

#: eV/Å³ → GPa, chgnet's own factor for its stress
EV_PER_A3_TO_GPA = 160.21766208


def _compute(
    self: CHGNet,
    g: BatchedGraph,
    *,
    compute_force: bool = False,
    compute_stress: bool = False,
    **kwargs,
) -> dict:
    """chgnet's ``_compute``, its forces and stress from a single backward pass."""
    own = type(self)._compute
    if self.training or not (compute_force or compute_stress):
        return own(self, g, compute_force=compute_force, compute_stress=compute_stress, **kwargs)
    prediction = own(self, g, **kwargs)
    energy = prediction["e"]
    if self.is_intensive:  # chgnet divided the total energy by the atoms after its gradients
        energy = energy * prediction["atoms_per_graph"]
    positions = list(g.atom_positions) if compute_force else []
    strains = list(g.strains) if compute_stress else []
    grads = torch.autograd.grad(energy.sum(), positions + strains)
    if compute_force:
        prediction["f"] = [-grad for grad in grads[: len(positions)]]
    if compute_stress:
        scale = EV_PER_A3_TO_GPA / g.volumes
        prediction["s"] = [
            grad * factor for grad, factor in zip(grads[len(positions) :], scale, strict=True)
        ]
    return prediction


def inference_model(model: CHGNet) -> CHGNet:
    """The loaded model, its ``_compute`` replaced (on this instance) by the single-pass one."""
    model._compute = types.MethodType(_compute, model)
    return model
