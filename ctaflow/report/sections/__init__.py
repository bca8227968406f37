"""One report section per stage: its records (flat, units in the keys), table columns, notes and
figures. The stage registry (:mod:`ctaflow.stages.registry`) attaches each section to its stage;
:mod:`ctaflow.report.build` renders them in pipeline order.

Records come from the derived collections the builders wrote where a stage has a builder (so the
report shows exactly what ``ctaflow query --derived`` and a cluster-side ``mrun`` see), else from
the stage's stored job outputs. Nothing here recomputes physics.
"""

from ctaflow.report.sections.energies import BARRIERS, FORMATION_ENERGIES
from ctaflow.report.sections.interfaces import EXCHANGE, INTERFACES
from ctaflow.report.sections.mlff import ACTIVE_LEARNING, MLFF
from ctaflow.report.sections.structures import MD, RELAXATIONS, STRUCTURES
from ctaflow.report.sections.transport import TRANSPORT

__all__ = [
    "ACTIVE_LEARNING",
    "BARRIERS",
    "EXCHANGE",
    "FORMATION_ENERGIES",
    "INTERFACES",
    "MD",
    "MLFF",
    "RELAXATIONS",
    "STRUCTURES",
    "TRANSPORT",
]
