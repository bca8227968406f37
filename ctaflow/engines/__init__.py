"""Engines: the one place where a calculator family is chosen from configuration.

``get_engine(spec)`` looks the spec's ``kind`` up in :data:`ENGINES`; stages receive the engine
object and call its maker factories. Adding an engine means adding a spec model
(:mod:`ctaflow.engines.specs`) and one entry here, never a branch in a stage.

The engine classes are named here by import path and loaded on first use: the package also holds
the VASP stand-in executable, the calculator factories and the engine vocabulary
(:mod:`.params`, :mod:`.specs`), which must load without atomate2's makers (a stand-in process
starts for every VASP job; the builders run on database hosts).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from ctaflow.engines.specs import EngineSpec, MLIPEngineSpec
from ctaflow.errors import EngineError

if TYPE_CHECKING:
    from ctaflow.engines.base import Engine

#: engine class of each spec ``kind``, as "module:class"
ENGINES: dict[str, str] = {
    "mlip": "ctaflow.engines.mlip:MLIPEngine",
    "mace": "ctaflow.engines.mlip:MaceEngine",
    "vasp": "ctaflow.engines.vasp:VaspEngine",
    "vasp-standin": "ctaflow.engines.vasp:VaspStandinEngine",
}


def engine_class(kind: str) -> type[Engine]:
    """The engine class registered for ``kind``."""
    try:
        module, name = ENGINES[kind].split(":")
    except KeyError:
        raise EngineError(f"unknown engine kind '{kind}'; available: {sorted(ENGINES)}") from None
    return getattr(import_module(module), name)


def get_engine(spec: EngineSpec) -> Engine:
    """The engine for a validated engine spec."""
    return engine_class(spec.kind)(spec)


def default_engine() -> Engine:
    """The engine a maker uses when it is given none: the embedded universal MLIP (CHGNet 0.3.0,
    whose weights ship in its wheel), so ``Maker()`` runs anywhere."""
    return get_engine(MLIPEngineSpec())


__all__ = ["ENGINES", "default_engine", "engine_class", "get_engine"]
