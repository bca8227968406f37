"""Files out of a work directory's store: structures, trajectories, trained models.

* ``structures``: every structure of the stages' result documents (the registry's
  ``output_schema``: relaxed structures, NEB images, amorphous samples, interface cells, the
  last frame of each MD segment) as CIF and POSCAR;
* ``trajectories``: every chunked MD trajectory (:mod:`ctaflow.analysis.chunks`, joined and
  checked by :func:`~ctaflow.analysis.chunks.join_chunks`) as extended XYZ, with energies,
  forces, stresses, times and temperatures where they were stored;
* ``models``: every trained model file under its readable name
  (:func:`ctaflow.model_names.model_file_name`), checked against its sha256.

Each export writes ``manifest.json`` beside the files: one entry per file with the job it came
from (stage, composition, engine, uuid), the field it was read from and, where the result
carries one, its status and reasons, so that an excluded sample is not mistaken for a result.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctaflow.errors import CtaflowError
from ctaflow.query import model_names, not_a_result, result_schemas

if TYPE_CHECKING:
    from jobflow import JobStore

WHAT = ("structures", "trajectories", "models")
MANIFEST = "manifest.json"


@dataclass
class Exported:
    """One file written by an export (an entry of ``manifest.json``)."""

    file: str
    kind: str
    stage: str | None
    campaign: str | None
    composition: str | None
    engine: str | None
    job_name: str | None
    uuid: str
    source: str = ""  # the output field it was read from, e.g. "samples.1.structure"
    status: str | None = None
    reasons: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


def _slug(text: Any) -> str:
    """A file-name-safe version of ``text``."""
    return re.sub(r"[^A-Za-z0-9.()+-]+", "-", str(text)).strip("-") or "x"


def _walk(
    value: Any, match, path: tuple[str, ...] = (), verdict: tuple | None = None
) -> Iterator[tuple[tuple[str, ...], Any, dict | None, tuple | None]]:
    """(path, value, parent, verdict) of every part of ``value`` that ``match`` accepts;
    ``parent``: the dict that holds it, ``verdict``: (status, reasons) of the nearest enclosing
    document that carries a status."""
    if isinstance(value, dict):
        if "status" in value and isinstance(value["status"], str):
            reasons = value.get("reasons") or value.get("reason") or []
            verdict = (value["status"], [reasons] if isinstance(reasons, str) else list(reasons))
        for key, item in value.items():
            if match(item):
                yield (*path, key), item, value, verdict
            else:
                yield from _walk(item, match, (*path, key), verdict)
    elif isinstance(value, list):
        for n, item in enumerate(value):
            if match(item):
                yield (*path, str(n)), item, None, verdict
            else:
                yield from _walk(item, match, (*path, str(n)), verdict)


def _is_structure(value: Any) -> bool:
    return isinstance(value, dict) and value.get("@class") == "Structure"


def _is_chunks(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(c, dict) and "chunk_arrays" in c and "start_frame" in c for c in value)
    )


def _latest(docs: list[dict]) -> list[dict]:
    """One document per job uuid (its highest index), in completion order."""
    latest: dict[str, dict] = {}
    for doc in docs:
        seen = latest.get(doc["uuid"])
        if seen is None or (doc.get("index") or 0) > (seen.get("index") or 0):
            latest[doc["uuid"]] = doc
    return sorted(latest.values(), key=lambda d: str(d.get("completed_at")))


def _entry(doc: dict, file: str, kind: str, path: tuple[str, ...], verdict, **details) -> Exported:
    meta = doc.get("metadata") or {}
    status, reasons = verdict if verdict else (None, [])
    return Exported(
        file=file,
        kind=kind,
        stage=meta.get("stage"),
        campaign=meta.get("campaign"),
        composition=meta.get("composition"),
        engine=meta.get("engine"),
        job_name=doc.get("name"),
        uuid=doc["uuid"],
        source=".".join(path),
        status=status,
        reasons=reasons,
        details=details,
    )


def _stem(doc: dict, path: tuple[str, ...], formula: str | None = None) -> str:
    """``<formula>_<job name>_<field path>_<uuid8>`` (formula: of the structure, else the job's
    composition)."""
    meta = doc.get("metadata") or {}
    parts = [formula or meta.get("composition") or "structure", doc.get("name") or "job", *path]
    return "_".join(_slug(p) for p in parts) + f"_{doc['uuid'][:8]}"


def unique_labels(structure) -> bool:
    """Make the site labels of ``structure`` unique, as CIF requires (an ordered supercell
    repeats the labels of the cell it came from): a repeated label gets ``_1``, ``_2``, … in
    site order. Returns whether any label changed."""
    labels = [site.label for site in structure]
    repeated = {label for label in labels if labels.count(label) > 1}
    seen: dict[str, int] = {}
    for site in structure:
        if site.label in repeated:
            seen[site.label] = seen.get(site.label, 0) + 1
            site.label = f"{site.label}_{seen[site.label]}"
    return bool(repeated)


def export_structures(store: JobStore, out: Path, stage: str | None = None) -> list[Exported]:
    """CIF and POSCAR of every structure in the result documents (see the module docstring)."""
    from pymatgen.core import Structure  # lazy: pymatgen's IO is not needed by other exports
    from pymatgen.io.cif import CifWriter
    from pymatgen.io.vasp import Poscar

    schemas = result_schemas()
    if stage is not None:
        schemas = {stage: schemas[stage]} if stage in schemas else {}
    entries = []
    for name, schema in schemas.items():
        docs = _latest(
            list(
                store.query(
                    {"metadata.stage": name, "output.@class": schema},
                    properties=["uuid", "index", "name", "metadata", "output", "completed_at"],
                )
            )
        )
        for doc in docs:
            if not_a_result(name, doc["output"]):
                continue
            for path, value, _, verdict in _walk(doc["output"], _is_structure):
                structure = Structure.from_dict(value)
                formula = structure.composition.reduced_formula
                stem = Path(name) / _stem(doc, path, formula)
                (out / name).mkdir(parents=True, exist_ok=True)
                relabelled = unique_labels(structure)
                CifWriter(structure).write_file(out / f"{stem}.cif")
                plain = structure.copy()
                for key in list(plain.site_properties):
                    plain.remove_site_property(key)  # velocities etc. stay in the CIF's source
                Poscar(plain, comment=f"{structure.formula} {stem.name}").write_file(
                    out / f"{stem}.POSCAR"
                )
                entries.append(
                    _entry(
                        doc,
                        f"{stem}.cif",
                        "structure",
                        path,
                        verdict,
                        poscar=f"{stem}.POSCAR",
                        formula=formula,
                        n_atoms=len(structure),
                        site_labels="repeated labels numbered (Na1_1, Na1_2, …)"
                        if relabelled
                        else "as stored",
                    )
                )
    return entries


def export_trajectories(store: JobStore, out: Path, stage: str | None = None) -> list[Exported]:
    """Extended XYZ of every chunked trajectory (see the module docstring)."""
    from pymatgen.core import Structure

    from ctaflow.analysis.chunks import join_chunks  # lazy: numpy and ASE, for this export only

    criteria: dict[str, Any] = {"output.trajectory.0.chunk_arrays": {"$exists": 1}}
    if stage is not None:
        criteria["metadata.stage"] = stage
    heads = _latest(
        list(store.query(criteria, properties=["uuid", "index", "completed_at", "metadata.stage"]))
    )
    entries = []
    for head in heads:
        doc = next(
            iter(
                store.query(
                    {"uuid": head["uuid"], "index": head.get("index")},
                    properties=["uuid", "index", "name", "metadata", "output", "completed_at"],
                    load=True,
                )
            )
        )
        for path, chunks, parent, verdict in _walk(doc["output"], _is_chunks):
            structure = next((v for v in (parent or {}).values() if _is_structure(v)), None)
            if structure is None:
                continue  # no species to write the frames with
            n_frames = (parent or {}).get("n_frames")
            arrays = join_chunks(chunks, n_frames if isinstance(n_frames, int) else None)
            stage_name = (doc.get("metadata") or {}).get("stage") or "other"
            formula = Structure.from_dict(structure).composition.reduced_formula
            stem = Path(stage_name) / _stem(doc, path, formula)
            (out / stage_name).mkdir(parents=True, exist_ok=True)
            n = write_extxyz(out / f"{stem}.extxyz", structure, arrays)
            extra = {k: parent[k] for k in ("segment", "ensemble", "timestep_fs") if k in parent}
            entries.append(
                _entry(doc, f"{stem}.extxyz", "trajectory", path, verdict, n_frames=n, **extra)
            )
    return entries


def write_extxyz(path: Path, structure: dict, arrays: dict[str, Any]) -> int:
    """Write the frames of ``arrays`` (see :data:`ctaflow.analysis.chunks.FRAME_ARRAYS`) with
    the species of ``structure`` (a pymatgen Structure dict, atoms in the same order) as
    extended XYZ; return the number of frames."""
    import numpy as np
    from ase import Atoms, units
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write
    from pymatgen.core import Structure

    reference = Structure.from_dict(structure)
    species = [site.specie.Z for site in reference]
    positions = np.asarray(arrays["positions_a"])
    frames = []
    for i in range(len(positions)):
        cell = arrays["cells_a"][i] if "cells_a" in arrays else reference.lattice.matrix
        atoms = Atoms(numbers=species, positions=positions[i], cell=cell, pbc=True)
        results = {}
        if "energies_ev" in arrays:
            results["energy"] = float(arrays["energies_ev"][i])
        if "forces_ev_per_a" in arrays:
            results["forces"] = np.asarray(arrays["forces_ev_per_a"][i])
        if "stresses_gpa" in arrays:  # ASE's unit is eV/Å³ (same sign convention)
            results["stress"] = np.asarray(arrays["stresses_gpa"][i]) * units.GPa
        if results:
            atoms.calc = SinglePointCalculator(atoms, **results)
        for key, name in (("times_fs", "time_fs"), ("temperatures_k", "temperature_k")):
            if key in arrays:
                atoms.info[name] = float(arrays[key][i])
        if "velocities_a_per_fs" in arrays:
            atoms.arrays["velocities_a_per_fs"] = np.asarray(arrays["velocities_a_per_fs"][i])
        frames.append(atoms)
    write(path, frames, format="extxyz")
    return len(frames)


def export_models(store: JobStore, out: Path, stage: str | None = None) -> list[Exported]:
    """Every trained model file under its readable name (see the module docstring)."""
    from ctaflow.analysis.blobs import unpack_file  # lazy: for this export only

    names = model_names(store)
    entries = []
    out.mkdir(parents=True, exist_ok=True)
    for model in names.models:
        if stage is not None and model.stage != stage:
            continue
        doc = next(
            iter(
                store.query(
                    {"uuid": model.uuid},
                    properties=["uuid", "index", "name", "metadata", "output", "completed_at"],
                    load=True,
                    sort={"index": -1},
                    limit=1,
                )
            )
        )
        output = doc["output"]
        member = output["committee"][model.member - 1] if model.member else output
        data = unpack_file(member["model"])  # checks every part and the whole file's sha256
        if hashlib.sha256(data).hexdigest() != model.sha256:
            raise CtaflowError(
                f"the stored file of {model.name} does not match its recorded sha256; run "
                "'ctaflow verify' on the work directory"
            )
        (out / model.file_name).write_bytes(data)
        path = ("model",) if model.member == 0 else ("committee", str(model.member - 1), "model")
        entries.append(
            _entry(
                doc,
                model.file_name,
                "model",
                path,
                None,
                name=model.name,
                sha256=model.sha256,
                committee_member=model.member,
                final=model.final,
                size_bytes=len(data),
            )
        )
    return entries


EXPORTERS = {
    "structures": export_structures,
    "trajectories": export_trajectories,
    "models": export_models,
}


def export(
    store: JobStore, what: str, out: str | Path, stage: str | None = None, source: str = ""
) -> tuple[Path, list[Exported]]:
    """Export ``what`` (``structures``, ``trajectories`` or ``models``) of ``store`` into
    ``out``, with its ``manifest.json``; return the manifest's path and its entries.
    ``source`` names where the store is (recorded in the manifest)."""
    if what not in EXPORTERS:
        raise CtaflowError(f"unknown export '{what}'; choose from {', '.join(WHAT)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    entries = EXPORTERS[what](store, out, stage)
    manifest = out / MANIFEST
    manifest.write_text(
        json.dumps(
            {
                "what": what,
                "stage": stage,
                "source": source,
                "created_at": datetime.now(UTC).isoformat(),
                "files": [asdict(e) for e in entries],
            },
            indent=2,
            default=str,
            ensure_ascii=False,
        )
    )
    return manifest, entries
