"""Commands on a campaign file and its run: validate, run, status, submit, rerun."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.table import Table

from ctaflow.cli.common import (
    AllowLargeOption,
    CampaignArgument,
    WorkdirOption,
    app,
    check_sizes,
    err,
    log_to,
    out,
    plain,
    prepare,
    user_errors,
)
from ctaflow.errors import CtaflowError

BACKENDS = ("fireworks", "jobflow-remote")


@app.command()
@user_errors
def validate(campaign_file: CampaignArgument, allow_large: AllowLargeOption = False) -> None:
    """Check a campaign file and print the effective settings of every stage, the size of
    every cell and what its MD needs; refuse cells too large for this machine."""
    # lazy: the local runner's default worker count
    from ctaflow.execution.local import default_workers

    settings, structure, engines = prepare(campaign_file)
    local = settings.execution.backend == "local"  # else the workers' memory counts, not ours
    check = check_sizes(settings, structure, allow_large, default_workers(), runs_here=local)
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
        "resources": check.report(),
    }
    data = json.loads(json.dumps(effective, default=plain))  # numpy scalars from makers
    sys.stdout.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    out.print(f"[green]valid[/]: {campaign_file}")


@app.command()
@user_errors
def run(
    campaign_file: CampaignArgument,
    workdir: Annotated[
        Path | None, typer.Option("--workdir", "-w", help="Work directory [runs/<name>].")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Jobs run at the same time, each in its own process [one per core]; 1 runs "
            "every job in this process, one after the other."
        ),
    ] = None,
    allow_large: AllowLargeOption = False,
) -> None:
    """Run a campaign locally; finished jobs in WORKDIR are reused (resume)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    # lazy: the flow builder loads every maker (atomate2, torch)
    from ctaflow.execution.local import default_workers, run_flow
    from ctaflow.flows.campaign import build_campaign_flow
    from ctaflow.store import open_run

    settings, structure, _ = prepare(campaign_file)
    check_sizes(settings, structure, allow_large, workers or default_workers())
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
        log_to(workdir / "ctaflow.log")
        # trained models are written next to the results, not into the user's home; MD
        # checkpoints outlive the job folders, which a rerun recreates
        os.environ.setdefault("CTAFLOW_MODEL_CACHE", str(workdir / "models"))
        os.environ.setdefault("CTAFLOW_CHECKPOINT_DIR", str(workdir / "checkpoints"))
        task = bar.add_task(settings.name, total=built.n_jobs, current="")

        def progress(event, job, report):
            running = ", ".join(
                f"{(j.metadata or {}).get('stage', '')}: {j.name}" for j in report.running
            )
            advance = 0 if event == "start" else 1
            bar.update(task, total=report.n_total, advance=advance, current=running)

        try:
            report = run_flow(
                built.flow,
                opened.jobs,
                opened.states,
                workdir,
                progress=progress,
                workers=workers,
                worker_output=workdir / "workers.log",
                lock_held=True,
            )
        except KeyboardInterrupt:
            err.print(f"interrupted; run the same command again to resume in {workdir}")
            raise typer.Exit(130) from None

    out.print(
        f"{settings.name}: {report.n_ran} jobs run, {report.n_reused} reused from the store, "
        f"{len(report.failed)} failed, {len(report.skipped)} skipped; results in {workdir}"
    )
    for line in report.rerun:
        err.print(f"[yellow]rerun[/] {line}", highlight=False)
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
    """Per stage, in pipeline order: job states, times and the status of its results.

    Results: how many result documents the stage stored and how many are valid / flagged /
    excluded. RUNNING jobs whose process is gone show as INTERRUPTED. Submitted campaigns: the
    job states from the LaunchPad.
    """
    # lazy: the run record only; the stores and the registry load in read_statuses
    from ctaflow.run_status import duration, read_statuses
    from ctaflow.workdir import run_info

    info = run_info(workdir)
    if info.get("backend") in BACKENDS:
        from ctaflow.cli import cluster  # lazy: the backends' clients and the flow builder

        if info["backend"] == "fireworks":
            cluster.fireworks_status(workdir, info, lost_after)
        else:
            cluster.jobflow_remote_status(workdir, info)
        return

    lines = read_statuses(workdir)
    table = Table(title=str(workdir))
    for column in ("stage", "jobs", "ran", "CPU", "results"):
        table.add_column(column, overflow="fold")  # wrapped, never cut, in a narrow terminal
    for line in lines:
        cpu = duration(line.cpu_s)
        table.add_row(line.stage, line.jobs_text(), line.times_text(), cpu, line.results_text())
    out.print(table)
    interrupted = sum(line.jobs.get("INTERRUPTED", 0) for line in lines)
    if interrupted:
        err.print(
            f"[yellow]{interrupted} job(s) were interrupted[/] (their process is gone); run the "
            "same 'ctaflow run' again to resume"
        )
    from ctaflow.store import state_store  # lazy: as above (already loaded by read_statuses)
    from ctaflow.workdir import store_settings_of

    states = state_store(store_settings_of(workdir), workdir, create=False)
    states.connect()
    for doc in states.query({"state": "FAILED"}):
        out.print(f"[red]FAILED[/] {doc.get('stage')}/{doc['name']}: {doc.get('error')}")


# --------------------------------------------------------------------------- cluster backends
@app.command()
@user_errors
def submit(
    campaign_file: CampaignArgument,
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
    # lazy: the campaign schema loads the stage registry; the backends their clients
    from ctaflow.campaign import load_campaign
    from ctaflow.cli.cluster import submit_fireworks, submit_jobflow_remote
    from ctaflow.store_mongo import check_store_config

    campaign = load_campaign(campaign_file)
    check_store_config(campaign.store)  # before anything reaches the LaunchPad or the store
    chosen = backend or campaign.execution.backend
    if chosen not in BACKENDS:
        raise CtaflowError(
            f"unknown backend '{chosen}' for submit; use --backend fireworks or --backend "
            "jobflow-remote (or set execution.backend), or 'ctaflow run' to run locally"
        )
    if chosen == "jobflow-remote":
        submit_jobflow_remote(campaign_file, campaign, workdir)
        return
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
    # lazy: FireWorks' client and the store layer
    from ctaflow.execution.fireworks import load_launchpad, rerun_failed
    from ctaflow.workdir import run_info

    info = run_info(workdir)
    if info.get("backend") != "fireworks":
        raise CtaflowError(
            f"'{workdir}' holds no campaign submitted to FireWorks; for a local run, run "
            "'ctaflow run' again: it retries what failed"
        )
    lp = load_launchpad(info["launchpad_file"])
    ids = rerun_failed(lp, info["fingerprint"], stage=stage, lost_after=lost_after)
    out.print(f"{len(ids)} fireworks set to run again: {ids}" if ids else "nothing to rerun")


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
    """The parameters of the atomate2 maker an engine makes for a stage (JSON-able): the
    registry entry's ``preview`` (none: {})."""
    from monty.json import jsanitize

    from ctaflow.stages import STAGES  # lazy: the registry loads every maker

    preview = STAGES[stage_name].preview
    if preview is None:
        return {}
    try:
        maker = preview(engine, stage)
    except CtaflowError as exc:  # e.g. a model that the campaign trains first
        return {"note": str(exc)}
    data = jsanitize(maker.as_dict(), strict=False, enum_values=True)
    return {
        "class": type(maker).__name__,
        **{k: v for k, v in data.items() if not k.startswith("@")},
    }
