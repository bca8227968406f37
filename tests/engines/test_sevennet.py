"""SevenNet-0, the second universal MLIP of the ``mlip`` engine: weights from the sevenn wheel,
run by the same atomate2 force-field makers (relax, MD, NEB) as CHGNet."""

from __future__ import annotations

import numpy as np
import pytest
from jobflow import run_locally
from pymatgen.core import Lattice, Structure

from ctaflow.campaign.stages import NEBStageSettings, RelaxStageSettings
from ctaflow.engines import get_engine
from ctaflow.engines.specs import MLIPEngineSpec
from ctaflow.errors import EngineError


@pytest.fixture(scope="module")
def sevennet():
    return get_engine(MLIPEngineSpec(model="SevenNet"))


@pytest.fixture(scope="module")
def chgnet():
    return get_engine(MLIPEngineSpec())


def _rocksalt(a: float, primitive: bool = False) -> Structure:
    s = Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), ["Na", "Cl"], [[0] * 3, [0.5] * 3])
    return s.get_primitive_structure() if primitive else s


def _energy(structure: Structure, calc) -> float:
    atoms = structure.to_ase_atoms()
    atoms.calc = calc
    return float(atoms.get_potential_energy())


def _ev_minimum_a(calc) -> float:
    """Lattice constant (Å) of the energy minimum of rocksalt NaCl: cubic fit to an E(a) scan."""
    grid = np.linspace(5.55, 5.85, 7)
    energies = [_energy(_rocksalt(a, primitive=True), calc) for a in grid]
    assert int(np.argmin(energies)) not in (0, len(grid) - 1)  # a minimum inside the scan
    roots = np.roots(np.polyder(np.polyfit(grid, energies, 3)))
    roots = roots[np.isreal(roots)].real
    return float(roots[(roots > grid[0]) & (roots < grid[-1])][0])


def test_engine_describes_sevennet_and_knows_its_elements(sevennet):
    assert sevennet.label == "mlip:SevenNet-0"
    description = sevennet.describe()
    assert description["model"] == "SevenNet" and "sevenn" in description["package_versions"]
    sevennet.check_available(["Na", "Li", "Cl", "O", "Sm"])
    with pytest.raises(EngineError, match="Am"):  # SevenNet-0 was not trained on americium
        sevennet.check_available(["Na", "Am"])


@pytest.mark.slow  # ~30 s: builds the SevenNet model (~10 s) and scans E(a) with both models
def test_sevennet_relaxes_rocksalt_nacl_to_its_energy_volume_minimum(stores, sevennet, chgnet):
    start = _rocksalt(5.50)  # compressed: the cell has to grow
    start.perturb(0.03, min_distance=0.01)
    fmax = 0.01
    job = sevennet.relax_maker(RelaxStageSettings(fmax_ev_per_a=fmax)).make(start)
    jobs, _ = stores
    run_locally(job, store=jobs, log=False, ensure_success=True)
    doc = jobs.get_output(job.uuid, load=True)
    relaxed = Structure.from_dict(doc["structure"])
    assert doc["output"]["energy"] < doc["output"]["ionic_steps"][0]["energy"]
    assert np.linalg.norm(doc["output"]["forces"], axis=1).max() < fmax
    # the energy is SevenNet's (CHGNet's differs by ~2 eV for these 8 atoms)
    assert doc["output"]["energy"] == pytest.approx(
        _energy(relaxed, sevennet.calculator()), abs=1e-4
    )
    # the stress-driven cell relaxation ends where E(V) has its minimum (stress sign and units)
    a_relaxed = float(np.mean(relaxed.lattice.abc))
    a_sevennet = _ev_minimum_a(sevennet.calculator())
    assert a_relaxed == pytest.approx(a_sevennet, rel=3e-3)
    # two universal potentials trained on the same PBE data agree on the lattice constant
    # (zero pressure at 5.688 Å for SevenNet-0, 5.696 Å for CHGNet 0.3.0)
    assert a_sevennet == pytest.approx(_ev_minimum_a(chgnet.calculator()), rel=0.02)


def test_sevennet_runs_md_and_a_symmetric_vacancy_hop(stores, sevennet, chgnet):
    from ctaflow.analysis.chunks import join_chunks
    from ctaflow.engines.params import MDControls, MDSegment

    jobs, _ = stores
    calc = sevennet.calculator()
    cell = _rocksalt(5.69)
    md = sevennet.md_maker(MDSegment("t", "nvt", 300, 300, 0.02), 20, 1, MDControls(sample_every=5))
    job = md.make(cell)
    run_locally(job, store=jobs, log=False, ensure_success=True)
    frames = join_chunks(jobs.get_output(job.uuid, load=True)["trajectory"])
    last = Structure(
        frames["cells_a"][-1], cell.species, frames["positions_a"][-1], coords_are_cartesian=True
    )
    assert frames["energies_ev"][-1] == pytest.approx(_energy(last, calc), abs=1e-4)
    assert abs(_energy(last, chgnet.calculator()) - _energy(last, calc)) > 1.0  # not CHGNet
    assert np.abs(frames["positions_a"][-1] - frames["positions_a"][0]).max() > 0.01  # it moved

    # Na hops into a neighbouring vacancy: the end points are the same structure shifted by
    # (½, ½, 0), so the band is symmetric and the saddle is half way
    host = cell.copy()
    host.remove_sites([i for i, s in enumerate(host) if np.allclose(s.frac_coords, [0.5, 0.5, 0])])
    ion = next(i for i, s in enumerate(host) if np.allclose(s.frac_coords, [0, 0, 0]))
    band = []
    for t in (0.0, 0.5, 1.0):
        image = host.copy()
        image.replace(ion, "Na", coords=[0.5 * t, 0.5 * t, 0.0])
        band.append(image)
    assert _energy(band[0], calc) == pytest.approx(_energy(band[2], calc), abs=1e-4)
    neb = sevennet.neb_maker(NEBStageSettings(images=1, fmax_ev_per_a=0.05)).make(band)
    run_locally(neb, store=jobs, log=False, ensure_success=True)
    out = jobs.get_output(neb.uuid, load=True)
    saddle = Structure.from_dict(out["structures"][0])
    assert out["converged"]
    assert out["energies_ev"][0] - _energy(band[0], calc) > 0.1  # a barrier (measured 0.41 eV)
    assert saddle[ion].frac_coords == pytest.approx([0.25, 0.25, 0.0], abs=1e-3)
