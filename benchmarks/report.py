"""Rows of the benchmark table, machine information and the files the runner writes.

Every measurement function of :mod:`benchmarks` returns a list of :class:`Row`; the runner
(:mod:`benchmarks.runner`) puts them side by side in one table, ``RESULTS.md`` (Markdown) and
``results.json`` (the same rows with their raw numbers, for comparing runs).
"""

from __future__ import annotations

import json
import operator
import os
import platform
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ctaflow.analysis.provenance import software_versions

_OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}
_SHOW = {"<=": "≤", ">=": "≥", "<": "<", ">": ">"}

#: packages whose versions go into the machine section
PACKAGES = ("ctaflow", "torch", "chgnet", "mace-torch", "ase", "atomate2", "jobflow", "maggma")


@dataclass
class Row:
    """One measured figure: ``value`` in ``unit``, compared with ``goal`` when the issue sets one.

    ``value`` None means not measured (``details`` says why). ``data`` keeps the raw numbers for
    ``results.json``. ``uncertainty``: standard error of ``value`` when it was measured more than
    once (the details say over what); the goal verdict uses ``value`` alone.
    """

    section: str
    measure: str
    value: float | None
    unit: str = ""
    goal: tuple[str, float] | None = None
    details: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    uncertainty: float | None = None

    @property
    def ok(self) -> bool | None:
        """True/False against the goal; None without a goal or a value."""
        if self.goal is None or self.value is None:
            return None
        op, target = self.goal
        return bool(_OPS[op](self.value, target))

    def goal_text(self) -> str:
        if self.goal is None:
            return "—"
        op, target = self.goal
        return f"{_SHOW[op]} {target:g} {self.unit}".strip()

    def measured_text(self) -> str:
        if self.value is None:
            return f"not measured ({self.details})" if self.details else "not measured"
        if self.uncertainty is None:
            return f"{fmt(self.value)} {self.unit}".strip()
        # the error bar's two significant figures decide the value's decimals
        decimals = (
            max(0, 1 - int(np.floor(np.log10(abs(self.uncertainty))))) if self.uncertainty else 3
        )
        return f"{self.value:.{decimals}f} ± {self.uncertainty:.{decimals}f} {self.unit}".strip()

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["goal"] = None if self.goal is None else {"op": self.goal[0], "value": self.goal[1]}
        out.update(ok=self.ok, goal_text=self.goal_text(), measured_text=self.measured_text())
        return out


def fmt(x: float) -> str:
    """Three significant figures, without scientific notation for ordinary magnitudes."""
    if x == 0 or 1e-3 <= abs(x) < 1e5:
        digits = max(0, 2 - int(f"{abs(x):e}".split("e")[1])) if x else 0
        return f"{x:.{digits}f}"
    return f"{x:.3g}"


def markdown_table(rows: list[Row]) -> str:
    """The results as one Markdown table."""
    lines = [
        "| # | measurement | goal | measured | meets goal | details |",
        "|---|---|---|---|---|---|",
    ]
    verdict = {True: "yes", False: "**no**", None: "—"}
    for r in rows:
        details = r.details if r.value is not None else ""  # then in the measured column
        cells = [r.section, r.measure, r.goal_text(), r.measured_text(), verdict[r.ok], details]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def machine_info() -> dict[str, Any]:
    """CPU model, cores, RAM, Python and package versions, date (UTC), git commit."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        ram_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    except (ValueError, OSError, AttributeError):
        ram_gb = None
    versions = software_versions(tuple(PACKAGES))
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "ram_gb": round(ram_gb, 1) if ram_gb else None,
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "git_commit": commit or None,
        "torch_threads": 1,
    }


def results_markdown(rows: list[Row], info: dict[str, Any]) -> str:
    """The text of RESULTS.md."""
    v = info["versions"]
    mode = info.get("mode", "full")
    lines = [
        "# ctaflow benchmarks",
        "",
        f"Generated by `{info.get('command', 'python -m benchmarks')}` ({mode} mode) on "
        f"{info['date_utc']}; runner wall time {fmt(info.get('wall_s', 0.0))} s. Regenerated by "
        "every run; raw numbers in `results.json`. Every row was measured in this one run on "
        "this machine, single-threaded (torch and BLAS threads = 1).",
        "",
        "## Machine",
        "",
        "| CPU | cores (usable) | RAM | Python | torch | chgnet | mace-torch | ase | atomate2 "
        "| jobflow | maggma | ctaflow (commit) | OS |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        f"| {info['cpu']} | {info['cores']} ({info.get('cores_usable')}) | "
        f"{info.get('ram_gb')} GB | {info['python']} | {v['torch']} | {v['chgnet']} | "
        f"{v['mace-torch']} | {v['ase']} | {v['atomate2']} | {v['jobflow']} | {v['maggma']} | "
        f"{v['ctaflow']} ({info.get('git_commit')}) | {info['os']} |",
        "",
        "## Results",
        "",
        markdown_table(rows),
        "",
    ]
    return "\n".join(lines)


def write_results(rows: list[Row], info: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write ``RESULTS.md`` and ``results.json`` into ``out_dir``; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md, js = out_dir / "RESULTS.md", out_dir / "results.json"
    md.write_text(results_markdown(rows, info))
    data = {"machine": info, "rows": [r.to_json() for r in rows]}
    js.write_text(json.dumps(_without_machine_paths(data), indent=1))
    return md, js


def _without_machine_paths(value: Any) -> Any:
    """``value`` with every absolute path (a string starting with "/") cut to its file name:
    the files are committed, and the paths of the machine that ran them mean nothing elsewhere."""
    if isinstance(value, dict):
        return {k: _without_machine_paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_machine_paths(v) for v in value]
    if isinstance(value, str) and value.startswith("/"):
        return Path(value).name
    return value
