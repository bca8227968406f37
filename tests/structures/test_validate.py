"""Bad structure input gives one clear error naming the problem and the fix."""

from __future__ import annotations

import pytest
from pymatgen.core import Lattice, Structure

from ctaflow.errors import StructureError
from ctaflow.structures import demo_structure, read_structure_file, validate_structure

POSCAR = """\
test
1.0
4.0 0.0 0.0
0.0 4.0 0.0
0.0 0.0 4.0
{symbols}
1 1
direct
0.0 0.0 0.0
0.5 0.5 0.5
"""


def test_unknown_element_in_poscar(tmp_path):
    path = tmp_path / "POSCAR"
    path.write_text(POSCAR.format(symbols="Na Qz"))
    # pymatgen reads an unknown symbol as a dummy species; validation rejects it
    with pytest.raises(StructureError, match=r"unknown element\(s\) Qz; use element symbols"):
        validate_structure(read_structure_file(path))


def test_unreadable_file(tmp_path):
    path = tmp_path / "junk.cif"
    path.write_text("data_x\n_cell_length_a what\n")
    with pytest.raises(StructureError, match="could not read a structure from .*junk.cif"):
        read_structure_file(path)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(StructureError, match="not found"):
        read_structure_file(tmp_path / "nothing.cif")
    empty = tmp_path / "empty.cif"
    empty.write_text("")
    with pytest.raises(StructureError, match="is empty"):
        read_structure_file(empty)


def test_overlapping_atoms_are_named_with_distance():
    s = Structure(
        Lattice.cubic(5.0), ["Na", "Cl", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.52, 0.5, 0.5]]
    )
    with pytest.raises(StructureError, match=r"atoms 1 \(Cl\) and 2 \(Cl\) are 0.10 Å apart"):
        validate_structure(s, check_charge=False)


def test_overlap_with_periodic_image():
    # two atoms 0.2 Å apart only through the cell boundary
    s = Structure(Lattice.cubic(5.0), ["Na", "Cl"], [[0.01, 0, 0], [0.99, 0, 0]])
    with pytest.raises(StructureError, match="0.10 Å apart"):
        validate_structure(s, check_charge=False)


def test_charge_imbalance():
    s = Structure(Lattice.cubic(5.6), ["Na", "Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0]])
    with pytest.raises(StructureError, match="Na2Cl is not charge balanced"):
        validate_structure(s)


def test_partial_occupancy_asks_for_ordering():
    s = Structure(Lattice.cubic(5.6), [{"Na": 0.5}, "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with pytest.raises(StructureError, match="partial occupancy .*add 'order: {}' under"):
        validate_structure(s)


def test_metal_is_not_charge_checked_and_sane_crystals_pass():
    validate_structure(Structure(Lattice.cubic(4.29), ["Na", "Na"], [[0, 0, 0], [0.5, 0.5, 0.5]]))
    rocksalt = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    validate_structure(rocksalt)


def test_demo_structure_is_the_symmetry_fixed_antiperovskite():
    s = demo_structure()
    validate_structure(s)
    assert s.get_space_group_info() == ("Pm-3m", 221)
    # Na-O = a/2 (NaO6 octahedron around O), Na-Cl = a/sqrt(2)
    a = s.lattice.a
    assert a == pytest.approx(2 * (1.02 + 1.40))
    assert s.get_distance(1, 2) == pytest.approx(a / 2)
    assert s.get_distance(0, 2) == pytest.approx(a / 2**0.5)
    prov = s.properties["provenance"]
    assert prov["experimental_structure"] is False
    assert "not the experimental structure" in prov["label"]
    assert s.site_properties["site_class"].count("mobile") == 3
    # provenance and site meaning survive serialisation
    back = Structure.from_dict(s.as_dict())
    assert back.properties["provenance"] == prov
    assert back.site_properties["label"] == ["Cl1", "O1", "Na1", "Na1", "Na1"]


def test_file_structure_keeps_cif_labels(tmp_path):
    path = tmp_path / "x.cif"
    demo_structure().to(filename=str(path))
    s = read_structure_file(path)
    assert sorted(set(s.site_properties["label"])) == ["Cl1", "Na1", "O1"]
    assert s.properties["provenance"]["source"] == "file"
