"""Job stores from configuration.

* ``embedded`` (default): maggma ``MontyStore`` collections in an SQLite file under
  ``WORKDIR/store`` -- persistent, no server, readable by a second process. Job outputs go to
  ``outputs``; bulky objects (trajectories, datasets, model files) to the ``data`` additional
  store (``outputs_data``); ctaflow's own per-job run states to ``ctaflow_jobs``; the derived
  collections of the builders (:mod:`ctaflow.builders`) to ``derived_<name>``.
* ``mongodb``: a jobflow-style ``JOB_STORE`` specification read from a YAML file (typically a
  ``MongoStore`` for documents and a ``GridFSStore`` for ``data``). Credentials stay in that file or
  in the environment variables it names; ctaflow never writes or logs them. Run states and derived
  collections go to the same database as the job documents.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ctaflow.errors import StoreError

if TYPE_CHECKING:
    from jobflow import JobStore
    from maggma.core import Store

    from ctaflow.campaign.execution import StoreSettings

DATABASE_NAME = "ctaflow"
DOCS_COLLECTION = "outputs"
DATA_COLLECTION = "outputs_data"
STATE_COLLECTION = "ctaflow_jobs"
DERIVED_PREFIX = "derived_"


def embedded_store_dir(workdir: str | Path) -> Path:
    """Folder holding the embedded database of a work directory."""
    return Path(workdir) / "store"


def _monty(collection: str, db_dir: Path, key: str) -> Store:
    from maggma.stores import MontyStore

    return MontyStore(
        collection,
        database_path=str(db_dir),
        database_name=DATABASE_NAME,
        storage="sqlite",
        key=key,
    )


def job_store(settings: StoreSettings | None, workdir: str | Path, create: bool = True) -> JobStore:
    """The jobflow ``JobStore`` (docs + ``data``) for a campaign's work directory.

    Parameters
    ----------
    settings
        Store section of the campaign (None means embedded).
    workdir
        The campaign work directory; the embedded database lives in ``workdir/store``.
    create
        If False, an embedded store that does not exist yet is an error (used by ``query``,
        ``status`` and ``report`` so that a mistyped directory is not silently created).
    """
    from jobflow import JobStore

    if settings is not None and settings.kind == "mongodb":
        return JobStore.from_dict_spec(_mongo_spec(settings.config_file))
    db_dir = _embedded_dir(workdir, create)
    return JobStore(
        _monty(DOCS_COLLECTION, db_dir, "uuid"),
        additional_stores={"data": _monty(DATA_COLLECTION, db_dir, "blob_uuid")},
    )


def state_store(settings: StoreSettings | None, workdir: str | Path, create: bool = True) -> Store:
    """The collection of ctaflow run states (one document per job uuid) next to the job store."""
    return _side_collection(settings, workdir, STATE_COLLECTION, "uuid", create)


def derived_store(
    settings: StoreSettings | None, workdir: str | Path, name: str, create: bool = True
) -> Store:
    """The derived collection ``derived_<name>`` of a builder, next to the job store.

    Embedded: in the same MontyDB database as the job outputs. MongoDB: in the database of the
    ``docs_store`` of the JOB_STORE specification. Documents are keyed by ``derived_id`` and
    time-stamped in ``last_updated`` (see :mod:`ctaflow.builders`).
    """
    return _side_collection(settings, workdir, DERIVED_PREFIX + name, "derived_id", create)


def _side_collection(
    settings: StoreSettings | None, workdir: str | Path, collection: str, key: str, create: bool
) -> Store:
    """A collection of its own in the database of the job documents."""
    if settings is not None and settings.kind == "mongodb":
        import maggma.stores

        docs = _mongo_spec(settings.config_file)["docs_store"]
        store_type = getattr(maggma.stores, docs.get("type", "MongoStore"), None)
        if store_type is None:
            raise StoreError(f"docs_store type '{docs.get('type')}' is not a maggma store")
        params = {k: v for k, v in docs.items() if k != "type"}
        return store_type(**{**params, "collection_name": collection, "key": key})
    return _monty(collection, _embedded_dir(workdir, create), key)


def _embedded_dir(workdir: str | Path, create: bool) -> Path:
    db_dir = embedded_store_dir(workdir)
    if not create and not (db_dir / "monty.storage.cfg").is_file():
        raise StoreError(
            f"no ctaflow store in '{workdir}' (expected {db_dir}); pass the --workdir used "
            "with 'ctaflow run'"
        )
    db_dir.mkdir(parents=True, exist_ok=True)
    return db_dir


def _mongo_spec(config_file: Path | None) -> dict:
    """The JOB_STORE spec from a jobflow.yaml; ``${VAR}`` values are taken from the environment."""
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
    spec = data.get("JOB_STORE", data)
    if not isinstance(spec, dict) or "docs_store" not in spec:
        raise StoreError(f"{config_file}: expected a JOB_STORE mapping with docs_store")
    return _expand_env(spec)


def _expand_env(value):
    if isinstance(value, dict):
        return {k: _expand_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v) for v in value]
    if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
        name = value[2:-1]
        if name not in os.environ:
            raise StoreError(f"store configuration needs the environment variable {name}")
        return os.environ[name]
    return value
