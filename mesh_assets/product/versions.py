"""Port versions and the version ranges consumers accept: the one place versions are parsed.

A port's version is strict `MAJOR.MINOR.PATCH` (the spec's `SEMVER` pattern); `Semver` reads it, orders
versions and names their parts. A consumer's range is PEP 440 (`>=1.0.0,<2.0.0`, `==2.*`, `~=1.2`) or an
npm/cargo caret (`^2`, `^1.4`, `^0.2.3`), evaluated with `packaging`, which the code location imports
anyway. The `semver` package is not used: ranges need `packaging` (it has no `==2.*` or comma sets), and
a strict three-part version is one regex, so it would add an import (~10 ms) for nothing.

Caret ranges follow npm and cargo: the left-most non-zero part (or the last part written) may not change.

| range | means |
|---|---|
| `^2`, `^2.1.0` | `>=2.0.0,<3.0.0`, `>=2.1.0,<3.0.0` |
| `^0.2.3`, `^0.2` | `>=0.2.3,<0.3.0`, `>=0.2.0,<0.3.0` |
| `^0.0.3` | `>=0.0.3,<0.0.4` |
| `^0.0` | `>=0.0.0,<0.1.0` |
| `^0` | `>=0.0.0,<1.0.0` |
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

SEMVER = r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$"
"""A port version, `MAJOR.MINOR.PATCH` without leading zeros (also the spec schema's pattern)."""
_SEMVER = re.compile(SEMVER)
_CARET = re.compile(r"^\^(\d+)(?:\.(\d+))?(?:\.(\d+))?$")
_LOOSE = re.compile(r"^[vV]?(\d+)(?:\.(\d+))?(?:\.(\d+))?$")


class VersionRangeError(ValueError):
    """A version range that cannot be parsed."""


class Semver(NamedTuple):
    """A strict `MAJOR.MINOR.PATCH` version; tuples order as versions do."""

    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> Semver:
        """Read `2.1.0`; raise ValueError on anything else (`2.1`, `v2.1.0`, `2.1.0-rc1`)."""
        match = _SEMVER.match(text.strip())
        if not match:
            raise ValueError(f"'{text}' is not a version; write MAJOR.MINOR.PATCH, e.g. '2.1.0'")
        return cls(*(int(part) for part in match.groups()))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


def coerce(text: str) -> Semver | None:
    """Read a loosely written version (`v2`, `2.1`, `V2.1.0`) as `MAJOR.MINOR.PATCH`, missing parts 0."""
    match = _LOOSE.match(text.strip())
    if not match:
        return None
    return Semver(*(int(part) if part else 0 for part in match.groups()))


def major_of(text: str) -> int | None:
    """The major a version or a reference to one names: `2`, `v2`, `^2`, `2.1.0`, `2.x` → 2; else None."""
    head = text.strip().lstrip("v^").split(".")[0]
    return int(head) if head.isdigit() else None


def caret_bounds(text: str) -> tuple[Semver, Semver] | None:
    """`(lowest, first excluded)` of a caret range (`^0.2.3` → 0.2.3, 0.3.0); None if not a caret."""
    caret = _CARET.match(text.strip())
    if not caret:
        return None
    written = [int(part) for part in caret.groups() if part is not None]
    major, minor, patch = [*written, 0, 0][:3]
    # The left-most non-zero part is the compatibility boundary; when all written parts are zero, the
    # last one written is (`^0` → <1.0.0, `^0.0` → <0.1.0, `^0.0.3` → <0.0.4), as in npm and cargo.
    if major > 0 or len(written) == 1:
        upper = Semver(major + 1, 0, 0)
    elif minor > 0 or len(written) == 2:
        upper = Semver(0, minor + 1, 0)
    else:
        upper = Semver(0, 0, patch + 1)
    return Semver(major, minor, patch), upper


def parse_range(text: str) -> SpecifierSet:
    """Parse a range: PEP 440 style (`>=1.0.0,<2.0.0`, `==2.*`, `~=1.2`) or npm caret (`^2`, `^1.4`)."""
    text = text.strip()
    bounds = caret_bounds(text)
    if bounds:
        text = f">={bounds[0]},<{bounds[1]}"
    try:
        return SpecifierSet(text)
    except InvalidSpecifier as exc:
        raise VersionRangeError(
            f"'{text}' is not a version range; write e.g. '>=1.0.0,<2.0.0', '^2' or '==2.*'"
        ) from exc


@lru_cache(maxsize=8192)
def satisfies(version: str, version_range: str) -> bool:
    """Whether a port version is inside a consumer's range (cached: resolving inputs asks it often)."""
    return parse_range(version_range).contains(Version(version), prereleases=True)
