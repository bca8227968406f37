"""Na -> Li substitution series: exact counts, even steps, recorded meaning, Ewald selection."""

from __future__ import annotations

import pytest
from pymatgen.analysis.ewald import EwaldSummation
from pymatgen.core import Composition

from ctaflow.errors import StructureError
from ctaflow.structures import demo_structure
from ctaflow.structures.series import substitution_series


def demo_cell():
    """Na3OCl antiperovskite, 2x2x1 cells: Z = 4, 12 Na (all mobile), 20 atoms."""
    return demo_structure().make_supercell([2, 2, 1], in_place=False)


def test_na_to_li_series_counts_and_steps():
    result = substitution_series(demo_cell(), "Na", "Li", sites="mobile", n_compositions=5)
    # hand-checked: 12 chosen sites, 4 steps of 3 Li
    expected = ["Na12 Cl4 O4", "Na9 Li3 Cl4 O4", "Na6 Li6 Cl4 O4", "Na3 Li9 Cl4 O4", "Li12 Cl4 O4"]
    assert [m.structure.composition for m in result.members] == [Composition(c) for c in expected]
    assert [m.x for m in result.members] == [0.0, 0.25, 0.5, 0.75, 1.0]
    # Na(3-x)Li(x)OCl: x per formula unit with Z = 4
    assert result.formula_unit == "Na3ClO"
    assert result.n_formula_units == 4
    assert [m.x_per_formula_unit for m in result.members] == [0.0, 0.75, 1.5, 2.25, 3.0]
    assert result.chosen_sites == list(range(8, 20))
    for member in result.members:
        s = member.structure
        hosts = s.site_properties["host_species"]
        li = [i for i, site in enumerate(s) if site.specie.symbol == "Li"]
        assert len(li) == member.n_substituted
        assert all(hosts[i] == "Na" for i in li)
        assert s.site_properties["label"][8:] == ["Na1"] * 12
        assert s.labels == s.site_properties["label"]
        prov = s.properties["provenance"]
        step = prov["steps"][-1]
        assert step["step"] == "substitute"
        assert step["composition"] == s.composition.formula
        assert step["x"] == member.x
        assert step["chosen_site_indices"] == list(range(8, 20))
        assert sorted(step["substituted_site_indices"]) == li
        assert prov["source"] == "ctaflow built-in demo"  # parent provenance kept


def test_isovalent_ewald_is_degenerate_and_spread_breaks_ties():
    result = substitution_series(demo_cell(), "Na", "Li", n_compositions=3, n_samples=30, seed=1)
    assert result.ewald_degenerate
    middle = result.members[1]
    assert len(set(middle.sampled_ewald_energies_ev)) == 1
    step = middle.structure.properties["provenance"]["steps"][-1]
    assert step["ewald_degenerate"] is True
    assert step["n_sampled"] == 30
    # same seed, same choice
    again = substitution_series(demo_cell(), "Na", "Li", n_compositions=3, n_samples=30, seed=1)
    assert again.members[1].structure == middle.structure


def test_ewald_picks_lowest_of_the_sampled_aliovalent():
    # Na+ -> Ca2+ charges the cell (uniform background); arrangements then differ in Ewald energy
    result = substitution_series(
        demo_cell(),
        "Na",
        "Ca",
        n_compositions=3,
        n_samples=12,
        seed=0,
        oxidation_states={"Na": 1, "Cl": -1, "O": -2, "Ca": 2},
    )
    assert not result.ewald_degenerate
    middle = result.members[1]
    assert middle.n_substituted == 6
    assert len(set(round(e, 6) for e in middle.sampled_ewald_energies_ev)) > 1
    assert middle.ewald_energy_ev == pytest.approx(min(middle.sampled_ewald_energies_ev))
    decorated = middle.structure.copy()
    decorated.add_oxidation_state_by_element({"Na": 1, "Cl": -1, "O": -2, "Ca": 2})
    assert EwaldSummation(decorated).total_energy == pytest.approx(middle.ewald_energy_ev)


def test_energy_function_reranks_the_best():
    calls = []

    def fake_energy(structure):
        """Lower when Li sits at small z (a deterministic stand-in for an MLIP)."""
        calls.append(structure)
        return sum(
            site.frac_coords[2] + site.frac_coords[0]
            for site in structure
            if site.specie.symbol == "Li"
        )

    result = substitution_series(
        demo_cell(),
        "Na",
        "Li",
        n_compositions=3,
        n_samples=10,
        energy_function=fake_energy,
        mlip_top=4,
    )
    # end members have one arrangement each; the middle sends its 4 best to the function
    assert len(calls) == 1 + 4 + 1
    middle = result.members[1]
    energies = [fake_energy(s) / 20 for s in calls[1:5]]
    assert middle.mlip_energy_ev_per_atom == pytest.approx(min(energies))
    assert fake_energy(middle.structure) / 20 == pytest.approx(min(energies))


def test_sites_by_label_and_class():
    cell = demo_cell()
    classes = cell.site_properties["site_class"]
    classes[8:12] = ["pillar"] * 4
    cell.add_site_property("site_class", classes)
    mobile = substitution_series(cell, "Na", "Li", sites="mobile", n_compositions=3)
    assert mobile.chosen_sites == list(range(12, 20))
    assert mobile.members[-1].structure.composition.formula == "Na4 Li8 Cl4 O4"
    by_label = substitution_series(cell, "Na", "Li", sites=["Na1"], n_compositions=2)
    assert by_label.members[-1].structure.composition.formula == "Li12 Cl4 O4"


def test_bad_inputs_say_how_to_fix():
    cell = demo_cell()
    with pytest.raises(
        StructureError,
        match=r"12 chosen Na sites cannot be split into 5 equal steps for n_compositions=6; "
        r"with 12 sites n_compositions can be 2, 3, 4, 5, 7, 13, or make a supercell with a "
        r"multiple of 5 cells",
    ):
        substitution_series(cell, "Na", "Li", n_compositions=6)
    with pytest.raises(StructureError, match="unknown element 'Xx'"):
        substitution_series(cell, "Na", "Xx")
    with pytest.raises(StructureError, match=r"no K in the structure \(elements: Cl, Na, O\)"):
        substitution_series(cell, "K", "Li")
    with pytest.raises(StructureError, match="selects no Na site; Na sits on labels Na1"):
        substitution_series(cell, "Na", "Li", sites="Na7")
    disordered = cell.copy()
    disordered.replace(8, {"Na": 0.5})
    with pytest.raises(StructureError, match="order it first"):
        substitution_series(disordered, "Na", "Li")


def test_spread_tie_break_on_exhaustive_draws():
    # 12 Na, steps of 2: k = 2 has C(12, 2) = 66 arrangements, all drawn when n_samples >= 66
    import itertools

    cell = demo_cell()
    result = substitution_series(cell, "Na", "Li", n_compositions=7, n_samples=66)
    member = result.members[1]
    assert member.n_substituted == 2
    assert member.n_arrangements_total == 66
    assert len(member.sampled_ewald_energies_ev) == 66
    pair_distances = [
        cell.get_distance(i, j) for i, j in itertools.combinations(result.chosen_sites, 2)
    ]
    li = [i for i, site in enumerate(member.structure) if site.specie.symbol == "Li"]
    # the two Li are as far apart as any pair of Na sites can be (and farther than the closest)
    assert member.structure.get_distance(*li) == pytest.approx(max(pair_distances))
    assert max(pair_distances) > min(pair_distances) + 1.0
