"""Daily tools on stored results: export (structures, trajectories, models), compare."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ctaflow.cli.common import STATUS_MARKS, WorkdirOption, app, cell, out, print_rows, user_errors
from ctaflow.errors import CtaflowError


@app.command()
@user_errors
def export(
    workdir: WorkdirOption = Path("runs/demo"),
    what: Annotated[
        str, typer.Option("--what", help="structures (CIF + POSCAR), trajectories, models.")
    ] = "structures",
    stage: Annotated[str | None, typer.Option(help="Only this stage, e.g. relax.")] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Folder to write [WORKDIR/export/<what>].")
    ] = None,
) -> None:
    """Write stored results as files, with a manifest.json naming where each came from.

    structures: every structure of the stages' results as CIF and POSCAR; trajectories: every
    MD trajectory as extended XYZ; models: every trained model as mace-<campaign>-<sha8>.model.

    Example: ``ctaflow export -w runs/demo --what models``.
    """
    # lazy: the store layer, pymatgen and ASE
    from ctaflow.export import WHAT
    from ctaflow.export import export as run_export
    from ctaflow.query import open_results

    if what not in WHAT:
        raise CtaflowError(f"--what must be one of {', '.join(WHAT)}, not '{what}'")
    target = out_dir or Path(workdir) / "export" / what
    manifest, entries = run_export(open_results(workdir), what, target, stage, str(workdir))
    table = Table(title=str(target))
    table.add_column("file", overflow="fold")
    table.add_column("stage")
    table.add_column("status")
    for entry in entries:
        status = STATUS_MARKS.get(entry.status or "", entry.status or "")
        if entry.details.get("final"):
            status = "final model"
        table.add_row(entry.file, entry.stage, status)
    if entries:
        out.print(table)
    out.print(f"{len(entries)} {what} written; manifest: {manifest}", highlight=False)


@app.command()
@user_errors
def compare(
    workdirs: Annotated[
        list[Path], typer.Argument(help="One work directory (with two --engine) or two.")
    ],
    engine: Annotated[
        list[str] | None,
        typer.Option(
            "--engine",
            help="Engine label or trained model name of a side (repeat: one per side, in order).",
        ),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, json or csv.")] = "table",
    build: Annotated[
        bool,
        typer.Option(help="Update the derived collections first, as 'ctaflow report' does."),
    ] = True,
) -> None:
    """Headline numbers of two campaigns, or two engines of one, side by side, with status.

    Relaxed energy per atom and volume, force-field test RMSE, D and σ per temperature, Ea,
    ΔE amorphous − crystalline, barriers and γ.

    Examples: ``ctaflow compare runs/demo runs/demo-sevennet``; ``ctaflow compare runs/demo
    --engine mlip:CHGNet-0.3.0 --engine "MACE demo f1992b56"``.
    """
    from ctaflow.compare import compare_workdirs  # lazy: the builders and the store layer

    if fmt not in {"table", "json", "csv"}:
        raise CtaflowError(f"--format must be table, json or csv, not '{fmt}'")
    engines = list(engine or [])
    if len(workdirs) == 1 and len(engines) == 2:
        sides = [(workdirs[0], engines[0]), (workdirs[0], engines[1])]
    elif len(workdirs) == 2 and len(engines) <= 2:
        picked = engines * 2 if len(engines) == 1 else engines or [None, None]
        sides = list(zip(workdirs, picked, strict=True))
    else:
        raise CtaflowError(
            "give two work directories (each with at most one --engine), or one work directory "
            "and two --engine"
        )
    rows = compare_workdirs(sides, build=build)
    if fmt != "table":
        print_rows(rows, fmt)
        return
    if not rows:
        out.print("no headline results on either side (run 'ctaflow build' or 'ctaflow run')")
        return
    names = [k for k in rows[0] if k not in ("quantity", "field", "what", "difference")]
    sides_named = [n for n in names if not n.endswith((" status", " reasons", " found"))]
    table = Table("quantity", "what", *sides_named, "difference")
    for row in rows:
        table.add_row(
            row["quantity"],
            row["what"],
            *(_value(row, name) for name in sides_named),
            cell(row["difference"]),
        )
    out.print(table)


def _value(row: dict, side: str) -> str:
    """A side's value with its status mark; "— (no value)" for a result without this number
    (``--format json`` gives the reasons)."""
    value, status = row[side], row[f"{side} status"]
    if not row[f"{side} found"]:
        return ""  # not computed on this side
    text = cell(value) if value is not None else "— (no value)"
    if status in ("flagged", "excluded"):
        text = f"{text} {STATUS_MARKS[status]}"
    return text
