"""The ordering search stops at its wall-time limit (max_enumeration_s) with a message naming
the setting, and gives unchanged results when it finishes in time."""

from __future__ import annotations

import time

import pytest
from pymatgen.core import Composition, Lattice, Structure
from pymatgen.io.cif import CifWriter

from ctaflow.campaign.sources import FileStructureSource
from ctaflow.errors import StructureError
from ctaflow.structures import load_structure
from ctaflow.structures.order import count_by_label, order_structure

OXI = {"Na": 1, "Cl": -1}


def half_empty_rock_salt() -> Structure:
    """Rock salt (a = 5.64 Å) with half the Na and half the Cl sites empty (Schottky pairs)."""
    s = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(5.64), [{"Na": 0.5}, {"Cl": 0.5}], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    s.add_site_property("label", ["Na1"] * 4 + ["Cl1"] * 4)
    return s


# 2x2x1 supercell: 16 Na and 16 Cl sites, 8 atoms of each: C(16,8)^2 = 165,636,900 labelled
# orderings; pymatgen's branch and bound needed 79 s for the lowest one on this machine
SLOW = (
    "ordering the partial occupancies did not finish within max_enumeration_s = {limit} s and "
    "was stopped during {step} (supercell [[2, 0, 0], [0, 2, 0], [0, 0, 1]], 32 partially "
    "occupied sites, 1.66e+08 labelled orderings, the 500 lowest asked for); raise "
    "max_enumeration_s (campaign file: structure.order.max_enumeration_s), or make the problem "
    "smaller: a smaller supercell (structure.order.supercell), fewer orderings (max_candidates; "
    "campaign file: structure.order.max_orderings) or occupancies that need a smaller cell"
)


def test_a_long_ordering_search_is_stopped_at_the_limit():
    import pymatgen.transformations.standard_transformations as standard
    from pymatgen.core.ewald import EwaldMinimizer

    start = time.monotonic()
    with pytest.raises(StructureError) as info:
        order_structure(
            half_empty_rock_salt(), supercell=[2, 2, 1], oxidation_states=OXI, max_enumeration_s=1
        )
    elapsed = time.monotonic() - start
    assert str(info.value) == SLOW.format(limit=1, step="the Ewald branch and bound")
    assert elapsed < 20  # stopped near the limit, not after the ~80 s the search takes
    assert standard.EwaldMinimizer is EwaldMinimizer  # pymatgen's class is back in place


def test_the_limit_also_covers_the_symmetry_filtering():
    # isovalent Na/K disorder: random orderings, then the StructureMatcher loop checks the clock
    s = Structure(
        Lattice.cubic(3.9),
        [{"Na": 0.5, "K": 0.5}, "Ti", "O", "O", "O"],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
    )
    with pytest.raises(StructureError) as info:
        order_structure(
            s,
            [2, 2, 2],
            oxidation_states={"Na": 1, "K": 1, "Ti": 5, "O": -2},
            max_enumeration_s=1e-9,
        )
    assert "stopped during the removal of symmetry-equivalent orderings" in str(info.value)


def atoms(structure: Structure) -> tuple:
    return (
        structure.lattice.matrix.tolist(),
        [site.species_string for site in structure],
        structure.frac_coords.tolist(),
    )


def test_results_within_the_limit_are_unchanged():
    s = half_empty_rock_salt()
    limited = order_structure(s, [2, 1, 1], oxidation_states=OXI, max_enumeration_s=120)
    unlimited = order_structure(s, [2, 1, 1], oxidation_states=OXI, max_enumeration_s=None)
    # same orderings (the provenance differs: it records the limit)
    assert [atoms(c.structure) for c in limited.candidates] == [
        atoms(c.structure) for c in unlimited.candidates
    ]
    assert len(limited.candidates) == 3
    for cand in limited.candidates:
        # 8 Na and 8 Cl sites in the 2x1x1 cell, half of each filled
        assert cand.structure.composition == Composition("Na4Cl4")
        assert count_by_label(cand.structure) == {"Na1": {"Na": 4}, "Cl1": {"Cl": 4}}
    assert limited.settings["max_enumeration_s"] == 120
    assert unlimited.settings["max_enumeration_s"] is None
    with pytest.raises(StructureError, match=r"max_enumeration_s=0; give a positive time or None"):
        order_structure(s, [2, 1, 1], oxidation_states=OXI, max_enumeration_s=0)


def test_campaign_order_settings_reach_the_search(tmp_path):
    cif = tmp_path / "schottky.cif"
    CifWriter(half_empty_rock_salt()).write_file(cif)
    source = FileStructureSource(
        path=cif, order={"supercell": [2, 2, 1], "max_enumeration_s": 0.5, "max_orderings": 20}
    )
    with pytest.raises(StructureError) as info:
        load_structure(source)
    assert "max_enumeration_s = 0.5 s" in str(info.value)
    assert "the 20 lowest asked for" in str(info.value)
    ordered = load_structure(FileStructureSource(path=cif, order={"supercell": [2, 1, 1]}))
    assert ordered.composition == Composition("Na4Cl4")
    step = ordered.properties["provenance"]["steps"][-1]
    assert step["max_enumeration_s"] == 300.0
