"""The interfaces stage: electrolyte | alkali-metal interfacial energies on any engine.

Graph of one (electrolyte, metal) pair (:class:`InterfaceMaker`)::

    bulk electrolyte (relaxed, fixed cell) ─┬► NVT MD (anneal) ─► relax ────────────────┐
    bulk bcc metal (relaxed) ───────────────┴► build interface ─► as-built energy (single │
                                                      │                        point)     │
                                                      ├► NVT MD (anneal) ─► relax ────────┤
                                                      └► strained metal: relax along the  │
                                                         normal ──────────────────────────┴► γ

The annealed bulk electrolyte gets the interface's treatment: γ uses the lower bulk energy and
carries the spread as its uncertainty (see :mod:`ctaflow.analysis.interfaces`).

:class:`InterfaceStageMaker` runs the grid phases × metals with one bulk reference per metal and
per electrolyte. The MD trajectory goes to the ``data`` store (``chunk_arrays``, as every MD of
ctaflow). Every result carries the engine description, the stage settings and the versions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from jobflow import Flow, Maker, job
from pymatgen.core import Structure

from ctaflow.analysis.interfaces import (
    InterfaceEnergies,
    InterfaceResult,
    interface_verdict,
    interfacial_energy_from_references,
    reference_uncertainty,
)
from ctaflow.analysis.provenance import software_versions
from ctaflow.analysis.relax import RelaxResult
from ctaflow.campaign.stages import InterfaceStageSettings
from ctaflow.engines import default_engine
from ctaflow.engines.base import Engine
from ctaflow.engines.params import MDControls, MDSegment, RelaxParams, steps_for
from ctaflow.jobs import result_job
from ctaflow.makers.relax import RelaxStageMaker, relax_summary_of
from ctaflow.structures.interfaces import (
    InterfaceBuild,
    bcc_metal,
    build_interface,
)


@job
def bcc_metal_job(metal: str, lattice_a: float | None = None) -> Structure:
    """Conventional bcc cell of ``metal`` (see :func:`ctaflow.structures.interfaces.bcc_metal`)."""
    return bcc_metal(metal, lattice_a)


@result_job(InterfaceBuild)
def build_interface_job(
    electrolyte: RelaxResult, metal_bulk: RelaxResult, metal: str, phase: str, settings: dict
) -> InterfaceBuild:
    """The interface cell from the relaxed bulk electrolyte and the relaxed bcc metal."""
    electrolyte = RelaxResult.model_validate(electrolyte)
    lattice = RelaxResult.model_validate(metal_bulk).structure.lattice
    return build_interface(
        electrolyte.structure,
        metal,
        phase=phase,
        metal_lattice_a=float(lattice.volume ** (1 / 3)),  # cubic cell: a = V^(1/3)
        **InterfaceStageSettings.model_validate(settings).build_options(),
    )


@result_job(InterfaceResult)
def interface_result(
    build: InterfaceBuild,
    as_built: RelaxResult,
    relaxed: RelaxResult,
    electrolyte: RelaxResult,
    metal_strained: RelaxResult,
    metal_bulk: RelaxResult,
    md_mean_temperature_k: float | None,
    sample: int,
    settings: dict[str, Any],
    engine: dict[str, Any],
    annealed_electrolyte: RelaxResult | None = None,
) -> InterfaceResult:
    """γ of the annealed and relaxed interface, and of the as-built one, from the references
    (the bulk electrolyte: the lower of ``electrolyte`` and ``annealed_electrolyte``, whose
    spread is γ's uncertainty), with its verdict (:func:`interface_verdict`)."""
    b = InterfaceBuild.model_validate(build)
    as_built, relaxed = RelaxResult.model_validate(as_built), RelaxResult.model_validate(relaxed)
    el, ms = RelaxResult.model_validate(electrolyte), RelaxResult.model_validate(metal_strained)
    mb = RelaxResult.model_validate(metal_bulk)
    annealed = (
        None if annealed_electrolyte is None else RelaxResult.model_validate(annealed_electrolyte)
    )
    e_annealed = None if annealed is None else annealed.energy_per_atom_ev
    e_el = el.energy_per_atom_ev if e_annealed is None else min(el.energy_per_atom_ev, e_annealed)

    def gamma(e_total: float) -> float:
        return interfacial_energy_from_references(
            e_total,
            b.n_electrolyte_atoms,
            e_el,
            b.n_metal_atoms,
            ms.energy_per_atom_ev,
            b.area_a2,
            b.n_interfaces,
        )

    unconverged = []
    for name, r in (
        ("interface", relaxed),
        ("bulk electrolyte", el),
        ("annealed bulk electrolyte", annealed),
        ("strained metal", ms),
        ("bcc metal", mb),
    ):
        if r is not None and not r.converged:
            unconverged.append(
                f"{name} relaxation not converged: max force {r.max_force_ev_per_a:.3g} eV/Å "
                f"> {r.fmax_target_ev_per_a:.3g}"
            )
    value = gamma(relaxed.energy_ev)
    uncertainty = reference_uncertainty(
        el.energy_per_atom_ev, e_annealed, b.n_electrolyte_atoms, b.area_a2, b.n_interfaces
    )
    status, reasons = interface_verdict(value, uncertainty, unconverged)
    structure = relaxed.structure.copy()
    if "velocities" in structure.site_properties:
        structure.remove_site_property("velocities")
    return InterfaceResult(
        phase=b.phase,
        metal=b.metal,
        sample=sample,
        miller=b.miller,
        metal_miller=b.metal_miller,
        termination=b.termination,
        electrolyte_formula=b.electrolyte_formula,
        gamma_j_per_m2=value,
        gamma_uncertainty_j_per_m2=uncertainty,
        status=status,
        reasons=reasons,
        area_a2=b.area_a2,
        strain_pct=b.strain_pct,
        n_interfaces=b.n_interfaces,
        n_atoms=len(b.structure),
        n_electrolyte_atoms=b.n_electrolyte_atoms,
        n_metal_atoms=b.n_metal_atoms,
        n_formula_units=b.n_formula_units,
        metal_lattice_a=b.metal_lattice_a,
        metal_normal_strain_pct=(ms.volume_a3 / ms.initial_volume_a3 - 1.0) * 100.0,
        energies=InterfaceEnergies(
            as_built_ev=as_built.energy_ev,
            after_md_ev=relaxed.initial_energy_ev,
            relaxed_ev=relaxed.energy_ev,
            electrolyte_bulk_per_atom_ev=e_el,
            electrolyte_relaxed_per_atom_ev=el.energy_per_atom_ev,
            electrolyte_annealed_per_atom_ev=e_annealed,
            metal_strained_per_atom_ev=ms.energy_per_atom_ev,
            metal_unstrained_per_atom_ev=mb.energy_per_atom_ev,
            gamma_as_built_j_per_m2=gamma(as_built.energy_ev),
        ),
        relaxed_converged=relaxed.converged,
        max_force_ev_per_a=relaxed.max_force_ev_per_a,
        md_mean_temperature_k=md_mean_temperature_k,
        anneal_temperature_k=settings["anneal_temperature_k"],
        anneal_fs=settings["anneal_fs"],
        structure=structure,
        engine=engine,
        settings=settings,
        software=software_versions(),
        notes=unconverged,
    )


def _normal_relax(engine: Engine, settings: RelaxParams, structure, name: str) -> Flow:
    """Relax positions and the cell along c only; summarised as a :class:`RelaxResult`."""
    calc = engine.normal_relax_maker(settings).make(structure)
    summary = relax_summary_of(engine, calc, structure, settings.fmax_ev_per_a)
    summary.name = f"{name} summary"
    return Flow([calc, summary], output=summary.output, name=name)


def anneal_job(engine: Engine, st: InterfaceStageSettings, structure, seed: int, name: str):
    """The interface stage's anneal: NVT MD at ``anneal_temperature_k`` for ``anneal_fs``."""
    controls = MDControls(
        timestep_fs=st.timestep_fs,
        sample_every=st.sample_every,
        langevin_friction_per_ps=st.langevin_friction_per_ps,
    )
    t = st.anneal_temperature_k
    segment = MDSegment("anneal", "nvt", t, t, st.anneal_fs / 1000.0)
    n_steps = steps_for(segment.duration_ps, st.timestep_fs, st.sample_every)
    md = engine.md_maker(segment, n_steps, seed, controls).make(structure)
    md.name = name
    return md


def annealed_reference(
    engine: Engine, st: InterfaceStageSettings, structure, seed: int, tag: str
) -> Flow:
    """The bulk electrolyte after the interface's anneal and a reference minimisation (its own
    minimum check off: the anneal is the larger probe, and the relaxed reference it is compared
    with carries the check); output: :class:`RelaxResult`."""
    md = anneal_job(engine, st, structure, seed, f"anneal md bulk electrolyte {tag}")
    params = st.relax(reference=True)
    params = params.model_copy(
        update={"minimum": params.minimum.model_copy(update={"enabled": False})}
    )
    relax = RelaxStageMaker(engine, params, name=f"annealed bulk electrolyte {tag}").make(
        md.output.final_structure
    )
    return Flow([md, relax], output=relax.output, name=f"annealed bulk electrolyte {tag}")


@dataclass
class InterfaceMaker(Maker):
    """One electrolyte | metal interface: build, anneal (NVT MD), minimise, γ.

    Parameters
    ----------
    engine
        Any engine with ``relax_maker``, ``normal_relax_maker`` and ``md_maker``.
    settings
        :class:`ctaflow.campaign.schema.InterfaceStageSettings` (temperatures in K, times in fs,
        lengths in Å, forces in eV/Å).
    phase
        ``"crystalline"`` (slab along ``settings.miller``) or ``"amorphous"`` (any electrolyte
        cell, opened along ``c``).
    sample
        Index of the electrolyte sample (amorphous phases have several).
    """

    engine: Engine = field(default_factory=default_engine)
    settings: InterfaceStageSettings = field(default_factory=InterfaceStageSettings)
    metal: str = "Na"
    phase: str = "crystalline"
    sample: int = 0
    name: str = "interface"

    def make(
        self,
        electrolyte: RelaxResult,
        metal_bulk: RelaxResult,
        annealed_electrolyte: RelaxResult | None = None,
    ) -> Flow:
        """``electrolyte`` and ``metal_bulk`` are relaxed bulk references (RelaxResult or
        references to one), computed with the same engine; ``annealed_electrolyte`` the bulk
        electrolyte after the same anneal and minimisation as the interface
        (:func:`annealed_reference`; None: γ without its reference uncertainty)."""
        st = self.settings
        s = st.model_dump(mode="json")
        tag = f"{self.phase} {self.sample} | {self.metal}"
        build = build_interface_job(electrolyte, metal_bulk, self.metal, self.phase, s)
        build.name = f"build interface {tag}"
        single = RelaxStageMaker(self.engine, st.relax(max_steps=1), name=f"as built {tag}")
        as_built = single.make(build.output.structure)
        md = anneal_job(
            self.engine, st, build.output.structure, st.seed + self.sample, f"anneal md {tag}"
        )
        if st.relax_cell_normal:
            relax = _normal_relax(
                self.engine, st.relax(), md.output.final_structure, f"relax interface {tag}"
            )
        else:
            relax = RelaxStageMaker(self.engine, st.relax(), name=f"relax interface {tag}").make(
                md.output.final_structure
            )
        metal_ref = _normal_relax(
            self.engine,
            st.relax(reference=True),
            build.output.metal_reference,
            f"strained metal {tag}",
        )
        result = interface_result(
            build.output,
            as_built.output,
            relax.output,
            electrolyte,
            metal_ref.output,
            metal_bulk,
            md.output.mean_temperature_k,
            self.sample,
            s,
            self.engine.describe(),
            annealed_electrolyte,
        )
        result.name = f"interface energy {tag}"
        jobs = [build, as_built, md, relax, metal_ref, result]
        return Flow(jobs, output=result.output, name=f"{self.name} {tag}")


@dataclass
class InterfaceStageMaker(Maker):
    """Every (electrolyte sample, metal) pair of the stage, with shared bulk references.

    ``make(crystalline, amorphous)``: ``crystalline`` is the relaxed crystal (used when
    ``"crystalline"`` is in ``settings.phases``), ``amorphous`` a list of amorphous samples
    (structures or references to them; used when ``"amorphous"`` is). The flow's output is the
    list of :class:`InterfaceResult`.
    """

    engine: Engine = field(default_factory=default_engine)
    settings: InterfaceStageSettings = field(default_factory=InterfaceStageSettings)
    name: str = "interfaces"

    def make(self, crystalline: Structure | None = None, amorphous: Sequence[Any] = ()) -> Flow:
        st = self.settings
        jobs: list = []
        metals = {}
        for metal in st.metals:
            given = st.metal_lattice_a.get(metal)
            start = bcc_metal_job(metal, given)
            start.name = f"bcc {metal}"
            # a given lattice parameter is kept (single point); otherwise the engine relaxes it
            relax_settings = (
                st.relax(max_steps=1) if given else st.relax(relax_cell=True, reference=True)
            )
            relax = RelaxStageMaker(self.engine, relax_settings, name=f"bulk {metal}").make(
                start.output
            )
            jobs += [start, relax]
            metals[metal] = relax.output
        electrolytes = []
        if "crystalline" in st.phases:
            if crystalline is None:
                raise ValueError("phase 'crystalline' needs the crystalline structure")
            electrolytes.append(("crystalline", 0, crystalline))
        if "amorphous" in st.phases:
            if not amorphous:
                raise ValueError(
                    "phase 'amorphous' needs amorphous samples (the amorphous stage's relaxed "
                    "structures); none were given"
                )
            electrolytes += [("amorphous", i, s) for i, s in enumerate(amorphous)]
        results = []
        for phase, sample, structure in electrolytes:
            bulk = RelaxStageMaker(
                self.engine, st.relax(reference=True), name=f"bulk electrolyte {phase} {sample}"
            ).make(structure)
            annealed = annealed_reference(
                self.engine, st, bulk.output.structure, st.seed + sample, f"{phase} {sample}"
            )
            jobs += [bulk, annealed]
            for metal, metal_bulk in metals.items():
                maker = InterfaceMaker(self.engine, st, metal=metal, phase=phase, sample=sample)
                flow = maker.make(bulk.output, metal_bulk, annealed.output)
                jobs.append(flow)
                results.append(flow.output)
        return Flow(jobs, output=results, name=self.name)
