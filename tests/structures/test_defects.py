"""Neutral mobile-ion defects: charge, counts, recorded sites, seeds and refusals."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from ctaflow.errors import StructureError
from ctaflow.structures.defects import (
    DefectSettings,
    empty_sphere_centres,
    make_defects,
    schottky_set,
)
from ctaflow.structures.demo import demo_structure

CHARGES = {"Na": 1.0, "O": -2.0, "Cl": -1.0, "Ca": 2.0}


@pytest.fixture
def cell():
    """Demo Na3OCl 2×2×2: 24 Na (mobile), 8 O, 8 Cl (framework)."""
    structure = demo_structure()
    structure.make_supercell(2)
    return structure


def total_charge(structure) -> float:
    return sum(CHARGES[site.specie.symbol] for site in structure)


def counts(structure) -> dict[str, int]:
    return {el.symbol: int(n) for el, n in structure.composition.items()}


def test_schottky_set_is_the_smallest_neutral_combination():
    ox = {"Na": 1, "O": -2, "Cl": -1}
    assert schottky_set(ox, "Na") == ("Cl", 1, 1)  # NaCl (2 atoms) beats Na2O (3 atoms)
    assert schottky_set(ox, "Na", partner="O") == ("O", 2, 1)
    assert schottky_set({"Li": 1, "La": 3, "Zr": 4, "O": -2}, "Li") == ("O", 2, 1)
    assert schottky_set({"Mg": 2, "P": 5, "O": -2}, "Mg") == ("O", 1, 1)
    with pytest.raises(StructureError, match="opposite charge"):
        schottky_set(ox, "Na", partner="Na")


def test_schottky_pair_is_neutral_counted_and_recorded(cell):
    out = make_defects(cell, DefectSettings(kind="schottky", species="Na", count=2, seed=3))
    assert total_charge(out) == 0
    assert counts(out) == {"Na": 22, "O": 8, "Cl": 6}
    rec = out.properties["defects"]
    assert sorted(rec["removed_species"]) == ["Cl", "Cl", "Na", "Na"]
    for i, el in zip(rec["removed_indices"], rec["removed_species"], strict=True):
        assert cell[i].specie.symbol == el  # indices are the parent's
    # the removed Na were mobile sites; every remaining site kept its own properties
    classes = cell.site_properties["site_class"]
    assert all(
        classes[i] == "mobile"
        for i, el in zip(rec["removed_indices"], rec["removed_species"], strict=True)
        if el == "Na"
    )
    kept = [i for i in range(len(cell)) if i not in rec["removed_indices"]]
    for key in ("label", "site_class", "host_species"):
        assert out.site_properties[key] == [cell.site_properties[key][i] for i in kept]
    assert [s.label for s in out] == out.site_properties["label"]
    step = out.properties["provenance"]["steps"][-1]
    assert step["step"] == "defects" and step["seed"] == 3
    assert step["removed_indices"] == rec["removed_indices"]
    assert out.properties["provenance"]["source"] == cell.properties["provenance"]["source"]


def test_schottky_with_the_oxide_partner_removes_two_na_per_o(cell):
    out = make_defects(cell, DefectSettings(kind="schottky", species="Na", partner="O"))
    assert counts(out) == {"Na": 22, "O": 7, "Cl": 8}
    assert total_charge(out) == 0


def test_aliovalent_vacancy_compensated_by_a_divalent_cation(cell):
    out = make_defects(
        cell, DefectSettings(kind="aliovalent", species="Na", count=2, replace="Na", by="Ca")
    )
    assert counts(out) == {"Na": 20, "Ca": 2, "O": 8, "Cl": 8}  # 2 vacancies + 2 Ca on Na sites
    assert total_charge(out) == 0
    rec = out.properties["defects"]
    assert not set(rec["removed_indices"]) & set(rec["substituted_indices"])
    ca = [i for i, s in enumerate(out) if s.specie.symbol == "Ca"]
    assert [out.site_properties["host_species"][i] for i in ca] == ["Na", "Na"]
    assert rec["oxidation_states"]["Ca"] == 2.0  # Ca's only common state, as for a cation


def test_aliovalent_vacancy_compensated_on_the_anion_site(cell):
    out = make_defects(cell, DefectSettings(kind="aliovalent", species="Na", replace="O", by="Cl"))
    assert counts(out) == {"Na": 23, "O": 7, "Cl": 9}  # Na3-x O1-x Cl1+x
    assert total_charge(out) == 0


def test_interstitial_goes_into_the_largest_void_and_is_compensated(cell):
    out = make_defects(
        cell, DefectSettings(kind="interstitial", species="Na", replace="Cl", by="O", seed=1)
    )
    assert counts(out) == {"Na": 25, "O": 9, "Cl": 7}
    assert total_charge(out) == 0
    rec = out.properties["defects"]
    # antiperovskite voids: edge centres, a/2 from two Cl and four Na (a = 4.84 Å → 2.42 Å)
    assert rec["added_clearance_a"] == [pytest.approx(2.42, abs=1e-6)]
    assert out[-1].specie.symbol == "Na"
    assert out.site_properties["site_class"][-1] == "mobile"
    assert out.site_properties["label"][-1] == "Na_i"


def test_empty_spheres_of_the_primitive_antiperovskite():
    _, radii = empty_sphere_centres(demo_structure())
    a = demo_structure().lattice.a
    assert radii[0] == pytest.approx(a / 2)  # the three edge centres
    assert np.sum(np.isclose(radii, a / 2)) == 3
    assert radii[3] == pytest.approx(a * np.sqrt(3) / 4)  # (¾, ¼, ¾)-type, between Cl and Na


def test_given_interstitial_position_on_an_atom_is_refused(cell):
    settings = DefectSettings(
        kind="interstitial",
        species="Na",
        replace="Cl",
        by="O",
        interstitial_positions=[(0.0, 0.0, 0.01)],
    )
    with pytest.raises(StructureError, match="no room"):
        make_defects(cell, settings)


def test_same_seed_same_sites_other_seeds_other_sites(cell):
    def removed(seed):
        settings = DefectSettings(kind="schottky", species="Na", seed=seed)
        return tuple(make_defects(cell, settings).properties["defects"]["removed_indices"])

    assert removed(0) == removed(0)
    assert len({removed(seed) for seed in range(5)}) > 1


def test_vacancies_only_on_mobile_sites_unless_asked(cell):
    classes = list(cell.site_properties["site_class"])
    na = [i for i, s in enumerate(cell) if s.specie.symbol == "Na"]
    for i in na[2:]:
        classes[i] = "pillar"
    cell.add_site_property("site_class", classes)
    for seed in range(3):
        out = make_defects(
            cell, DefectSettings(kind="aliovalent", species="Na", replace="O", by="Cl", seed=seed)
        )
        assert out.properties["defects"]["removed_indices"][0] in na[:2]
    # two mobile Na: emptying every mobile site (no carrier left) is refused
    with pytest.raises(StructureError, match="too small"):
        make_defects(
            cell, DefectSettings(kind="aliovalent", species="Na", replace="O", by="Cl", count=2)
        )
    anywhere = DefectSettings(kind="aliovalent", species="Na", replace="O", by="Cl", sites="any")
    picks = {
        make_defects(cell, anywhere.model_copy(update={"seed": s})).properties["defects"][
            "removed_indices"
        ][0]
        for s in range(5)
    }
    assert picks - set(na[:2])


def test_requests_that_cannot_be_neutral_are_refused(cell):
    # removing Na⁺ leaves −1 e; Cl⁻ → O²⁻ adds another −1 e
    with pytest.raises(StructureError, match="cannot be neutral"):
        make_defects(cell, DefectSettings(kind="aliovalent", species="Na", replace="Cl", by="O"))
    # an added Na⁺ needs a charge-lowering substitution, not Na → Ca
    with pytest.raises(StructureError, match="cannot be neutral"):
        make_defects(cell, DefectSettings(kind="interstitial", species="Na", replace="Na", by="Ca"))
    # 1 Na vacancy (−1 e) cannot be balanced by Na → Al (+2 e per site): half a substitution
    settings = DefectSettings(kind="aliovalent", species="Na", replace="Na", by="Al")
    with pytest.raises(StructureError, match="whole number"):
        make_defects(cell, settings)
    with pytest.raises(StructureError, match="not in"):
        make_defects(cell, DefectSettings(kind="schottky", species="Li"))


def test_too_small_cells_are_refused():
    primitive = demo_structure()  # 3 Na, 1 O, 1 Cl
    with pytest.raises(StructureError, match="too small"):
        make_defects(primitive, DefectSettings(kind="schottky", species="Na"))
    cell = demo_structure()
    cell.make_supercell(2)
    with pytest.raises(StructureError, match="max_fraction"):
        make_defects(cell, DefectSettings(kind="schottky", species="Na", count=3))  # 3 of 8 Cl


def test_settings_name_the_fields_of_their_kind():
    with pytest.raises(ValidationError, match="replace"):
        DefectSettings(kind="aliovalent", species="Na")
    with pytest.raises(ValidationError, match="partner"):
        DefectSettings(kind="aliovalent", species="Na", partner="Cl", replace="O", by="Cl")
    with pytest.raises(ValidationError):
        DefectSettings(kind="schottky", species="Na", replace="O", by="Cl")
    with pytest.raises(ValidationError):
        DefectSettings(kind="schottky", species="Na", count=0)
