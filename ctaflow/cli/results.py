"""Commands on stored results: query, build, report, verify."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ctaflow.cli.common import WorkdirOption, app, err, out, print_rows, user_errors
from ctaflow.errors import CtaflowError

FieldsOption = Annotated[
    str | None,
    typer.Option(
        "--fields",
        help="Comma-separated columns, e.g. formula,energy_per_atom_ev,status (dotted paths "
        "reach into nested fields, e.g. metadata.settings_hash).",
    ),
]


@app.command()
@user_errors
def query(
    workdir: WorkdirOption = Path("runs/demo"),
    stage: Annotated[
        str | None, typer.Option("--stage", "--kind", help="Stage, e.g. relax.")
    ] = None,
    composition: Annotated[str | None, typer.Option(help="Reduced formula, e.g. Na3ClO.")] = None,
    engine: Annotated[
        str | None, typer.Option(help="Engine label, e.g. mlip:CHGNet-0.3.0.")
    ] = None,
    campaign: Annotated[str | None, typer.Option(help="Campaign name.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, json or csv.")] = "table",
    derived: Annotated[
        str | None,
        typer.Option(
            help="Read a derived collection instead: relax, mlff, transport, "
            "formation_energies, barriers, interfaces."
        ),
    ] = None,
    fields: FieldsOption = None,
    all_outputs: Annotated[
        bool,
        typer.Option(
            "--all-outputs",
            help="Every job output of the stage (also the atomate2 task documents of the jobs "
            "that made its results), not only its results.",
        ),
    ] = False,
) -> None:
    """Results in the store, one row per result with its status; or a derived collection.

    Filters: stage, composition, engine, campaign. List fields such as notes and reasons are
    kept: lists in json, joined with '; ' in csv. With --derived, the documents ``ctaflow
    build`` wrote (run it first).

    Examples: ``ctaflow query -w runs/demo --stage relax --fields
    formula,energy_per_atom_ev,converged``; ``ctaflow query -w runs/demo --derived barriers
    --format json``.
    """
    # lazy: the store layer loads maggma and the stage registry
    from ctaflow.query import find_derived, find_outputs, open_results

    if fmt not in {"table", "json", "csv"}:
        raise CtaflowError(f"--format must be table, json or csv, not '{fmt}'")
    chosen = [f.strip() for f in fields.split(",") if f.strip()] if fields else None
    if derived is not None:
        if stage is not None:
            raise CtaflowError("--stage does not apply to --derived (a collection is one stage)")
        rows = find_derived(
            workdir, derived, chosen, composition=composition, engine=engine, campaign=campaign
        )
    else:
        rows = find_outputs(
            open_results(workdir),
            chosen,
            results_only=not all_outputs,
            stage=stage,
            composition=composition,
            engine=engine,
            campaign=campaign,
        )
    print_rows(rows, fmt, empty="no results match the query")


@app.command()
@user_errors
def build(
    workdir: WorkdirOption = Path("runs/demo"),
    builder: Annotated[
        list[str] | None,
        typer.Option("--builder", "-b", help="Only these builders (repeat), e.g. transport."),
    ] = None,
) -> None:
    """Update the derived collections (relax, mlff, transport, formation_energies, barriers)
    from the job outputs; only groups with new or changed tasks are rebuilt."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    # lazy: builders and the stage registry load maggma, kinisi and the makers
    from ctaflow.builders import run_builder
    from ctaflow.query import builders_for

    builders = builders_for(workdir, builder)
    table = Table(
        "builder", "tasks", "groups", "rebuilt", "written", "removed", "seconds", title=str(workdir)
    )
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), console=err
    ) as bar:
        for item in builders:
            task = bar.add_task(item.collection, total=None)
            stats = run_builder(
                item, progress=lambda b, done, t=task: bar.update(t, total=b.total, completed=done)
            )
            bar.update(task, total=stats.n_groups_built, completed=stats.n_groups_built)
            table.add_row(
                f"derived_{item.collection}",
                *(
                    str(n)
                    for n in (
                        stats.n_tasks,
                        stats.n_groups,
                        stats.n_groups_built,
                        stats.n_docs_written,
                        stats.n_docs_removed,
                    )
                ),
                f"{stats.seconds:.2f}",
            )
    out.print(table)


@app.command()
@user_errors
def report(workdir: WorkdirOption = Path("runs/demo")) -> None:
    """Update the derived collections (as ``ctaflow build``), then write
    WORKDIR/report/{index.html, report.md, report.json} from them and the stored results
    (with the experimental reference values the campaign file declares, if any)."""
    # lazy: builders, the registry and matplotlib
    from ctaflow.builders import run_builder
    from ctaflow.query import builders_for, open_results
    from ctaflow.report import write_report
    from ctaflow.report.reference import reference_of

    builders = builders_for(workdir)
    for item in builders:
        run_builder(item)
    derived = {item.collection: item.derived for item in builders}
    reference = reference_of(workdir)
    page = write_report(open_results(workdir), derived, Path(workdir) / "report", reference)
    out.print(f"report: {page.resolve()}")


@app.command()
@user_errors
def verify(workdir: WorkdirOption = Path("runs/demo")) -> None:
    """Check a work directory's store: every file, document, blob reference and checksum; one
    line per problem, then a summary; exit status 1 if anything is wrong. Writes nothing."""
    from ctaflow.verify import verify_store  # lazy: the store checks load maggma and montydb

    result = verify_store(workdir)
    for problem in result.problems:
        out.print(str(problem), markup=False, highlight=False)
    out.print(result.summary(), markup=False, highlight=False)
    if not result.ok:
        raise typer.Exit(1)
