"""ctaflow: workflow-managed DFT / MLIP / MLFF campaigns for solid electrolytes."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ctaflow")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
