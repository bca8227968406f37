"""Two campaigns (or two engines of one campaign) side by side: the headline numbers of their
derived collections, each with its status.

The headlines (:data:`HEADLINES`) are the numbers a reader compares first: the relaxed energy
per atom and volume, the force field's test-set errors, D and σ per temperature and Ea, ΔE
amorphous − crystalline per composition, migration barriers and interfacial energies γ. A row
pairs the same quantity for the same thing (same composition, species, mechanism, …) on both
sides; a side without it shows nothing there, never a zero. The difference is given only when
both values exist and neither is excluded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctaflow.errors import CtaflowError, StoreError
from ctaflow.report.format import EXCLUDED, reasons_of, status_of
from ctaflow.report.labels import label


@dataclass(frozen=True)
class Headline:
    """Quantities of one derived collection: ``values`` of each document (or of each of its
    ``points``), told apart by ``key`` fields."""

    collection: str
    key: tuple[str, ...]
    values: tuple[str, ...]
    points: str | None = None  # a list field whose items carry the values (transport points)
    point_key: tuple[str, ...] = ()


HEADLINES = (
    Headline("relax", ("formula",), ("energy_per_atom_ev", "volume_a3")),
    Headline("mlff", ("test_composition",), ("rmse_energy_mev_per_atom", "rmse_force_mev_per_a")),
    Headline(
        "transport",
        ("species", "site_class"),
        ("diffusivity_cm2_per_s", "conductivity_s_per_cm"),
        points="points",
        point_key=("temperature_k",),
    ),
    Headline("transport", ("species", "site_class"), ("activation_energy_ev",)),
    Headline(
        "formation_energies", ("formula",), ("delta_e_amorphous_minus_crystalline_mev_per_atom",)
    ),
    Headline(
        "barriers",
        ("species", "mechanism", "hop_label"),
        ("forward_barrier_ev", "backward_barrier_ev"),
    ),
    Headline("interfaces", ("phase", "metal", "sample"), ("gamma_j_per_m2",)),
)


@dataclass(frozen=True)
class Value:
    """One headline number of one side, with the verdict of the record it belongs to."""

    value: Any
    status: str | None
    reasons: tuple[str, ...]  # the record's reasons; without a value and status, its notes


def _key_text(names: Sequence[str], record: Mapping[str, Any]) -> str:
    parts = []
    for name in names:
        value = record.get(name)
        if name == "site_class":
            value = value or "all sites"
        elif name == "hop_label" and value is not None:
            value = f"hop {value}"
        elif name == "sample" and value is not None:
            value = f"sample {value}"
        elif name == "temperature_k" and value is not None:
            value = f"{value:g} K"
        if value is not None:
            parts.append(str(value))
    return " ".join(parts)


def headline_values(
    docs: Mapping[str, Iterable[Mapping[str, Any]]],
    keep: Callable[[Mapping[str, Any]], bool] = lambda doc: True,
) -> dict[tuple[str, str], Value]:
    """(quantity, what) → value of one side. ``docs``: derived documents by collection name;
    ``keep``: which documents belong to this side (e.g. one engine). Of several documents for
    the same thing (several campaigns in one store), the last one counts."""
    values: dict[tuple[str, str], Value] = {}
    for headline in HEADLINES:
        for doc in docs.get(headline.collection, ()):
            if not keep(doc):
                continue
            what = _key_text(headline.key, doc)
            records = [(doc, what)]
            if headline.points:
                records = [
                    (point, f"{what} {_key_text(headline.point_key, point)}".strip())
                    for point in doc.get(headline.points) or []
                ]
            for record, text in records:
                verdict = record if status_of(record) is not None else doc
                for name in headline.values:
                    if name not in record:
                        continue
                    reasons = reasons_of(verdict)
                    if record.get(name) is None and not reasons:  # say why there is none
                        reasons = [str(n) for n in doc.get("notes") or []]
                    values[name, text] = Value(record.get(name), status_of(verdict), tuple(reasons))
    return values


def compare_rows(
    sides: Sequence[tuple[str, dict[tuple[str, str], Value]]],
) -> list[dict[str, Any]]:
    """Rows of the comparison table: quantity, what, then per side its value, status and
    reasons, and the difference (second − first) when both are numbers and neither excluded."""
    (name_a, a), (name_b, b) = sides
    order = {name: n for n, name in enumerate(v for h in HEADLINES for v in h.values)}
    keys = sorted(set(a) | set(b), key=lambda k: (order.get(k[0], len(order)), k[1]))
    rows = []
    for quantity, what in keys:
        row: dict[str, Any] = {"quantity": label(quantity), "field": quantity, "what": what}
        for name, side in ((name_a, a), (name_b, b)):
            value = side.get((quantity, what))
            row[name] = value.value if value else None
            row[f"{name} status"] = value.status if value else None
            row[f"{name} reasons"] = list(value.reasons) if value else []
            row[f"{name} found"] = value is not None
        va, vb = a.get((quantity, what)), b.get((quantity, what))
        numbers = all(
            v is not None and isinstance(v.value, int | float) and v.status != EXCLUDED
            for v in (va, vb)
        )
        row["difference"] = vb.value - va.value if numbers and va and vb else None
        rows.append(row)
    return rows


def derived_documents(workdir: str | Path, build: bool = True) -> dict[str, list[dict]]:
    """The successful documents of every derived collection of ``workdir``, by collection
    name; ``build``: update the collections first (as ``ctaflow report`` does)."""
    # lazy: the builders and the store layer (maggma) are needed only here, not by the
    # pure comparison above
    from ctaflow.builders import run_builder
    from ctaflow.query import builders_for, open_derived
    from ctaflow.stages.registry import builders

    if build:
        for builder in builders_for(workdir):
            run_builder(builder)
    docs: dict[str, list[dict]] = {}
    for name in builders():
        try:
            store = open_derived(workdir, name)
        except StoreError:  # never built (--no-build): nothing to compare
            docs[name] = []
            continue
        docs[name] = sorted(
            store.query({"state": "successful"}),
            key=lambda d: (str(d.get("campaign")), str(d.get("derived_id"))),
        )
    return docs


def compare_workdirs(
    sides: Sequence[tuple[str | Path, str | None]], build: bool = True
) -> list[dict[str, Any]]:
    """The comparison table of two sides, each a work directory and an engine (None: every
    engine; else an engine label such as ``mlip:CHGNet-0.3.0`` or a trained model's readable
    name such as ``MACE demo f1992b56``). Sides are named by their directory, or by their
    engine when both are in one directory."""
    from ctaflow.query import model_names, open_results  # lazy: as in derived_documents

    if len(sides) != 2:
        raise CtaflowError("compare needs two sides: two work directories, or two --engine")
    cache: dict[Path, dict[str, list[dict]]] = {}
    named = []
    same_dir = Path(sides[0][0]).resolve() == Path(sides[1][0]).resolve()
    for workdir, engine in sides:
        path = Path(workdir).resolve()
        if path not in cache:
            cache[path] = derived_documents(path, build)
        names = model_names(open_results(path))

        def keep(doc, engine=engine, names=names) -> bool:
            label_ = doc.get("engine")
            model = names.by_sha(doc["model_sha256"]) if doc.get("model_sha256") else None
            return engine is None or engine in (
                label_,
                names.engine_name(label_, doc.get("campaign")),
                model.name if model else None,
            )

        values = headline_values(cache[path], keep)
        if engine is not None and not values:
            raise CtaflowError(f"no derived result of engine '{engine}' in '{workdir}'")
        name = engine if same_dir else Path(workdir).name or str(workdir)
        if not same_dir and engine is not None:
            name = f"{name} ({engine})"
        named.append((name, values))
    if named[0][0] == named[1][0]:
        named = [(f"{name} [{n + 1}]", values) for n, (name, values) in enumerate(named)]
    return compare_rows(named)
