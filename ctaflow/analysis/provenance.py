"""Software versions and other provenance attached to every result."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

CORE_PACKAGES = ("ctaflow", "atomate2", "jobflow", "pymatgen", "maggma", "ase", "custodian")


def software_versions(packages: tuple[str, ...] = CORE_PACKAGES) -> dict[str, str]:
    """Installed versions of ``packages`` ("not installed" where missing)."""
    out = {}
    for pkg in packages:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def sources_fingerprint(root: Path) -> str:
    """SHA-256 (16 hex digits) of the Python sources under ``root`` (relative paths and
    contents, in sorted order)."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@lru_cache(maxsize=1)
def source_fingerprint() -> str:
    """:func:`sources_fingerprint` of the installed ctaflow package: what the job graphs are
    built by (computed once per process)."""
    return sources_fingerprint(Path(__file__).resolve().parents[1])
