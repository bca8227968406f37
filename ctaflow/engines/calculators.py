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


@lru_cache(maxsize=4)
def _chgnet_model(model_version: str, device: str):
    from chgnet.model import CHGNet

    return CHGNet.load(model_name=model_version, use_device=device, verbose=False)


MACE_FACTORY = "ctaflow.engines.calculators.mace_calculator"


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


def set_threads(threads: int | None) -> None:
    """Set torch's intra-op CPU threads for this process (None: leave torch's default)."""
    if threads:
        import torch

        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def chgnet_calculator(
    model_version: str = "0.3.0", device: str = "cpu", threads: int | None = None
) -> Calculator:
    """CHGNet with weights bundled in the chgnet wheel (no download); stress in eV/Å³ for ASE."""
    from chgnet.model.dynamics import CHGNetCalculator

    set_threads(threads)
    return CHGNetCalculator(model=_chgnet_model(model_version, device), use_device=device)
