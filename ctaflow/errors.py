"""Exceptions for problems a user can fix; the CLI prints them without a traceback."""

from __future__ import annotations


class CtaflowError(Exception):
    """A problem with the user's input or environment, with a message saying how to fix it."""


class CampaignError(CtaflowError):
    """The campaign file is invalid (unknown key, wrong type, missing file, ...)."""


class StructureError(CtaflowError):
    """A structure is unreadable or physically invalid."""


class EngineError(CtaflowError):
    """An engine is unknown, unavailable or misconfigured."""


class StoreError(CtaflowError):
    """The job store cannot be opened or is misconfigured."""


class BackendError(CtaflowError):
    """A workflow manager (FireWorks, jobflow-remote) is unknown, unreachable or misconfigured."""
