"""What a fitness function says: the six characteristics, which are mandatory, and a verdict per product."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Characteristic(StrEnum):
    """The six characteristics of a data product (Dehghani's DAUTNIVS, minus "valuable on its own")."""

    SELF_DESCRIBING = "self_describing"
    ADDRESSABLE = "addressable"
    DISCOVERABLE = "discoverable"
    SECURE = "secure"
    TRUSTWORTHY = "trustworthy"
    INTEROPERABLE = "interoperable"

    @property
    def label(self) -> str:
        """How the characteristic is written for people."""
        return self.value.replace("_", "-")


MANDATORY: frozenset[Characteristic] = frozenset(
    {
        Characteristic.ADDRESSABLE,
        Characteristic.SECURE,
        Characteristic.TRUSTWORTHY,
        Characteristic.INTEROPERABLE,
    }
)
"""Characteristics every product must pass: `mesh fitness` exits 1 when one fails (platform config)."""


@dataclass(frozen=True)
class Verdict:
    """One characteristic of one product: pass or fail, and why."""

    passed: bool
    reason: str
    gating: bool = True
    """Whether a failure may gate (`mesh fitness` exit 1). False when only the calendar made it red."""


@dataclass(frozen=True)
class Result:
    """A verdict for a named characteristic, and whether the platform makes it mandatory."""

    characteristic: Characteristic
    passed: bool
    reason: str
    mandatory: bool
