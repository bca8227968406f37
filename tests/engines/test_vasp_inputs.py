"""VASP inputs written by the real atomate2 generators carry the study's settings, key by key."""

from __future__ import annotations

import pytest
from atomate2.vasp.files import write_vasp_input_set
from pymatgen.core import Lattice, Structure
from pymatgen.io.vasp import Incar, Kpoints

from ctaflow.campaign.stages import RelaxStageSettings
from ctaflow.engines import get_engine
from ctaflow.engines.specs import KpointSettings, VaspEngineSpec
from ctaflow.engines.vasp_inputs import kpoint_mesh
from ctaflow.errors import EngineError

# a test cell holding the study's elements (input writing only: not a crystal structure claim)
ELEMENTS_CELL = Structure(
    Lattice.orthorhombic(6.0, 7.0, 8.0),
    ["Na", "Li", "Sm", "Si", "O", "O"],
    [[0, 0, 0], [0.5, 0, 0], [0, 0.5, 0.5], [0.5, 0.5, 0], [0.25, 0.25, 0.25], [0.75, 0.25, 0.25]],
)


def _write(tmp_path, engine, structure, settings=None):
    maker = engine.relax_maker(settings or RelaxStageSettings())
    write_vasp_input_set(structure, maker.input_set_generator, directory=tmp_path, potcar_spec=True)
    return Incar.from_file(tmp_path / "INCAR"), Kpoints.from_file(tmp_path / "KPOINTS")


def test_study_incar_key_by_key(tmp_path):
    incar, _ = _write(tmp_path, get_engine(VaspEngineSpec()), ELEMENTS_CELL)
    n = len(ELEMENTS_CELL)
    assert incar["GGA"].upper() == "PE"  # PBE
    assert "METAGGA" not in incar
    assert incar["ENCUT"] == 520
    assert incar["EDIFF"] == pytest.approx(1e-4 * n)  # 1e-4 eV/atom
    assert incar["EDIFFG"] == pytest.approx(1e-3 * n)  # positive: energy criterion, 1e-3 eV/atom
    assert incar["IBRION"] == 2 and incar["ISIF"] == 3 and incar["NSW"] == 300
    assert not incar.get("LDAU", False)
    assert not any(k.startswith("LDAUU") for k in incar)


def test_potcar_choice_is_visible_and_overridable(tmp_path):
    _write(tmp_path, get_engine(VaspEngineSpec()), ELEMENTS_CELL)
    symbols = (tmp_path / "POTCAR.spec").read_text().split()
    assert "Sm_3" in symbols  # 4f in core, the study's choice
    other = tmp_path / "other"
    other.mkdir()
    _write(other, get_engine(VaspEngineSpec(potcar={"Sm": "Sm"})), ELEMENTS_CELL)
    assert "Sm" in (other / "POTCAR.spec").read_text().split()


def test_campaign_layer_wins_over_preset_and_force_criterion(tmp_path):
    spec = VaspEngineSpec(incar={"ENCUT": 600, "ALGO": "Normal"}, ionic_criterion="force")
    incar, _ = _write(
        tmp_path,
        get_engine(spec),
        ELEMENTS_CELL,
        RelaxStageSettings(fmax_ev_per_a=0.02, relax_cell=False),
    )
    assert incar["ENCUT"] == 600 and incar["ALGO"] == "Normal"
    assert incar["EDIFFG"] == pytest.approx(-0.02) and incar["ISIF"] == 2


def test_kpoint_mesh_of_the_study_cell_by_hand():
    # hexagonal a = 22.1461 Å, c = 12.6886 Å: |b1| = 2/(a√3) = 0.05214, |b3| = 1/c = 0.07881 (no 2π)
    lattice = Lattice.hexagonal(22.1461, 12.6886)
    assert kpoint_mesh(lattice, 0.04, "no_2pi") == (2, 2, 2)
    # VASP KSPACING convention (×2π): 0.3276/0.04 = 8.19 -> 9, 0.4952/0.04 = 12.38 -> 13
    assert kpoint_mesh(lattice, 0.04, "vasp_kspacing") == (9, 9, 13)
    assert kpoint_mesh(Lattice.cubic(10.0), 0.1, "no_2pi") == (1, 1, 1)  # exactly 1: no rounding up


def test_kpoints_file_is_monkhorst_pack_from_spacing(tmp_path):
    _, kpoints = _write(tmp_path, get_engine(VaspEngineSpec()), ELEMENTS_CELL)
    # 1/6 = 0.1667 -> 5, 1/7 = 0.1429 -> 4, 1/8 = 0.125 -> 4 at 0.04 1/Å
    assert kpoints.style == Kpoints.supported_modes.Monkhorst
    assert tuple(kpoints.kpts[0]) == (5, 4, 4)
    gamma = tmp_path / "g"
    gamma.mkdir()
    spec = VaspEngineSpec(kpoints=KpointSettings(spacing_per_a=0.08, style="gamma"))
    _, kpoints = _write(gamma, get_engine(spec), ELEMENTS_CELL)
    assert kpoints.style == Kpoints.supported_modes.Gamma and tuple(kpoints.kpts[0]) == (3, 2, 2)


def test_missing_potcars_name_the_variable_and_symbols(tmp_path, monkeypatch):
    monkeypatch.delenv("PMG_VASP_PSP_DIR", raising=False)
    engine = get_engine(VaspEngineSpec())
    with pytest.raises(EngineError) as info:
        engine.check_available(["Na", "O", "Si", "Sm"])
    msg = str(info.value)
    assert "PMG_VASP_PSP_DIR is not set" in msg and "Na_pv, O, Si, Sm_3 (PBE_54)" in msg
    # a folder with only some potentials: the rest are named
    psp = tmp_path / "psp"
    for sym in ("Na_pv", "O"):
        (psp / "POT_GGA_PAW_PBE_54" / sym).mkdir(parents=True)
        (psp / "POT_GGA_PAW_PBE_54" / sym / "POTCAR").write_text("placeholder, not a potential\n")
    monkeypatch.setenv("PMG_VASP_PSP_DIR", str(psp))
    with pytest.raises(
        EngineError,
        match=r"files for Si, Sm_3 \(PBE_54\): PMG_VASP_PSP_DIR=.*POT_GGA_PAW_PBE_54/<symbol>",
    ):
        engine.check_available(["Na", "O", "Si", "Sm"])
    # writing real inputs (no POTCAR.spec) fails the same way inside the job
    maker = engine.relax_maker(RelaxStageSettings())
    with pytest.raises(EngineError, match="PMG_VASP_PSP_DIR"):
        write_vasp_input_set(ELEMENTS_CELL, maker.input_set_generator, directory=tmp_path / "w")


def test_standin_engine_needs_no_potcars_and_says_it_is_not_dft(monkeypatch):
    from ctaflow.engines.specs import VaspStandinEngineSpec

    monkeypatch.delenv("PMG_VASP_PSP_DIR", raising=False)
    engine = get_engine(VaspStandinEngineSpec())
    engine.check_available(["Na", "Sm"])  # no error
    assert "not a DFT result" in engine.describe()["note"]
    assert "-m ctaflow.engines.vasp_standin" in engine.vasp_cmd()
    maker = engine.relax_maker(RelaxStageSettings())
    assert maker.write_input_set_kwargs == {"potcar_spec": True}


def test_spring_stays_a_real_number(tmp_path):
    """pymatgen's type table says SPRING is an integer (-0.1 would become 0); importing
    ctaflow.engines.vasp_inputs (above) corrects it."""
    Incar({"SPRING": -0.1, "IMAGES": 3}).write_file(tmp_path / "INCAR")
    assert "SPRING = -0.1" in (tmp_path / "INCAR").read_text()
    assert Incar.from_file(tmp_path / "INCAR")["SPRING"] == -0.1
    assert Incar.from_str("SPRING = -5\n")["SPRING"] == -5
