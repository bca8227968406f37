"""Load a campaign YAML file into :class:`CampaignSettings` with errors a user can act on."""

from __future__ import annotations

import re
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from ctaflow.campaign.schema import CampaignSettings
from ctaflow.errors import CampaignError
from ctaflow.settings import NUMBER_ERROR


class CampaignLoader(yaml.SafeLoader):
    """YAML as PyYAML reads it, except that ``1e-4`` is a number (YAML 1.2) and not the text
    "1e-4" (YAML 1.1 wants ``1.0e-4``): number fields refuse text, so a number written
    without a dot must still arrive as a number."""


CampaignLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_campaign(path: str | Path) -> CampaignSettings:
    """Read and validate a campaign file.

    Raises
    ------
    CampaignError
        One message naming the file, line, key, the problem and the allowed values.
    """
    path = Path(path)
    if not path.is_file():
        raise CampaignError(f"campaign file '{path}' not found; pass the path of a YAML file")
    text = path.read_text()
    try:
        root = yaml.compose(text)
        data = yaml.load(text, Loader=CampaignLoader)  # a SafeLoader
    except yaml.YAMLError as exc:
        raise CampaignError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise CampaignError(f"{path}: a campaign file must be a mapping with at least 'name:'")
    try:
        return CampaignSettings.model_validate(data, context={"base_dir": path.parent})
    except ValidationError as exc:
        raise CampaignError(format_validation_error(exc, path, root)) from None


def format_validation_error(exc: ValidationError, path: Path | str, root: Any = None) -> str:
    """One readable message for a pydantic validation error on a campaign."""
    lines = []
    for err in exc.errors():
        if err["type"] == NUMBER_ERROR:  # raised by the model holding the field: add its name
            err = {**err, "loc": (*err["loc"], err["ctx"]["field"]), "msg": err["ctx"]["problem"]}
        loc, parent = _walk(CampaignSettings, err["loc"])
        key = ".".join(str(p) for p in loc) or "(top level)"
        where = f"{path}"
        line = _line_of(root, loc)
        if line is not None:
            where += f":{line}"
        if err["type"] == "extra_forbidden":
            allowed = sorted(parent.model_fields) if parent is not None else []
            msg = f"unknown key '{loc[-1]}'" + (
                f"; allowed keys here: {', '.join(allowed)}" if allowed else ""
            )
        elif err["type"] == "literal_error":
            msg = f"{err['msg']} (got {err['input']!r})"
        elif err["type"] == "union_tag_invalid":
            ctx = err.get("ctx", {})
            field = str(ctx.get("discriminator", "kind")).strip("'")
            msg = f"unknown {field} {ctx.get('tag')!r}; allowed: {ctx.get('expected_tags')}"
        elif err["type"] == "missing":
            msg = "required key is missing"
        else:
            msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {key}: {msg}")
    return "invalid campaign:\n  " + "\n  ".join(lines)


def _walk(model: type[BaseModel], loc: tuple) -> tuple[tuple, type[BaseModel] | None]:
    """Follow a pydantic error location through the schema.

    Returns the location without discriminator tags (pydantic inserts e.g. ``'mlip'`` after
    ``engines.labeller``) and the model that holds the last key (None if not resolvable).
    """
    clean: list = []
    current: Any = model
    parent: type[BaseModel] | None = None
    for part in loc:
        current = _unwrap(current)
        if get_origin(current) is dict:
            clean.append(part)
            current = get_args(current)[1]
        elif get_origin(current) in (Union, UnionType):
            member = _tagged_member(current, part)
            if member is None:
                clean.append(part)
                current = None
            else:
                current = member  # the tag itself is not a key of the file
        elif isinstance(current, type) and issubclass(current, BaseModel):
            if str(part) not in current.model_fields and _tagged_member((current,), part):
                continue  # a single-member discriminated union still reports its tag
            parent = current
            clean.append(part)
            field = current.model_fields.get(str(part))
            current = field.annotation if field is not None else None
        else:
            clean.append(part)
            current = None
    return tuple(clean), parent


def _unwrap(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _tagged_member(union: Any, tag: Any) -> type[BaseModel] | None:
    """The member of a discriminated union whose tag (a Literal field default) equals ``tag``."""
    for member in union if isinstance(union, tuple) else get_args(union):
        if isinstance(member, type) and issubclass(member, BaseModel):
            for field in member.model_fields.values():
                literal = get_origin(field.annotation) is Literal
                if literal and tag in get_args(field.annotation) and field.default == tag:
                    return member
    return None


def _line_of(node: Any, loc: tuple) -> int | None:
    """1-based line of the deepest YAML node along ``loc``."""
    line = None
    for part in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            match = [(k, v) for k, v in node.value if k.value == str(part)]
            if not match:
                return line
            key_node, node = match[0]
            line = key_node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            node = node.value[part] if part < len(node.value) else None
        else:
            break
    return line
