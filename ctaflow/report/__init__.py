"""Reports: HTML / Markdown / JSON from the stored results (see :mod:`ctaflow.report.build`).

``write_report`` and ``collect_report`` load on first use: the report sections, which the stage
registry imports, must load without :mod:`ctaflow.report.build`, which loops over the registry.
"""

from __future__ import annotations

from typing import Any

__all__ = ["collect_report", "write_report"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from ctaflow.report import build  # lazy: see the module docstring

        return getattr(build, name)
    raise AttributeError(name)
