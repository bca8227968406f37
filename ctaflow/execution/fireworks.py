"""Hand a campaign's jobflow graph to FireWorks.

* :func:`submit_to_fireworks` converts the flow with jobflow's FireWorks manager (one firework per
  job, ``job_to_firework`` as in ``flow_to_workflow``) and adds it to a LaunchPad, tagged with the
  campaign name and fingerprint. The same campaign is never added twice, and jobs whose outputs
  are already in the job store (an earlier local or FireWorks run with the same stage settings)
  are left out: their children read those outputs from the store by uuid.
* The job store travels in each firework as a :class:`ConfiguredJobStore`: its *configuration*
  (store settings + work directory), not its connection details. The worker rebuilds the store
  from that configuration, reading ``${VAR}`` values from its own environment, so results land in
  the same maggma layout as a local run and no password is written to the LaunchPad.
* :func:`campaign_fireworks`, :func:`lost_runs` and :func:`rerun_failed` back ``ctaflow status``
  and ``ctaflow rerun``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobflow import JobStore

from ctaflow.campaign.execution import StoreSettings
from ctaflow.errors import BackendError
from ctaflow.store import job_store

if TYPE_CHECKING:
    from fireworks import LaunchPad
    from jobflow import Flow

    from ctaflow.campaign.execution import StoreSettings

logger = logging.getLogger(__name__)

WF_CAMPAIGN = "ctaflow_campaign"
WF_FINGERPRINT = "ctaflow_fingerprint"
FW_STATES = (
    "COMPLETED",
    "RUNNING",
    "RESERVED",
    "READY",
    "WAITING",
    "FIZZLED",
    "DEFUSED",
    "PAUSED",
    "ARCHIVED",
)


class ConfiguredJobStore(JobStore):
    """A jobflow ``JobStore`` that serializes as the ctaflow store settings it was built from.

    ``as_dict`` gives ``{"settings": <store section>, "workdir": ...}``; ``from_dict`` (called
    on the worker when FireWorks loads the firework) builds the store again with
    :func:`ctaflow.store.job_store`.
    """

    settings: dict[str, Any]
    workdir: str

    @classmethod
    def from_settings(
        cls, settings: StoreSettings | None, workdir: str | Path
    ) -> ConfiguredJobStore:

        settings = settings or StoreSettings()
        inner = job_store(settings, workdir)
        store = cls(
            inner.docs_store,
            additional_stores=inner.additional_stores,
            save=inner.save,
            load=inner.load,
        )
        store.settings = settings.model_dump(mode="json")
        store.workdir = str(Path(workdir).resolve())
        return store

    def as_dict(self) -> dict[str, Any]:
        return {
            "@module": type(self).__module__,
            "@class": type(self).__name__,
            "settings": self.settings,
            "workdir": self.workdir,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ConfiguredJobStore:

        return cls.from_settings(StoreSettings.model_validate(d["settings"]), d["workdir"])


def load_launchpad(path: str | Path | None) -> LaunchPad:
    """The LaunchPad described by a ``my_launchpad.yaml``; errors name the fix.

    With ``MONGOMOCK_SERVERSTORE_FILE`` set (FireWorks' embedded mode, no MongoDB server), a
    missing database file is created empty.
    """
    if path is None:
        raise BackendError(
            "no LaunchPad file: copy launchpad/my_launchpad.yaml (e.g. to "
            "~/.fireworks/my_launchpad.yaml), fill in the database, and pass --launchpad FILE "
            "or set execution.launchpad_file in the campaign"
        )
    path = Path(path)
    if not path.is_file():
        raise BackendError(
            f"LaunchPad file '{path}' not found; copy launchpad/my_launchpad.yaml there and fill "
            "in the database (or pass another --launchpad)"
        )
    embedded = os.environ.get("MONGOMOCK_SERVERSTORE_FILE")
    new_embedded = bool(embedded) and not Path(embedded).exists()
    if new_embedded:
        Path(embedded).parent.mkdir(parents=True, exist_ok=True)
        Path(embedded).write_text("{}")
    from fireworks import LaunchPad

    try:
        launchpad = LaunchPad.from_file(str(path))
    except Exception as exc:  # FireWorks raises plain exceptions for bad files
        raise BackendError(
            f"{path}: not a valid LaunchPad file ({type(exc).__name__}: {exc})"
        ) from None
    if new_embedded:  # a database file created just now: initialise it like 'lpad reset'
        launchpad.reset("", require_password=False)
    try:
        initialised = launchpad.fw_id_assigner.find_one({}) is not None
    except Exception as exc:  # pymongo: server unreachable, authentication failed, ...
        raise BackendError(
            f"cannot reach the LaunchPad database of {path} ({type(exc).__name__}: {exc}); "
            "check host, port and credentials in that file"
        ) from None
    if not initialised:
        raise BackendError(
            f"the LaunchPad database of {path} is not initialised; run 'lpad -l {path} reset' "
            "once (it empties that database)"
        )
    return launchpad


@dataclass
class SubmitReport:
    """What :func:`submit_to_fireworks` did."""

    n_jobs: int
    fw_ids: list[int] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    existing_fw_ids: list[int] = field(default_factory=list)

    @property
    def already_submitted(self) -> bool:
        return bool(self.existing_fw_ids)


def submit_to_fireworks(
    flow: Flow,
    launchpad: LaunchPad,
    store: JobStore,
    campaign: str,
    fingerprint: str,
) -> SubmitReport:
    """Add ``flow`` to ``launchpad`` once per campaign fingerprint.

    Parameters
    ----------
    flow
        The campaign flow (deterministic job uuids).
    launchpad
        Target LaunchPad.
    store
        Job store the fireworks write to (a :class:`ConfiguredJobStore` for campaigns).
    campaign, fingerprint
        Written to the workflow's metadata (``ctaflow_campaign``, ``ctaflow_fingerprint``); a
        workflow with the same fingerprint on the LaunchPad means nothing is added.
    """
    from fireworks import Workflow
    from jobflow.managers.fireworks import job_to_firework

    jobs = list(flow.iterflow())
    report = SubmitReport(n_jobs=len(jobs), existing_fw_ids=campaign_fw_ids(launchpad, fingerprint))
    if report.already_submitted:
        return report

    store.connect()
    reused = {job.uuid for job, _ in jobs if _output_stored(store, job.uuid)}
    parent_mapping: dict = {}
    fireworks = [
        job_to_firework(
            job,
            store,
            parents=[p for p in parents if p not in reused],
            parent_mapping=parent_mapping,
        )
        for job, parents in jobs
        if job.uuid not in reused
    ]
    report.reused = sorted(job.name for job, _ in jobs if job.uuid in reused)
    if not fireworks:
        return report
    workflow = Workflow(
        fireworks,
        name=f"ctaflow {campaign} {fingerprint}",
        metadata={WF_CAMPAIGN: campaign, WF_FINGERPRINT: fingerprint},
    )
    mapping = launchpad.add_wf(workflow)
    report.fw_ids = sorted(mapping.values())
    logger.info("added workflow %s (%d fireworks) to the LaunchPad", campaign, len(fireworks))
    return report


def _output_stored(store: JobStore, uuid: str) -> bool:
    """True if the newest output of ``uuid`` is in the store and is not a pending reference."""
    doc = store.query_one({"uuid": uuid}, properties=["output"], sort={"index": -1})
    if doc is None:
        return False
    output = doc.get("output")
    return not (isinstance(output, dict) and output.get("@class") == "OutputReference")


def campaign_fw_ids(launchpad: LaunchPad, fingerprint: str) -> list[int]:
    """Firework ids of the campaign's workflow(s), including fireworks added while running."""
    ids: set[int] = set()
    for wf in launchpad.workflows.find({f"metadata.{WF_FINGERPRINT}": fingerprint}, {"nodes": 1}):
        ids.update(wf["nodes"])
    return sorted(ids)


def campaign_fireworks(launchpad: LaunchPad, fingerprint: str) -> list[dict[str, Any]]:
    """One row per firework of the campaign: fw_id, name, stage, state, error (FIZZLED only)."""
    ids = campaign_fw_ids(launchpad, fingerprint)
    rows = []
    for doc in launchpad.fireworks.find(
        {"fw_id": {"$in": ids}}, {"fw_id": 1, "name": 1, "state": 1, "spec": 1, "launches": 1}
    ):
        spec = doc.get("spec") or {}
        row = {
            "fw_id": doc["fw_id"],
            "name": doc.get("name"),
            "stage": spec.get("stage") or "-",
            "state": doc["state"],
            "error": None,
        }
        if doc["state"] == "FIZZLED" and doc.get("launches"):
            row["error"] = _launch_error(launchpad, max(doc["launches"]))
        rows.append(row)
    return sorted(rows, key=lambda r: r["fw_id"])


def _launch_error(launchpad: LaunchPad, launch_id: int) -> str:
    launch = launchpad.launches.find_one({"launch_id": launch_id}, {"action": 1}) or {}
    stored = ((launch.get("action") or {}).get("stored_data")) or {}
    trace = (stored.get("_exception") or {}).get("_stacktrace") or ""
    lines = [line for line in str(trace).splitlines() if line.strip()]
    if lines:
        return lines[-1].strip()
    return "fizzled without a recorded exception (e.g. marked lost by detect_lostruns)"


def lost_runs(launchpad: LaunchPad, fingerprint: str, expiration_secs: float) -> list[int]:
    """Fireworks of the campaign RUNNING without a ping for ``expiration_secs`` (dry run of
    FireWorks' ``detect_lostruns``: nothing is changed)."""
    ids = campaign_fw_ids(launchpad, fingerprint)
    _, lost, _ = launchpad.detect_lostruns(
        expiration_secs=expiration_secs, query={"fw_id": {"$in": ids}}
    )
    return sorted(lost)


def rerun_failed(
    launchpad: LaunchPad,
    fingerprint: str,
    stage: str | None = None,
    lost_after: float | None = None,
) -> list[int]:
    """Rerun the campaign's FIZZLED fireworks (of one stage, if given) and, with ``lost_after``,
    its lost runs (FireWorks ``detect_lostruns(rerun=True)``). Returns the fw_ids set to run."""
    ids = campaign_fw_ids(launchpad, fingerprint)
    query: dict[str, Any] = {"fw_id": {"$in": ids}}
    if stage is not None:
        query["spec.stage"] = stage
    rerun: set[int] = set()
    if lost_after is not None:
        _, lost, _ = launchpad.detect_lostruns(expiration_secs=lost_after, query=query, rerun=True)
        rerun.update(lost)
    for doc in launchpad.fireworks.find({**query, "state": "FIZZLED"}, {"fw_id": 1}):
        rerun.update(launchpad.rerun_fw(doc["fw_id"]))
    return sorted(rerun)
