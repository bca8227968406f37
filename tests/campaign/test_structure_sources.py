"""Campaign files with the Materials Project and structure-search sources."""

from __future__ import annotations

from tests.campaign.test_schema import _error, _load

MP = """\
name: mp
structure: {source: mp, material_id: mp-22862}
stages:
  relax: {enabled: false}
"""


def test_mp_source_defaults_and_identity(tmp_path):
    settings = _load(tmp_path, MP)
    assert settings.structure.api_key_env == "MP_API_KEY"
    assert settings.structure.conventional_cell is False
    assert settings.structure_identity() == {
        "source": "mp",
        "material_id": "mp-22862",
        "api_key_env": "MP_API_KEY",
        "conventional_cell": False,
        "order": None,
        "classify": None,
    }
    other = _load(tmp_path, MP.replace("mp-22862", "mp-2352"))
    assert other.fingerprint != settings.fingerprint
    assert _load(tmp_path, MP).fingerprint == settings.fingerprint


def test_mp_id_and_key_variable_are_checked(tmp_path):
    where = f"invalid campaign:\n  {tmp_path / 'c.yaml'}:2: "
    msg = _error(tmp_path, MP.replace("mp-22862", "'22862'"))
    assert msg == where + (
        "structure.material_id: '22862' is not a Materials Project id; ids look like mp-22862 "
        "(shown on the material's page at materialsproject.org)"
    )
    key = "abcdefghijklmnopqrstuvwxyz012345"  # 32 characters, like an API key
    msg = _error(tmp_path, MP.replace("mp-22862}", f"mp-22862, api_key_env: {key}}}"))
    assert msg == where + (
        "structure.api_key_env: this looks like an API key itself; keep the key out of campaign "
        "files: export it in an environment variable (e.g. MP_API_KEY) and give that variable's "
        "name"
    )
    assert key not in msg
    msg = _error(tmp_path, MP.replace("mp-22862}", "mp-22862, api_key_env: MP-KEY}"))
    assert msg == where + (
        "structure.api_key_env: 'MP-KEY' is not an environment variable name; give one such as "
        "MP_API_KEY"
    )
    msg = _error(tmp_path, MP.replace("mp-22862}", "mp-22862, apikey: x}"))
    assert msg == where + (
        "structure.apikey: unknown key 'apikey'; allowed keys here: api_key_env, classify, "
        "conventional_cell, material_id, order, source"
    )


def test_search_source_settings_are_checked_and_identify_the_structure(tmp_path):
    where = f"invalid campaign:\n  {tmp_path / 'c.yaml'}:2: "

    def text(body):
        return f"name: s\nstructure: {body}\n"

    msg = _error(tmp_path, text("{source: search, composition: NaCl, space_groups: [225, 231]}"))
    assert msg == where + "structure.space_groups.1: Input should be less than or equal to 230"
    msg = _error(tmp_path, text("{source: search, space_groups: [225]}"))
    assert msg == where + "structure.composition: required key is missing"
    settings = _load(tmp_path, text("{source: search, composition: NaCl, space_groups: [225]}"))
    # every setting, defaults included, is part of the campaign's identity
    assert settings.structure_identity() == {
        "source": "search",
        "composition": "NaCl",
        "space_groups": [225],
        "formula_units": [2],
        "n_candidates": 4,
        "seed": 0,
        "steps": 200,
        "fmax_ev_per_a": 0.05,
        "keep_symmetry": True,
        "coordination": [{"centre": "Si", "ligand": "O", "n": 4, "cutoff_a": 2.0}],
        "volume_factor": 1.1,
        "max_generation_attempts": 10,
        "model": "CHGNet",
        "model_version": "0.3.0",
        "threads": 1,
        "classify": None,
    }
