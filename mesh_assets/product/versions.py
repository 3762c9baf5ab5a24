"""Semantic version ranges for input ports: which published port versions a consumer accepts."""

from __future__ import annotations

import re

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

_CARET = re.compile(r"^\^(\d+)(?:\.(\d+))?(?:\.(\d+))?$")


class VersionRangeError(ValueError):
    """A version range that cannot be parsed."""


def parse_range(text: str) -> SpecifierSet:
    """Parse a range: PEP 440 style (`>=1.0.0,<2.0.0`, `==2.*`, `~=1.2`) or npm caret (`^2`, `^1.4`)."""
    text = text.strip()
    caret = _CARET.match(text)
    if caret:
        major, minor, patch = (int(g) if g else 0 for g in caret.groups())
        # npm semantics: below 1.0.0 every minor may break, so ^0.3 stays within 0.3.x.
        upper = f"{major + 1}.0.0" if major > 0 else f"0.{minor + 1}.0"
        text = f">={major}.{minor}.{patch},<{upper}"
    try:
        return SpecifierSet(text)
    except InvalidSpecifier as exc:
        raise VersionRangeError(
            f"'{text}' is not a version range; write e.g. '>=1.0.0,<2.0.0', '^2' or '==2.*'"
        ) from exc


def satisfies(version: str, version_range: str) -> bool:
    """Whether a port version is inside a consumer's range."""
    return parse_range(version_range).contains(Version(version), prereleases=True)
