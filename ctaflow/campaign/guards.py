"""Checks made before a campaign writes anything: cell sizes, memory, the mobile-ion network.

``ctaflow validate`` and ``ctaflow run`` call :func:`check_campaign`; it computes every stage's
cells from the settings and the structure (the ``cells`` entries of the stage registry, see
:mod:`ctaflow.stages.cells`), estimates the memory and single-thread time of their MD from
ctaflow's benchmark (:mod:`ctaflow.resources`), and says what cannot work:

* a cell whose MD needs more memory than this machine has available (or several of them when
  the local runner's workers run them at the same time) is refused, naming the setting that
  sizes it, unless the user allows it (``--allow-large``: the decision depends on the machine,
  not on the campaign, so it is a command-line option and never a campaign setting);
* a stage that needs mobile ions that the structure does not have is refused when the stage
  would certainly fail later (NEB without a hop between mobile sites, transport without a
  species to analyse) and warned about when it would run but say little (a transport species
  that is absent from the MD cell or on no mobile site).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ctaflow.engines.specs import (
    MaceEngineSpec,
    MLIPEngineSpec,
    VaspEngineSpec,
    VaspStandinEngineSpec,
)
from ctaflow.errors import CtaflowError
from ctaflow.resources import available_memory_mb, estimate_md_hours, estimate_md_memory_mb
from ctaflow.stages import CONFIGURABLE
from ctaflow.stages.cells import RELAX_SHRINK, supercell_atoms
from ctaflow.structures.neb_paths import check_cell_for_path, select_hops
from ctaflow.structures.supercell import make_supercell

if TYPE_CHECKING:
    from pymatgen.core import Structure

    from ctaflow.campaign.schema import CampaignSettings
    from ctaflow.stages.cells import StageCell

#: the hops of larger NEB supercells are not searched here (a too large cell is refused anyway)
MAX_CHECKED_ATOMS = 5000
#: the MACE of the benchmark behind :data:`ctaflow.resources.PEAK_RSS_MB` (larger ones need more)
BENCHMARK_MACE = {"num_channels": 16, "max_l": 0, "num_interactions": 2}


@dataclass
class CellEstimate:
    """One cell of a stage with what its MD needs (None: no benchmark for the engine)."""

    stage: str
    label: str
    cell: StageCell
    model: str | None
    memory_mb: float | None
    md_hours: float | None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n_atoms": self.cell.n_atoms, "runs": self.cell.runs}
        if self.cell.largest > self.cell.n_atoms:
            out["n_atoms_if_relaxed_smaller"] = self.cell.largest
        if self.cell.md_steps:
            out["md_steps"] = self.cell.md_steps
        if self.memory_mb is not None:
            out["peak_memory_mb"] = round(self.memory_mb)
        if self.md_hours is not None:
            out["md_hours_one_thread"] = float(f"{self.md_hours:.3g}")
        return out


@dataclass
class CampaignCheck:
    """Cell sizes and estimates of every stage, and what is wrong (errors) or doubtful."""

    available_mb: float | None
    workers: int
    estimates: list[CellEstimate] = field(default_factory=list)
    models: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)

    def report(self) -> dict[str, Any]:
        """The ``resources`` section ``ctaflow validate`` prints."""
        stages: dict[str, Any] = {}
        for est in self.estimates:
            entry = stages.setdefault(est.stage, {})
            model, note = self.models.get(est.stage, (None, ""))
            entry.setdefault("estimated_as", model or "not estimated")
            if note:
                entry.setdefault("note", note)
            entry.setdefault("cells", {})[est.label] = est.as_dict()
        for stage, note in self.notes.items():
            stages.setdefault(stage, {})["cells"] = f"not computed: {note}"
        avail = None if self.available_mb is None else round(self.available_mb)
        return {
            "available_memory_mb": avail,
            "basis": "ctaflow benchmark (ctaflow.resources): peak memory of one MD process and "
            "MD time on one CPU thread; a scale, not a promise",
            "stages": stages,
        }


def check_campaign(
    campaign: CampaignSettings,
    structure: Structure,
    workers: int = 1,
    available_mb: float | None = None,
    allow_large: bool = False,
    runs_here: bool = True,
) -> CampaignCheck:
    """Sizes, estimates, memory errors (unless ``allow_large``) and mobile-ion checks.

    ``workers``: how many jobs the local runner may run at the same time; ``available_mb``:
    the memory to compare with (default: :func:`ctaflow.resources.available_memory_mb`);
    ``runs_here``: False for a campaign that runs on a backend's workers, whose memory is not
    this machine's (too-large cells are then warnings).
    """
    available = available_memory_mb() if available_mb is None else available_mb
    check = CampaignCheck(available_mb=available, workers=workers)
    for name, stage in campaign.enabled_stages().items():
        spec = CONFIGURABLE[name]
        if spec.cells is None:
            continue
        check.models[name] = estimator_model(campaign, name, stage)
        try:
            cells = spec.cells(campaign, structure)
        except CtaflowError as exc:  # e.g. an interface without a lattice match
            check.notes[name] = str(exc)
            continue
        model = check.models[name][0]
        for label, cell in cells.items():
            memory = hours = None
            if model is not None:  # judged on the larger count (a relaxed, smaller cell)
                memory = estimate_md_memory_mb(cell.largest, model)
                if cell.md_steps:
                    hours = estimate_md_hours(cell.largest, cell.md_steps, model)
            check.estimates.append(CellEstimate(name, label, cell, model, memory, hours))
    allowed = None if runs_here and not allow_large else "allowed by --allow-large"
    if not runs_here:
        allowed = f"on this machine; the campaign runs on {campaign.execution.backend} workers"
    too_large = memory_problems(campaign, check, allowed=allowed)
    (check.errors if allowed is None else check.warnings).extend(too_large)
    errors, warnings = network_problems(campaign, structure)
    check.errors += errors
    check.warnings += warnings
    return check


def raise_problems(check: CampaignCheck) -> None:
    """One CtaflowError listing every refusal of :func:`check_campaign` (if any)."""
    if len(check.errors) == 1:
        raise CtaflowError(check.errors[0])
    if check.errors:
        raise CtaflowError("the campaign cannot run:\n  " + "\n  ".join(check.errors))


def estimator_model(campaign: CampaignSettings, name: str, stage: Any) -> tuple[str | None, str]:
    """The benchmark (a key of :data:`ctaflow.resources.PEAK_RSS_MB`) that stands for a stage's
    engine, and what the estimate leaves out; None where there is no benchmark or the memory
    is not this machine's (VASP on a cluster, a GPU)."""
    if name == "active_learning":  # explores with the committee the campaign trains
        dtype = campaign.stages.mlff.default_dtype
        return _mace(campaign, "float32" if dtype == "float32" else "float64", trained=True)
    spec = campaign.engines[stage.engine]
    if getattr(spec, "device", "cpu") == "cuda":
        return None, "runs on a GPU: the memory of this machine is not what limits it"
    if isinstance(spec, VaspStandinEngineSpec):
        return "chgnet", "the VASP stand-in runs CHGNet"
    if isinstance(spec, VaspEngineSpec):
        return None, "VASP: memory and time depend on the cluster, not estimated"
    if isinstance(spec, MLIPEngineSpec):
        if spec.model != "CHGNet":
            return None, f"no benchmark of {spec.model}"
        note = "benchmarked in float32; float64 needs more" if spec.dtype == "float64" else ""
        return "chgnet", note
    if isinstance(spec, MaceEngineSpec):
        return _mace(campaign, spec.dtype, trained=spec.model_path is None)
    return None, f"no benchmark of engine kind {spec.kind}"


def _mace(campaign: CampaignSettings, dtype: str, trained: bool) -> tuple[str, str]:
    model = "mace" if dtype == "float64" else "mace-float32"
    if not trained:
        return model, "benchmarked with a 16-channel max_l 0 MACE; a larger model needs more"
    ml = campaign.stages.mlff
    larger = {k: getattr(ml, k) for k, v in BENCHMARK_MACE.items() if getattr(ml, k) > v}
    if larger:
        what = ", ".join(f"{k} {v}" for k, v in larger.items())
        return model, f"stages.mlff ({what}) is larger than the benchmarked MACE: needs more"
    return model, ""


def memory_problems(
    campaign: CampaignSettings, check: CampaignCheck, allowed: str | None = None
) -> list[str]:
    """A line for every cell whose MD does not fit in the available memory, alone or with as
    many others of its size as the workers run at once (``allowed``: why it may, instead of
    the fix)."""
    if check.available_mb is None:
        return []
    problems = []
    avail = check.available_mb
    for est in check.estimates:
        if est.memory_mb is None:
            continue
        cell = est.cell
        where = f"stages.{est.stage}: the {est.label} has {cell.n_atoms:,} atoms"
        if cell.largest > cell.n_atoms:
            shrink = f"{RELAX_SHRINK:.0%}".replace("%", " %")
            where += f" ({cell.largest:,} if the relaxation shrinks the cell by {shrink})"
        fix = f"lower {cell.setting}{_now(campaign, cell.setting)}"
        override = "or pass --allow-large to run it anyway"
        together = min(cell.runs, check.workers)
        if est.memory_mb > avail:
            need = f"{est.model} MD on it needs about {est.memory_mb:,.0f} MB"
            fix = f"{fix}, {override}"
        elif together > 1 and together * est.memory_mb > avail:
            need = (
                f"{together} {est.model} runs on it at the same time (workers) need about "
                f"{together * est.memory_mb:,.0f} MB"
            )
            fix = f"run with --workers 1, {fix}, {override}"
        else:
            continue
        end = f" ({allowed})" if allowed else f": {fix}"
        problems.append(f"{where}; {need}, more than the {avail:,.0f} MB available here{end}")
    return problems


def _now(campaign: CampaignSettings, setting: str) -> str:
    """`` (now 60 Å)`` for a setting given as one dotted path, else nothing."""
    value: Any = campaign
    for part in setting.split("."):
        value = getattr(value, part, None)
        if value is None:
            return ""
    if not isinstance(value, int | float):
        return ""
    return f" (now {value:g} Å)" if setting.endswith("_a") else f" (now {value:g})"


def network_problems(campaign: CampaignSettings, structure: Structure) -> tuple[list, list]:
    """(errors, warnings) about the mobile ions the neb and transport stages need."""
    errors: list[str] = []
    warnings: list[str] = []
    stages = campaign.enabled_stages()
    elements = {el.symbol for el in structure.composition.elements}
    classes = structure.site_properties.get("site_class")
    mobile = {
        site.specie.symbol
        for site, c in zip(structure, classes or [], strict=False)
        if c == "mobile"
    }
    if "neb" in stages:
        neb = stages["neb"]
        species = campaign.neb_species()
        if species not in elements:
            errors.append(
                f"stages.neb: the mobile species {species} is not in the structure "
                f"({structure.composition.reduced_formula}); set stages.neb.species"
            )
        elif supercell_atoms(structure, neb.min_image_distance_a) <= MAX_CHECKED_ATOMS:
            supercell = make_supercell(structure, neb.min_image_distance_a)
            try:
                check_cell_for_path(supercell, neb.max_hop_length_a)
                if not _has_hop(supercell, species, neb.max_hop_length_a):
                    raise CtaflowError(
                        f"no {species} hop between mobile sites up to {neb.max_hop_length_a:g} Å "
                        f"in the {len(supercell)}-atom NEB supercell: the structure has no "
                        "migration network for the stage: raise stages.neb.max_hop_length_a or "
                        "disable stages.neb"
                    )
                select_hops(supercell, species, neb.max_hop_length_a, neb.n_hops)
            except CtaflowError as exc:
                errors.append(f"stages.neb: {exc} (checked on the unrelaxed structure)")
    if "transport" in stages and "md" in stages:
        species = stages["transport"].species
        if species is None and not mobile:
            errors.append(
                "stages.transport analyses the ions on mobile sites, but no site of the "
                f"structure ({structure.composition.reduced_formula}) has site_class 'mobile': "
                "set stages.transport.species (e.g. [Na]) or classify the sites "
                "(structure.classify: {species: Na})"
            )
        for sp in species or []:
            if sp not in elements:
                warnings.append(
                    f"stages.transport.species lists {sp}, which the md cell does not contain "
                    f"(the md stage runs on {structure.composition.reduced_formula}): no "
                    "result for it"
                )
            elif classes is not None and sp not in mobile:
                warnings.append(
                    f"stages.transport: no {sp} site has site_class 'mobile' (no percolating "
                    f"{sp} network in structure.classify): the stage measures caged {sp} ions"
                )
    return errors, warnings


def _has_hop(supercell: Structure, species: str, max_length_a: float) -> bool:
    try:
        select_hops(supercell, species, max_length_a, 1)
    except CtaflowError:
        return False
    return True
