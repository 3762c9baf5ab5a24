"""The contract diff's vocabulary: the kinds of change it recognises, its rule tables, and a `Change`
with the `Consumer`s it affects.

The tables say, per rule, what a version bump must be, which spec field a product-wide change is about
and how to resolve it when it breaks; the judges (`diff_schema`, `diff_promises`, `diff_lifecycle`,
`diff_versions`) only decide which rule a difference hits and whether it breaks.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mesh_assets.product.spec import DataProductSpec, ProductInput


class Rule(StrEnum):
    """The kinds of contract change the diff recognises (the `rule` of a `Change`)."""

    # Columns and keys of one port.
    COLUMN_REMOVED = "column_removed"
    COLUMN_RENAMED = "column_renamed"
    COLUMN_ADDED = "column_added"
    COLUMNS_REORDERED = "columns_reordered"
    TYPE_NARROWED = "type_narrowed"
    TYPE_CHANGED = "type_changed"
    TYPE_WIDENED = "type_widened"
    BECAME_NULLABLE = "became_nullable"
    BECAME_NOT_NULL = "became_not_null"
    NO_LONGER_UNIQUE = "no_longer_unique"
    BECAME_UNIQUE = "became_unique"
    BECAME_PII = "became_pii"
    NO_LONGER_PII = "no_longer_pii"
    COLUMN_DESCRIPTION = "column_description_changed"
    COLUMN_EXAMPLES = "column_examples_changed"
    ACCEPTED_VALUE_REMOVED = "accepted_value_removed"
    ACCEPTED_VALUE_ADDED = "accepted_value_added"
    PRIMARY_KEY_CHANGED = "primary_key_changed"
    EVENT_TIME_CHANGED = "event_time_changed"
    QUALITY_WEAKER = "quality_weaker"
    QUALITY_STRONGER = "quality_stronger"
    PORT_DESCRIPTION = "port_description_changed"
    # Ports and products: addresses and lifecycle.
    PORT_ADDED = "port_added"
    PORT_REMOVED = "port_removed"
    PRODUCT_ADDED = "product_added"
    PRODUCT_MOVED = "product_moved"
    PORT_RETIRED = "port_retired"
    PORT_DEPRECATED = "port_deprecated"
    STATUS_RESTRICTED = "status_restricted"
    STATUS_CHANGED = "status_changed"
    SUNSET_EARLIER = "sunset_earlier"
    SUNSET_CHANGED = "sunset_changed"
    REPLACEMENT_MISSING = "replacement_missing"
    CONSUMER_SWITCHES_MAJOR = "consumer_switches_major"
    CONSUMER_RANGE_EXCLUDED = "consumer_range_excluded"
    # Versions.
    VERSION_NOT_BUMPED = "version_not_bumped"
    VERSION_BUMP_TOO_SMALL = "version_bump_too_small"
    VERSION_WENT_BACKWARDS = "version_went_backwards"
    # Product-wide promises.
    SLO_WEAKER = "slo_weaker"
    SLO_STRONGER = "slo_stronger"
    SLO_CHANGED = "slo_changed"
    CLASSIFICATION_STRICTER = "classification_stricter"
    CLASSIFICATION_RELAXED = "classification_relaxed"
    ACCESS_RESTRICTED = "access_restricted"
    ACCESS_RELAXED = "access_relaxed"
    ROLE_REMOVED = "role_removed"
    ROLE_ADDED = "role_added"
    ROLE_DENIED = "role_denied"
    ROLE_UNDENIED = "role_undenied"
    PII_HANDLING_CHANGED = "pii_handling_changed"
    REDISTRIBUTION_RESTRICTED = "redistribution_restricted"
    REDISTRIBUTION_RELAXED = "redistribution_relaxed"
    AGREEMENT_CHANGED = "agreement_changed"
    PRODUCT_DESCRIPTION = "product_description_changed"
    OWNER_CHANGED = "owner_changed"
    SUPPORT_CHANGED = "support_changed"
    # Specs the diff cannot read.
    SPEC_UNREADABLE = "spec_unreadable"
    BASE_SPEC_UNREADABLE = "base_spec_unreadable"


PATCH_RULES = {
    Rule.COLUMN_DESCRIPTION,
    Rule.COLUMN_EXAMPLES,
    Rule.PORT_DESCRIPTION,
    Rule.PRODUCT_DESCRIPTION,
}
"""Changes that need only a patch bump (wording and examples)."""
NO_BUMP_RULES = {
    Rule.OWNER_CHANGED,
    Rule.SUPPORT_CHANGED,
    Rule.CONSUMER_SWITCHES_MAJOR,
    Rule.CONSUMER_RANGE_EXCLUDED,
    Rule.PORT_ADDED,
    Rule.PORT_REMOVED,
    Rule.PRODUCT_ADDED,
    Rule.PRODUCT_MOVED,
    Rule.PORT_RETIRED,
    Rule.VERSION_NOT_BUMPED,
    Rule.VERSION_BUMP_TOO_SMALL,
    Rule.VERSION_WENT_BACKWARDS,
    Rule.SPEC_UNREADABLE,
    Rule.BASE_SPEC_UNREADABLE,
}
"""Changes that are not a change of a port's contract (who answers, who reads, where it lives)."""

PRODUCT_FIXES = {
    Rule.SLO_WEAKER: "keep the previous target: SLOs bind every port, old majors included",
    Rule.CLASSIFICATION_STRICTER: "agree the new class with the consumers named (they need clearance) first",
    Rule.ACCESS_RESTRICTED: "have the consumers named request access (`mesh access request`) and approve it "
    "first, or keep access open",
    Rule.ROLE_REMOVED: "keep the role until its readers have moved: roles bind every port",
    Rule.ROLE_DENIED: "refuse the role only once its readers have moved: roles bind every port",
    Rule.PII_HANDLING_CHANGED: "keep the PII handling, or agree the change with the consumers named",
    Rule.REDISTRIBUTION_RESTRICTED: "agree the narrower rights with the consumers named first",
}
"""How to resolve a breaking product-wide change: it binds every major, so a new major cannot carry it."""
PRODUCT_FIELDS = {
    Rule.CLASSIFICATION_STRICTER: "classification",
    Rule.CLASSIFICATION_RELAXED: "classification",
    Rule.ACCESS_RESTRICTED: "access.mode",
    Rule.ACCESS_RELAXED: "access",
    Rule.PII_HANDLING_CHANGED: "access_policy.pii_handling",
    Rule.AGREEMENT_CHANGED: "data_sharing_agreement",
    Rule.PRODUCT_DESCRIPTION: "description",
    Rule.OWNER_CHANGED: "owner",
    Rule.SUPPORT_CHANGED: "support",
}
"""The spec field a product-wide change is about, shown where a port change shows its column."""


@dataclass(frozen=True)
class Consumer:
    """A product reading another product's port, and the people who answer for it."""

    product: str
    """`<domain>.<product>` of the consumer."""
    team: str
    steward: str
    purpose: str
    version_range: str
    """The version range its input port declares."""
    preview: bool = False

    @classmethod
    def of(cls, spec: DataProductSpec, declared: ProductInput) -> Consumer:
        """The product `spec` as a consumer, through the input port it `declared`."""
        return cls(
            product=spec.key,
            team=spec.owner.team,
            steward=spec.owner.steward,
            purpose=declared.purpose,
            version_range=declared.version,
            preview=declared.preview,
        )

    @property
    def domain(self) -> str:
        """The consumer's domain."""
        return self.product.split(".")[0]

    def label(self) -> str:
        """`<product> (<team>, <steward>)`, as shown to people."""
        return f"{self.product} ({self.team}, {self.steward})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "product": self.product,
            "team": self.team,
            "steward": self.steward,
            "purpose": self.purpose,
            "version_range": self.version_range,
            "preview": self.preview,
        }


@dataclass(frozen=True)
class Change:
    """One change to a product's contract: where it is, which rule it hits, and whether it breaks."""

    product: str
    """`<domain>.<product>`."""
    port: str | None
    """`v<major>`, or None for a product-wide change (SLOs, access, ...) that every port carries."""
    column: str | None
    rule: Rule
    breaking: bool
    reason: str
    allowed: str | None = None
    """Why a breaking change is acceptable (e.g. `in new major v2`); None when it is not."""
    warning: bool = False
    """A non-breaking change that still needs someone's attention."""
    consumers: tuple[Consumer, ...] = ()
    """The consumers the change affects."""
    fix: str = ""

    @property
    def blocking(self) -> bool:
        """A breaking change nothing allows: `mesh contract diff` fails on it."""
        return self.breaking and self.allowed is None

    @property
    def verdict(self) -> str:
        """`breaking`, `breaking, <why allowed>`, `warning` or `ok`."""
        if self.breaking:
            return f"breaking, {self.allowed}" if self.allowed else "breaking"
        return "warning" if self.warning else "ok"

    @property
    def rank(self) -> int:
        """Sort order for reports: blocking first, then allowed breaking changes, warnings, the rest."""
        return 0 if self.blocking else 1 if self.breaking else 2 if self.warning else 3

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "product": self.product,
            "port": self.port,
            "column": self.column,
            "rule": str(self.rule),
            "breaking": self.breaking,
            "blocking": self.blocking,
            "allowed": self.allowed,
            "warning": self.warning,
            "verdict": self.verdict,
            "reason": self.reason,
            "fix": self.fix,
            "consumers": [c.to_dict() for c in self.consumers],
        }
