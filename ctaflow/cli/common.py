"""What every command shares: the typer app, the consoles, user errors and the campaign edge."""

from __future__ import annotations

import csv
import io
import json
import logging
import sys
from functools import wraps
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ctaflow import __version__
from ctaflow.errors import CtaflowError
from ctaflow.noise import quiet_known_noise

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="The ctaflow command line: validate, run, submit, status, rerun, query, build, report, "
    "export, compare.",
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        out.print(f"ctaflow {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """The ctaflow command line."""


WorkdirOption = Annotated[
    Path, typer.Option("--workdir", "-w", help="Campaign work directory (store, job folders).")
]
CampaignArgument = Annotated[Path, typer.Argument(help="Campaign YAML file.")]
AllowLargeOption = Annotated[
    bool,
    typer.Option(
        "--allow-large",
        help="Run cells whose MD needs more memory than this machine has available "
        "(refused otherwise).",
    ),
]


def user_errors(func):
    """Turn CtaflowError into one red line and exit status 1."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except CtaflowError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
            raise typer.Exit(1) from None

    return wrapper


def prepare(campaign_file: Path):
    """Load the campaign, its structure and engines: everything checked before any store write."""
    # lazy: the campaign schema loads the stage registry with atomate2 and torch (seconds);
    # `ctaflow --help`, `status` and `query` do not need them
    from ctaflow.campaign import load_campaign
    from ctaflow.engines import get_engine
    from ctaflow.store_mongo import check_store_config
    from ctaflow.structures import load_structure

    settings = load_campaign(campaign_file)
    check_store_config(settings.store)  # a ${VAR} of the MongoDB config that is not set
    structure = load_structure(settings.structure)
    engines = {name: get_engine(spec) for name, spec in settings.engines.items()}
    elements = {el.symbol for el in structure.composition}
    if settings.series is not None:  # the substituted compositions need their element too
        elements.add(settings.series.by)
    elements = sorted(elements)
    for name in set(settings.stage_engines().values()):
        engines[name].check_available(elements)
    return settings, structure, engines


def check_sizes(settings, structure, allow_large: bool, workers: int = 1, runs_here: bool = True):
    """Cell sizes, estimates and the mobile-ion checks (:mod:`ctaflow.campaign.guards`):
    warnings to stderr, refusals as one CtaflowError; the check for ``validate`` to print.
    ``runs_here``: the campaign runs on this machine (memory refusals), not on a backend's."""
    from ctaflow.campaign.guards import check_campaign, raise_problems  # lazy: the registry

    check = check_campaign(
        settings, structure, workers=workers, allow_large=allow_large, runs_here=runs_here
    )
    for warning in check.warnings:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)
    raise_problems(check)
    return check


def plain(value):
    """JSON fallback: numpy scalars as Python numbers, anything else as text."""
    return value.item() if hasattr(value, "item") else str(value)


#: how a status shows in a terminal table (the report's marks)
STATUS_MARKS = {
    "valid": "✓ valid",
    "ok": "✓ valid",
    "flagged": "⚠ flagged",
    "excluded": "✗ excluded",
}


def cell(value) -> str:
    """A value as text for a table or a csv cell: floats to 6 significant digits, lists joined
    with '; ', documents as JSON."""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | tuple):
        return "; ".join(
            json.dumps(v, default=str) if isinstance(v, dict | list) else cell(v) for v in value
        )
    if isinstance(value, dict):
        return json.dumps(value, default=str)
    return "" if value is None else str(value)


def csv_value(value: Any) -> Any:
    """A csv cell: numbers exact (repr), lists joined with '; ', documents as JSON."""
    if isinstance(value, list | tuple | dict):
        return cell(value)
    return value


def _shown(column: str, value: Any) -> str:
    if column == "status" and isinstance(value, str):
        return STATUS_MARKS.get(value, value)
    return cell(value)


def print_rows(rows: list[dict[str, Any]], fmt: str, empty: str = "nothing to show") -> None:
    """Rows on stdout as ``json`` (lists as lists), ``csv`` (lists joined with '; ') or a
    ``table``: one table when it fits the terminal, else one block of ``field: value`` lines
    per row (nothing is cut)."""
    if fmt == "json":
        sys.stdout.write(json.dumps(rows, indent=2, default=str, ensure_ascii=False) + "\n")
        return
    columns = list(dict.fromkeys(k for row in rows for k in row))
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns)
        writer.writeheader()
        writer.writerows({k: csv_value(v) for k, v in row.items()} for row in rows)
        sys.stdout.write(buffer.getvalue())
        return
    if not rows:
        err.print(empty)
        return
    text = [{c: _shown(c, row.get(c)) for c in columns} for row in rows]
    widths = [max(len(c), *(len(t[c] or "") for t in text)) for c in columns]
    if sum(widths) + 3 * len(columns) + 1 <= out.width:
        table = Table(*columns)
        for t in text:
            flagged = "⚠" in t.get("status", "")
            table.add_row(*(t[c] for c in columns), style="yellow" if flagged else None)
        out.print(table)
        return
    width = max(len(c) for c in columns)
    for n, t in enumerate(text):
        out.print(f"[bold]── {n + 1} of {len(text)}[/]", highlight=False)
        for c in columns:
            if t[c] != "":
                out.print(f"{c:>{width}}: {t[c]}", markup=False, highlight=False)
    err.print(
        f"{len(columns)} columns do not fit a {out.width}-column table: one block per row; "
        "choose columns with --fields a,b,c"
    )


def log_to(path: Path) -> None:
    """Send library logs (jobflow, atomate2, ctaflow) to a file in the work directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)  # library warnings go to the log, not the terminal
    quiet_known_noise()
