"""Engines: the one place where a calculator family is chosen from configuration.

``get_engine(spec)`` looks the spec's ``kind`` up in :data:`ENGINES`; stages receive the engine
object and call its maker factories. Adding an engine means adding a spec model and one entry
here, never a branch in a stage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ctaflow.engines.base import Engine
from ctaflow.engines.mlip import MaceEngine, MLIPEngine
from ctaflow.engines.vasp import VaspEngine, VaspStandinEngine
from ctaflow.errors import EngineError

if TYPE_CHECKING:
    from ctaflow.campaign.schema import EngineSpec

ENGINES: dict[str, type[Engine]] = {
    "mlip": MLIPEngine,
    "mace": MaceEngine,
    "vasp": VaspEngine,
    "vasp-standin": VaspStandinEngine,
}


def get_engine(spec: EngineSpec) -> Engine:
    """The engine for a validated engine spec."""
    try:
        cls = ENGINES[spec.kind]
    except KeyError:
        raise EngineError(
            f"unknown engine kind '{spec.kind}'; available: {sorted(ENGINES)}"
        ) from None
    return cls(spec)


__all__ = ["ENGINES", "Engine", "get_engine"]
