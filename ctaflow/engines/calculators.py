"""ASE calculator factories that atomate2 makers load by import path.

atomate2's force-field makers serialise their calculator as an import string plus keyword
arguments, so the factories here take only plain, JSON-serialisable arguments. Loaded models are
cached per process: a local campaign with many jobs loads each model once.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import TYPE_CHECKING

from ctaflow.noise import captured_stdout

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from ase.calculators.calculator import Calculator

CHGNET_FACTORY = "ctaflow.engines.calculators.chgnet_calculator"
SEVENNET_FACTORY = "ctaflow.engines.calculators.sevennet_calculator"
MACE_FACTORY = "ctaflow.engines.calculators.mace_calculator"

#: calculator factory (import path) of each universal MLIP family of the ``mlip`` engine; all
#: take ``model_version``, ``device``, ``threads`` and ``dtype``
MLIP_FACTORIES = {"CHGNet": CHGNET_FACTORY, "SevenNet": SEVENNET_FACTORY}

#: SevenNet checkpoints by ctaflow model_version: pretrained names of the sevenn package, whose
#: wheel holds the files (sevenn/pretrained_potentials/)
SEVENNET_CHECKPOINTS = {"0": "7net-0"}  # SevenNet-0, 11 Jul 2024, trained on MPtrj (PBE)


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

    with captured_stdout(logger):  # its banner is printed; it goes to the log
        model = CHGNet.load(model_name=model_version, use_device=device, verbose=False)
    if dtype == "float64":
        # lazy: chgnet_float64 imports chgnet and torch, loaded only when CHGNet is asked for
        from ctaflow.engines.chgnet_float64 import float64_model

        model = float64_model(model)
    # lazy: imports torch; forces and stress from one backward pass (about 2x faster)
    from ctaflow.engines.chgnet_inference import inference_model

    return inference_model(model)


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
        # lazy: chgnet_float64 imports chgnet and torch, loaded only when CHGNet is asked for
        from ctaflow.engines.chgnet_float64 import CHGNetFloat64Calculator as calculator
    elif dtype == "float32":
        from chgnet.model.dynamics import CHGNetCalculator as calculator
    else:
        raise ValueError(f"CHGNet dtype must be float32 or float64, not {dtype!r}")
    set_threads(threads)
    model = _chgnet_model(model_version, device, dtype)
    with captured_stdout(logger):  # "CHGNet will run on cpu", printed: to the log
        return calculator(model=model, use_device=device)


def chgnet_species(model_version: str = "0.3.0") -> frozenset[str]:
    """Elements CHGNet embeds: H to Pu (atomic numbers 1-94)."""
    from pymatgen.core import Element

    return frozenset(Element.from_Z(z).symbol for z in range(1, 95))


# --------------------------------------------------------------------------- SevenNet
def import_sevenn():
    """The sevenn package, imported so that e3nn 0.4 loads under torch >= 2.6.

    e3nn 0.4 (pinned by mace-torch) ``torch.load``s a constants file holding a Python ``slice``,
    which torch's weights-only default refuses; it is allowed for this import only (mace instead
    sets TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD for the whole process when it is imported).
    """
    import torch

    with torch.serialization.safe_globals([slice]):
        import e3nn.o3  # noqa: F401
        import sevenn.calculator
        import sevenn.util
    return sevenn


def _sevennet_checkpoint(model_version: str) -> str:
    return import_sevenn().util.pretrained_name_to_path(SEVENNET_CHECKPOINTS[model_version])


@lru_cache(maxsize=4)
def _sevennet_model(model_version: str, device: str):
    model, config = import_sevenn().util.model_from_checkpoint(_sevennet_checkpoint(model_version))
    return model.to(device), config


def sevennet_calculator(
    model_version: str = "0",
    device: str = "cpu",
    threads: int | None = None,
    dtype: str = "float32",
) -> Calculator:
    """SevenNet with its checkpoint from the sevenn wheel (no download); float32 only."""
    if dtype != "float32":
        raise ValueError(f"SevenNet runs in float32 here, not {dtype!r}")
    sevenn = import_sevenn()
    set_threads(threads)
    model, config = _sevennet_model(model_version, device)
    return sevenn.calculator.SevenNetCalculator(
        model=model, file_type="model_instance", device=device, sevennet_config=config
    )


@lru_cache(maxsize=4)
def sevennet_species(model_version: str = "0") -> frozenset[str]:
    """Elements a SevenNet checkpoint was trained on (read from its config, model not built)."""
    import torch

    import_sevenn()  # e3nn classes may be referenced by the pickled config
    checkpoint = torch.load(
        _sevennet_checkpoint(model_version), map_location="cpu", weights_only=False
    )
    return frozenset(checkpoint["config"]["chemical_species"])


#: elements each universal MLIP family knows, by model_version
MLIP_SPECIES = {"CHGNet": chgnet_species, "SevenNet": sevennet_species}


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
