"""CHGNet in float64 (engine setting ``dtype``): the same model, evaluated in double precision."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk
from jobflow import run_locally

from ctaflow.campaign import load_campaign
from ctaflow.engines import get_engine
from ctaflow.engines.calculators import _chgnet_model, chgnet_calculator
from ctaflow.engines.specs import MLIPEngineSpec
from ctaflow.errors import CampaignError


@pytest.fixture(scope="module")
def atoms():
    """Conventional NaCl (8 atoms), rattled and sheared off its minimum: every force non-zero."""
    a = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    a.rattle(0.05, seed=1)
    a.set_cell(a.cell * [1.01, 0.99, 1.0], scale_atoms=True)
    return a


def _evaluate(calc, atoms):
    a = atoms.copy()
    a.calc = calc
    return a.get_potential_energy(), a.get_forces(), a.get_stress()


def _fd_forces(calc, atoms, components, h):
    """Central-difference forces −∂E/∂x_ik for the given (atom, axis) components."""
    out = []
    for i, k in components:
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[i, k] += h
        minus.positions[i, k] -= h
        out.append(-(_evaluate(calc, plus)[0] - _evaluate(calc, minus)[0]) / (2 * h))
    return np.array(out)


def test_float64_runs_every_layer_in_double_precision(atoms):
    seen = set()

    def record(module, inputs, output):
        if isinstance(output, torch.Tensor) and output.is_floating_point():
            seen.add(output.dtype)

    model = _chgnet_model("0.3.0", "cpu", "float64")
    hooks = [m.register_forward_hook(record) for m in model.modules()]
    try:
        _, forces, _ = _evaluate(chgnet_calculator(dtype="float64"), atoms)
    finally:
        for hook in hooks:
            hook.remove()
    assert seen == {torch.float64}
    assert np.asarray(forces).dtype == np.float64
    assert torch.get_default_dtype() == torch.float32  # restored for everything else


def test_float64_is_the_same_model_with_forces_that_are_the_energy_gradient(atoms):
    c32, c64 = chgnet_calculator(dtype="float32"), chgnet_calculator(dtype="float64")
    e32, f32, s32 = _evaluate(c32, atoms)
    e64, f64, s64 = _evaluate(c64, atoms)
    # reproducible: another evaluation, by another calculator object, gives the same numbers
    e64b, f64b, _ = _evaluate(chgnet_calculator(dtype="float64"), atoms)
    assert abs(e64b - e64) < 1e-10 and np.abs(f64b - f64).max() < 1e-10
    # the same weights: float32 differs by rounding only (measured 1e-7 eV/atom, 1e-5 eV/Å)
    n = len(atoms)
    assert abs(e32 - e64) / n < 1e-5
    assert np.abs(f32 - f64).max() < 1e-4 and np.abs(s32 - s64).max() < 1e-5
    assert np.abs(f64).max() > 0.05  # forces far from zero: the comparison below means something
    # forces are −dE/dx: the central difference of the float64 energy (h = 1e-5 Å, truncation
    # ~1e-9 eV/Å here) matches the float64 forces to 2e-9 eV/Å; float32 forces are off by 1e-5
    components = [(0, 0), (3, 1), (6, 2)]
    fd = _fd_forces(c64, atoms, components, h=1e-5)
    err64 = np.abs(fd - np.array([f64[i, k] for i, k in components])).max()
    err32 = np.abs(fd - np.array([f32[i, k] for i, k in components])).max()
    assert err64 < 1e-7
    assert err32 > 10 * err64


def test_float32_results_are_untouched_by_a_float64_model_in_the_same_process(atoms):
    before = _evaluate(chgnet_calculator(dtype="float32"), atoms)
    _evaluate(chgnet_calculator(dtype="float64"), atoms)
    after = _evaluate(chgnet_calculator(dtype="float32"), atoms)
    assert before[0] == after[0] and np.array_equal(before[1], after[1])
    assert np.asarray(after[1]).dtype == np.float32  # chgnet's own precision


def test_dtype_reaches_the_atomate2_makers(stores):
    """The setting travels through atomate2's force-field maker into the calculator factory."""
    from pymatgen.core import Lattice, Structure

    nacl = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(5.6), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    nacl.perturb(0.05, min_distance=0.01)
    engine = get_engine(MLIPEngineSpec(dtype="float64"))
    assert engine.label == "mlip:CHGNet-0.3.0-float64"
    assert engine.describe()["dtype"] == "float64"
    static = engine.static_maker().make(nacl)
    jobs, _ = stores
    run_locally(static, store=jobs, log=False, ensure_success=True)
    energy = jobs.get_output(static.uuid)["output"]["energy"]
    atoms = nacl.to_ase_atoms()
    e64 = _evaluate(chgnet_calculator(dtype="float64"), atoms)[0]
    e32 = _evaluate(chgnet_calculator(dtype="float32"), atoms)[0]
    assert e32 != e64  # rounding makes them differ, so the check below tells them apart
    assert energy == pytest.approx(e64, abs=1e-10)


def test_dtype_setting_defaults_and_errors(tmp_path):
    spec = MLIPEngineSpec()
    assert spec.dtype == "float32" and spec.model_version == "0.3.0"
    assert get_engine(spec).label == "mlip:CHGNet-0.3.0"  # unchanged for the default
    path = tmp_path / "c.yaml"
    path.write_text(
        "name: t\nstructure: {source: demo}\n"
        "engines:\n  labeller: {kind: mlip, model: SevenNet, dtype: float64}\n"
        "stages:\n  relax: {}\n"
    )
    with pytest.raises(CampaignError, match="float32 only"):
        load_campaign(path)
    path.write_text(path.read_text().replace("dtype: float64", "dtype: float16"))
    with pytest.raises(CampaignError, match="dtype"):
        load_campaign(path)
    path.write_text(path.read_text().replace("dtype: float16", "model_version: 0.3.0"))
    with pytest.raises(CampaignError, match="not bundled"):
        load_campaign(path)
