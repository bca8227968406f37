"""Where a campaign's structure comes from (``structure:``) and its substitution series
(``series:``): the demo structure, a file, a Materials Project id or a structure search, with the
ordering of partial occupancies and the mobile/pillar classification of sites.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator

from ctaflow.settings import Strict, relative_to_campaign


class OrderSettings(Strict):
    """Order partial occupancies into a supercell (pymatgen OrderDisorderedStructureTransformation,
    Ewald ranking); the best-ranked ordering is the campaign's structure."""

    supercell: list[int] | None = Field(
        None, description="[a, b, c] repetitions; None: the smallest that gives whole atoms."
    )
    rank_by: Literal["ewald"] = "ewald"
    n_candidates: int = Field(3, ge=1, description="Distinct orderings kept (best is used).")
    seed: int = 0
    max_orderings: int = Field(
        500, ge=1, description="Lowest-Ewald orderings examined for distinct ones (a cap)."
    )
    max_enumeration_s: float = Field(
        300.0,
        gt=0,
        description="Wall-time limit of the ordering search, s; when reached, loading the "
        "structure fails with a message (nothing is run).",
    )


class ClassifySettings(Strict):
    """Mark sites of a species as mobile or pillar from their connectivity: hops shorter than
    ``hop_cutoff_a`` whose straight path keeps ``min_clearance_a`` from other atoms, percolating
    in at least ``min_dimension`` directions, are mobile."""

    species: str = Field(description="Mobile-ion species, e.g. Na.")
    hop_cutoff_a: float = Field(4.0, gt=0)
    min_clearance_a: float = Field(1.5, ge=0)
    min_dimension: int = Field(1, ge=1, le=3)


class DemoStructureSource(Strict):
    """The built-in demo structure (see ``ctaflow.structures.demo`` for its provenance)."""

    source: Literal["demo"] = "demo"
    name: Literal["Na3OCl-antiperovskite"] = Field(
        "Na3OCl-antiperovskite", description="Which built-in demo structure."
    )
    classify: ClassifySettings | None = None


class FileStructureSource(Strict):
    """A structure file pymatgen can read: CIF, POSCAR/CONTCAR, ...; relative paths are taken
    relative to the campaign file."""

    source: Literal["file"] = "file"
    path: Path = Field(description="Path to the structure file.")
    order: OrderSettings | None = Field(
        None, description="Required when the file has partial occupancies."
    )
    classify: ClassifySettings | None = None

    @field_validator("path")
    @classmethod
    def _resolve_and_check(cls, path: Path, info: ValidationInfo) -> Path:
        path = relative_to_campaign(path, info)
        if not path.is_file():
            raise ValueError(
                f"structure file '{path}' does not exist; give the path of a CIF or POSCAR "
                "file, absolute or relative to the campaign file"
            )
        return path.resolve()


class MPStructureSource(Strict):
    """A Materials Project material, fetched with the mp-api client (``pip install
    'ctaflow[mp]'``) when the campaign is loaded. The API key is read from the environment
    variable named by ``api_key_env``, never from the campaign file.

    The structure is the final (DFT-relaxed) structure of the current database release, not
    necessarily the experimental one; the release is recorded in its provenance. The campaign
    fingerprint identifies the material id, not the release: to freeze the exact structure,
    save it to a file and use ``source: file``.
    """

    source: Literal["mp"] = "mp"
    material_id: str = Field(description="Materials Project id, e.g. mp-22862.")
    api_key_env: str = Field(
        "MP_API_KEY", description="Name of the environment variable that holds the API key."
    )
    conventional_cell: bool = Field(
        False,
        description="Conventional standard cell (pymatgen) instead of the primitive cell the "
        "Materials Project stores.",
    )
    order: OrderSettings | None = Field(
        None, description="Only used when the structure has partial occupancies."
    )
    classify: ClassifySettings | None = None

    @field_validator("material_id")
    @classmethod
    def _looks_like_an_id(cls, material_id: str) -> str:
        material_id = material_id.strip()
        if not re.fullmatch(r"[a-z]+-[0-9a-z]+", material_id):
            raise ValueError(
                f"'{material_id}' is not a Materials Project id; ids look like mp-22862 "
                "(shown on the material's page at materialsproject.org)"
            )
        return material_id

    @field_validator("api_key_env")
    @classmethod
    def _a_variable_name(cls, name: str) -> str:
        if re.fullmatch(r"[A-Za-z0-9]{32}", name) and re.search(r"[a-z]", name):
            raise ValueError(
                "this looks like an API key itself; keep the key out of campaign files: export "
                "it in an environment variable (e.g. MP_API_KEY) and give that variable's name"
            )
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(
                f"'{name}' is not an environment variable name; give one such as MP_API_KEY"
            )
        return name


class CoordinationRuleSettings(Strict):
    """Every ``centre`` atom has exactly ``n`` ``ligand`` atoms within ``cutoff_a`` Å."""

    centre: str = "Si"
    ligand: str = "O"
    n: int = Field(4, ge=0)
    cutoff_a: float = Field(2.0, gt=0)


class SearchStructureSource(Strict):
    """A generated model from ctaflow's structure search
    (:func:`ctaflow.structures.search.search_structures`): ``n_candidates`` pyxtal random
    crystals of ``composition`` in the given space groups and formula units per cell, relaxed
    (cell and positions) with the embedded CHGNet, filtered by the coordination rules and
    ranked by energy per atom; the best-ranked candidate is the campaign's structure.

    When it runs: when the campaign is loaded (``ctaflow validate``, ``run``, ``submit``),
    before the flow is built, like reading a file. Then the structure is validated at the edge
    (a failed search writes nothing to the store), every stage is built from a concrete
    structure as for the other sources (composition metadata, elements, classification), and
    the campaign fingerprint and stage hashes are these settings
    (``CampaignSettings.structure_identity``), known before anything runs. As a job inside the
    flow, the search would need every later stage replaced at run time and its errors would
    surface after the store is opened. The cost: each load searches again. That is
    reproducible: one generator seeded with ``seed`` drives pyxtal, and CHGNet runs on the CPU
    with ``threads`` threads, so the same settings give the same structure (tested) and a
    resumed run rebuilds the same flow from it. Every setting, the seed and the ranking table
    are in the structure's provenance, labelled a generated model, not the experimental
    structure.
    """

    source: Literal["search"] = "search"
    composition: str = Field(description="Formula of one formula unit, e.g. Na3OCl.")
    space_groups: list[Annotated[int, Field(ge=1, le=230)]] = Field(
        min_length=1, description="International space group numbers to generate in."
    )
    formula_units: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=lambda: [2], min_length=1, description="Formula units per cell."
    )
    n_candidates: int = Field(4, ge=1, description="Relaxed candidates compared.")
    seed: int = Field(0, description="Seed of the random crystal generation.")
    steps: int = Field(200, ge=1, description="Maximum relaxation steps per candidate.")
    fmax_ev_per_a: float = Field(0.05, gt=0, description="Relaxation force criterion, eV/Å.")
    keep_symmetry: bool = Field(True, description="Keep the generated space group (relax).")
    coordination: list[CoordinationRuleSettings] = Field(
        default_factory=lambda: [CoordinationRuleSettings()],
        description="Filter rules (default: SiO4 tetrahedra; no Si: nothing to check).",
    )
    volume_factor: float = Field(1.1, gt=0, description="pyxtal volume factor.")
    max_generation_attempts: int = Field(10, ge=1, description="pyxtal attempts per pair.")
    model: Literal["CHGNet"] = Field("CHGNet", description="Embedded MLIP of the relaxation.")
    model_version: Literal["0.3.0", "0.2.0"] = Field(
        "0.3.0", description="Weights bundled with the chgnet wheel."
    )
    threads: int = Field(1, ge=1, description="torch CPU threads of the relaxations.")
    classify: ClassifySettings | None = None


StructureSource = Annotated[
    DemoStructureSource | FileStructureSource | MPStructureSource | SearchStructureSource,
    Field(discriminator="source"),
]


class SeriesSettings(Strict):
    """Substitution series (study: Na5SmSi4O12 → Li5SmSi4O12 in five even steps), built on the
    training-data supercell; arrangements ranked by Ewald energy (spread for isovalent swaps)."""

    replace: str = Field("Na", description="Element replaced.")
    by: str = Field("Li", description="Element put in its place.")
    sites: str | list[str] = Field(
        "all", description="'all', a site class (e.g. mobile) or site labels."
    )
    n_compositions: int = Field(5, ge=2, description="Members including both end members.")
    n_samples: int = Field(20, ge=1, description="Arrangements sampled per composition.")
    seed: int = 0
