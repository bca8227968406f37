"""The cluster half of the command line: ``submit`` and ``status`` for FireWorks and
jobflow-remote (the commands themselves are declared in :mod:`ctaflow.cli.campaign`)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from rich.table import Table

from ctaflow.cli.common import out, prepare
from ctaflow.errors import CtaflowError
from ctaflow.execution.fireworks import (
    FW_STATES,
    ConfiguredJobStore,
    campaign_fireworks,
    campaign_fw_ids,
    load_launchpad,
    lost_runs,
    submit_to_fireworks,
)
from ctaflow.execution.jobflow_remote import flow_jobs, load_project, submit_to_jobflow_remote
from ctaflow.flows.campaign import build_campaign_flow
from ctaflow.workdir import write_run_info


def submit_fireworks(
    campaign_file: Path, campaign, launchpad: Path | None, workdir: Path | None
) -> None:
    """``ctaflow submit`` with the FireWorks backend."""
    launchpad_file = launchpad or campaign.execution.launchpad_file
    lp = load_launchpad(launchpad_file)
    workdir = (workdir or Path("runs") / campaign.name).resolve()
    store_settings = campaign.store
    if store_settings.config_file is not None:  # workers and 'query' may run elsewhere
        store_settings = store_settings.model_copy(
            update={"config_file": store_settings.config_file.resolve()}
        )
    info = {
        "campaign": campaign.name,
        "campaign_file": str(campaign_file.resolve()),
        "fingerprint": campaign.fingerprint,
        "store": store_settings.model_dump(mode="json"),
        "backend": "fireworks",
        "launchpad_file": str(Path(launchpad_file).resolve()),
    }
    existing = campaign_fw_ids(lp, campaign.fingerprint)
    if existing:  # checked before the engines load: a repeated submit is instant
        write_run_info(workdir, info)
        out.print(
            f"{campaign.name} (fingerprint {campaign.fingerprint}) is already on the LaunchPad "
            f"(fw_ids {existing[0]}-{existing[-1]}): nothing added; "
            f"see 'ctaflow status -w {workdir}'"
        )
        return
    settings, structure, _ = prepare(campaign_file)
    store = ConfiguredJobStore.from_settings(store_settings, workdir)
    built = build_campaign_flow(settings, structure)
    report = submit_to_fireworks(built.flow, lp, store, settings.name, settings.fingerprint)
    write_run_info(workdir, info)
    out.print(
        f"{settings.name}: {len(report.fw_ids)} of {report.n_jobs} jobs added to the LaunchPad "
        f"(fingerprint {settings.fingerprint}), {len(report.reused)} reused from the store; "
        f"launch them with qlaunch/rlaunch; follow with 'ctaflow status -w {workdir}'"
    )


def submit_jobflow_remote(campaign_file: Path, campaign, workdir: Path | None) -> None:
    execution = campaign.execution
    load_project(execution.project)  # a missing project is reported before the engines load
    settings, structure, _ = prepare(campaign_file)
    workdir = (workdir or Path("runs") / settings.name).resolve()
    built = build_campaign_flow(settings, structure)
    added = submit_to_jobflow_remote(built.flow, execution.project, execution.worker)
    store = settings.store
    if store.config_file is not None:
        store = store.model_copy(update={"config_file": store.config_file.resolve()})
    write_run_info(
        workdir,
        {
            "campaign": settings.name,
            "campaign_file": str(campaign_file.resolve()),
            "fingerprint": settings.fingerprint,
            "store": store.model_dump(mode="json"),
            "backend": "jobflow-remote",
            "project": execution.project,
            "flow_uuid": built.flow.uuid,
        },
    )
    if not added:
        out.print(
            f"{settings.name} (fingerprint {settings.fingerprint}) is already in the "
            f"jobflow-remote queue (flow {built.flow.uuid}): nothing added"
        )
        return
    out.print(
        f"{settings.name}: {len(added)} jobs added to jobflow-remote (flow {built.flow.uuid}); "
        f"the project's runner submits them ('jf runner start'); follow with "
        f"'ctaflow status -w {workdir}'"
    )


def jobflow_remote_status(workdir: Path, info: dict) -> None:
    rows = flow_jobs(info.get("project"), info["flow_uuid"])
    counts = Counter((r["stage"], r["state"]) for r in rows)
    states = list(dict.fromkeys(r["state"] for r in rows))
    table = Table("stage", *states, title=f"{workdir} (jobflow-remote)")
    for stage in dict.fromkeys(r["stage"] for r in rows):
        table.add_row(stage, *(str(counts.get((stage, st), 0)) for st in states))
    out.print(table)
    for row in rows:
        if row["error"]:
            out.print(
                f"[red]{row['state']}[/] {row['stage']}/{row['name']} (db_id {row['db_id']}): "
                f"{row['error']}",
                highlight=False,
            )


def fireworks_status(workdir: Path, info: dict, lost_after: float | None) -> None:
    from fireworks.fw_config import RUN_EXPIRATION_SECS

    lp = load_launchpad(info["launchpad_file"])
    rows = campaign_fireworks(lp, info["fingerprint"])
    if not rows:
        raise CtaflowError(
            f"no workflow of campaign {info.get('campaign')} (fingerprint {info['fingerprint']}) "
            f"on the LaunchPad {info['launchpad_file']}; submit it with 'ctaflow submit'"
        )
    counts = Counter((r["stage"], r["state"]) for r in rows)
    states = [st for st in FW_STATES if any(s == st for _, s in counts)]
    table = Table("stage", *states, title=f"{workdir} (FireWorks)")
    for stage in dict.fromkeys(r["stage"] for r in rows):
        table.add_row(stage, *(str(counts.get((stage, st), 0)) for st in states))
    out.print(table)
    for row in rows:
        if row["state"] == "FIZZLED":
            out.print(
                f"[red]FIZZLED[/] {row['stage']}/{row['name']} (fw_id {row['fw_id']}): "
                f"{row['error']}",
                highlight=False,
            )
    expiration = RUN_EXPIRATION_SECS if lost_after is None else lost_after
    by_id = {r["fw_id"]: r for r in rows}
    for fw_id in lost_runs(lp, info["fingerprint"], expiration):
        row = by_id[fw_id]
        out.print(
            f"[yellow]LOST[/] {row['stage']}/{row['name']} (fw_id {fw_id}): RUNNING without a "
            f"ping for {expiration:g} s; 'ctaflow rerun -w {workdir} --lost-after "
            f"{expiration:g}' runs it again",
            highlight=False,
        )
