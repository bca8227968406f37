"""The one exception type of the VASP stand-in."""

from __future__ import annotations

from ctaflow.errors import EngineError


class StandinError(EngineError):
    """The stand-in cannot run these inputs; the message says what to change.

    The command line prints it as one line on stderr and exits with status 1, like VASP refusing
    an input it does not support (no output files are written).
    """
