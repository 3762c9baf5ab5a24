"""`mesh doctor`: are the installed versions of the platform's engines the ones pyproject.toml allows?"""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

from mesh_assets.infra.doctor.report import CheckResult, failed, passed

CHECK = "versions"

PACKAGES: dict[str, tuple[str, ...]] = {
    "duckdb": ("duckdb", "dbt-core", "dbt-duckdb", "dagster"),
    "snowflake": ("dagster", "dagster-snowflake", "dbt-core", "dbt-snowflake", "snowflake-connector-python"),
}
"""The distributions each target runs on, in the order they are reported."""


def declared_ranges(root: Path) -> dict[str, str]:
    """Distribution name (lowercase) -> the version range pyproject.toml declares for it.

    The checkout's pyproject.toml when there is one (what `make` installs from), else the installed
    `mesh` distribution's metadata.
    """
    from packaging.requirements import Requirement

    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        project = tomllib.loads(pyproject.read_text()).get("project", {})
        lines = [*project.get("dependencies", [])]
        for extra in project.get("optional-dependencies", {}).values():
            lines.extend(extra)
    else:
        lines = metadata.requires("mesh") or []
    ranges: dict[str, str] = {}
    for line in lines:
        requirement = Requirement(line)
        ranges.setdefault(requirement.name.lower(), str(requirement.specifier))
    return ranges


def check_versions(target: str, root: Path) -> CheckResult:
    """Each engine of `target` is installed at a version inside its declared range."""
    from packaging.specifiers import SpecifierSet

    ranges = declared_ranges(root)
    seen: list[str] = []
    wrong: list[str] = []
    for name in PACKAGES[target]:
        wanted = ranges.get(name, "")
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            wrong.append(f"{name} not installed (wants {wanted or 'any'})")
            continue
        if wanted and not SpecifierSet(wanted).contains(installed, prereleases=True):
            wrong.append(f"{name} {installed} outside {wanted}")
        else:
            seen.append(f"{name} {installed}" + (f" ({wanted})" if wanted else ""))
    if wrong:
        return failed(
            CHECK,
            "; ".join(wrong + seen),
            "reinstall the pinned versions: `make setup` (pip install -c requirements.lock -e '.[dev]')",
        )
    return passed(CHECK, ", ".join(seen))
