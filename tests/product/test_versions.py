"""Port versions and consumers' ranges: `product/versions.py` is the one parser.

Caret ranges follow npm and cargo, including below 1.0.0 (docs/versioning.md).
"""

from __future__ import annotations

import pytest

from mesh_assets.product.versions import Semver, caret_bounds, coerce, major_of, parse_range, satisfies


@pytest.mark.parametrize(
    ("caret", "explicit"),
    [
        ("^2", ">=2.0.0,<3.0.0"),
        ("^2.1.0", ">=2.1.0,<3.0.0"),
        ("^1.4", ">=1.4.0,<2.0.0"),
        ("^0.2.3", ">=0.2.3,<0.3.0"),
        ("^0.2", ">=0.2.0,<0.3.0"),
        ("^0.0.3", ">=0.0.3,<0.0.4"),
        ("^0.0", ">=0.0.0,<0.1.0"),
        ("^0", ">=0.0.0,<1.0.0"),
    ],
)
def test_a_caret_range_has_npm_and_cargo_bounds(caret: str, explicit: str) -> None:
    assert parse_range(caret) == parse_range(explicit)


@pytest.mark.parametrize(
    ("version_range", "inside", "outside"),
    [
        ("^0.2.3", ["0.2.3", "0.2.9"], ["0.2.2", "0.3.0", "1.0.0"]),
        ("^0.0.3", ["0.0.3"], ["0.0.2", "0.0.4", "0.1.0"]),
        ("^0", ["0.0.0", "0.1.0", "0.9.9"], ["1.0.0"]),
        ("^0.3", ["0.3.0", "0.3.7"], ["0.2.9", "0.4.0"]),
    ],
)
def test_a_0x_caret_range_accepts_exactly_its_versions(
    version_range: str, inside: list[str], outside: list[str]
) -> None:
    assert [v for v in inside + outside if satisfies(v, version_range)] == inside


def test_caret_bounds_are_none_for_other_ranges() -> None:
    assert caret_bounds(">=1.0.0,<2.0.0") is None
    assert caret_bounds("^0.2.3") == (Semver(0, 2, 3), Semver(0, 3, 0))


def test_a_version_is_strict_semver_and_orders_numerically() -> None:
    assert Semver.parse("2.10.0") > Semver.parse("2.9.1")
    assert str(Semver.parse(" 1.4.0 ")) == "1.4.0"
    assert Semver.parse("1.4.0").minor == 4
    for text in ["2.1", "v2.1.0", "2.1.0-rc1", "01.0.0"]:
        with pytest.raises(ValueError, match="is not a version"):
            Semver.parse(text)


def test_loose_versions_are_coerced_and_majors_read() -> None:
    assert coerce("v2") == Semver(2, 0, 0)
    assert coerce("2.1") == Semver(2, 1, 0)
    assert coerce("V1.2.3") == Semver(1, 2, 3)
    assert coerce("two") is None
    assert [major_of(t) for t in ["2", "v2", "^2", "2.1.0", "2.x", "x"]] == [2, 2, 2, 2, 2, None]
