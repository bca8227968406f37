"""InterfaceBuilder and the report's interfaces section, on real interface-stage outputs
(``interface_result`` on hand-made relaxations whose energies give γ by hand)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from jobflow import Flow, job

from ctaflow.analysis.relax import summarise_relaxation
from ctaflow.builders import InterfaceBuilder, run_builder
from ctaflow.makers.interfaces import interface_result
from ctaflow.structures import demo_structure
from ctaflow.structures.interfaces import build_interface
from tests.builders.conftest import ENGINE_A, derived_docs, make_builder, meta, run

A_EL = 4.5354
E_EL, E_M_STRAINED, E_M = -3.83, -1.85, -1.88  # eV/atom, hand-chosen
SETTINGS = {"anneal_temperature_k": 500.0, "anneal_fs": 40.0}


def _relaxed(structure, energy_ev, converged=True):
    forces = np.zeros((len(structure), 3))
    forces[0, 0] = 0.0 if converged else 0.3
    return summarise_relaxation(structure, structure, energy_ev, forces, 0.05, {"engine": "A"})


@job
def _inputs(metal: str, excess_ev: float, converged: bool = True, anneal_ev: float = 0.0):
    """An 18-atom Li (or 50-atom Na) cell on Na3OCl(001); E_relaxed = Σ references + excess;
    the annealed bulk electrolyte ``anneal_ev`` per atom from the relaxed one."""
    el = demo_structure()
    el.scale_lattice(A_EL**3)
    a, area = {"Li": (3.4093, 30.0), "Na": (4.2068, 100.0)}[metal]
    b = build_interface(
        el, metal, metal_lattice_a=a, metal_miller=(1, 0, 0), electrolyte_thickness_a=5.0,
        metal_thickness_a=4.0, max_strain_pct=6.0, max_area_a2=area,
    )  # fmt: skip
    refs = b.n_electrolyte_atoms * E_EL + b.n_metal_atoms * E_M_STRAINED
    return {
        "build": b,
        "as_built": _relaxed(b.structure, refs + 2 * excess_ev),
        "relaxed": _relaxed(b.structure, refs + excess_ev, converged),
        "el": _relaxed(el, 5 * E_EL),
        "annealed": _relaxed(el, 5 * (E_EL + anneal_ev)),
        "ms": _relaxed(b.metal_reference, b.n_metal_atoms * E_M_STRAINED),
        "mb": _relaxed(b.metal_reference, b.n_metal_atoms * E_M),
    }


def _interface(
    metal: str, excess_ev: float, converged: bool = True, anneal_ev: float | None = None
) -> Flow:
    inputs = _inputs(metal, excess_ev, converged, anneal_ev or 0.0)
    o = inputs.output
    result = interface_result(
        o["build"], o["as_built"], o["relaxed"], o["el"], o["ms"], o["mb"], 500.0, 0,
        SETTINGS, {"engine": ENGINE_A}, None if anneal_ev is None else o["annealed"],
    )  # fmt: skip
    return Flow([inputs, result])


@pytest.mark.filterwarnings("ignore:Some jobs are not connected")
def test_interface_documents_and_report(workdir):
    # Li: the annealed bulk electrolyte ends 1 meV/atom below the relaxed one
    flow = Flow([_interface("Li", 0.6, anneal_ev=-0.001), _interface("Na", -0.3, False)])
    flow.update_metadata(meta("interfaces", ENGINE_A))
    run(flow, workdir)
    stats = run_builder(make_builder(InterfaceBuilder, workdir))
    assert stats.n_groups_built == 1
    docs = {d["metal"]: d for d in derived_docs(workdir, "interfaces")}
    li, na = docs["Li"], docs["Na"]
    # Li: 10 electrolyte + 8 metal atoms on A = 4.5354² = 20.5699 Å², 2 interfaces; the lower
    # (annealed) bulk reference makes the excess 0.6 + 10 × 0.001 = 0.61 eV:
    # 0.61 eV / 41.1397 Å² = 0.0148275 eV/Å² = 0.237563 J/m²; as built (1.21 eV) 0.471230 J/m²
    assert li["gamma_j_per_m2"] == pytest.approx(0.61 / (2 * A_EL**2) * 16.02176634, rel=1e-9)
    assert li["gamma_j_per_m2"] == pytest.approx(0.237563, abs=1e-6)
    assert li["gamma_as_built_j_per_m2"] == pytest.approx(1.21 / 0.61 * li["gamma_j_per_m2"])
    assert li["energies"]["electrolyte_bulk_per_atom_ev"] == pytest.approx(E_EL - 0.001)
    assert li["energies"]["electrolyte_relaxed_per_atom_ev"] == pytest.approx(E_EL)
    # the 1 meV/atom spread of the two references over the 10 atoms: 0.01 eV / 41.1397 Å²
    assert li["gamma_uncertainty_j_per_m2"] == pytest.approx(0.0038945, abs=1e-6)
    assert li["status"] == "valid" and li["reasons"] == []  # 1.6 % of γ
    assert (li["n_electrolyte_atoms"], li["n_metal_atoms"], li["n_interfaces"]) == (10, 8, 2)
    assert li["phase"] == "crystalline" and li["notes"] == []
    assert na["gamma_j_per_m2"] < 0  # a cell below its references: negative γ, kept as it is
    assert na["relaxed_converged"] is False and "not converged" in na["notes"][0]
    # ... and flagged for both, without a reference uncertainty (no annealed reference given)
    assert na["status"] == "flagged" and na["gamma_uncertainty_j_per_m2"] is None
    assert "not converged" in na["reasons"][0] and "< 0" in na["reasons"][1]
    assert run_builder(make_builder(InterfaceBuilder, workdir)).n_groups_built == 0

    from ctaflow.report.build import write_report
    from ctaflow.store import derived_store, job_store

    derived = {"interfaces": derived_store(None, workdir, "interfaces")}
    derived["interfaces"].connect()
    store = job_store(None, workdir)
    store.connect()
    page = write_report(store, derived, workdir / "report")
    report = json.loads((workdir / "report" / "report.json").read_text())
    rows = {r["metal"]: r for r in report["interfaces"]}
    assert rows["Li"]["gamma_j_per_m2"] == pytest.approx(li["gamma_j_per_m2"])
    assert rows["Li"]["phase"] == "crystalline" and rows["Li"]["engine"] == ENGINE_A
    assert {"file": "interfaces.png"} in report["figures"]
    md = (workdir / "report" / "report.md").read_text()
    assert "| phase | γ Li (J/m²) | γ Na (J/m²) |" in md
    assert "| amorphous | not computed | not computed |" in md
    assert (
        f"| crystalline | {li['gamma_j_per_m2']:.4g} | ⚠ {na['gamma_j_per_m2']:.4g} (1 flagged) |"
        in md
    )
    assert "⚠ flagged" in md  # the Na row of the table carries its mark and reasons
    assert "Electrolyte | metal interfaces" in page.read_text()
