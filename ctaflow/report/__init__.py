"""Reports from the stored results: JSON (machine), Markdown and HTML (people).

The report never recomputes physics: it reads the documents the stages stored.
"""

from ctaflow.report.build import collect_report, write_report

__all__ = ["collect_report", "write_report"]
