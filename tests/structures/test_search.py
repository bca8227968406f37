"""Symmetry-constrained structure search on a small silicate."""

from __future__ import annotations

import pytest
from pymatgen.core import Composition

from ctaflow.errors import StructureError
from ctaflow.structures.energies import RelaxOutcome
from ctaflow.structures.search import CoordinationRule, search_structures


def si_o_coordination(structure, cutoff=2.0):
    """Independent count: O atoms within ``cutoff`` Å of each Si."""
    return [
        sum(1 for nb in structure.get_neighbors(site, cutoff) if nb.specie.symbol == "O")
        for site in structure
        if site.specie.symbol == "Si"
    ]


@pytest.mark.filterwarnings("ignore:Only FixAtoms and FixCartesian")
def test_li2sio3_search_with_chgnet(single_thread, chgnet):
    # 2 candidates of Li2SiO3 (Z = 2, 12 atoms) in P-1, 100 FIRE steps each with CHGNet
    result = search_structures(
        "Li2SiO3",
        chgnet,
        space_groups=[2],
        formula_units=[2],
        n_candidates=2,
        seed=2,
        steps=100,
        fmax=0.1,
    )
    assert len(result.candidates) == 2
    assert result.oxidation_states == {"Li": 1.0, "Si": 4.0, "O": -2.0}
    passing = [c for c in result.candidates if c.passes_filter]
    failing = [c for c in result.candidates if not c.passes_filter]
    # passing candidates first, each group by energy per atom; rank counts passing ones only
    assert result.candidates == passing + failing
    assert [c.energy_per_atom_ev for c in passing] == sorted(c.energy_per_atom_ev for c in passing)
    assert [c.rank for c in passing] == list(range(len(passing)))
    assert all(c.rank is None for c in failing)
    for cand in result.candidates:
        s = cand.structure
        # charge balanced, right composition, symmetry kept, energies physical for a silicate
        assert s.composition == Composition("Li4Si2O6")
        assert s.composition.oxi_state_guesses()
        assert cand.space_group_relaxed == "P-1 (2)"
        assert -8.0 < cand.energy_per_atom_ev < -5.0
        # the filter says exactly what an independent count says
        assert cand.passes_filter == all(n == 4 for n in si_o_coordination(s))
        assert cand.coordination["Si-O"] == si_o_coordination(s)
        prov = s.properties["provenance"]
        assert prov["generated"] is True
        assert prov["experimental_structure"] is False
        assert prov["seed"] == 2
        assert prov["search"]["space_groups"] == [2]
        assert prov["search"]["steps"] == 100
        assert [r["index"] for r in prov["ranking"]] == [c.index for c in result.candidates]
        assert set(s.site_properties) >= {"label", "host_species"}
    # with this seed the best candidate is a silicate: every Si 4-coordinated by O
    assert result.best is not None
    assert si_o_coordination(result.best.structure) == [4, 4]


def fake_relax(structure):
    """No relaxation; energy = -volume per atom / 10 (deterministic, for ranking logic only)."""
    return RelaxOutcome(
        structure=structure,
        energy_ev=-structure.volume / 10,
        max_force_ev_per_a=0.0,
        n_steps=0,
        converged=True,
    )


def test_search_ranking_and_filter_without_mlip():
    rule = CoordinationRule(centre="Si", ligand="O", n=4, cutoff_a=2.0)
    result = search_structures(
        "Na2SiO3",
        space_groups=[1, 2],
        formula_units=[2],
        n_candidates=3,
        relax=fake_relax,
        coordination=[rule],
    )
    assert [c.space_group_requested for c in sorted(result.candidates, key=lambda c: c.index)] == [
        1,
        2,
        1,
    ]
    keys = [(not c.passes_filter, c.energy_per_atom_ev) for c in result.candidates]
    assert keys == sorted(keys)
    # no filter at all: every candidate passes and ranks by energy
    open_result = search_structures(
        "Na2SiO3",
        space_groups=[1],
        formula_units=[1],
        n_candidates=2,
        relax=fake_relax,
        coordination=[],
    )
    assert [c.rank for c in open_result.candidates] == [0, 1]
    energies = [c.energy_per_atom_ev for c in open_result.candidates]
    assert energies == sorted(energies)
    # same seed, same candidates
    again = search_structures(
        "Na2SiO3",
        space_groups=[1],
        formula_units=[1],
        n_candidates=2,
        relax=fake_relax,
        coordination=[],
    )
    assert [c.structure for c in again.candidates] == [c.structure for c in open_result.candidates]


def test_search_bad_inputs():
    with pytest.raises(StructureError, match="Li2SiO4 is not charge balanced"):
        search_structures("Li2SiO4", relax=fake_relax)
    with pytest.raises(StructureError, match="cannot read composition 'Qq2O'"):
        search_structures("Qq2O", relax=fake_relax)
    with pytest.raises(StructureError, match="give an ASE calculator or a relax callable"):
        search_structures("Li2SiO3")
    # Fm-3m has no Wyckoff position with multiplicity 1 for Si in the conventional cell
    with pytest.raises(StructureError, match=r"pyxtal could not build Li2SiO3 .* \[225\]"):
        search_structures("Li2SiO3", space_groups=[225], formula_units=[1], relax=fake_relax)
