"""ASE calculator factories that atomate2 makers load by import path.

atomate2's force-field makers serialise their calculator as an import string plus keyword
arguments, so the factories here take only plain, JSON-serialisable arguments. Loaded models are
cached per process: a local campaign with many jobs loads each model once.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ase.calculators.calculator import Calculator

CHGNET_FACTORY = "ctaflow.engines.calculators.chgnet_calculator"
MACE_FACTORY = "ctaflow.engines.calculators.mace_calculator"


def set_threads(threads: int | None) -> None:
    """Set torch's intra-op CPU threads for this process (None: leave torch's default)."""
    if threads:
        import torch

        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


# --------------------------------------------------------------------------- CHGNet
@lru_cache(maxsize=4)
def _chgnet_model(model_version: str, device: str, dtype: str):
    from chgnet.model import CHGNet

    model = CHGNet.load(model_name=model_version, use_device=device, verbose=False)
    if dtype == "float64":
        from ctaflow.engines.chgnet_float64 import float64_model

        model = float64_model(model)
    return model


def chgnet_calculator(
    model_version: str = "0.3.0",
    device: str = "cpu",
    threads: int | None = None,
    dtype: str = "float32",
) -> Calculator:
    """CHGNet with weights bundled in the chgnet wheel (no download); stress in eV/Å³ for ASE.

    ``dtype``: float32 is CHGNet's own precision; float64 evaluates the same weights in double
    precision (see :mod:`ctaflow.engines.chgnet_float64`).
    """
    if dtype == "float64":
        from ctaflow.engines.chgnet_float64 import CHGNetFloat64Calculator as calculator
    elif dtype == "float32":
        from chgnet.model.dynamics import CHGNetCalculator as calculator
    else:
        raise ValueError(f"CHGNet dtype must be float32 or float64, not {dtype!r}")
    set_threads(threads)
    return calculator(model=_chgnet_model(model_version, device, dtype), use_device=device)


# --------------------------------------------------------------------------- MACE
@lru_cache(maxsize=4)
def _mace(model_path: str, device: str, dtype: str):
    from mace.calculators import MACECalculator

    return MACECalculator(model_paths=model_path, device=device, default_dtype=dtype)


def mace_calculator(
    model_path: str, device: str = "cpu", dtype: str = "float64", threads: int | None = None
) -> Calculator:
    """A MACE model from a file (trained by ctaflow or brought by the user)."""
    set_threads(threads)
    return _mace(str(model_path), device, dtype)
