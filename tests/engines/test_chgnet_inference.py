"""CHGNet's forces and stress from one backward pass (ctaflow.engines.chgnet_inference): the
same numbers as chgnet's own two-pass evaluation of an unmodified model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk
from chgnet.model import CHGNet
from chgnet.model.dynamics import CHGNetCalculator

from ctaflow.engines.calculators import chgnet_calculator
from ctaflow.engines.chgnet_inference import inference_model


@pytest.fixture(scope="module")
def atoms():
    """Rocksalt NaCl with Li on one site (16 atoms), rattled and sheared: forces and stress
    all non-zero and the stress tensor not diagonal."""
    a = bulk("NaCl", "rocksalt", a=5.64, cubic=True).repeat((2, 1, 1))
    a.symbols[0] = "Li"
    a.rattle(0.08, seed=3)
    cell = a.cell.array.copy()
    cell[0, 1] += 0.15
    a.set_cell(cell * [1.02, 0.99, 1.0], scale_atoms=True)
    return a


def _results(calc, atoms):
    a = atoms.copy()
    a.calc = calc
    return {
        "energy": a.get_potential_energy(),
        "forces": a.get_forces(),
        "stress": a.get_stress(voigt=False),
        "magmoms": a.calc.results["magmoms"],
    }


def test_single_pass_matches_chgnet_own_evaluation(atoms):
    reference = _results(CHGNetCalculator(model=CHGNet.load(verbose=False)), atoms)
    ours = _results(chgnet_calculator(), atoms)
    assert np.abs(reference["forces"]).max() > 0.1  # a test of something
    assert abs(reference["stress"][0, 1]) > 1e-4  # eV/Å³: the shear shows
    assert ours["energy"] == reference["energy"]  # same forward pass
    np.testing.assert_array_equal(ours["magmoms"], reference["magmoms"])
    # float32 arithmetic in another order: agreement to a few 1e-6 of the largest component
    np.testing.assert_allclose(ours["forces"], reference["forces"], rtol=0, atol=5e-5)
    np.testing.assert_allclose(ours["stress"], reference["stress"], rtol=0, atol=1e-6)


def test_training_mode_keeps_chgnet_own_graph_of_the_gradients(atoms):
    """Fine-tuning needs forces that can be differentiated again (a force loss): in training
    mode the patched model runs chgnet's own ``_compute``."""
    from pymatgen.io.ase import AseAtomsAdaptor

    model = inference_model(CHGNet.load(verbose=False))
    graph = model.graph_converter(AseAtomsAdaptor.get_structure(atoms))
    model.train()
    out = model([graph], task="efs")
    assert out["f"][0].requires_grad
    model.eval()
    with torch.enable_grad():
        out = model([graph], task="efs")
    assert not out["f"][0].requires_grad  # no graph built for the gradients at inference
