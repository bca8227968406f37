"""Structures from the Materials Project, through the official mp-api client.

The client is an optional dependency (``pip install 'ctaflow[mp]'``: mp-api pulls pyarrow and
deltalake, ~96 MB of wheels, which no other part of ctaflow needs). The API key comes from an
environment variable, never from a campaign file.

What is fetched: ``MPRester().materials.summary.search(material_ids=[id], fields=MP_FIELDS)``,
the material's summary document of the current database release. Its ``structure`` is the final
structure of the Materials Project's DFT relaxation (GGA/GGA+U or r2SCAN), so lattice parameters
carry the functional's error (PBE overestimates them by ~1-2 %) and the structure is not
necessarily the experimental one; the provenance says so and records the database release.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from ctaflow.errors import StructureError
from ctaflow.structures._common import label_by_orbit

if TYPE_CHECKING:
    from pymatgen.core import Structure

logger = logging.getLogger(__name__)

#: summary-document fields requested (emmet-core ``SummaryDoc``)
MP_FIELDS = [
    "material_id",
    "formula_pretty",
    "structure",
    "symmetry",
    "theoretical",
    "deprecated",
    "energy_above_hull",
]

MP_LABEL = "DFT-relaxed Materials Project structure (not necessarily the experimental structure)"

INSTALL_HINT = "pip install 'ctaflow[mp]'"


def fetch_mp_structure(
    material_id: str,
    api_key_env: str = "MP_API_KEY",
    conventional_cell: bool = False,
    endpoint: str | None = None,
) -> Structure:
    """The structure of ``material_id`` with labels and provenance.

    Parameters
    ----------
    material_id
        Materials Project id, e.g. ``"mp-22862"``.
    api_key_env
        Environment variable that holds the API key.
    conventional_cell
        Return pymatgen's conventional standard cell instead of the stored (primitive) cell.
    endpoint
        API address; ``None``: the client's default (``MP_API_ENDPOINT`` or
        https://api.materialsproject.org/).

    Raises
    ------
    StructureError
        mp-api not installed, no API key, the key refused, no network, an unknown id.
    """
    try:
        from mp_api.client import MPRester
        from mp_api.client.core import MPRestError
    except ImportError as exc:
        raise StructureError(
            f"structure source 'mp' needs the Materials Project client mp-api ({exc}); install "
            f"it with: {INSTALL_HINT}"
        ) from None
    api_key = os.environ.get(api_key_env, "").strip()
    if not api_key:
        raise StructureError(
            f"structure source 'mp' needs a Materials Project API key in the environment "
            f"variable {api_key_env}, which is not set; get a key at "
            f"https://materialsproject.org/api and run: export {api_key_env}=<your key>"
        )
    try:
        with MPRester(api_key=api_key, endpoint=endpoint, mute_progress_bars=True) as mpr:
            where = mpr.endpoint
            db_version = mpr.db_version or None
            docs = mpr.materials.summary.search(material_ids=[material_id], fields=MP_FIELDS)
    except Exception as exc:  # the client raises requests and MPRestError alike
        raise _mp_error(exc, material_id, api_key_env, endpoint, MPRestError) from None
    if not docs:
        raise StructureError(
            f"the Materials Project has no material {material_id} (database version "
            f"{db_version or 'unknown'}); check the id on materialsproject.org"
        )
    doc = docs[0]
    structure = doc.structure
    if conventional_cell:
        from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

        structure = SpacegroupAnalyzer(structure).get_conventional_standard_structure()
    structure = label_by_orbit(structure)
    structure.properties = {
        "provenance": mp_provenance(doc, db_version, where, conventional_cell),
    }
    if _field(doc, "deprecated"):
        logger.warning("Materials Project material %s is marked deprecated", material_id)
    return structure


def mp_provenance(
    doc: Any, db_version: str | None, endpoint: str, conventional_cell: bool
) -> dict[str, Any]:
    """Provenance of a structure taken from a summary document ``doc``."""
    from importlib.metadata import version

    symmetry = _field(doc, "symmetry")
    space_group = (
        f"{symmetry.symbol} ({symmetry.number})" if symmetry is not None else "not returned"
    )
    material_id = str(doc.material_id)
    e_hull = _field(doc, "energy_above_hull")
    theoretical = _field(doc, "theoretical")
    return {
        "source": "materials project",
        "material_id": material_id,
        "database_version": db_version,
        "endpoint": endpoint,
        "experimental_structure": False,
        "generated": False,
        "dft_relaxed": True,
        "label": MP_LABEL,
        "description": (
            f"Materials Project {material_id} ({_field(doc, 'formula_pretty')}, {space_group}), "
            f"database version {db_version or 'unknown'}: the final structure of the Materials "
            "Project's DFT relaxation, not necessarily the experimental structure"
            + (
                "; the Materials Project marks it theoretical (no matching ICSD entry)"
                if theoretical
                else ""
            )
            + ("; conventional standard cell (pymatgen)" if conventional_cell else "")
        ),
        "cell": "conventional standard (pymatgen)" if conventional_cell else "as stored by MP",
        "space_group": space_group,
        "theoretical": theoretical,
        "deprecated": _field(doc, "deprecated"),
        "energy_above_hull_ev_per_atom": e_hull,
        "mp_api_version": version("mp-api"),
    }


def _field(doc: Any, name: str) -> Any:
    """A field of an mp-api document, None when the server did not return it."""
    try:
        return getattr(doc, name)
    except AttributeError:  # mp-api raises for fields absent from the response
        return None


def _mp_error(
    exc: Exception, material_id: str, api_key_env: str, endpoint: str | None, rest_error: type
) -> StructureError:
    """One message for what went wrong while talking to the Materials Project."""
    import requests

    where = endpoint or os.environ.get("MP_API_ENDPOINT") or "https://api.materialsproject.org/"
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    network = next((e for e in chain if isinstance(e, requests.RequestException)), None)
    if network is not None:
        return StructureError(
            f"could not reach the Materials Project API at {where} to fetch {material_id} "
            f"({type(network).__name__}); this source needs network access: check the "
            "connection or proxy, or save the structure elsewhere and use "
            "'source: file' with that CIF"
        )
    text = str(exc)
    if isinstance(exc, rest_error) and any(f"status code {c}" in text for c in (401, 403)):
        return StructureError(
            f"the Materials Project refused the API key in {api_key_env} ({text.splitlines()[0]});"
            f" check the key at https://materialsproject.org/api"
        )
    if isinstance(exc, rest_error) and "API key" in text:
        return StructureError(
            f"the API key in {api_key_env} is not a valid Materials Project key: {text}"
        )
    return StructureError(
        f"the Materials Project query for {material_id} failed: {type(exc).__name__}: "
        f"{text.splitlines()[0] if text else ''}"
    )
