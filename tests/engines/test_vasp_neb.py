"""Climbing-image NEB on the VASP path: atomate2's NebFromImagesMaker with the study preset, run by
custodian's VaspNEBJob with the VASP stand-in, parsed by emmet's NebIntermediateImagesDoc.

The model system is a Na vacancy hop in rock salt NaCl (2×2×1 conventional cells, 31 atoms):
the Na at (0, 0, 0) moves to the vacant (½, ½, 0) between the two Cl at (½, 0, 0) and (0, ½, 0).
The mirror x + y = ½ (conventional coordinates) maps the hop onto itself reversed, so the final
end point is built as the mirror image of the relaxed initial one and the band is symmetric by
construction. (Not the Na3OCl demo: its cubic prototype is dynamically unstable under CHGNet
0.3.0 at a = 4.54 Å, a rattled 2×2×2 cell relaxes 0.37 eV lower with Na moving 0.46 Å, so end
points relaxed in cubic symmetry are saddles and a tight band drifts into the distortion.)
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from jobflow import run_locally
from monty.os.path import zpath
from pymatgen.core import Structure
from pymatgen.io.vasp import Incar, Kpoints, Outcar, Poscar

from ctaflow.campaign.stages import NEBStageSettings, RelaxStageSettings
from ctaflow.engines import get_engine
from ctaflow.engines.specs import VaspEngineSpec, VaspStandinEngineSpec
from ctaflow.engines.vasp_standin import StandinError
from ctaflow.engines.vasp_standin.settings import neb_climb
from ctaflow.errors import EngineError
from tests.conftest import REPO
from tests.engines.test_vasp_standin_units import nacl, settings_for

NEB_KEYS = ("IMAGES", "SPRING", "EDIFFG", "NSW", "LCLIMB", "IBRION", "POTIM", "IOPT")
MOVER, VACANCY = (0.0, 0.0, 0.0), (0.25, 0.25, 0.0)  # fractional, 2×2×1 cell
WINDOW = ((0.25, 0.0, 0.0), (0.0, 0.25, 0.0))  # the two Cl the Na passes between


def _mirror(frac: np.ndarray) -> np.ndarray:
    """The mirror x + y = ½ (conventional cell) in fractional coordinates of the 2×2×1 cell:
    (X, Y, Z) → (¼ − Y, ¼ − X, Z); a symmetry of the crystal that swaps MOVER and VACANCY."""
    frac = np.asarray(frac, dtype=float)
    return np.stack([0.25 - frac[..., 1], 0.25 - frac[..., 0], frac[..., 2]], axis=-1)


def _site(structure: Structure, frac, tol: float = 1e-3) -> int:
    """Index of the atom within ``tol`` Å of ``frac``."""
    delta = (structure.frac_coords - np.asarray(frac) + 0.5) % 1.0 - 0.5
    distances = np.linalg.norm(delta @ structure.lattice.matrix, axis=1)
    index = int(np.argmin(distances))
    assert distances[index] < tol
    return index


def vacancy_hop(calc=None, n_images: int = 3) -> tuple[list[Structure], int]:
    """Band of the Na vacancy hop (end points included) and the index of the moving Na.

    With ``calc`` the initial end point is relaxed at fixed cell (FIRE, 0.02 eV/Å) first; the
    final one is its mirror image, atom by atom, so both have the same energy.
    """
    from ase.optimize import FIRE

    cell = nacl()  # experimental a = 5.64 Å
    cell.make_supercell([2, 2, 1])
    initial = cell.copy()
    initial.remove_sites([_site(cell, VACANCY)])
    mover = _site(initial, MOVER)
    relaxed = initial.copy()
    if calc is not None:
        atoms = initial.to_ase_atoms()
        atoms.calc = calc
        FIRE(atoms, logfile=None).run(fmax=0.02, steps=300)
        for i, frac in enumerate(atoms.get_scaled_positions()):
            relaxed.replace(i, initial[i].species, frac)
    final = relaxed.copy()
    for k in range(len(initial)):
        # atom k stays near its own site: it takes the mirror image of the atom on the mirror
        # site; the moving Na takes the mirror image of itself, the vacant site
        j = mover if k == mover else _site(initial, _mirror(initial.frac_coords[k]) % 1.0)
        final.replace(k, relaxed[j].species, _mirror(relaxed.frac_coords[j]))
    band = relaxed.interpolate(final, nimages=n_images + 1, interpolate_lattices=False)
    return list(band), mover


@pytest.fixture(scope="module")
def chgnet():
    """CHGNet 0.3.0 in this process (one torch thread, as the stand-in uses)."""
    import torch

    from ctaflow.engines.calculators import chgnet_calculator

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield chgnet_calculator("0.3.0", "cpu")
    torch.set_num_threads(threads)


@pytest.fixture
def standin_env(monkeypatch):
    """The stand-in started by custodian imports this checkout."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    for var in ("CTAFLOW_STANDIN_MODEL", "CTAFLOW_STANDIN_SEED", "PMG_VASP_PSP_DIR"):
        monkeypatch.delenv(var, raising=False)


class _InputsWritten(Exception):
    """Raised in place of running VASP: the inputs are on disk."""


def _write_neb_inputs(monkeypatch, maker, images):
    """Run atomate2's NEB job function in the current directory up to starting VASP."""

    def stop(**kwargs):
        raise _InputsWritten(kwargs)

    monkeypatch.setattr("atomate2.vasp.jobs.neb.run_vasp", stop)
    neb = maker.neb_maker
    with pytest.raises(_InputsWritten) as info:
        type(neb).make.original(neb, images)
    return info.value.args[0]  # run_vasp_kwargs


# ------------------------------------------------------------------------------- (a) inputs


def test_neb_inputs_key_by_key(tmp_path, monkeypatch):
    images, _ = vacancy_hop()
    settings = NEBStageSettings(
        images=3, spring_ev_per_a2=0.7, fmax_ev_per_a=0.03, max_steps=77, climb=True
    )
    engine = get_engine(VaspStandinEngineSpec(ionic_criterion="force"))
    run_kwargs = _write_neb_inputs(monkeypatch, engine.neb_maker(settings), images)

    incar = Incar.from_file(tmp_path / "INCAR")
    n = len(images[0])
    assert incar["IMAGES"] == 3
    assert incar["SPRING"] == pytest.approx(-0.7)  # VASP sign: negative = nudged
    assert incar["EDIFFG"] == pytest.approx(-0.03)  # force criterion, eV/Å
    assert incar["NSW"] == 77 and incar["ISIF"] == 2
    assert incar["LCLIMB"] is True
    assert (incar["IBRION"], incar["POTIM"], incar["IOPT"]) == (3, 0, 7)  # VTST FIRE
    assert incar["ENCUT"] == 520 and incar["EDIFF"] == pytest.approx(1e-4 * n)
    # every other key as in the study's fixed-cell relaxation of the same cell
    relax = engine.relax_maker(RelaxStageSettings(relax_cell=False))
    relax_incar = relax.input_set_generator.get_input_set(images[0], potcar_spec=True).incar
    others = (set(incar) | set(relax_incar)) - set(NEB_KEYS)
    assert {k: incar.get(k) for k in others} == {k: relax_incar.get(k) for k in others}

    # one POSCAR per image, the images as given; POTCARs in the order of the first image
    for index, image in enumerate(images):
        written = Poscar.from_file(tmp_path / f"{index:02d}" / "POSCAR").structure
        assert [s.species_string for s in written] == [s.species_string for s in image]
        assert np.allclose(written.frac_coords, image.frac_coords, atol=1e-10)
        assert np.allclose(written.lattice.matrix, image.lattice.matrix, atol=1e-10)
        kpoints = Kpoints.from_file(tmp_path / f"{index:02d}" / "KPOINTS")
        assert kpoints.kpts == Kpoints.from_file(tmp_path / "KPOINTS").kpts
    assert (tmp_path / "POTCAR.spec").read_text().split() == ["Na_pv", "Cl"]
    # custodian: VaspNEBJob with the engine's command; no POTCAR backup (POTCAR.spec only)
    assert run_kwargs["job_type"] == "neb"
    assert "-m ctaflow.engines.vasp_standin" in run_kwargs["vasp_cmd"]
    assert run_kwargs["vasp_job_kwargs"]["backup"] is False
    assert run_kwargs["custodian_kwargs"] == {"polling_time_step": 1}


def test_plain_neb_and_optimizer_choice(tmp_path, monkeypatch):
    images, _ = vacancy_hop()
    settings = NEBStageSettings(images=3, climb=False, optimizer="LBFGS")
    engine = get_engine(VaspStandinEngineSpec())
    _write_neb_inputs(monkeypatch, engine.neb_maker(settings), images)
    incar = Incar.from_file(tmp_path / "INCAR")
    assert incar["LCLIMB"] is False and incar["IOPT"] == 1
    assert incar["SPRING"] == pytest.approx(-0.1) and incar["EDIFFG"] == pytest.approx(-0.05)


def test_neb_without_potcars_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("PMG_VASP_PSP_DIR", raising=False)
    images, _ = vacancy_hop()
    maker = get_engine(VaspEngineSpec()).neb_maker(NEBStageSettings(images=3))
    neb = maker.neb_maker
    with pytest.raises(EngineError, match="PMG_VASP_PSP_DIR is not set"):
        type(neb).make.original(neb, images)


def test_images_in_another_atom_order_are_refused(tmp_path):
    images, _ = vacancy_hop()
    images[2] = Structure.from_sites(list(images[2])[::-1])  # Cl first: POTCARs would not match
    maker = get_engine(VaspStandinEngineSpec()).neb_maker(NEBStageSettings(images=3))
    neb = maker.neb_maker
    with pytest.raises(EngineError, match="atom order"):
        type(neb).make.original(neb, images)


# ------------------------------------------------------------------ stand-in NEB INCAR rules


def test_standin_neb_tags(tmp_path):
    base = {"IMAGES": 3, "IBRION": 3, "POTIM": 0, "IOPT": 7, "EDIFFG": -0.05, "NSW": 20}
    neb = settings_for(tmp_path, base).neb
    assert (neb.n_images, neb.optimizer, neb.climb) == (3, "FIRE", True)  # VTST: LCLIMB on
    assert neb.spring_ev_per_a2 == 5.0 and neb.fmax_ev_per_a == 0.05  # VASP's SPRING = -5
    assert settings_for(tmp_path, base | {"LCLIMB": False}).neb.climb is False
    assert settings_for(tmp_path, base | {"IOPT": 1, "SPRING": -0.5}).neb.optimizer == "LBFGS"
    builtin = settings_for(tmp_path, {**base, "IBRION": 2, "POTIM": 0.5}).neb
    assert builtin.optimizer == "BFGS" and builtin.climb is False  # plain VASP: no climbing
    assert neb_climb(Incar({"IBRION": 2, "LCLIMB": True}))


@pytest.mark.parametrize(
    ("tags", "words"),
    [
        ({"EDIFFG": 0.01}, "force criterion"),
        ({"SPRING": 5}, "SPRING < 0"),
        ({"IOPT": 2}, "IOPT = 2"),
        ({"ISIF": 3}, "ISIF = 3"),
        ({"IBRION": 0}, "IBRION = 0"),
    ],
)
def test_standin_refuses_neb_variants(tmp_path, tags, words):
    base = {"IMAGES": 3, "IBRION": 3, "POTIM": 0, "IOPT": 7, "EDIFFG": -0.05, "NSW": 20}
    with pytest.raises(StandinError, match=words):
        settings_for(tmp_path, base | tags)


# ------------------------------------------------------------------- (b) end to end, stand-in


def _energy_forces(structure: Structure, calc) -> tuple[float, np.ndarray]:
    atoms = structure.to_ase_atoms()
    atoms.calc = calc
    return float(atoms.get_potential_energy()), np.array(atoms.get_forces())


def test_vacancy_hop_through_the_standin(stores, standin_env, chgnet, tmp_path):
    t0 = time.perf_counter()
    images, mover = vacancy_hop(chgnet, n_images=3)
    settings = NEBStageSettings(images=3, fmax_ev_per_a=0.1, max_steps=60)
    engine = get_engine(VaspStandinEngineSpec())
    flow = engine.neb_maker(settings).make(images)
    jobs, _ = stores
    run_locally(flow, store=jobs, create_folders=True, ensure_success=True, root_dir=tmp_path)
    out = {key: ref.resolve(jobs) for key, ref in engine.neb_outputs(flow).items()}
    doc = jobs.get_output(flow.jobs[0].uuid, load=True)
    elapsed = time.perf_counter() - t0

    energies = np.array(out["energies_ev"])
    e_end = [_energy_forces(images[i], chgnet)[0] for i in (0, -1)]
    n_steps = len(doc["calculations"][0]["output"]["ionic_steps"])
    print(
        f"\nNa vacancy hop, 31 atoms, CHGNet via the stand-in: end points {e_end[0]:.4f} eV, "
        f"images {np.round(energies, 4).tolist()} eV, barrier {energies.max() - e_end[0]:.3f} "
        f"eV, {n_steps} band evaluations, {elapsed:.1f} s"
    )
    assert out["converged"] is True and doc["state"] == "successful"
    assert doc["neb_method"] == "climbing_image"
    assert len(out["structures"]) == len(energies) == len(out["forces_ev_per_a"]) == 3
    # symmetric hop: first and last image mirror each other, the middle image is the highest
    assert abs(energies[0] - energies[2]) < 5e-3
    assert abs(e_end[0] - e_end[1]) < 5e-3
    assert energies[1] > energies[0] and energies[1] > max(e_end) + 0.1
    # the band relaxed: the two Cl the Na squeezes between move apart at the saddle, which
    # lies far below the straight-line midpoint the band started from
    cl1, cl2 = (_site(images[0], frac, tol=0.3) for frac in WINDOW)  # relaxed towards the vacancy
    window = out["structures"][1].get_distance(cl1, cl2)
    assert window > images[0].get_distance(cl1, cl2) + 0.05
    assert energies[1] < _energy_forces(images[2], chgnet)[0] - 0.5
    # ... with the moving Na halfway, on the mirror plane
    assert _site(out["structures"][1], np.add(MOVER, VACANCY) / 2, tol=0.05) == mover

    # stand-in numbers are CHGNet's for the structures written (CONTCAR)
    for structure, energy, forces in zip(
        out["structures"], energies, out["forces_ev_per_a"], strict=True
    ):
        forces = np.asarray(forces)
        assert forces.shape == (len(images[0]), 3)
        direct_energy, direct_forces = _energy_forces(structure, chgnet)
        assert energy == pytest.approx(direct_energy, abs=2e-3)
        assert np.abs(forces - direct_forces).max() < 2e-3

    # VTST lines: tangential true force antisymmetric about the middle image, zero on it
    head = doc["dir_name"]
    tangent_force = []
    for index in (1, 2, 3):
        outcar = Outcar(zpath(os.path.join(head, f"{index:02d}", "OUTCAR")))
        outcar.read_neb()
        tangent_force.append(outcar.data["tangent_force"])
    assert abs(tangent_force[1]) < 1e-3
    assert tangent_force[0] == pytest.approx(-tangent_force[2], abs=1e-3)
    # end points unchanged and, as with VASP, without outputs
    for index in (0, 4):
        folder = os.path.join(head, f"{index:02d}")
        kept = Poscar.from_file(zpath(os.path.join(folder, "POSCAR"))).structure
        assert np.allclose(kept.frac_coords, images[index].frac_coords, atol=1e-10)
        assert not any(name.startswith(("OUTCAR", "vasprun")) for name in os.listdir(folder))
    assert "standin" in doc["calculations"][1]["vasp_version"]


def test_unconverged_band_finishes_with_converged_false(stores, standin_env, tmp_path):
    """NSW reached: the job still succeeds (atomate2 would raise) and says the band is not
    converged; every image has exactly NSW ionic steps."""
    images, _ = vacancy_hop(n_images=1)  # unrelaxed end points, one image: fast
    engine = get_engine(VaspStandinEngineSpec())
    flow = engine.neb_maker(NEBStageSettings(images=1, fmax_ev_per_a=0.01, max_steps=2)).make(
        images
    )
    jobs, _ = stores
    run_locally(flow, store=jobs, create_folders=True, ensure_success=True, root_dir=tmp_path)
    out = {key: ref.resolve(jobs) for key, ref in engine.neb_outputs(flow).items()}
    doc = jobs.get_output(flow.jobs[0].uuid, load=True)
    assert out["converged"] is False and doc["state"] == "failed"
    assert len(doc["calculations"][0]["output"]["ionic_steps"]) == 2
    assert np.asarray(out["forces_ev_per_a"]).shape == (1, len(images[0]), 3)
