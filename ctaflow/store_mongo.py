"""MongoDB job stores: the JOB_STORE file, its ``${VAR}`` references, timeouts, reachability.

A campaign with ``store: {kind: mongodb, config_file: jobflow.yaml}`` reads a jobflow-style
``JOB_STORE`` specification (see ``launchpad/jobflow.yaml``). ``${VAR}`` anywhere in a value is
replaced by the environment variable ``VAR``, so passwords never sit in the file.

pymongo waits 30 s for a server by default and then raises an exception whose text lists its
topology; ctaflow waits ``store.timeout_s`` (:data:`DEFAULT_TIMEOUT_S` until the campaign schema
has the field) and reports one line naming the server and what to check.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctaflow.errors import StoreError

if TYPE_CHECKING:
    from ctaflow.campaign.schema import StoreSettings

#: seconds to wait for a MongoDB server before giving up (store.timeout_s overrides it)
DEFAULT_TIMEOUT_S = 5.0
#: maggma stores that talk to MongoDB through a pymongo client (they take mongoclient_kwargs)
MONGO_STORE_TYPES = ("MongoStore", "GridFSStore", "MongoURIStore", "GridFSURIStore")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_URI_CREDENTIALS = re.compile(r"//[^@/]*@")


def resolve_config_file(config_file: str | Path, campaign_file: str | Path) -> Path:
    """``store.config_file`` as written in a campaign: ``~`` expanded, a relative path taken
    from the folder of the campaign file (not from the current directory), made absolute.

    The campaign loader should store this path in ``StoreSettings.config_file`` so that
    ``ctaflow-run.json`` records an absolute path that ``query`` finds from anywhere.
    """
    path = Path(os.path.expanduser(str(config_file)))
    if not path.is_absolute():
        path = Path(campaign_file).resolve().parent / path
    return path.resolve()


def read_job_store_file(config_file: str | Path | None) -> dict[str, Any]:
    """The ``JOB_STORE`` mapping of a jobflow.yaml, ``${VAR}`` references not expanded."""
    import yaml

    if config_file is None or not Path(config_file).is_file():
        raise StoreError(
            f"MongoDB store config '{config_file}' not found; copy launchpad/jobflow.yaml and "
            "point store.config_file to it"
        )
    try:
        data = yaml.safe_load(Path(config_file).read_text()) or {}
    except yaml.YAMLError as exc:
        raise StoreError(f"{config_file}: not valid YAML: {exc}") from None
    spec = data.get("JOB_STORE", data) if isinstance(data, dict) else None
    if not isinstance(spec, dict) or not isinstance(spec.get("docs_store"), dict):
        raise StoreError(f"{config_file}: expected a JOB_STORE mapping with docs_store")
    return spec


def env_references(config_file: str | Path) -> list[str]:
    """Names of the environment variables (``${VAR}``) a JOB_STORE file refers to, in order."""
    names: list[str] = []
    _walk_strings(read_job_store_file(config_file), lambda text: names.extend(_VAR.findall(text)))
    return list(dict.fromkeys(names))


def missing_env_vars(config_file: str | Path) -> list[str]:
    """The ``${VAR}`` references of a JOB_STORE file whose variable is not set."""
    return [name for name in env_references(config_file) if name not in os.environ]


def check_store_config(settings: StoreSettings | None) -> None:
    """For ``ctaflow validate``: the MongoDB config file exists, is a JOB_STORE mapping, and
    every environment variable it names is set (no connection is made)."""
    if settings is None or settings.kind != "mongodb":
        return
    missing = missing_env_vars(settings.config_file)
    if missing:
        raise StoreError(_missing_message(settings.config_file, missing))


def store_timeout_s(settings: StoreSettings | None) -> float:
    """Seconds to wait for the server: ``store.timeout_s`` if the schema has it, else a default."""
    value = getattr(settings, "timeout_s", None)
    return float(value) if value else DEFAULT_TIMEOUT_S


def mongo_spec(settings: StoreSettings) -> dict[str, Any]:
    """The JOB_STORE specification with ``${VAR}`` expanded and a short server timeout added to
    every MongoDB store that does not set its own (``mongoclient_kwargs``)."""
    spec = read_job_store_file(settings.config_file)
    missing = [n for n in env_references(settings.config_file) if n not in os.environ]
    if missing:
        raise StoreError(_missing_message(settings.config_file, missing))
    spec = _expand(spec)
    timeout_ms = int(store_timeout_s(settings) * 1000)
    stores = [spec["docs_store"], *(spec.get("additional_stores") or {}).values()]
    for store in stores:
        if isinstance(store, dict) and store.get("type", "MongoStore") in MONGO_STORE_TYPES:
            kwargs = store.setdefault("mongoclient_kwargs", {})
            kwargs.setdefault("serverSelectionTimeoutMS", timeout_ms)
            kwargs.setdefault("connectTimeoutMS", timeout_ms)
    return spec


def side_store_spec(settings: StoreSettings) -> dict[str, Any]:
    """The ``docs_store`` specification, for collections next to the job documents."""
    return mongo_spec(settings)["docs_store"]


def connect_checked(store: Any, settings: StoreSettings | None) -> None:
    """Connect a JobStore or maggma store and make sure its server answers and accepts the
    credentials; every failure is one StoreError naming the server and what to check.

    Embedded stores check their files when they connect; they are not read here (a count
    would read the whole file).
    """
    from maggma.stores import MontyStore

    parts = (
        [store.docs_store, *store.additional_stores.values()] if _is_job_store(store) else [store]
    )
    for part in parts:
        if isinstance(part, MontyStore):
            part.connect()
            continue
        try:
            part.connect()
            part.count({"_id": None})
        except Exception as exc:
            raise StoreError(mongo_problem(exc, part, settings)) from None


def mongo_problem(exc: BaseException, store: Any, settings: StoreSettings | None) -> str:
    """A MongoDB failure as one line: which server, what went wrong, what to check."""
    import pymongo.errors as errors

    server = server_name(store)
    config = getattr(settings, "config_file", None)
    source = f" (store.config_file '{config}')" if config else ""
    if isinstance(exc, errors.ServerSelectionTimeoutError):
        return (
            f"MongoDB server {server}{source} did not answer within "
            f"{store_timeout_s(settings):g} s: check that it is running and that this machine "
            "can reach it (host, port, firewall, VPN), or raise store.timeout_s"
        )
    if isinstance(exc, errors.OperationFailure) and (exc.code == 18 or "auth" in str(exc).lower()):
        user = getattr(store, "username", "") or "?"
        return (
            f"MongoDB server {server}{source} refused the credentials of user '{user}': check "
            "the user name and password in the config file or the environment variables it names"
        )
    if isinstance(exc, errors.OperationFailure) and exc.code == 13:
        return (
            f"MongoDB server {server}{source}: the user may not read database "
            f"'{getattr(store, 'database', '?')}' ({_first_line(exc)}): ask for read/write access"
        )
    return f"MongoDB store {server}{source}: {type(exc).__name__}: {_first_line(exc)}"


def server_name(store: Any) -> str:
    """host:port of a MongoDB store, or its URI without credentials."""
    uri = getattr(store, "uri", None)
    if uri:
        return _URI_CREDENTIALS.sub("//***@", str(uri))
    host = getattr(store, "host", None) or "localhost"
    port = getattr(store, "port", None) or 27017
    return f"{host}:{port}"


def _is_job_store(store: Any) -> bool:
    return hasattr(store, "docs_store") and hasattr(store, "additional_stores")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _missing_message(config_file: Path | None, missing: list[str]) -> str:
    plural = "s" if len(missing) > 1 else ""
    verb = "are" if len(missing) > 1 else "is"
    return (
        f"store configuration '{config_file}' needs the environment variable{plural} "
        f"{', '.join(missing)}, which {verb} not set: export {'them' if plural else 'it'} "
        "before running ctaflow (see the comments in launchpad/jobflow.yaml)"
    )


def _walk_strings(value: Any, visit) -> None:
    if isinstance(value, dict):
        for item in value.values():
            _walk_strings(item, visit)
    elif isinstance(value, list):
        for item in value:
            _walk_strings(item, visit)
    elif isinstance(value, str):
        visit(value)


def _expand(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v) for v in value]
    if isinstance(value, str):
        return _VAR.sub(lambda match: os.environ[match.group(1)], value)
    return value
