"""One readable name for every force field a campaign trains, used by the report, ``query`` and
``export``.

A trained MACE model is known to the code by several labels: ``mace`` (the metadata engine of the
mlff and active-learning jobs), ``mace:trained`` (the metadata engine of the stages that run on
the campaign's final model) and ``mace:<sha16>-ctaflow_mace.model`` (the engine description of a
job that ran on the model file, named by its checksum in the model cache). Those labels stay as
they are: they enter the job uuids. A reader sees one name instead, :func:`model_name`
("MACE demo f1992b56"), and ``ctaflow export --what models`` writes the file as
:func:`model_file_name` ("mace-demo-f1992b56.model").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobflow import JobStore

#: the metadata engine label of the stages that run on the campaign's final trained model
TRAINED_LABEL = "mace:trained"
#: an engine label naming a model file of the model cache (sha256 prefix, then the file name)
_CACHED_FILE = re.compile(r"^mace:([0-9a-f]{8,64})-")
PROPERTIES = (
    "uuid",
    "name",
    "metadata",
    "completed_at",
    "output.model_sha256",
    "output.committee.model_sha256",
)


def model_name(campaign: str, sha256: str) -> str:
    """The readable name of a trained model: ``"MACE <campaign> <first 8 hex of sha256>"``."""
    return f"MACE {campaign} {sha256[:8]}"


def model_file_name(campaign: str, sha256: str) -> str:
    """The file name of an exported model: ``"mace-<campaign>-<sha8>.model"``."""
    return f"mace-{campaign}-{sha256[:8]}.model"


@dataclass(frozen=True)
class TrainedModel:
    """One model file stored by a job: the main model of an mlff / active-learning output or a
    further member of its committee."""

    campaign: str
    sha256: str
    stage: str
    job_name: str
    uuid: str
    completed_at: str
    member: int  # 0: the output's own model; k > 0: committee member k
    final: bool  # the model the campaign's later stages run on

    @property
    def name(self) -> str:
        return model_name(self.campaign, self.sha256)

    @property
    def file_name(self) -> str:
        return model_file_name(self.campaign, self.sha256)


def trained_models(store: JobStore, model_stages: Sequence[str]) -> list[TrainedModel]:
    """Every trained model in ``store`` (each sha256 once, first where it was stored), with the
    final model of each campaign marked.

    ``model_stages``: the stages that provide a model, in pipeline order (the registry's entries
    with ``provides="model"``); the final model of a campaign is the main model of the latest
    output of the last of them that ran, which is what :class:`ctaflow.stages.StageContext` hands
    to the stages on the trained model.
    """
    docs = list(
        store.query(
            {"metadata.stage": {"$in": list(model_stages)}, "output.model_sha256": {"$exists": 1}},
            properties=[*PROPERTIES],
        )
    )
    order = {stage: n for n, stage in enumerate(model_stages)}
    docs.sort(key=lambda d: (order[d["metadata"]["stage"]], str(d.get("completed_at"))))
    finals = {}
    for doc in docs:  # sorted: the last one of a campaign is its final model
        finals[doc["metadata"].get("campaign")] = doc["output"]["model_sha256"]
    models: dict[str, TrainedModel] = {}
    for doc in docs:
        meta, out = doc["metadata"], doc["output"]
        campaign = str(meta.get("campaign"))
        shas = [out["model_sha256"], *(_member_sha(m) for m in out.get("committee") or [])]
        for member, sha in enumerate(shas):
            if sha and sha not in models:
                models[sha] = TrainedModel(
                    campaign=campaign,
                    sha256=sha,
                    stage=meta["stage"],
                    job_name=str(doc.get("name")),
                    uuid=doc["uuid"],
                    completed_at=str(doc.get("completed_at")),
                    member=member,
                    final=member == 0 and finals.get(meta.get("campaign")) == sha,
                )
    return list(models.values())


def _member_sha(member: Any) -> str | None:
    """A committee member's checksum: an mlff result's members are documents with
    ``model_sha256``; an active-learning result keeps each member's stored file parts."""
    if isinstance(member, dict):
        return member.get("model_sha256")
    return member[0].get("sha256") if member and isinstance(member[0], dict) else None


class ModelNames:
    """Readable names of engine labels, from the trained models of a store."""

    def __init__(self, models: Sequence[TrainedModel]) -> None:
        self.models = list(models)
        self._final = {m.campaign: m for m in self.models if m.final}

    def by_sha(self, sha256: str) -> TrainedModel | None:
        """The model whose sha256 starts with ``sha256`` (a prefix of at least 8 hex digits)."""
        return next((m for m in self.models if m.sha256.startswith(sha256)), None)

    def engine_name(self, label: Any, campaign: Any = None) -> str | None:
        """The readable name of an engine label (None: not a trained model of this store, or the
        bare ``mace`` of the training jobs, which names no single model)."""
        if not isinstance(label, str):
            return None
        if label == TRAINED_LABEL:
            final = self._final.get(str(campaign))
            if final is None and len(self._final) == 1:  # records without their campaign
                final = next(iter(self._final.values()))
            return final.name if final else None
        match = _CACHED_FILE.match(label)
        if match:
            model = self.by_sha(match.group(1))
            return model.name if model else None
        return None

    def annotate(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add ``engine_name`` to records whose ``engine`` is a trained model and ``model_name``
        to records that carry a ``model_sha256``; return ``rows`` (changed in place)."""
        for row in rows:
            name = self.engine_name(row.get("engine"), row.get("campaign"))
            if name:
                row["engine_name"] = name
            sha = row.get("model_sha256")
            if isinstance(sha, str) and sha:
                model = self.by_sha(sha)
                campaign = model.campaign if model else row.get("campaign")
                row["model_name"] = model_name(str(campaign), sha)
        return rows
