"""The experimental reference values a campaign declares (``reference:`` in its file), for the
report of its work directory.

The store holds results, not the campaign file, so they are read through the work directory:
from the campaign file its run record names (the user's current values: they do not enter the
fingerprint, so adding them after a run is fine), else from ``campaign.effective.yaml`` (what
``ctaflow run`` saw). A campaign that declares none gets no reference section.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from ctaflow.campaign.schema import ReferenceValue
from ctaflow.errors import CtaflowError
from ctaflow.workdir import run_info

logger = logging.getLogger(__name__)
EFFECTIVE = "campaign.effective.yaml"


def reference_of(workdir: str | Path) -> list[dict[str, Any]]:
    """The reference values of the campaign run in ``workdir`` (as dicts; [] when it declares
    none or its file cannot be found)."""
    workdir = Path(workdir)
    recorded = run_info(workdir).get("campaign_file")
    candidates = [Path(recorded)] if recorded else []
    candidates.append(workdir / EFFECTIVE)
    for path in candidates:
        if not path.is_file():
            continue
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            logger.warning("cannot read %s for the reference values: %s", path, exc)
            continue
        values = data.get("reference") or [] if isinstance(data, dict) else []
        try:
            parsed = TypeAdapter(list[ReferenceValue]).validate_python(values)
        except ValidationError as exc:
            raise CtaflowError(
                f"'{path}': reference: {exc.errors()[0]['msg']}; each entry needs quantity, "
                "value, unit and source"
            ) from None
        return [value.model_dump(exclude_none=True) for value in parsed]
    return []
