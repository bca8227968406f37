"""The NEB stage: symmetry-distinct hops of the mobile ion, single vacancy hops and concerted
two-ion moves, for the host's mobile species and for swapped species, each as a climbing-image
NEB on any engine, analysed into a barrier table.

Graph of one (species, hop) pair::

    band_ends ─► relax start (fixed cell) ─► end point ─► relax end ─► interpolate ─►
                 (per mechanism)                                 engine NEB ─► barrier analysis
    all bands ─► barrier table

End points are rattled (seeded) before relaxing so a relaxation cannot stay on a symmetric saddle.
When an operation of the perfect crystal maps the start configuration onto the end one (any
symmetric hop), the end point is the symmetry image of the *relaxed* start, so both ends are the
same minimum by construction; otherwise the end relaxes on its own.

The graph is static (built before anything runs, so resume and uuids are deterministic); which
hop a band uses is decided at run time by :func:`band_ends` from the (relaxed) host.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from jobflow import Flow, Maker, job
from pymatgen.core import Structure

from ctaflow.analysis.neb import BarrierResult, BarrierTable, barrier_profile
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
    find_mappings,
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
        i = supercell[hop.start_index].frac_coords
        j = supercell[hop.end_index].frac_coords + np.array(hop.end_image)
        hop_here = hop.model_copy(  # the same hop, measured in this host (a swap changes cells)
            update={
                "start_frac": tuple(float(x) for x in i),
                "end_frac": tuple(float(x) for x in j),
                "length_a": float(np.linalg.norm(supercell.lattice.get_cartesian_coords(j - i))),
            }
        )
        ends = {}
        for mech in settings["mechanisms"]:
            path = (
                vacancy_hop(supercell, hop_here)
                if mech == "vacancy"
                else concerted_hop(supercell, hop_here, settings["max_hop_length_a"])
            )
            ops = find_mappings(path.start, path.end, operations)
            ends[mech] = {
                "path": _rattled(path, settings["endpoint_rattle_a"], settings["seed"]).model_copy(
                    update={"end_operations": ops}
                ),
                "end_sites": path.end,
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
def interpolate_job(start: Structure, end: Structure, settings: dict[str, Any]) -> list[Structure]:
    """The band between the relaxed end points (IDPP or linear, distance-checked)."""
    return interpolate_band(
        start,
        end,
        settings["images"],
        method=settings["interpolation"],
        min_distance_a=settings["min_atom_distance_a"],
    )


@result_job(BarrierResult)
def barrier_job(
    ends: dict[str, Any],
    band: int,
    mechanism: str,
    host_species: str,
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
    """Barrier analysis of one finished band (pure: see :mod:`ctaflow.analysis.neb`)."""
    path = PathEnds.model_validate(ends["bands"][band][mechanism]["path"])
    start, end = RelaxResult.model_validate(start), RelaxResult.model_validate(end)
    images = [start.structure, *structures, end.structure]
    profile = barrier_profile(
        images,
        [start.energy_ev, *energies_ev, end.energy_ev],
        forces_ev_per_a,
        settings["fmax_ev_per_a"],
        climb=settings["climb"],
        engine_converged=engine_converged,
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
        forward_barrier_ev=profile.forward_barrier_ev,
        backward_barrier_ev=profile.backward_barrier_ev,
        reaction_energy_ev=profile.reaction_energy_ev,
        converged=profile.converged,
        endpoints_converged=start.converged and end.converged,
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
        jobs, results = [], []
        endpoint_relax = RelaxStageMaker(self.engine, self.settings.endpoint_relax())
        for variant in [self.species, *self.settings.swap]:
            variant_host, reference = host, None
            if variant != self.species:
                swap = swap_mobile_species(host, self.species, variant)
                swap.name = f"swap {self.species}->{variant}"
                relax = RelaxStageMaker(self.engine, self.host_relax, name=f"relax {variant} host")
                relaxed = relax.make(swap.output)
                jobs += [swap, relaxed]
                variant_host, reference = relaxed.output.structure, host
            ends = band_ends(variant_host, reference, s)
            ends.name = f"band ends {variant}"
            jobs.append(ends)
            for band in range(self.settings.n_hops):
                first = self.settings.mechanisms[0]
                start = endpoint_relax.make(ends.output["bands"][band][first]["path"].start)
                start.name = f"relax start {variant} hop {band}"
                jobs.append(start)
                for mech in self.settings.mechanisms:
                    tag = f"{variant} hop {band} {mech}"
                    point = end_point(start.output, ends.output["bands"][band][mech])
                    point.name = f"end point {tag}"
                    end = endpoint_relax.make(point.output)
                    end.name = f"relax end {tag}"
                    images = interpolate_job(start.output.structure, end.output.structure, s)
                    images.name = f"interpolate {tag}"
                    neb = self.engine.neb_maker(self.settings).make(images.output)
                    neb.name = f"neb {tag}"
                    refs = self.engine.neb_outputs(neb)
                    analysis = barrier_job(
                        ends.output,
                        band,
                        mech,
                        self.species,
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
