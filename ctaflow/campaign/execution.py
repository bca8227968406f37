"""Where a campaign runs (``execution:``) and where its results go (``store:``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from ctaflow.settings import Strict, relative_to_campaign


class ExecutionSettings(Strict):
    """Where the flow runs: ``ctaflow run`` runs it here; ``ctaflow submit`` hands it to FireWorks
    (LaunchPad from ``launchpad_file``) or jobflow-remote (``project``, ``worker``)."""

    backend: Literal["local", "fireworks", "jobflow-remote"] = Field(
        "local", description="Execution backend."
    )
    launchpad_file: Path | None = Field(
        None,
        description="FireWorks: my_launchpad.yaml (see launchpad/), relative to the campaign "
        "file; --launchpad overrides it.",
    )
    project: str | None = Field(None, description="jobflow-remote: project name (~/.jfremote).")
    worker: str | None = Field(None, description="jobflow-remote: worker name of the project.")

    @field_validator("launchpad_file")
    @classmethod
    def _relative_to_campaign(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        if path is None:
            return None
        return relative_to_campaign(path.expanduser(), info).resolve()


class StoreSettings(Strict):
    """Where results go.

    ``embedded``: an on-disk store under the work directory (no server). ``mongodb``: a
    jobflow-style JOB_STORE configuration file (MongoStore docs + GridFS ``data`` store); the
    credentials live in that file or the environment, never in the campaign file.
    """

    kind: Literal["embedded", "mongodb"] = "embedded"
    config_file: Path | None = Field(
        None,
        description="jobflow.yaml with a JOB_STORE section (only for kind: mongodb), relative "
        "to the campaign file; recorded as an absolute path.",
    )
    timeout_s: float = Field(
        5.0, gt=0, description="Seconds to wait for the MongoDB server before giving up."
    )

    @field_validator("config_file")
    @classmethod
    def _config_relative_to_campaign(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        """From the campaign file's folder, not the current directory (as structure files), and
        absolute, so that the run record points to it from anywhere."""
        if path is None:
            return None
        return relative_to_campaign(path.expanduser(), info).resolve()

    @model_validator(mode="after")
    def _config_needed(self) -> StoreSettings:
        if self.kind == "mongodb" and self.config_file is None:
            raise ValueError(
                "store kind 'mongodb' needs config_file: the path of a jobflow.yaml with a "
                "JOB_STORE section (see launchpad/jobflow.yaml)"
            )
        return self
