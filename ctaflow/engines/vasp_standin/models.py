"""Which MLIP the stand-in runs: ``CTAFLOW_STANDIN_MODEL=<family>:<version>``.

The registry lists every accepted value with the level of theory its training data came from, so
an unknown value is rejected before torch is imported and an INCAR asking for a different level
of theory (e.g. ``METAGGA = R2SCAN`` with a PBE-trained model) can be refused with a clear message.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ctaflow.engines.calculators import chgnet_calculator
from ctaflow.engines.vasp_standin.errors import StandinError

if TYPE_CHECKING:
    from ase.calculators.calculator import Calculator

logger = logging.getLogger(__name__)

MODEL_ENV = "CTAFLOW_STANDIN_MODEL"
THREADS_ENV = "CTAFLOW_STANDIN_THREADS"
DEFAULT_MODEL = "chgnet:0.3.0"
DEFAULT_THREADS = 1


@dataclass(frozen=True)
class ModelSpec:
    """One MLIP the stand-in can run.

    Parameters
    ----------
    family
        Model family, e.g. ``"chgnet"``.
    version
        Version or weights name inside the family, e.g. ``"0.3.0"``.
    training_theory
        Level of theory of the training data, e.g. ``"PBE/PBE+U (MPtrj)"``.
    meta_gga
        True if the training data are meta-GGA (r2SCAN) energies and forces.
    """

    family: str
    version: str
    training_theory: str
    meta_gga: bool = False

    @property
    def label(self) -> str:
        """``family:version``, the value of ``CTAFLOW_STANDIN_MODEL`` that selects this model."""
        return f"{self.family}:{self.version}"

    def calculator(self) -> Calculator:
        """A fresh ASE calculator for this model (energies eV, forces eV/Å, stress eV/Å³)."""
        _set_torch_threads()
        if self.family == "chgnet":
            # CHGNet announces itself on stdout, which custodian sends to vasp.out
            with contextlib.redirect_stdout(io.StringIO()) as chatter:
                calc = chgnet_calculator(model_version=self.version, device="cpu")
            logger.debug("chgnet: %s", chatter.getvalue().strip())
            return calc
        raise StandinError(f"no calculator factory for model family '{self.family}'")


#: every accepted value of ``CTAFLOW_STANDIN_MODEL``; weights ship inside the chgnet wheel
MODELS: dict[str, ModelSpec] = {
    spec.label: spec
    for spec in (
        ModelSpec("chgnet", "0.3.0", "PBE/PBE+U (Materials Project MPtrj)"),
        ModelSpec("chgnet", "0.2.0", "PBE/PBE+U (Materials Project MPtrj)"),
        ModelSpec("chgnet", "r2scan", "r2SCAN (Materials Project r2SCAN)", meta_gga=True),
    )
}


def model_from_env(environ: dict[str, str] | None = None) -> ModelSpec:
    """The model named by ``CTAFLOW_STANDIN_MODEL`` (default ``chgnet:0.3.0``).

    Raises
    ------
    StandinError
        If the value is not ``<family>:<version>`` or names no known model.
    """
    environ = os.environ if environ is None else environ
    value = environ.get(MODEL_ENV, DEFAULT_MODEL).strip()
    if value.count(":") != 1 or not all(value.split(":")):
        raise StandinError(
            f"{MODEL_ENV}='{value}' is not of the form <family>:<version>; "
            f"known models: {', '.join(sorted(MODELS))}"
        )
    try:
        return MODELS[value.lower()]
    except KeyError:
        raise StandinError(
            f"unknown model {MODEL_ENV}='{value}'; known models: {', '.join(sorted(MODELS))}"
        ) from None


def native_threads(environ: dict[str, str] | None = None) -> int:
    """Threads for torch and BLAS: ``CTAFLOW_STANDIN_THREADS`` (default 1).

    Measured on a shared 2-core machine: one CHGNet force call on 8 atoms took 0.09 s with one
    torch thread and ~1 s with two threads competing with other processes; scipy's 3×3 solves
    in ASE's cell filter took ~2 ms each with two OpenBLAS threads.
    """
    environ = os.environ if environ is None else environ
    raw = environ.get(THREADS_ENV, str(DEFAULT_THREADS))
    try:
        threads = int(raw)
    except ValueError:
        raise StandinError(f"{THREADS_ENV}='{raw}' is not an integer") from None
    if threads < 1:
        raise StandinError(f"{THREADS_ENV}={threads} must be at least 1")
    return threads


def _set_torch_threads() -> None:
    """Run torch on :func:`native_threads` threads."""
    import torch

    threads = native_threads()
    torch.set_num_threads(threads)
    logger.debug("torch threads: %d", threads)
