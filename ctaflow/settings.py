"""What every settings model shares: unknown keys are errors, and a stable hash identifies them.

The campaign schema (:mod:`ctaflow.campaign`), the engine specs (:mod:`ctaflow.engines.specs`) and
the engine parameter objects (:mod:`ctaflow.engines.params`) all build on :class:`Strict`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo


class Strict(BaseModel):
    """Base model: unknown keys are errors, so a typo in a campaign file is never a silent
    default."""

    model_config = ConfigDict(extra="forbid")


def stable_hash(data: Any, length: int = 12) -> str:
    """Short sha256 of the canonical JSON of ``data`` (sorted keys)."""
    text = json.dumps(data, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def relative_to_campaign(path: Path, info: ValidationInfo) -> Path:
    """``path`` joined to the campaign file's folder (the ``base_dir`` validation context) when
    it is relative; unchanged without a context (Python API)."""
    base = (info.context or {}).get("base_dir")
    if base is not None and not path.is_absolute():
        return Path(base) / path
    return path


class TrustWindow(Strict):
    """The committee force deviation window (eV/Å): below ``lower`` the model is trusted, at or
    above ``upper`` it has left what it was trained on."""

    lower_ev_per_a: float
    upper_ev_per_a: float
