"""The structure-search campaign source: CHGNet relaxations of pyxtal candidates, the best one
used, the whole search in the provenance, the same structure for the same settings."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Composition

from ctaflow.analysis.structure import describe_structure
from ctaflow.campaign.schema import CampaignSettings
from ctaflow.campaign.sources import SearchStructureSource
from ctaflow.errors import StructureError
from ctaflow.structures import load_structure
from ctaflow.structures.search import CoordinationRule, best_structure, search_structures
from tests.structures.test_search import fake_relax

# rock salt against CsCl type: Na with 6 Cl neighbours within 3.2 Å passes, 8 does not
NACL = {
    "composition": "NaCl",
    "space_groups": [221, 225],
    "formula_units": [1, 4],
    "n_candidates": 3,
    "seed": 0,
    "steps": 40,
    "fmax_ev_per_a": 0.05,
    "coordination": [{"centre": "Na", "ligand": "Cl", "n": 6, "cutoff_a": 3.2}],
}


def na_cl_neighbours(structure, cutoff=3.2):
    """Independent count: Cl atoms within ``cutoff`` Å of each Na."""
    return [
        sum(1 for nb in structure.get_neighbors(site, cutoff) if nb.specie.symbol == "Cl")
        for site in structure
        if site.specie.symbol == "Na"
    ]


def atoms(structure):
    return (
        structure.lattice.matrix.tolist(),
        [site.species_string for site in structure],
        structure.frac_coords.tolist(),
    )


@pytest.mark.filterwarnings("ignore:Only FixAtoms and FixCartesian")
def test_search_source_gives_rock_salt_deterministically_with_its_provenance(single_thread):
    source = SearchStructureSource(**NACL)
    first = load_structure(source)
    again = load_structure(source)
    # same settings, same structure, bit for bit, and the same record of how it was found
    assert atoms(again) == atoms(first)
    assert again.properties == first.properties
    # stoichiometry and the physics of the winner: rock salt, Na octahedrally coordinated
    assert first.composition == Composition("Na4Cl4")
    assert na_cl_neighbours(first) == [6, 6, 6, 6]
    assert describe_structure(first).space_group == "Fm-3m (225)"
    assert np.allclose(first.lattice.angles, 90.0)
    assert 5.5 < first.lattice.a < 5.9  # CHGNet; experiment 5.64 Å
    assert set(first.site_properties) >= {"label", "host_species"}

    prov = first.properties["provenance"]
    assert prov["source"] == "ctaflow structure search"
    assert prov["label"] == "generated model, not the experimental structure"
    assert (prov["generated"], prov["experimental_structure"]) == (True, False)
    assert prov["model"] == "CHGNet 0.3.0"
    assert prov["seed"] == 0
    assert prov["campaign_source"] == source.model_dump(mode="json")
    search = prov["search"]
    assert (search["space_groups"], search["formula_units"]) == ([221, 225], [1, 4])
    assert (search["n_candidates"], search["steps"], search["fmax_ev_per_a"]) == (3, 40, 0.05)
    assert search["coordination"] == [{"centre": "Na", "ligand": "Cl", "n": 6, "cutoff_a": 3.2}]
    # the ranking table: all three candidates, passing ones first by energy, the winner on top
    ranking = prov["ranking"]
    assert sorted(r["index"] for r in ranking) == [0, 1, 2]
    assert ranking[0]["index"] == prov["candidate_index"] and prov["rank"] == 0
    passing = [r for r in ranking if r["passes_filter"]]
    assert ranking[: len(passing)] == passing
    assert [r["energy_per_atom_ev"] for r in passing] == sorted(
        r["energy_per_atom_ev"] for r in passing
    )
    # the CsCl-type candidate (Pm-3m, Z = 1, Na with 8 Cl) fails the filter and ranks last
    assert ranking[-1]["space_group_requested"] == 221 and ranking[-1]["formula_units"] == 1
    assert ranking[-1]["passes_filter"] is False
    assert prov["description"].startswith(
        "best-ranked of 3 NaCl candidates from ctaflow's structure search: pyxtal random "
        "crystals in space groups [221, 225] with Z in [1, 4] (seed 0), cell and positions "
        "relaxed with CHGNet 0.3.0 (fmax 0.05 eV/Å, at most 40 steps, space group kept), lowest "
        "energy per atom among candidates passing the coordination filter (Na-Cl = 6 within "
        f"3.2 Å); candidate {prov['candidate_index']}, Fm-3m (225), "
    )
    assert prov["description"].endswith(
        "eV/atom. A generated model, not the experimental structure"
    )
    # the structure stage records it as it records the demo's provenance
    assert describe_structure(first).provenance == prov


def test_fingerprint_follows_the_search_settings():
    base = CampaignSettings(name="s", structure=SearchStructureSource(**NACL))
    same = CampaignSettings(name="s", structure=SearchStructureSource(**NACL))
    reseeded = CampaignSettings(name="s", structure=SearchStructureSource(**{**NACL, "seed": 1}))
    assert base.fingerprint == same.fingerprint
    assert base.stage_settings_hash("relax") == same.stage_settings_hash("relax")
    assert base.fingerprint != reseeded.fingerprint
    assert base.stage_settings_hash("relax") != reseeded.stage_settings_hash("relax")
    assert base.structure_identity()["seed"] == 0
    assert base.structure_identity()["model_version"] == "0.3.0"


def test_no_candidate_passing_the_filter_is_an_error():
    rule = CoordinationRule(centre="Na", ligand="Cl", n=12, cutoff_a=3.2)  # never the case
    result = search_structures(
        "NaCl",
        space_groups=[221],
        formula_units=[1],
        n_candidates=2,
        relax=fake_relax,
        coordination=[rule],
    )
    with pytest.raises(StructureError) as info:
        best_structure(result, "none", {})
    message = str(info.value)
    assert message.startswith(
        "no NaCl candidate of the structure search passes the coordination filter (candidate "
    )
    assert message.count("Na-Cl [") == 2  # both candidates listed with their counts
    assert message.endswith(
        "; ask for more candidates (n_candidates), other space groups, or change the "
        "coordination rules"
    )


def test_default_silicate_rule_on_a_composition_without_silicon():
    from ctaflow.structures.search import coordination_numbers

    # the default rule (Si with 4 O) has no centre in NaCl: nothing to count, nothing fails
    result = search_structures(
        "NaCl", space_groups=[225], formula_units=[4], n_candidates=1, relax=fake_relax
    )
    (cand,) = result.candidates
    assert coordination_numbers(cand.structure, CoordinationRule()) == []
    assert cand.coordination == {"Si-O": []} and cand.passes_filter is True
