"""Numbers and tables as text: one formatting for every report table."""

from __future__ import annotations

from typing import Any

Records = list[dict[str, Any]]


def fmt(value: Any) -> str:
    """A table cell: floats to 4 significant digits, None as empty."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def table(rows: list[dict[str, Any]], columns: list[str] | tuple[str, ...]) -> list[str]:
    """Markdown table lines of ``columns`` of ``rows``."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(fmt(row.get(c)) for c in columns) + " |")
    return lines


def notes_of(rows: Records) -> list[str]:
    """The distinct ``notes`` of the records, sorted."""
    return sorted({n for row in rows for n in row.get("notes") or []})
