"""BarrierBuilder on real NEB-stage outputs (barrier_job on a band whose energies and forces are
known in closed form, between end points checked to be minima): one document per (species,
mechanism, hop); a band that fails a check is kept, without a barrier, with its reasons."""

from __future__ import annotations

import numpy as np
import pytest
from jobflow import Flow, job
from pymatgen.core import Lattice, Structure

from ctaflow.analysis.minimum import MinimumSummary
from ctaflow.analysis.relax import summarise_relaxation
from ctaflow.builders import BarrierBuilder, run_builder
from ctaflow.makers.neb import barrier_job
from ctaflow.structures.neb_paths import PathEnds
from ctaflow.structures.sites import Hop
from tests.builders.conftest import ENGINE_A, derived_docs, make_builder, meta, run

A, D = 0.3, 2.0  # eV, Å: E(x) = A sin²(πx/D) for one Na moving along x


def _image(x: float) -> Structure:
    return Structure(
        Lattice.cubic(10.0), ["Na", "Cl"], [[x, 0, 0], [5, 5, 5]], coords_are_cartesian=True
    )


@job
def _inputs(mechanism: str, height_ev: float, y_force: float):
    xs = [0.5, 1.0, 1.5]
    hop = Hop(
        label=0, length_a=D, start_index=0, end_index=0, end_image=(0, 0, 0),
        start_frac=(0, 0, 0), end_frac=(0.2, 0, 0), multiplicity=1, clearance_a=2.0,
    )  # fmt: skip
    path = PathEnds(
        mechanism=mechanism, species="Na", hop=hop, moving=[0], path_sites=[0, 0],
        displacement_a=[D], start=_image(0.0), end=_image(D),
    )  # fmt: skip
    ends = {"scaling": [1, 1, 1], "bands": [{mechanism: {"path": path, "end_sites": path.end}}]}
    checked = MinimumSummary(
        is_minimum=True, start_was_minimum=True, verdict="a minimum", first_energy_ev=0.0,
        final_energy_ev=0.0, energy_drop_ev=0.0, energy_drop_mev_per_atom=0.0,
        space_group_first="P4/mmm", space_group_final="P4/mmm", n_cycles=1, checks=[],
    )  # fmt: skip
    relaxed = [
        summarise_relaxation(s, s, 0.0, np.zeros((2, 3)), 0.05, {"engine": ENGINE_A}).model_copy(
            update={"minimum": checked}
        )
        for s in (path.start, path.end)
    ]
    forces = [
        [[-height_ev * np.pi / D * np.sin(2 * np.pi * x / D), y_force * (x == 1.0), 0], [0, 0, 0]]
        for x in xs
    ]
    return {
        "ends": ends,
        "host": relaxed[0],
        "start": relaxed[0],
        "end": relaxed[1],
        "structures": [_image(x) for x in xs],
        "energies": [height_ev * np.sin(np.pi * x / D) ** 2 for x in xs],
        "forces": forces,
    }


def _band(mechanism: str, height_ev: float, y_force: float = 0.0) -> Flow:
    inputs = _inputs(mechanism, height_ev, y_force)
    o = inputs.output
    settings = {"fmax_ev_per_a": 0.05, "climb": True}
    analysis = barrier_job(
        o["ends"], 0, mechanism, "Na", o["host"], o["start"], o["end"], o["structures"],
        o["energies"], o["forces"], True, settings, {"engine": ENGINE_A},
    )  # fmt: skip
    return Flow([inputs, analysis])


@pytest.mark.filterwarnings("ignore:Some jobs are not connected")
def test_barrier_documents_carry_the_band_barriers_and_flag_unconverged(workdir):
    flow = Flow([_band("vacancy", A), _band("concerted", 0.5, y_force=0.2)])
    flow.update_metadata(meta("neb", ENGINE_A))
    run(flow, workdir)
    stats = run_builder(make_builder(BarrierBuilder, workdir))
    assert stats.n_groups_built == 1
    docs = {d["mechanism"]: d for d in derived_docs(workdir, "barriers")}
    assert set(docs) == {"vacancy", "concerted"}
    vac, conc = docs["vacancy"], docs["concerted"]
    assert vac["status"] == "valid" and vac["reasons"] == [] and vac["notes"] == []
    assert vac["barrier_ev"] == vac["forward_barrier_ev"] == pytest.approx(A)
    assert vac["reaction_energy_ev"] == pytest.approx(0.0)
    assert vac["converged"] and vac["start_is_minimum"] and vac["end_is_minimum"]
    # a perpendicular force of 0.2 eV/Å on the climbing image: kept, no barrier, the reason said
    assert conc["status"] == "excluded" and conc["converged"] is False
    assert conc["barrier_ev"] is None and conc["forward_barrier_ev"] is None
    assert conc["max_force_highest_image_ev_per_a"] == pytest.approx(0.2)
    (reason,) = conc["reasons"]
    assert reason.startswith("the climbing image keeps a force of 0.200 eV/Å > fmax 0.05")
    assert conc["notes"] == [f"Na concerted: {reason}"]
    assert run_builder(make_builder(BarrierBuilder, workdir)).n_groups_built == 0  # nothing new
