"""The ctaflow command line: validate, run, submit, status, rerun, query, build, report.

Thin: every command calls the library; user errors (:class:`CtaflowError`) print one message
and exit with status 1, without a traceback.
"""

from __future__ import annotations

import csv
import inspect
import io
import json
import logging
import os
import sys
from collections import Counter
from functools import wraps
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.console import Console
from rich.table import Table

from ctaflow.errors import CtaflowError

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.splitlines()[0])
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

WorkdirOption = Annotated[
    Path, typer.Option("--workdir", "-w", help="Campaign work directory (store, job folders).")
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


def _prepare(campaign_file: Path):
    """Load the campaign, its structure and engines: everything checked before any store write."""
    from ctaflow.campaign import load_campaign
    from ctaflow.engines import get_engine
    from ctaflow.structures import load_structure

    settings = load_campaign(campaign_file)
    structure = load_structure(settings.structure)
    engines = {name: get_engine(spec) for name, spec in settings.engines.items()}
    elements = {el.symbol for el in structure.composition}
    if settings.series is not None:  # the substituted compositions need their element too
        elements.add(settings.series.by)
    elements = sorted(elements)
    for name in set(settings.stage_engines().values()):
        engines[name].check_available(elements)
    return settings, structure, engines


@app.command()
@user_errors
def validate(campaign_file: Annotated[Path, typer.Argument(help="Campaign YAML file.")]) -> None:
    """Check a campaign file and print the effective settings of every stage."""
    settings, structure, engines = _prepare(campaign_file)
    effective = {
        "campaign": settings.name,
        "fingerprint": settings.fingerprint,
        "structure": {
            "formula": structure.composition.reduced_formula,
            "n_atoms": len(structure),
            **(structure.properties or {}).get("provenance", {}),
        },
        "stages": {
            name: {
                **stage.model_dump(mode="json"),
                **_engine_settings(engines, settings.stage_engines().get(name), name, stage),
                "settings_hash": settings.stage_settings_hash(name),
            }
            for name, stage in settings.enabled_stages().items()
        },
        "execution": settings.execution.model_dump(mode="json"),
        "store": settings.store.model_dump(mode="json"),
    }
    plain = json.loads(json.dumps(effective, default=_plain))  # numpy scalars from makers
    sys.stdout.write(yaml.safe_dump(plain, sort_keys=False, allow_unicode=True))
    out.print(f"[green]valid[/]: {campaign_file}")


@app.command()
@user_errors
def run(
    campaign_file: Annotated[Path, typer.Argument(help="Campaign YAML file.")],
    workdir: Annotated[
        Path | None, typer.Option("--workdir", "-w", help="Work directory [runs/<name>].")
    ] = None,
) -> None:
    """Run a campaign locally; finished jobs in WORKDIR are reused (resume)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from ctaflow.execution.local import run_flow
    from ctaflow.flows.campaign import build_campaign_flow
    from ctaflow.store import open_run

    settings, structure, _ = _prepare(campaign_file)
    if settings.execution.backend != "local":
        err.print(
            f"note: execution.backend is {settings.execution.backend}; 'ctaflow run' runs the "
            "campaign here, 'ctaflow submit' hands it to the backend"
        )
    workdir = (workdir or Path("runs") / settings.name).resolve()
    built = build_campaign_flow(settings, structure)
    info = {
        "campaign": settings.name,
        "campaign_file": str(campaign_file.resolve()),
        "fingerprint": settings.fingerprint,
        "store": settings.store.model_dump(mode="json"),
    }
    effective = yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False)
    # lock, then stores, then records: a refused run (lock held, damaged store, unreachable
    # server) leaves the work directory as it was
    with (
        open_run(workdir, settings.store, info, {"campaign.effective.yaml": effective}) as opened,
        Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[current]}"),
            console=err,
            transient=False,
        ) as bar,
    ):
        _log_to(workdir / "ctaflow.log")
        # trained models are written next to the results, not into the user's home
        os.environ.setdefault("CTAFLOW_MODEL_CACHE", str(workdir / "models"))
        task = bar.add_task(settings.name, total=built.n_jobs, current="")

        def progress(event, job, report):
            stage = (job.metadata or {}).get("stage", "")
            if event == "start":
                bar.update(task, total=report.n_total, current=f"{stage}: {job.name}")
            else:
                bar.update(task, total=report.n_total, advance=1, current=f"{event} {job.name}")

        stores = (built.flow, opened.jobs, opened.states, workdir)
        try:
            # until run_flow accepts lock_held (execution/local.py rewrite) it takes the lock
            # itself: hand it over; afterwards: run_flow(*stores, ..., lock_held=True)
            if "lock_held" in inspect.signature(run_flow).parameters:
                report = run_flow(*stores, progress=progress, lock_held=True)
            else:
                opened.release_lock()
                report = run_flow(*stores, progress=progress)
        except KeyboardInterrupt:
            err.print(f"interrupted; run the same command again to resume in {workdir}")
            raise typer.Exit(130) from None

    out.print(
        f"{settings.name}: {report.n_ran} jobs run, {report.n_reused} reused from the store, "
        f"{len(report.failed)} failed, {len(report.skipped)} skipped; results in {workdir}"
    )
    for failure in report.failed:
        err.print(f"[red]failed[/] {failure['stage']}/{failure['name']}: {failure['error']}")
    if not report.ok:
        err.print(f"see {workdir / 'ctaflow.log'}; run again to retry what failed")
        raise typer.Exit(1)


@app.command()
@user_errors
def status(
    workdir: WorkdirOption = Path("runs/demo"),
    lost_after: Annotated[
        float | None,
        typer.Option(
            help="FireWorks: report RUNNING jobs without a ping for this many seconds as lost "
            "[FireWorks' RUN_EXPIRATION_SECS]."
        ),
    ] = None,
) -> None:
    """Per-stage job states in a work directory (from the LaunchPad for submitted campaigns)."""
    from ctaflow.query import run_info, store_settings_of
    from ctaflow.store import state_store

    info = run_info(workdir)
    if info.get("backend") == "fireworks":
        from ctaflow.cli_cluster import fireworks_status

        fireworks_status(workdir, info, lost_after)
        return
    if info.get("backend") == "jobflow-remote":
        from ctaflow.cli_cluster import jobflow_remote_status

        jobflow_remote_status(workdir, info)
        return

    states = state_store(store_settings_of(workdir), workdir, create=False)
    states.connect()
    docs = list(states.query({}))
    counts = Counter((d.get("stage") or "-", d["state"]) for d in docs)
    table = Table("stage", "COMPLETED", "RUNNING", "FAILED", "SKIPPED", title=str(workdir))
    for stage in sorted({s for s, _ in counts}):
        table.add_row(
            stage,
            *(
                str(counts.get((stage, st), 0))
                for st in ("COMPLETED", "RUNNING", "FAILED", "SKIPPED")
            ),
        )
    out.print(table)
    for doc in docs:
        if doc["state"] == "FAILED":
            out.print(f"[red]FAILED[/] {doc.get('stage')}/{doc['name']}: {doc.get('error')}")


# --------------------------------------------------------------------------- cluster backends
BACKENDS = ("fireworks", "jobflow-remote")


@app.command()
@user_errors
def submit(
    campaign_file: Annotated[Path, typer.Argument(help="Campaign YAML file.")],
    backend: Annotated[
        str | None,
        typer.Option(help="fireworks or jobflow-remote [execution.backend of the campaign]."),
    ] = None,
    launchpad: Annotated[
        Path | None,
        typer.Option(help="FireWorks my_launchpad.yaml [execution.launchpad_file]."),
    ] = None,
    workdir: Annotated[
        Path | None,
        typer.Option("--workdir", "-w", help="Work directory for status/query [runs/<name>]."),
    ] = None,
) -> None:
    """Hand a campaign to FireWorks (or jobflow-remote); results go to the campaign's store.

    Submitting the same campaign again adds nothing; jobs whose outputs are already in the
    store are not submitted again.
    """
    from ctaflow.campaign import load_campaign

    campaign = load_campaign(campaign_file)
    chosen = backend or campaign.execution.backend
    if chosen not in BACKENDS:
        raise CtaflowError(
            f"unknown backend '{chosen}' for submit; use --backend fireworks or --backend "
            "jobflow-remote (or set execution.backend), or 'ctaflow run' to run locally"
        )
    if chosen == "jobflow-remote":
        from ctaflow.cli_cluster import submit_jobflow_remote

        submit_jobflow_remote(campaign_file, campaign, workdir)
        return
    from ctaflow.cli_cluster import submit_fireworks

    submit_fireworks(campaign_file, campaign, launchpad, workdir)


@app.command()
@user_errors
def rerun(
    workdir: WorkdirOption = Path("runs/demo"),
    stage: Annotated[str | None, typer.Option(help="Only jobs of this stage.")] = None,
    lost_after: Annotated[
        float | None,
        typer.Option(
            help="Also rerun RUNNING jobs without a ping for this many seconds (lost runs: "
            "killed by the scheduler, node failure)."
        ),
    ] = None,
) -> None:
    """Rerun the failed (FIZZLED) and, with --lost-after, lost jobs of a submitted campaign."""
    from ctaflow.execution.fireworks import load_launchpad, rerun_failed
    from ctaflow.query import run_info

    info = run_info(workdir)
    if info.get("backend") != "fireworks":
        raise CtaflowError(
            f"'{workdir}' holds no campaign submitted to FireWorks; for a local run, run "
            "'ctaflow run' again: it retries what failed"
        )
    lp = load_launchpad(info["launchpad_file"])
    ids = rerun_failed(lp, info["fingerprint"], stage=stage, lost_after=lost_after)
    out.print(f"{len(ids)} fireworks set to run again: {ids}" if ids else "nothing to rerun")


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
            "formation_energies, barriers."
        ),
    ] = None,
) -> None:
    """Results in the store, filtered by stage, composition, engine, campaign; with --derived,
    the documents ``ctaflow build`` wrote (run it first)."""
    from ctaflow.query import find_derived, find_outputs, open_results

    if fmt not in {"table", "json", "csv"}:
        raise CtaflowError(f"--format must be table, json or csv, not '{fmt}'")
    if derived is not None:
        if stage is not None:
            raise CtaflowError("--stage does not apply to --derived (a collection is one stage)")
        rows = find_derived(
            workdir, derived, composition=composition, engine=engine, campaign=campaign
        )
    else:
        rows = find_outputs(
            open_results(workdir),
            stage=stage,
            composition=composition,
            engine=engine,
            campaign=campaign,
        )
    if fmt == "json":
        sys.stdout.write(json.dumps(rows, indent=2, default=str) + "\n")
        return
    columns = list(dict.fromkeys(k for row in rows for k in row))
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        sys.stdout.write(buffer.getvalue())
        return
    if not rows:
        err.print("no results match the query")
        return
    table = Table(*columns)
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    out.print(table)


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

    from ctaflow.builders import builders_for, run_builder

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
    WORKDIR/report/{index.html, report.md, report.json} from them and the stored results."""
    from ctaflow.builders import builders_for, run_builder
    from ctaflow.query import open_results
    from ctaflow.report import write_report

    builders = builders_for(workdir)
    for item in builders:
        run_builder(item)
    derived = {item.collection: item.derived for item in builders}
    page = write_report(open_results(workdir), derived, Path(workdir) / "report")
    out.print(f"report: {page.resolve()}")


@app.command()
@user_errors
def verify(workdir: WorkdirOption = Path("runs/demo")) -> None:
    """Check a work directory's store: every file, document, blob reference and checksum; one
    line per problem, then a summary; exit status 1 if anything is wrong. Writes nothing."""
    from ctaflow.verify import verify_store

    result = verify_store(workdir)
    for problem in result.problems:
        out.print(str(problem), markup=False, highlight=False)
    out.print(result.summary(), markup=False, highlight=False)
    if not result.ok:
        raise typer.Exit(1)


def _engine_settings(engines: dict, engine_name: str | None, stage_name: str, stage) -> dict:
    """Engine description and effective maker settings of a stage ({} for analysis stages)."""
    if engine_name is None:
        return {}
    engine = engines[engine_name]
    return {
        "engine_effective": engine.describe(),
        "maker_effective": _maker_settings(engine, stage_name, stage),
    }


def _maker_settings(engine, stage_name: str, stage) -> dict:
    """The parameters of the atomate2 maker an engine makes for a stage (JSON-able)."""
    from monty.json import jsanitize

    if stage_name == "relax":
        maker = engine.relax_maker(stage)
    elif stage_name == "md":  # the first segment shows the engine's MD settings
        from ctaflow.makers.md import MDStageMaker, steps_for

        stage_maker = MDStageMaker(engine=engine, settings=stage)
        segment, controls = stage_maker.equilibration(), stage_maker.controls()
        steps = steps_for(segment.duration_ps, controls.timestep_fs, controls.sample_every)
        try:
            maker = engine.md_maker(segment, steps, stage.seed, controls)
        except CtaflowError as exc:  # e.g. a model that the campaign trains first
            return {"note": str(exc)}
    else:
        return {}
    data = jsanitize(maker.as_dict(), strict=False, enum_values=True)
    return {
        "class": type(maker).__name__,
        **{k: v for k, v in data.items() if not k.startswith("@")},
    }


def _plain(value):
    """JSON fallback: numpy scalars as Python numbers, anything else as text."""
    return value.item() if hasattr(value, "item") else str(value)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


def _log_to(path: Path) -> None:
    """Send library logs (jobflow, atomate2, ctaflow) to a file in the work directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)  # library warnings go to the log, not the terminal


BLAS_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def main() -> None:
    """Console-script entry point.

    Small dense linear algebra (ASE optimisers, cell filters) runs single-threaded unless the
    user set these variables: with two OpenBLAS threads on a 2-core machine that was also busy
    elsewhere, a 20-atom BFGS cell-relaxation step took 0.72 s instead of 0.09 s (measured).
    """
    for name in BLAS_THREAD_VARIABLES:
        os.environ.setdefault(name, "1")
    app()


if __name__ == "__main__":
    main()
