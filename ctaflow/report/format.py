"""Numbers and tables as text: one formatting for every report table.

Results carry their verdict (see the style guide, "Results carry their verdict"): a record may
have ``status`` (``valid`` | ``flagged`` | ``excluded``) and ``reasons`` (list of str). A table of
such records gets a first column with a visible mark (:data:`MARKS`) and a footnote number per
distinct set of reasons; the reasons are listed right under the table, and the numbers of an
excluded row are struck through so that they cannot be read as results. Records without a
status render as plain rows. Headers are the human-readable labels of
:mod:`ctaflow.report.labels`.

One number of an otherwise sound record can carry its own verdict: ``field_verdicts`` maps a
field name to ``{"status": "flagged" | "excluded", "reason": "..."}`` (e.g. a formation energy
from elemental references the model never saw). Its cell is marked ("⚠ -0.06 [3]", or struck
when excluded) with the reason under the table.
"""

from __future__ import annotations

from typing import Any

from ctaflow.report.labels import label

Records = list[dict[str, Any]]

VALID, FLAGGED, EXCLUDED = "valid", "flagged", "excluded"
#: the record key of per-field verdicts (see the module docstring)
FIELD_VERDICTS = "field_verdicts"
#: what a status cell shows
MARKS = {VALID: "✓ valid", FLAGGED: "⚠ flagged", EXCLUDED: "✗ excluded"}
#: statuses that older or stage-specific checks write, read as the three above
ALIASES = {"ok": VALID}
#: header of the status column (the HTML page recognises a status table by it)
STATUS_HEADER = "status"
#: a column whose cells show another field of the record when it has one (the readable name of
#: a trained model instead of its engine label)
DISPLAY = {"engine": "engine_name"}


def fmt(value: Any) -> str:
    """A table cell: floats to 4 significant digits, None as empty."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def status_of(row: dict[str, Any]) -> str | None:
    """The record's status (``valid``, ``flagged``, ``excluded``), None when it carries none."""
    status = row.get("status")
    if status is None:
        return None
    return ALIASES.get(str(status), str(status))


def reasons_of(row: dict[str, Any]) -> list[str]:
    """The record's reasons (a list; a single string is one reason)."""
    reasons = row.get("reasons") or []
    return [reasons] if isinstance(reasons, str) else [str(r) for r in reasons]


def field_verdict(row: dict[str, Any], field: str) -> tuple[str, str] | None:
    """(status, reason) of one field of a record (None: the field has no verdict of its own)."""
    verdict = (row.get(FIELD_VERDICTS) or {}).get(field)
    if not verdict:
        return None
    return ALIASES.get(verdict.get("status"), verdict.get("status")), str(verdict.get("reason"))


def drawable(rows: Records, *keys: str) -> Records:
    """The records a figure may draw: not excluded, and with a value for every one of ``keys``
    that is not excluded on its own (a missing value is a gap, never a zero). Flagged records
    stay: draw them apart with :func:`by_status` and say so in the caption."""
    return [
        row
        for row in rows
        if status_of(row) != EXCLUDED
        and all(row.get(k) is not None for k in keys)
        and all((field_verdict(row, k) or ("",))[0] != EXCLUDED for k in keys)
    ]


def by_status(rows: Records, *keys: str) -> dict[str, Records]:
    """The drawable records (see :func:`drawable`) split into ``valid`` (also those without a
    status) and ``flagged`` (the record or one of ``keys`` flagged), e.g. for filled and open
    symbols."""
    groups: dict[str, Records] = {VALID: [], FLAGGED: []}
    for row in drawable(rows, *keys):
        flagged = status_of(row) == FLAGGED or any(
            (field_verdict(row, k) or ("",))[0] == FLAGGED for k in keys
        )
        groups[FLAGGED if flagged else VALID].append(row)
    return groups


def _cell(text: str) -> str:
    """A cell that cannot break the Markdown table (a '|' in a value is escaped)."""
    return text.replace("|", "\\|").replace("\n", " ")


def table(rows: Records, columns: list[str] | tuple[str, ...]) -> list[str]:
    """Markdown table lines of ``columns`` of ``rows``, with labelled headers.

    When any record carries a status, the table starts with a status column ("⚠ flagged [1]"),
    numbers of excluded records are struck through (``~~4.02~~``), and the reasons follow the
    table as a list ("- [1] reason; reason"), one number per distinct set of reasons.
    """
    with_status = any(status_of(row) is not None for row in rows)
    if with_status:  # the status column shows them
        columns = [c for c in columns if c not in ("status", "reasons")]
    headers = [label(c) for c in columns]
    if with_status:
        headers.insert(0, STATUS_HEADER)
    lines = ["| " + " | ".join(_cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    numbers: dict[tuple[str, ...], int] = {}
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(DISPLAY[column]) if column in DISPLAY else None
            text = fmt(row.get(column) if value is None else value)
            own = field_verdict(row, column)
            excluded = status_of(row) == EXCLUDED or (own is not None and own[0] == EXCLUDED)
            if excluded and isinstance(row.get(column), float):
                text = f"~~{text}~~"
            if own is not None and text:
                number = numbers.setdefault((own[1],), len(numbers) + 1)
                mark = "⚠ " if own[0] == FLAGGED else ""
                text = f"{mark}{text} [{number}]"
            cells.append(_cell(text))
        if with_status:
            cells.insert(0, status_cell(row, numbers))
        lines.append("| " + " | ".join(cells) + " |")
    if numbers:
        lines.append("")
        lines += [f"- [{n}] {'; '.join(reasons)}" for reasons, n in numbers.items()]
    return lines


def status_cell(row: dict[str, Any], numbers: dict[tuple[str, ...], int]) -> str:
    """The status mark of a record, with the footnote number of its reasons (numbered in
    ``numbers``, shared by records with the same reasons)."""
    status = status_of(row)
    if status is None:
        return ""
    text = MARKS.get(status, status)
    reasons = tuple(reasons_of(row))
    if reasons:
        number = numbers.setdefault(reasons, len(numbers) + 1)
        text += f" [{number}]"
    return text


def notes_of(rows: Records) -> list[str]:
    """The distinct ``notes`` of the records, sorted."""
    return sorted({n for row in rows for n in row.get("notes") or []})
