"""A correction to pymatgen's INCAR type table, applied where ctaflow writes or reads INCARs.

pymatgen (2026.10.24) declares ``SPRING`` an integer in ``incar_parameters.json``: ``Incar`` turns
``SPRING = -0.1`` into ``0`` when the tag is set, read or rewritten, i.e. when atomate2 writes NEB
inputs, when a custodian handler rewrites the INCAR and when emmet parses it. VASP's ``SPRING``
is a real number (eV/Å²; −5 by default), and 0 is not a nudged elastic band. The table entry is
set to ``float`` (only if it still says ``int``), which keeps whole numbers working as before.
"""

from __future__ import annotations

from pymatgen.io.vasp import Incar

#: INCAR tags that VASP reads as real numbers but pymatgen's table declares integers
REAL_TAGS = ("SPRING",)


def use_real_incar_tags() -> None:
    """Make pymatgen's ``Incar`` keep :data:`REAL_TAGS` as floats (idempotent)."""
    for tag in REAL_TAGS:
        entry = Incar.INCAR_PARAMS.get(tag)
        if entry is not None and entry.get("type") == "int":
            entry["type"] = "float"
