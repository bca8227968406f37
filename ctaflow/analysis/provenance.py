"""Software versions and other provenance attached to every result."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

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
