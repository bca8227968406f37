"""The NEB stage: symmetry-distinct hops of the mobile ion, single vacancy hops and concerted
two-ion moves, for the host's mobile species and for swapped species, each as a climbing-image
NEB on any engine, analysed into a barrier table.

Graph::

    NEB supercell (wide enough for the concerted chain) ─► relax host (cell and positions,
    minimum check) ─► [swap species ─► relax swapped host (minimum check)] ─►
    per (species, hop): band_ends ─► relax start (fixed cell, minimum check) ─► per mechanism:
    end point ─► relax end (minimum check) ─► interpolate ─► engine NEB ─► barrier analysis
    all bands ─► barrier table

The hosts are relaxed as supercells because the symmetric prototype may be a saddle that only a
larger cell can leave (the demo's cubic Na3OCl tilts to Pnma in its 2×2×2 cell, 11 meV/atom
lower with CHGNet). End points are rattled (seeded) before relaxing and checked by rattling and
re-relaxing (:mod:`ctaflow.makers.relax`). When an operation of the relaxed host maps the start
configuration onto the end one (any symmetric hop), the end point is the symmetry image of the
*relaxed* start, so both ends are the same minimum by construction; it is still relaxed and
checked. A barrier is reported only when the band passes every check of
:func:`ctaflow.analysis.neb.assess_band` (converged climbing image, both ends checked minima, no
image below the ends, an interior maximum); otherwise the band is stored with ``barrier_ev``
None and the reasons. The number of images follows from the length of the path
(``images_per_a``, odd, at least ``min_images``) unless ``images`` is given.

The graph is static (built before anything runs, so resume and uuids are deterministic); which
hop a band uses is decided at run time by :func:`band_ends` from the (relaxed) host.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jobflow import Flow, Maker, job
from pymatgen.core import Structure

from ctaflow.analysis.neb import (
    BarrierResult,
    BarrierTable,
    HostSummary,
    assess_band,
    barrier_profile,
    images_for_path,
)
from ctaflow.analysis.provenance import software_versions
from ctaflow.analysis.relax import RelaxResult
from ctaflow.campaign.stages import NEBStageSettings, RelaxStageSettings
from ctaflow.engines import default_engine
from ctaflow.engines.base import Engine
from ctaflow.jobs import result_job
from ctaflow.makers.relax import RelaxStageMaker
from ctaflow.structures._common import derived_provenance, element_symbol
from ctaflow.structures.neb_paths import (
    PathEnds,
    check_cell_for_path,
    concerted_hop,
    concerted_partner,
    find_mappings,
    hop_in_cell,
    interpolate_band,
    select_hops,
    symmetric_end,
    symmetry_operations,
    vacancy_hop,
)
from ctaflow.structures.series import substitute_sites
from ctaflow.structures.supercell import make_supercell


@job
def swap_mobile_species(host: Structure, species: str, by: str) -> Structure:
    """``host`` with every mobile ``species`` site (all of them when unclassified) set to ``by``."""
    classes = host.site_properties.get("site_class")
    idx = [
        n
        for n, site in enumerate(host)
        if element_symbol(site.specie) == species and (classes is None or classes[n] == "mobile")
    ]
    out = substitute_sites(host, tuple(idx), by)
    out.properties = {
        **(host.properties or {}),
        "provenance": derived_provenance(
            host, {"step": "neb_species_swap", "replace": species, "by": by, "n_sites": len(idx)}
        ),
    }
    return out


@job
def neb_supercell(host: Structure, settings: dict[str, Any]) -> Structure:
    """The supercell of the NEB hosts: faces ``min_image_distance_a`` apart, grown (when
    ``grow_cell_for_concerted``) until the straight two-ion chain of every concerted band spans
    less than half of it (:func:`~ctaflow.structures.neb_paths.concerted_partner`)."""
    width = settings["min_image_distance_a"]
    cell = make_supercell(host, width)
    grown_from = None
    if "concerted" in settings["mechanisms"] and settings["grow_cell_for_concerted"]:
        check_cell_for_path(cell, settings["max_hop_length_a"])
        for hop in select_hops(
            cell, settings["species"], settings["max_hop_length_a"], settings["n_hops"]
        ):
            geometry = concerted_partner(cell, hop, settings["max_hop_length_a"])
            if not geometry.fits and geometry.width_needed_a > width:
                grown_from, width = width, geometry.width_needed_a
        if grown_from is not None:
            cell = make_supercell(host, width)
    cell.properties = {
        **(cell.properties or {}),
        "neb_cell": {"min_width_a": width, "grown_for_concerted_from_a": grown_from},
    }
    return cell


@job
def band_ends(
    host: Structure, reference: Structure | None, settings: dict[str, Any]
) -> dict[str, Any]:
    """Supercell, hop and end points of every mechanism for the band set of ``host``.

    Hops are chosen on ``reference`` (the host before a species swap; None = ``host`` itself) so
    swapped hosts run the same hops; their positions are taken from ``host``.
    """
    ref = reference if reference is not None else host
    sc_ref = make_supercell(ref, settings["min_image_distance_a"])
    scaling = sc_ref.properties["supercell"]["scaling"]
    check_cell_for_path(sc_ref, settings["max_hop_length_a"])
    chosen = select_hops(
        sc_ref, settings["species"], settings["max_hop_length_a"], settings["n_hops"]
    )
    supercell = host.copy()
    supercell.make_supercell(scaling)
    operations = symmetry_operations(supercell)
    out: dict[str, Any] = {"scaling": list(scaling), "bands": []}
    for hop in chosen:
        hop_here = hop_in_cell(supercell, hop)  # measured in this host (a swap changes cells)
        ends = {}
        for mech in settings["mechanisms"]:
            path = (
                vacancy_hop(supercell, hop_here)
                if mech == "vacancy"
                else concerted_hop(supercell, hop_here, settings["max_hop_length_a"], strict=False)
            )
            ops = find_mappings(path.start, path.end, operations)
            n_images = settings["images"] or images_for_path(
                sum(path.displacement_a), settings["images_per_a"], settings["min_images"]
            )
            ends[mech] = {
                "path": _rattled(path, settings["endpoint_rattle_a"], settings["seed"]).model_copy(
                    update={"end_operations": ops}
                ),
                "end_sites": path.end,
                "n_images": n_images,
            }
        out["bands"].append(ends)
    return out


def _rattled(path, distance_a: float, seed: int):
    """End points displaced at random by up to ``distance_a`` Å (start and end get different,
    seeded displacements; the start is the same for every mechanism of a hop)."""
    if distance_a <= 0:
        return path
    start = path.start.copy().perturb(distance_a, min_distance=0.0, seed=seed)
    end = path.end.copy().perturb(distance_a, min_distance=0.0, seed=seed + 1)
    return path.model_copy(update={"start": start, "end": end})


@job
def end_point(start: RelaxResult, band: dict[str, Any]) -> Structure:
    """The end point to relax: the symmetry image of the relaxed start when an operation of the
    crystal maps start onto end (then both ends are equivalent minima by construction), else
    the independently built (rattled) end."""
    path = PathEnds.model_validate(band["path"])
    if not path.end_operations:
        return path.end
    start = RelaxResult.model_validate(start)
    return symmetric_end(start.structure, path.end_operations, band["end_sites"])


@job
def interpolate_job(
    start: Structure, end: Structure, band: dict[str, Any], settings: dict[str, Any]
) -> list[Structure]:
    """The band between the relaxed end points (IDPP or linear, distance-checked), with the
    number of images ``band_ends`` chose for it."""
    return interpolate_band(
        start,
        end,
        band["n_images"],
        method=settings["interpolation"],
        min_distance_a=settings["min_atom_distance_a"],
    )


@result_job(BarrierResult)
def barrier_job(
    ends: dict[str, Any],
    band: int,
    mechanism: str,
    host_species: str,
    host: RelaxResult,
    start: RelaxResult,
    end: RelaxResult,
    structures: list[Structure],
    energies_ev: list[float],
    forces_ev_per_a: list,
    engine_converged: bool,
    settings: dict[str, Any],
    engine: dict[str, Any],
    elapsed_s: float | None = None,
) -> BarrierResult:
    """Barrier analysis and verdict of one finished band (pure: see
    :mod:`ctaflow.analysis.neb`)."""
    path = PathEnds.model_validate(ends["bands"][band][mechanism]["path"])
    start, end = RelaxResult.model_validate(start), RelaxResult.model_validate(end)
    host = RelaxResult.model_validate(host)
    images = [start.structure, *structures, end.structure]
    profile = barrier_profile(
        images,
        [start.energy_ev, *energies_ev, end.energy_ev],
        forces_ev_per_a,
        settings["fmax_ev_per_a"],
        climb=settings["climb"],
        engine_converged=engine_converged,
    )
    too_small = path.concerted is not None and not path.concerted.fits
    verdict = assess_band(
        profile,
        None if start.minimum is None else start.minimum.is_minimum,
        None if end.minimum is None else end.minimum.is_minimum,
        caveats=[path.concerted.too_small(len(images[0]) + 1)] if too_small else [],
    )
    species = element_symbol(images[0][path.moving[0]].specie)
    return BarrierResult(
        species=species,
        host_species=host_species,
        mechanism=mechanism,
        hop_label=path.hop.label,
        hop_length_a=path.hop.length_a,
        hop_multiplicity=path.hop.multiplicity,
        path_sites=path.path_sites,
        moving_indices=path.moving,
        displacement_a=path.displacement_a,
        composition=images[0].composition.reduced_formula,
        n_atoms=len(images[0]),
        supercell_scaling=ends["scaling"],
        status=verdict.status,
        reasons=verdict.reasons,
        kind=verdict.kind,
        barrier_ev=verdict.barrier_ev,
        forward_barrier_ev=verdict.forward_barrier_ev,
        backward_barrier_ev=verdict.backward_barrier_ev,
        reaction_energy_ev=verdict.reaction_energy_ev,
        converged=profile.converged,
        endpoints_converged=start.converged and end.converged,
        start_minimum=start.minimum,
        end_minimum=end.minimum,
        host=HostSummary(
            formula=host.formula,
            n_atoms=host.n_atoms,
            energy_per_atom_ev=host.energy_per_atom_ev,
            minimum=host.minimum,
        ),
        verdict=verdict,
        ends_are_lowest=profile.ends_are_lowest,
        end_from_symmetry=bool(path.end_operations),
        profile=profile,
        images=images,
        neb_elapsed_s=elapsed_s,
        settings=settings,
        engine=engine,
        software=software_versions(),
    )


@result_job(BarrierTable)
def barrier_table(results: list[BarrierResult], settings: dict, engine: dict) -> BarrierTable:
    """One row per band, for reports and queries."""
    keys = (
        "species",
        "mechanism",
        "hop_label",
        "hop_length_a",
        "status",
        "reasons",
        "kind",
        "barrier_ev",
        "forward_barrier_ev",
        "backward_barrier_ev",
        "reaction_energy_ev",
        "converged",
        "endpoints_converged",
        "ends_are_lowest",
        "composition",
        "n_atoms",
        "neb_elapsed_s",
    )
    rows = []
    for r in map(BarrierResult.model_validate, results):
        row = {k: getattr(r, k) for k in keys}
        row["max_force_highest_image_ev_per_a"] = r.profile.max_force_highest_image_ev_per_a
        row["n_images"] = r.profile.n_images
        rows.append(row)
    return BarrierTable(rows=rows, engine=engine, settings=settings)


# --------------------------------------------------------------------------- stage maker
@dataclass
class NEBStageMaker(Maker):
    """Vacancy and concerted NEB bands of the ``n_hops`` shortest hops, for the host's mobile
    species and every species in ``settings.swap`` (the swapped host is relaxed first with
    ``host_relax``, normally the campaign's relax settings)."""

    engine: Engine = field(default_factory=default_engine)
    settings: NEBStageSettings = field(default_factory=NEBStageSettings)
    species: str = "Na"
    host_relax: RelaxStageSettings = field(default_factory=RelaxStageSettings)
    name: str = "neb"

    def make(self, host: Structure) -> Flow:
        s = {**self.settings.model_dump(mode="json"), "species": self.species}
        describe = self.engine.describe()
        cell = neb_supercell(host, s)
        cell.name = "neb supercell"
        relax = RelaxStageMaker(self.engine, self.host_relax, name=f"relax {self.species} host")
        base = relax.make(cell.output)
        jobs, results = [cell, base], []
        endpoint_relax = RelaxStageMaker(self.engine, self.settings.endpoint_relax())
        for variant in [self.species, *self.settings.swap]:
            variant_host, reference = base.output, None
            if variant != self.species:
                swap = swap_mobile_species(base.output.structure, self.species, variant)
                swap.name = f"swap {self.species}->{variant}"
                relax = RelaxStageMaker(self.engine, self.host_relax, name=f"relax {variant} host")
                relaxed = relax.make(swap.output)
                jobs += [swap, relaxed]
                variant_host, reference = relaxed.output, base.output.structure
            ends = band_ends(variant_host.structure, reference, s)
            ends.name = f"band ends {variant}"
            jobs.append(ends)
            for band in range(self.settings.n_hops):
                first = self.settings.mechanisms[0]
                start = endpoint_relax.make(ends.output["bands"][band][first]["path"].start)
                start.name = f"relax start {variant} hop {band}"
                jobs.append(start)
                for mech in self.settings.mechanisms:
                    tag = f"{variant} hop {band} {mech}"
                    band_ref = ends.output["bands"][band][mech]
                    point = end_point(start.output, band_ref)
                    point.name = f"end point {tag}"
                    end = endpoint_relax.make(point.output)
                    end.name = f"relax end {tag}"
                    images = interpolate_job(
                        start.output.structure, end.output.structure, band_ref, s
                    )
                    images.name = f"interpolate {tag}"
                    neb = self.engine.neb_maker(self.settings).make(images.output)
                    neb.name = f"neb {tag}"
                    refs = self.engine.neb_outputs(neb)
                    analysis = barrier_job(
                        ends.output,
                        band,
                        mech,
                        self.species,
                        variant_host,
                        start.output,
                        end.output,
                        refs["structures"],
                        refs["energies_ev"],
                        refs["forces_ev_per_a"],
                        refs["converged"],
                        s,
                        describe,
                        elapsed_s=refs.get("elapsed_s"),
                    )
                    analysis.name = f"barrier {tag}"
                    jobs += [point, end, images, neb, analysis]
                    results.append(analysis.output)
        table = barrier_table(results, s, describe)
        table.name = "barrier table"
        return Flow([*jobs, table], output=table.output, name=self.name)
