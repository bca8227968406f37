"""NEB barriers: one document per (group, species, mechanism, hop class)."""

from __future__ import annotations

from typing import Any

from ctaflow.builders.base import StageBuilder, Task, latest_per
from ctaflow.builders.schemas import BarrierDoc
from ctaflow.makers.neb import BarrierResult


class BarrierBuilder(StageBuilder):
    """``neb`` stage :class:`BarrierResult` outputs → ``derived_barriers``.

    The most recently completed band of each (species, mechanism, hop class) is used; earlier
    ones are listed in ``skipped`` as superseded. A band whose climbing image did not converge,
    or with an image below its end points, is kept with a note saying so.
    """

    stage = "neb"
    output_schema = BarrierResult
    document = BarrierDoc
    collection = "barriers"
    sub_keys = ("species", "mechanism", "hop_label")

    def derive(self, tasks: list[Task]) -> list[dict[str, Any]]:
        docs = []
        key = lambda t: (t.output.species, t.output.mechanism, t.output.hop_label)  # noqa: E731
        for task, superseded in latest_per(tasks, key):
            out: BarrierResult = task.output
            prof = out.profile
            notes = []
            if not out.converged:
                force = prof.max_force_highest_image_ev_per_a
                notes.append(
                    f"not converged: climbing-image force {force:.3g} eV/Å (criterion "
                    f"{prof.fmax_ev_per_a:.3g}), engine converged: {prof.engine_converged}"
                )
            if not out.ends_are_lowest:
                notes.append(
                    f"an image lies {prof.image_below_ends_ev:.3g} eV below the end points: "
                    "they are not the minima this band connects"
                )
            docs.append(
                {
                    "species": out.species,
                    "host_species": out.host_species,
                    "mechanism": out.mechanism,
                    "hop_label": out.hop_label,
                    "hop_length_a": out.hop_length_a,
                    "band_composition": out.composition,
                    "n_atoms": out.n_atoms,
                    "n_images": prof.n_images,
                    "forward_barrier_ev": out.forward_barrier_ev,
                    "backward_barrier_ev": out.backward_barrier_ev,
                    "reaction_energy_ev": out.reaction_energy_ev,
                    "spline_forward_barrier_ev": prof.spline_forward_barrier_ev,
                    "max_force_highest_image_ev_per_a": prof.max_force_highest_image_ev_per_a,
                    "fmax_ev_per_a": prof.fmax_ev_per_a,
                    "converged": out.converged,
                    "endpoints_converged": out.endpoints_converged,
                    "ends_are_lowest": out.ends_are_lowest,
                    "neb_elapsed_s": out.neb_elapsed_s,
                    "engine_description": out.engine,
                    "task_uuids": [task.uuid],
                    "skipped": superseded,
                    "notes": notes,
                }
            )
        return docs
