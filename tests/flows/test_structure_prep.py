"""Campaign structure preparation: ordering partial occupancy, site classification, series."""

from __future__ import annotations

import pytest
from pymatgen.core import Lattice, Structure

from ctaflow.campaign import load_campaign
from ctaflow.errors import CampaignError, StructureError
from ctaflow.structures import load_structure


def _disordered_cif(path):
    # rocksalt with the cation site half Na, half Li (isovalent disorder), conventional cell
    s = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(5.4), [{"Na": 0.5, "Li": 0.5}, "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    s.to(filename=str(path))
    return path


def _campaign(tmp_path, structure_block: str, extra: str = ""):
    path = tmp_path / "c.yaml"
    path.write_text(f"name: prep\nstructure: {structure_block}\n{extra}")
    return load_campaign(path)


def test_partial_occupancy_needs_order_then_is_ordered_exactly(tmp_path):
    _disordered_cif(tmp_path / "mixed.cif")
    plain = _campaign(tmp_path, "{source: file, path: mixed.cif}")
    with pytest.raises(StructureError, match="add 'order: {}' under 'structure:'"):
        load_structure(plain.structure)
    ordered = load_structure(
        _campaign(tmp_path, "{source: file, path: mixed.cif, order: {}}").structure
    )
    assert ordered.is_ordered
    assert ordered.composition["Na"] == ordered.composition["Li"] == ordered.composition["Cl"] / 2
    steps = ordered.properties["provenance"]["steps"]
    assert any("order" in str(step.get("step", "")) for step in steps)
    assert ordered.properties["provenance"]["experimental_structure"] is False


def test_classify_marks_the_antiperovskite_na_network_mobile(tmp_path):
    settings = _campaign(tmp_path, "{source: demo, classify: {species: Na, hop_cutoff_a: 4.0}}")
    s = load_structure(settings.structure)
    classes = dict(zip(s.site_properties["label"], s.site_properties["site_class"], strict=True))
    # Na-Na hops of a/sqrt(2) = 3.4 Å along the octahedron edges percolate in 3D
    assert classes["Na1"] == "mobile" and classes["O1"] == "framework"


def test_series_settings_are_validated_and_hashed(tmp_path):
    with pytest.raises(CampaignError, match="series.n_compositions"):
        _campaign(tmp_path, "{source: demo}", "series: {n_compositions: 1}\n")
    a = _campaign(tmp_path, "{source: demo}", "series: {n_compositions: 5}\n")
    b = _campaign(tmp_path, "{source: demo}", "series: {n_compositions: 3}\n")
    assert a.stage_settings_hash("training_data") != b.stage_settings_hash("training_data")
    assert a.stage_settings_hash("relax") == b.stage_settings_hash("relax")
