"""Report tables carry the verdict of their records, headers carry units, and the HTML page
renders what the Markdown says (status rows, footnote links, inline Markdown, captions)."""

from __future__ import annotations

import re

import pytest

from ctaflow.report.build import reference_lines, to_markdown
from ctaflow.report.format import drawable, table
from ctaflow.report.html import inline, to_html
from ctaflow.report.labels import label, split_unit


@pytest.mark.parametrize(
    ("field", "header"),
    [
        (
            "delta_e_amorphous_minus_crystalline_mev_per_atom",
            "ΔE amorphous − crystalline (meV/atom)",
        ),
        ("gamma_j_per_m2", "γ (J/m²)"),
        ("conductivity_s_per_cm", "σ (S/cm)"),
        ("diffusivity_cm2_per_s", "D (cm²/s)"),
        ("forward_barrier_ev", "barrier forward (eV)"),
        ("max_force_ev_per_a", "max force (eV/Å)"),
        ("rmse_force_mev_per_a", "RMSE force (meV/Å)"),
        ("area_a2", "area (Å²)"),
        ("volume_a3", "volume (Å³)"),
        ("strain_pct", "strain (%)"),
        ("mean_pressure_gpa", "mean P (GPa)"),
        ("neb_elapsed_s", "NEB wall time (s)"),
        ("total_energy_slope_ev_per_atom_per_ps", "E total drift (eV/atom/ps)"),
        ("n_atoms", "atoms"),  # "atoms" is a word, not "atom" + a unit
        ("converged", "converged"),
        ("some_new_quantity_k", "some new quantity (K)"),  # no label yet: the stem, with unit
    ],
)
def test_headers_are_labels_with_units(field, header):
    assert label(field) == header


def test_the_longest_unit_suffix_wins():
    assert split_unit("energy_per_atom_ev") == ("energy_per_atom", "eV")
    assert split_unit("rmse_energy_mev_per_atom") == ("rmse_energy", "meV/atom")
    assert split_unit("hop_length_a") == ("hop_length", "Å")
    assert split_unit("formula") == ("formula", None)


ROWS = [
    {"species": "Na", "barrier_ev": 0.21, "status": "valid", "reasons": []},
    {"species": "Li", "barrier_ev": 0.174, "status": "flagged", "reasons": ["two maxima"]},
    {"species": "K", "barrier_ev": 0.5, "status": "excluded", "reasons": ["end not a minimum"]},
    {"species": "Rb", "barrier_ev": 0.6, "status": "excluded", "reasons": ["end not a minimum"]},
    {"species": "Cs", "barrier_ev": None, "status": "ok"},  # an older check's word for valid
]


def test_a_status_table_marks_rows_numbers_its_reasons_and_strikes_excluded_numbers():
    lines = table(ROWS, ("species", "barrier_ev"))
    assert lines[0] == "| status | species | barrier (eV) |"
    assert lines[2:7] == [
        "| ✓ valid | Na | 0.21 |",
        "| ⚠ flagged [1] | Li | 0.174 |",
        "| ✗ excluded [2] | K | ~~0.5~~ |",
        "| ✗ excluded [2] | Rb | ~~0.6~~ |",  # the same reasons share a number
        "| ✓ valid | Cs |  |",  # missing stays empty, never 0
    ]
    assert lines[7:] == ["", "- [1] two maxima", "- [2] end not a minimum"]


def test_records_without_a_status_render_as_before():
    rows = [{"formula": "Na3ClO", "x": 0.0}, {"formula": "Li|Na", "x": 1.0}]
    assert table(rows, ("formula", "x")) == [
        "| formula | x |",
        "|---|---|",
        "| Na3ClO | 0 |",
        "| Li\\|Na | 1 |",  # a '|' in a value cannot break the table
    ]


def test_figures_get_only_drawable_records():
    assert [r["species"] for r in drawable(ROWS, "barrier_ev")] == ["Na", "Li"]


def test_html_status_rows_footnote_links_and_struck_numbers():
    page = to_html("\n".join(["## Barriers", "", *table(ROWS, ("species", "barrier_ev"))]))
    rows = re.findall(r"<tr[^>]*>.*?</tr>", page)
    flagged = next(r for r in rows if ">Li<" in r)
    assert flagged.startswith("<tr class='flagged'>")
    assert "<td class='status'>⚠ flagged <a href='#t1-1'>[1]</a></td>" in flagged
    excluded = next(r for r in rows if ">K<" in r)
    assert excluded.startswith("<tr class='excluded'>") and "<del>0.5</del>" in excluded
    assert "<li id='t1-1'>[1] two maxima</li>" in page  # the link's target, under the table
    assert "<li id='t1-2'>[2] end not a minimum</li>" in page
    assert page.count("<div class='table-wrap'>") == 1


def test_inline_markdown_is_rendered_and_html_escaped():
    assert inline("**bold** and `a<b` and *x*") == (
        "<strong>bold</strong> and <code>a&lt;b</code> and <em>x</em>"
    )
    assert inline("D* (cm²/s) and 2*3") == "D* (cm²/s) and 2*3"  # lone stars stay


def test_figures_are_captioned_in_markdown_and_html():
    from ctaflow.report.build import report_keys

    report = {key: [] for key in report_keys()}
    report["relaxations"] = [{"formula": "NaCl", "engine": "e"}]
    text = to_markdown(report, {"relaxations": {"r.png": "Energy per **atom**"}})
    assert "![r.png](r.png)\n\n*Figure 1. Energy per **atom***" in text
    page = to_html(text, {"r.png": b"\x89PNG"})
    assert "<figcaption>Figure 1. Energy per <strong>atom</strong></figcaption></figure>" in page
    assert "**" not in page


def test_the_reference_section_appears_only_when_the_campaign_declares_one():
    from ctaflow.report.build import report_keys

    report = {key: [] for key in report_keys()}
    assert "reference" not in to_markdown(report).lower()
    assert "Na5SmSi4O12" not in to_markdown(report)
    values = [{"quantity": "Ea", "value": 0.15, "unit": "eV", "source": "impedance"}]
    text = to_markdown(report, reference=values)
    assert "## Experimental reference (context only)" in text
    assert "| Ea | 0.15 | eV | impedance |" in reference_lines(values)


def test_one_number_of_a_sound_record_can_carry_its_own_verdict():
    meaningless = "elemental references the model never saw"
    rows = [
        {
            "formula": "Na3ClO",
            "delta_e_mev_per_atom": 12.5,
            "formation_energy_ev_per_atom": -0.064,
            "field_verdicts": {
                "formation_energy_ev_per_atom": {"status": "flagged", "reason": meaningless}
            },
        },
        {
            "formula": "Li3ClO",
            "delta_e_mev_per_atom": 9.0,
            "formation_energy_ev_per_atom": -0.077,
            "field_verdicts": {
                "formation_energy_ev_per_atom": {"status": "excluded", "reason": meaningless}
            },
        },
    ]
    lines = table(rows, ("formula", "delta_e_mev_per_atom", "formation_energy_ev_per_atom"))
    assert lines[2:] == [
        "| Na3ClO | 12.5 | ⚠ -0.064 [1] |",
        "| Li3ClO | 9 | ~~-0.077~~ [1] |",
        "",
        f"- [1] {meaningless}",
    ]
    page = to_html("\n".join(lines))
    assert "⚠ -0.064 <a href='#t1-1'>[1]</a>" in page and f"<li id='t1-1'>[1] {meaningless}" in page
    from ctaflow.report.format import by_status

    groups = by_status(rows, "formation_energy_ev_per_atom")
    assert [r["formula"] for r in groups["flagged"]] == ["Na3ClO"]  # Li3ClO's is excluded
    assert groups["valid"] == []
    assert len(by_status(rows, "delta_e_mev_per_atom")["valid"]) == 2
