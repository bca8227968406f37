"""The Materials Project source: the real mp-api client against a constructed recording.

The HTTP layer is replaced below ``requests`` (see tests/structures/mp_recording.py), so the
client builds its queries, parses the JSON into emmet documents and a pymatgen Structure as it
would against the live API. Nothing here touches the network.
"""

from __future__ import annotations

import math
import sys
from importlib.metadata import version
from urllib.parse import parse_qs, urlsplit

import pytest
from pymatgen.core import Composition

from ctaflow.analysis.structure import describe_structure
from ctaflow.campaign.sources import MPStructureSource
from ctaflow.errors import StructureError
from ctaflow.structures import load_structure
from ctaflow.structures.materials_project import MP_FIELDS, MP_LABEL
from tests.structures.mp_recording import FAKE_KEY, RecordedTransport

pytest.importorskip("mp_api.client", reason="the mp extra: pip install 'ctaflow[mp]'")

DEFAULT_ENDPOINT = "https://api.materialsproject.org/"
OFFLINE = (
    f"could not reach the Materials Project API at {DEFAULT_ENDPOINT} to fetch mp-22862 "
    "(ConnectionError); this source needs network access: check the connection or proxy, or "
    "save the structure elsewhere and use 'source: file' with that CIF"
)


@pytest.fixture
def transport(monkeypatch):
    """Recorded answers instead of the network; the client's per-process caches emptied."""
    from mp_api.client import MPRester
    from mp_api.client.core.client import _Rester

    MPRester.get_emmet_version.cache_clear()
    _Rester._get_heartbeat_info.cache_clear()
    monkeypatch.delenv("MP_API_ENDPOINT", raising=False)
    monkeypatch.setenv("MP_API_KEY", FAKE_KEY)
    fake = RecordedTransport()
    monkeypatch.setattr(
        "requests.adapters.HTTPAdapter.send",
        lambda adapter, request, **kwargs: fake.send(adapter, request, **kwargs),
    )
    yield fake
    MPRester.get_emmet_version.cache_clear()
    _Rester._get_heartbeat_info.cache_clear()


def mp(**kwargs) -> MPStructureSource:
    return MPStructureSource(material_id="mp-22862", **kwargs)


def test_recorded_nacl_is_parsed_into_a_labelled_structure_with_provenance(transport):
    structure = load_structure(mp())
    # the stored primitive fcc cell of rock salt, a = 5.69 Å: |a_i| = a/√2, 60° between them
    assert structure.composition == Composition("NaCl")
    assert structure.lattice.abc == pytest.approx((5.69 / math.sqrt(2),) * 3, abs=1e-9)
    assert structure.lattice.angles == pytest.approx((60.0,) * 3, abs=1e-9)
    assert [s.specie.symbol for s in structure] == ["Na", "Cl"]
    assert structure.frac_coords.tolist() == [[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]]
    assert structure.site_properties["label"] == ["Na1", "Cl1"]
    assert structure.site_properties["host_species"] == ["Na", "Cl"]
    assert structure.properties["provenance"] == {
        "source": "materials project",
        "material_id": "mp-22862",
        "database_version": "constructed-fixture",
        "endpoint": DEFAULT_ENDPOINT,
        "experimental_structure": False,
        "generated": False,
        "dft_relaxed": True,
        "label": MP_LABEL,
        "description": (
            "Materials Project mp-22862 (NaCl, Fm-3m (225)), database version "
            "constructed-fixture: the final structure of the Materials Project's DFT "
            "relaxation, not necessarily the experimental structure"
        ),
        "cell": "as stored by MP",
        "space_group": "Fm-3m (225)",
        "theoretical": False,
        "deprecated": False,
        "energy_above_hull_ev_per_atom": 0.0,
        "mp_api_version": version("mp-api"),
    }
    assert MP_LABEL == (
        "DFT-relaxed Materials Project structure (not necessarily the experimental structure)"
    )
    # what the client asked: heartbeat(s) for the database version, then one summary query
    # for this id and exactly our fields, with the key from the environment
    *beats, query = transport.requests
    assert beats and all(urlsplit(r.url).path == "/heartbeat" for r in beats)
    url = urlsplit(query.url)
    assert (url.scheme, url.netloc, url.path) == (
        "https",
        "api.materialsproject.org",
        "/materials/summary/",
    )
    params = parse_qs(url.query)
    assert params["material_ids"] == ["mp-22862"]
    assert sorted(params["_fields"][0].split(",")) == sorted(MP_FIELDS)
    assert query.headers["x-api-key"] == FAKE_KEY
    # the structure stage records the same provenance and the symmetry
    record = describe_structure(structure)
    assert record.space_group == "Fm-3m (225)"
    assert record.provenance == structure.properties["provenance"]


def test_conventional_cell_on_request(transport):
    structure = load_structure(mp(conventional_cell=True))
    assert structure.composition == Composition("Na4Cl4")
    assert structure.lattice.abc == pytest.approx((5.69,) * 3, abs=1e-9)
    prov = structure.properties["provenance"]
    assert prov["cell"] == "conventional standard (pymatgen)"
    assert prov["description"].endswith("; conventional standard cell (pymatgen)")
    assert sorted(set(structure.site_properties["label"])) == ["Cl1", "Na1"]


def test_missing_key_names_the_variable_and_sends_nothing(transport, monkeypatch):
    monkeypatch.delenv("MP_API_KEY")
    with pytest.raises(StructureError) as info:
        load_structure(mp())
    assert str(info.value) == (
        "structure source 'mp' needs a Materials Project API key in the environment variable "
        "MP_API_KEY, which is not set; get a key at https://materialsproject.org/api and run: "
        "export MP_API_KEY=<your key>"
    )
    with pytest.raises(StructureError, match="environment variable MY_MP_KEY, which is not set"):
        load_structure(mp(api_key_env="MY_MP_KEY"))
    assert transport.requests == []


def test_a_key_of_the_wrong_form_is_refused_by_the_client(transport, monkeypatch):
    monkeypatch.setenv("MP_API_KEY", "too-short")
    with pytest.raises(StructureError) as info:
        load_structure(mp())
    assert str(info.value).startswith(
        "the API key in MP_API_KEY is not a valid Materials Project key: "
    )
    assert "Valid API keys are 32 characters" in str(info.value)
    assert transport.requests == []


def test_unknown_id_is_an_empty_answer(transport):
    with pytest.raises(StructureError) as info:
        load_structure(MPStructureSource(material_id="mp-1"))
    assert str(info.value) == (
        "the Materials Project has no material mp-1 (database version constructed-fixture); "
        "check the id on materialsproject.org"
    )
    assert parse_qs(urlsplit(transport.requests[-1].url).query)["material_ids"] == ["mp-1"]


def test_refused_key(transport):
    transport.mode = "refuse-key"
    with pytest.raises(StructureError) as info:
        load_structure(mp())
    message = str(info.value)
    assert message.startswith(
        "the Materials Project refused the API key in MP_API_KEY (REST query returned with "
        "error status code 403 on URL https://api.materialsproject.org/materials/summary/"
    )
    assert message.endswith("check the key at https://materialsproject.org/api")


@pytest.mark.parametrize("mode", ["offline", "offline-after-heartbeat"])
def test_no_network_says_so(transport, mode):
    transport.mode = mode
    with pytest.raises(StructureError) as info:
        load_structure(mp())
    assert str(info.value) == OFFLINE


def test_client_not_installed_names_the_extra(monkeypatch):
    monkeypatch.setenv("MP_API_KEY", FAKE_KEY)
    monkeypatch.setitem(sys.modules, "mp_api.client", None)  # import fails as if absent
    with pytest.raises(StructureError) as info:
        load_structure(mp())
    message = str(info.value)
    assert message.startswith("structure source 'mp' needs the Materials Project client mp-api (")
    assert message.endswith("); install it with: pip install 'ctaflow[mp]'")
