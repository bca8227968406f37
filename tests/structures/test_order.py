"""Ordering of partial occupancy: supercell choice, exact stoichiometry, distinctness, meaning."""

from __future__ import annotations

import logging

import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.io.cif import CifWriter

from ctaflow.errors import StructureError
from ctaflow.structures import read_structure_file
from ctaflow.structures.order import count_by_label, order_structure
from ctaflow.structures.ordering_cells import diagonal_supercell, required_multiplicity

A_PEROVSKITE = 3.9


def perovskite(a_site) -> Structure:
    """ABO3 cubic perovskite (Pm-3m) with ``a_site`` (a species dict) on the A site."""
    labels = ["A1", "Ti1", "O1", "O1", "O1"]
    return Structure(
        Lattice.cubic(A_PEROVSKITE),
        [a_site, "Ti", "O", "O", "O"],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
        labels=labels,
        site_properties={
            "label": labels,
            "site_class": ["mobile", "framework", "framework", "framework", "framework"],
        },
        properties={"provenance": {"source": "test", "experimental_structure": True}},
    )


def antiperovskite_with_vacancies() -> Structure:
    """Na3OCl antiperovskite with vacancies: Na 5/6 on 3c, Cl 1/2 on 1a -> Na2.5OCl0.5."""
    labels = ["Cl1", "O1", "Na1", "Na1", "Na1"]
    return Structure(
        Lattice.cubic(4.84),
        [{"Cl": 0.5}, "O", {"Na": 5 / 6}, {"Na": 5 / 6}, {"Na": 5 / 6}],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]],
        labels=labels,
        site_properties={
            "label": labels,
            "site_class": ["framework", "framework", "mobile", "mobile", "mobile"],
        },
    )


@pytest.mark.filterwarnings("ignore:Site labels are not unique")
def test_disordered_cif_gives_distinct_ordered_supercells(tmp_path):
    # Na0.5La0.5TiO3 written to a CIF with partial occupancy on A, read back by ctaflow
    path = tmp_path / "nlto.cif"
    CifWriter(perovskite({"Na": 0.5, "La": 0.5})).write_file(path)
    disordered = read_structure_file(path)
    assert not disordered.is_ordered
    assert sorted(set(disordered.site_properties["label"])) == ["A1", "O1", "Ti1"]
    classes = {"A1": "mobile", "Ti1": "framework", "O1": "framework"}
    disordered.add_site_property(
        "site_class", [classes[x] for x in disordered.site_properties["label"]]
    )

    result = order_structure(disordered, supercell=[2, 2, 1], n_structures=2)

    # hand count: 2 Na on the 4 A sites of a 2x2x1 cell = C(4,2) = 6 labelled orderings, which
    # fall into two classes: stripes (Na rows) and checkerboard
    assert result.n_orderings_total == 6
    assert len(result.candidates) == 2
    from pymatgen.analysis.structure_matcher import StructureMatcher

    first, second = result.structures
    assert not StructureMatcher().fit(first, second)
    for cand in result.candidates:
        s = cand.structure
        assert s.is_ordered
        assert s.composition.as_dict() == {"Na": 2, "La": 2, "Ti": 4, "O": 12}
        assert count_by_label(s) == {"A1": {"Na": 2, "La": 2}, "Ti1": {"Ti": 4}, "O1": {"O": 12}}
        # meaning survives: label property, pymatgen labels, class, host species
        assert s.labels == s.site_properties["label"]
        for site, label, cls, host in zip(
            s,
            s.site_properties["label"],
            s.site_properties["site_class"],
            s.site_properties["host_species"],
            strict=True,
        ):
            assert cls == classes[label]
            assert host == site.specie.symbol
        step = s.properties["provenance"]["steps"][-1]
        assert step["step"] == "order"
        assert step["transformation"] == "pymatgen OrderDisorderedStructureTransformation"
        assert step["supercell"] == [[2, 0, 0], [0, 2, 0], [0, 0, 1]]
        assert step["rank"] == cand.rank
        assert step["ewald_energy_ev"] == pytest.approx(cand.ewald_energy_ev)
        assert s.properties["provenance"]["source"] == "file"
        assert s.properties["provenance"]["experimental_structure"] is False
    # ranked by Ewald energy; checkerboard (each La with 4 Na in-plane neighbours) is lowest
    assert (
        first.properties["provenance"]["steps"][-1]["ewald_energy_ev"]
        < (second.properties["provenance"]["steps"][-1]["ewald_energy_ev"])
    )
    la = next(site for site in first if site.specie.symbol == "La")
    a_neighbours = [
        n.specie.symbol
        for n in first.get_neighbors(la, A_PEROVSKITE + 0.01)
        if n.specie.symbol in ("Na", "La") and abs(n.coords[2] - la.coords[2]) < 0.1
    ]
    assert a_neighbours == ["Na"] * 4


def test_more_than_exist_returns_all_distinct_with_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="ctaflow.structures.order"):
        result = order_structure(perovskite({"Na": 0.5, "La": 0.5}), [2, 2, 1], n_structures=5)
    assert len(result.candidates) == 2
    assert "only 2 distinct orderings exist" in caplog.text


@pytest.mark.parametrize(
    ("occupancies", "expected"),
    [
        ([1 / 3], 3),  # 1/3 on a one-site orbit: 3 cells hold one atom
        ([0.5], 2),
        ([0.25], 4),
        ([0.333], 3),  # CIF precision: 0.999 atoms is one atom within the tolerance
    ],
)
def test_required_multiplicity_hand_worked(occupancies, expected):
    assert required_multiplicity(perovskite({"Na": occupancies[0]})) == expected


def test_multiplicity_counts_whole_orbits():
    # 5/6 Na on a 3-site orbit (2.5 Na) and 1/2 Cl on one site: 2 cells
    assert required_multiplicity(antiperovskite_with_vacancies()) == 2
    # 2/3 Na on each of 3 sites (one label) holds 2 Na: no supercell needed
    s = Structure(
        Lattice.cubic(4.6),
        ["O", {"Na": 2 / 3}, {"Na": 2 / 3}, {"Na": 2 / 3}],
        [[0.5, 0.5, 0.5], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]],
    )
    assert required_multiplicity(s, group_by="species") == 1


def test_group_by_label_keeps_each_site_whole():
    # two different labels with 1/2 Na each: by label every site needs 2 cells; pooled by
    # species, 2 x 1/2 = 1 Na fits one cell
    s = Structure(
        Lattice.cubic(5.0),
        [{"Na": 0.5}, {"Na": 0.5}, "Cl"],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0, 0]],
        site_properties={"label": ["Na1", "Na2", "Cl1"]},
    )
    assert required_multiplicity(s, group_by="label") == 2
    assert required_multiplicity(s, group_by="species") == 1


def test_supercell_shape_is_most_compact():
    s = perovskite({"Na": 0.5, "La": 0.5})
    assert diagonal_supercell(s, 4) == [1, 2, 2]
    assert diagonal_supercell(s, 8) == [2, 2, 2]
    tetragonal = s.copy()
    tetragonal.lattice = Lattice.tetragonal(3.9, 7.8)
    # doubling a or b (not the long c) gives widths 3.9, 7.8, 7.8; the tie goes to [1, 2, 1]
    assert diagonal_supercell(tetragonal, 2) == [1, 2, 1]


def test_automatic_supercell_with_vacancies():
    result = order_structure(antiperovskite_with_vacancies(), n_structures=3)
    assert result.multiplicity == 2
    assert result.oxidation_states == {"Cl": -1.0, "Na": 1.0, "O": -2.0}
    # Na2.5OCl0.5 x 2 cells = Na5 O2 Cl1, charge balanced
    for cand in result.candidates:
        assert cand.structure.composition.as_dict() == {"Na": 5, "O": 2, "Cl": 1}
        assert count_by_label(cand.structure) == {
            "Cl1": {"Cl": 1},
            "O1": {"O": 2},
            "Na1": {"Na": 5},
        }
    energies = [c.ewald_energy_ev for c in result.candidates]
    assert energies == sorted(energies)
    assert result.settings["ewald_degenerate"] is False


def test_isovalent_disorder_is_flagged_and_seeded():
    s = perovskite({"Na": 0.5, "K": 0.5})
    one = order_structure(
        s, [2, 2, 2], n_structures=2, seed=3, oxidation_states={"Na": 1, "K": 1, "Ti": 5, "O": -2}
    )
    two = order_structure(
        s, [2, 2, 2], n_structures=2, seed=3, oxidation_states={"Na": 1, "K": 1, "Ti": 5, "O": -2}
    )
    assert one.settings["ewald_degenerate"] is True
    assert one.candidates[0].ewald_energy_ev == pytest.approx(one.candidates[1].ewald_energy_ev)
    assert [c.structure for c in one.candidates] == [c.structure for c in two.candidates]


def test_mlip_ranking_with_chgnet(single_thread, chgnet):
    from ctaflow.structures.energies import calculator_energy_function

    result = order_structure(
        perovskite({"Na": 0.5, "La": 0.5}),
        [2, 2, 1],
        n_structures=2,
        rank_by="mlip",
        energy_function=calculator_energy_function(chgnet),
    )
    energies = [c.mlip_energy_ev_per_atom for c in result.candidates]
    assert all(e is not None and -12 < e < -4 for e in energies)
    assert energies == sorted(energies)
    assert sorted(c.ewald_rank for c in result.candidates) == [0, 1]
    step = result.candidates[0].structure.properties["provenance"]["steps"][-1]
    assert step["rank_by"] == "mlip"
    assert step["energy_function"]["calculator"] == "CHGNetCalculator"


def test_wrong_supercell_names_the_size_needed():
    s = perovskite({"La": 2 / 3})
    with pytest.raises(
        StructureError, match=r"must be a multiple of 3, e\.g\. supercell=\[1, 1, 3\]"
    ):
        order_structure(s, supercell=[2, 1, 1])


def test_unroundable_occupancy_and_ordered_input():
    # 0.3 Na needs 10 cells (3 atoms); allowing only 4 must fail with a hint
    with pytest.raises(StructureError, match="no supercell of up to 4 cells .* round the"):
        order_structure(perovskite({"Na": 0.3, "La": 0.7}), max_multiplicity=4)
    with pytest.raises(StructureError, match="nothing to order"):
        order_structure(perovskite("Na"))
    with pytest.raises(StructureError, match="rank_by='mlip' needs an energy_function"):
        order_structure(perovskite({"Na": 0.5, "La": 0.5}), rank_by="mlip")
    with pytest.raises(StructureError, match=r"oxidation_states has no value for O"):
        order_structure(
            perovskite({"Na": 0.5, "La": 0.5}), oxidation_states={"Na": 1, "La": 3, "Ti": 4}
        )


def test_result_survives_jobflow_serialisation():
    # jobflow stores outputs through monty's jsanitize; the result must come back intact
    import json

    from monty.json import jsanitize

    from ctaflow.structures.order import OrderingResult

    result = order_structure(perovskite({"Na": 0.5, "La": 0.5}), [2, 2, 1], n_structures=2)
    text = json.dumps(jsanitize(result, strict=True, enum_values=True, allow_bson=True))
    back = OrderingResult.model_validate(json.loads(text))
    assert back.structures == result.structures
    assert back.structures[0].properties["provenance"]["steps"][-1]["rank"] == 0
    assert back.structures[0].site_properties["site_class"][0] == "mobile"
