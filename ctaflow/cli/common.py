"""What every command shares: the typer app, the consoles, user errors and the campaign edge."""

from __future__ import annotations

import logging
from functools import wraps
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ctaflow.errors import CtaflowError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="The ctaflow command line: validate, run, submit, status, rerun, query, build, report.",
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

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


def cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


def log_to(path: Path) -> None:
    """Send library logs (jobflow, atomate2, ctaflow) to a file in the work directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)  # library warnings go to the log, not the terminal
