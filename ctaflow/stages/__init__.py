"""The stages of a campaign: one registry entry each (see :mod:`ctaflow.stages.registry`)."""

from ctaflow.report.data import ReportSection
from ctaflow.stages.registry import CONFIGURABLE, STAGES, builders, report_sections
from ctaflow.stages.spec import BASE, MODEL, StageContext, StageSpec

__all__ = [
    "BASE",
    "CONFIGURABLE",
    "MODEL",
    "STAGES",
    "ReportSection",
    "StageContext",
    "StageSpec",
    "builders",
    "report_sections",
]
