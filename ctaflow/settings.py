"""What every settings model shares: unknown keys are errors, and a stable hash identifies them.

The campaign schema (:mod:`ctaflow.campaign`), the engine specs (:mod:`ctaflow.engines.specs`) and
the engine parameter objects (:mod:`ctaflow.engines.params`) all build on :class:`Strict`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

#: pydantic error type of a number given as text; ``ctx["field"]`` names the field
NUMBER_ERROR = "number_not_text"


class Strict(BaseModel):
    """Base model: unknown keys are errors, so a typo in a campaign file is never a silent
    default; a number given as text (``temperature_k: "600"``) is an error too.

    pydantic's lax mode would read ``"600"`` as 600.0; its strict mode would also refuse what
    YAML cannot express otherwise (lists for tuples, text for paths), so only the number fields
    are checked here. A whole number where a float is expected still passes (YAML's ``600``).
    """

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _numbers_are_numbers(cls, data: Any) -> Any:
        # a model validator: pydantic allows no field validator on the discriminator fields of
        # the structure sources and engine specs, so "*" cannot be used
        if not isinstance(data, dict):
            return data
        for name, field in cls.model_fields.items():
            key = field.alias or name
            problem = number_problem(data[key], field.annotation) if key in data else None
            if problem is not None:
                context = {"field": key, "problem": problem}
                raise PydanticCustomError(NUMBER_ERROR, "{field}: {problem}", context)
        return data


def number_problem(value: Any, annotation: Any) -> str | None:
    """Why ``value`` is not what a number field (or a list, tuple or mapping of numbers) with
    ``annotation`` takes: a number as text (``"600"``) or true/false; None if it is fine, if
    pydantic's own error says it better (``"many"``), or if the field is not a number field
    (fields that also take text are not checked)."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    origin = get_origin(annotation)
    if annotation in (int, float):
        if isinstance(value, str) and _reads_as_number(value):  # other text: pydantic's error
            return f"a number, not a string ({value!r}); write it without quotes"
        if isinstance(value, bool):
            return f"a number, not {str(value).lower()}"
        return None
    if origin in (Union, UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        numeric = [a for a in members if _numeric(a)]
        if value is None or not numeric or len(numeric) != len(members):
            return None  # a member that is not numeric (text, a model) may take the value
        return number_problem(value, numeric[0])
    if origin in (list, tuple, set, frozenset) and isinstance(value, list | tuple):
        args = [a for a in get_args(annotation) if a is not Ellipsis]
        for i, item in enumerate(value):
            item_type = args[i] if origin is tuple and len(args) > 1 and i < len(args) else None
            problem = number_problem(item, item_type or (args[0] if args else Any))
            if problem is not None:
                return f"item {i + 1}: {problem}"
        return None
    if origin is dict and isinstance(value, dict) and len(get_args(annotation)) == 2:
        for key, item in value.items():
            problem = number_problem(item, get_args(annotation)[1])
            if problem is not None:
                return f"{key}: {problem}"
    return None


def _reads_as_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _numeric(annotation: Any) -> bool:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation in (int, float)


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
