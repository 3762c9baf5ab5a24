"""Contract diff: what changed in each product's contract between a git ref and the working tree.

A port's contract is its schema (columns, types, nullability, uniqueness, primary key, event time,
quality severities) plus the product-wide promises every port carries (SLOs, classification, access,
access policy, distribution rights, data sharing agreement). Ports are compared by major version, since
a major is its own port with its own address: changing a major in place must stay compatible, while a
new major may change anything as long as the old one is kept or deprecated.

Every difference becomes a `Change`, breaking or not, with a reason. A breaking change is *blocking*
unless something allows it (it comes in a new major, the port is a draft or in beta, or 0.x bumped its
minor); `mesh contract diff` exits 1 on blocking changes. The functions over specs are pure; only
`read_specs_at` (git) and `diff_working_tree` touch the outside world.
"""

from __future__ import annotations

import bisect
import difflib
import json
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from mesh_assets.product.registry import SPEC_FILE, effective_status, load_registry
from mesh_assets.product.spec import (
    AcceptedValuesRule,
    Classification,
    Column,
    DataProductSpec,
    FreshnessSlo,
    LogicalType,
    OutputPort,
    Severity,
    Status,
    parse_duration,
)
from mesh_assets.product.versions import VersionRangeError, satisfies


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
    APPROVAL_REVOKED = "approval_revoked"
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


_PATCH_RULES = {
    Rule.COLUMN_DESCRIPTION,
    Rule.COLUMN_EXAMPLES,
    Rule.PORT_DESCRIPTION,
    Rule.PRODUCT_DESCRIPTION,
}
"""Changes that need only a patch bump (wording and examples)."""
_NO_BUMP_RULES = {
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

_PRODUCT_FIXES = {
    Rule.SLO_WEAKER: "keep the previous target: SLOs bind every port, old majors included",
    Rule.CLASSIFICATION_STRICTER: "agree the new class with the consumers named (they need clearance) first",
    Rule.ACCESS_RESTRICTED: "approve the consumers named in access.approved_consumers, or keep access open",
    Rule.APPROVAL_REVOKED: "move the consumers named off the product before withdrawing their approval",
    Rule.ROLE_REMOVED: "keep the role until its readers have moved: roles bind every port",
    Rule.ROLE_DENIED: "refuse the role only once its readers have moved: roles bind every port",
    Rule.PII_HANDLING_CHANGED: "keep the PII handling, or agree the change with the consumers named",
    Rule.REDISTRIBUTION_RESTRICTED: "agree the narrower rights with the consumers named first",
}
"""How to resolve a breaking product-wide change: it binds every major, so a new major cannot carry it."""
_PRODUCT_FIELDS = {
    Rule.CLASSIFICATION_STRICTER: "classification",
    Rule.CLASSIFICATION_RELAXED: "classification",
    Rule.ACCESS_RESTRICTED: "access.mode",
    Rule.ACCESS_RELAXED: "access",
    Rule.APPROVAL_REVOKED: "access.approved_consumers",
    Rule.PII_HANDLING_CHANGED: "access_policy.pii_handling",
    Rule.AGREEMENT_CHANGED: "data_sharing_agreement",
    Rule.PRODUCT_DESCRIPTION: "description",
    Rule.OWNER_CHANGED: "owner",
    Rule.SUPPORT_CHANGED: "support",
}
"""The spec field a product-wide change is about, shown where a port change shows its column."""
_CLASSIFICATION_ORDER = list(Classification)  # declared from least to most sensitive
_INTEGER_DIGITS = {LogicalType.INTEGER: 10, LogicalType.BIGINT: 19}
"""Decimal digits of the largest value of each integer type (2,147,483,647 and 9.2e18)."""


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


# --- consumers --------------------------------------------------------------------------------------


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in version.split("."))


def readers(
    consumers: Iterable[DataProductSpec], producer: str, ports: Sequence[OutputPort]
) -> dict[int, list[Consumer]]:
    """Who reads which major of `producer` if it published `ports`, keyed by major.

    Each consumer reads the newest port inside its range, exactly as the registry resolves input ports;
    a consumer whose range matches no port (or is not a range) reads nothing.
    """
    found: dict[int, list[Consumer]] = {}
    for spec in consumers:
        if spec.key == producer:
            continue
        for declared in spec.product_inputs:
            if declared.product != producer:
                continue
            try:
                candidates = [p for p in ports if satisfies(p.version, declared.version)]
            except VersionRangeError:
                continue
            if not candidates:
                continue
            port = max(candidates, key=lambda p: _version_key(p.version))
            found.setdefault(port.major, []).append(
                Consumer(
                    product=spec.key,
                    team=spec.owner.team,
                    steward=spec.owner.steward,
                    purpose=declared.purpose,
                    version_range=declared.version,
                    preview=declared.preview,
                )
            )
    return found


def _unique(consumers: Iterable[Consumer]) -> list[Consumer]:
    seen: dict[str, Consumer] = {}
    for consumer in consumers:
        seen.setdefault(consumer.product, consumer)
    return list(seen.values())


# --- one port's schema ------------------------------------------------------------------------------


def _type_label(column: Column) -> str:
    if column.type == LogicalType.DECIMAL:
        return f"decimal({column.precision},{column.scale})"
    return column.type.value


def _type_change(old: Column, new: Column) -> tuple[Rule, str] | None:
    """Classify a column's type change: widened (every old value fits), narrowed (values are lost) or
    changed (values survive but readers' queries built for the old type break)."""
    a, b = _type_label(old), _type_label(new)
    if a == b:
        return None
    o, n = old.type, new.type
    widened = (Rule.TYPE_WIDENED, f"type {a} -> {b} widens it: every {a} value fits")

    def narrowed(why: str) -> tuple[Rule, str]:
        return Rule.TYPE_NARROWED, f"type {a} -> {b} loses values: {why}"

    if o == LogicalType.STRING:
        return narrowed(f"text that is not a valid {b} cannot be kept")
    if o in _INTEGER_DIGITS and n in _INTEGER_DIGITS:
        return widened if _INTEGER_DIGITS[n] >= _INTEGER_DIGITS[o] else narrowed("large integers overflow")
    if o == LogicalType.INTEGER and n == LogicalType.DOUBLE:
        return widened  # a double holds every 32-bit integer exactly
    if o == LogicalType.BIGINT and n == LogicalType.DOUBLE:
        return narrowed("integers above 2^53 lose precision as doubles")
    if o in _INTEGER_DIGITS and n == LogicalType.DECIMAL:
        assert new.precision is not None and new.scale is not None  # the spec model guarantees both
        digits = new.precision - new.scale
        if digits >= _INTEGER_DIGITS[o]:
            return widened
        return narrowed(f"{b} holds {digits} integer digits, a {a} needs {_INTEGER_DIGITS[o]}")
    if o == LogicalType.DECIMAL and n == LogicalType.DECIMAL:
        assert None not in (old.precision, old.scale, new.precision, new.scale)
        problems = []
        if new.scale < old.scale:  # type: ignore[operator]
            problems.append(f"scale {old.scale} -> {new.scale} drops decimal places")
        old_digits = old.precision - old.scale  # type: ignore[operator]
        new_digits = new.precision - new.scale  # type: ignore[operator]
        if new_digits < old_digits:
            problems.append(f"integer digits {old_digits} -> {new_digits} overflow large values")
        return narrowed("; ".join(problems)) if problems else widened
    if o == LogicalType.DECIMAL and n in _INTEGER_DIGITS:
        assert old.precision is not None
        if old.scale == 0 and old.precision < _INTEGER_DIGITS[n]:
            return widened
        return narrowed("decimal places or large values do not fit an integer")
    if o == LogicalType.DOUBLE and n in {*_INTEGER_DIGITS, LogicalType.DECIMAL}:
        return narrowed("fractions, large values or precision of doubles do not fit")
    if o == LogicalType.DECIMAL and n == LogicalType.DOUBLE:
        return narrowed("exact decimals become approximate floats")
    if o == LogicalType.TIMESTAMP and n == LogicalType.DATE:
        return narrowed("the time of day is dropped")
    if n == LogicalType.STRING:
        return Rule.TYPE_CHANGED, f"type {a} -> {b}: values become text, so readers' arithmetic, comparisons "
        "and date logic break"
    return Rule.TYPE_CHANGED, f"type {a} -> {b}: readers' queries written for {a} break"


def _pair_renames(removed: list[Column], added: list[Column]) -> dict[str, Column]:
    """Guess renames: a removed and an added column of the same type, the closest names first."""
    pairs: dict[str, Column] = {}
    free = list(added)
    candidates = sorted(
        (
            (-difflib.SequenceMatcher(None, r.name, a.name).ratio(), i, j)
            for i, r in enumerate(removed)
            for j, a in enumerate(added)
            if _type_label(r) == _type_label(a)
        ),
    )
    for _, i, j in candidates:
        if removed[i].name not in pairs and added[j] in free:
            pairs[removed[i].name] = added[j]
            free.remove(added[j])
    return pairs


def _unique_columns(port: OutputPort) -> set[str]:
    # A single-column primary key is unique, whether or not the column says so (as in `ports.py`).
    single_key = {port.primary_key[0]} if len(port.primary_key) == 1 else set()
    return {c.name for c in port.columns if c.unique} | single_key


def diff_ports(product: str, base: OutputPort, head: OutputPort) -> list[Change]:
    """The schema changes between two versions of a port: columns, keys, quality and description.

    Breaking: a column removed or renamed, a type that loses values or changes kind, a column that
    becomes nullable, no longer unique or PII, a changed primary key or event time, a check that no
    longer blocks a publish. Lifecycle, versions and consumers are judged by `diff_specs`.
    """
    port = f"v{head.major}"
    changes: list[Change] = []

    def add(rule: Rule, column: str | None, breaking: bool, reason: str, warning: bool = False) -> None:
        changes.append(Change(product, port, column, rule, breaking, reason, warning=warning))

    old = {c.name: c for c in base.columns}
    new = {c.name: c for c in head.columns}
    removed = [c for c in base.columns if c.name not in new]
    added = [c for c in head.columns if c.name not in old]
    renames = _pair_renames(removed, added)
    for column in removed:
        if column.name in renames:
            add(
                Rule.COLUMN_RENAMED,
                column.name,
                True,
                f"renamed? {column.name} -> {renames[column.name].name}: readers of '{column.name}' fail",
            )
        else:
            add(Rule.COLUMN_REMOVED, column.name, True, f"column '{column.name}' removed: readers of it fail")
    renamed_to = {c.name for c in renames.values()}
    for column in added:
        if column.name not in renamed_to:
            nullability = "nullable" if column.nullable else "not null"
            add(
                Rule.COLUMN_ADDED,
                column.name,
                False,
                f"column '{column.name}' added ({_type_label(column)}, {nullability}); readers ignore it",
            )
    base_unique, head_unique = _unique_columns(base), _unique_columns(head)
    for name in (c.name for c in base.columns if c.name in new):
        before, after = old[name], new[name]
        typed = _type_change(before, after)
        if typed is not None:
            add(typed[0], name, typed[0] != Rule.TYPE_WIDENED, typed[1])
        if not before.nullable and after.nullable:
            add(
                Rule.BECAME_NULLABLE, name, True, f"'{name}' may now be null: readers relying on values break"
            )
        elif before.nullable and not after.nullable:
            add(Rule.BECAME_NOT_NULL, name, False, f"'{name}' is now never null (a stronger promise)")
        if name in base_unique and name not in head_unique:
            add(Rule.NO_LONGER_UNIQUE, name, True, f"'{name}' is no longer unique: joins on it fan out")
        elif name in head_unique and name not in base_unique:
            add(Rule.BECAME_UNIQUE, name, False, f"'{name}' is now unique (a stronger promise)")
        if not before.pii and after.pii:
            add(
                Rule.BECAME_PII,
                name,
                True,
                f"'{name}' is now personal data: readers without the PII privilege get it masked",
            )
        elif before.pii and not after.pii:
            add(Rule.NO_LONGER_PII, name, False, f"'{name}' is no longer marked as personal data")
        if before.description != after.description:
            add(Rule.COLUMN_DESCRIPTION, name, False, f"description of '{name}' changed")
        if before.examples != after.examples:
            add(Rule.COLUMN_EXAMPLES, name, False, f"examples of '{name}' changed")
    kept_order = [c.name for c in base.columns if c.name in new]
    if kept_order != [c.name for c in head.columns if c.name in old]:
        add(Rule.COLUMNS_REORDERED, None, False, "columns are in a new order; readers select by name")
    if set(base.primary_key) != set(head.primary_key):
        # The key is the grain of a row: another key means other rows, so every reader's join or merge
        # on the old key is wrong, whether the key grew or shrank.
        add(
            Rule.PRIMARY_KEY_CHANGED,
            ", ".join(head.primary_key),
            True,
            f"primary key [{', '.join(base.primary_key)}] -> [{', '.join(head.primary_key)}]: the grain of "
            "a row changes and readers' keys no longer identify rows",
        )
    if base.event_time is not None and base.event_time != head.event_time:
        add(
            Rule.EVENT_TIME_CHANGED,
            base.event_time,
            True,
            f"event time '{base.event_time}' -> '{head.event_time or 'none'}': readers' incremental "
            "loads and data-time filters break",
        )
    for check, before_severity, after_severity in (
        ("schema", base.quality.schema_severity, head.quality.schema_severity),
        ("primary key", base.quality.key_severity, head.quality.key_severity),
    ):
        if before_severity != after_severity:
            weaker = after_severity == "warn"
            add(
                Rule.QUALITY_WEAKER if weaker else Rule.QUALITY_STRONGER,
                None,
                weaker,
                f"the {check} check is now '{after_severity}'"
                + (": a batch that breaks the contract is published anyway" if weaker else ""),
            )
    old_rows, new_rows = base.quality.row_count, head.quality.row_count
    if new_rows.min < old_rows.min:
        add(
            Rule.QUALITY_WEAKER,
            None,
            False,
            f"row count minimum {old_rows.min} -> {new_rows.min}: smaller batches now pass",
            warning=True,
        )
    elif new_rows.min > old_rows.min:
        add(Rule.QUALITY_STRONGER, None, False, f"row count minimum {old_rows.min} -> {new_rows.min}")
    if new_rows.max != old_rows.max:
        add(
            Rule.QUALITY_STRONGER
            if new_rows.max is not None and (old_rows.max is None or new_rows.max < old_rows.max)
            else Rule.QUALITY_WEAKER,
            None,
            False,
            f"row count maximum {old_rows.max} -> {new_rows.max}",
        )
    old_values, new_values = _accepted_values(base), _accepted_values(head)
    for column, values in old_values.items():
        if column not in new:
            continue
        if column not in new_values:
            add(
                Rule.ACCEPTED_VALUE_REMOVED,
                column,
                True,
                f"the accepted values of {column} are no longer enforced: any value may now appear",
            )
            continue
        dropped = [v for v in values if v not in new_values[column]]
        if dropped:
            add(
                Rule.ACCEPTED_VALUE_REMOVED,
                column,
                True,
                f"accepted value(s) {', '.join(map(str, dropped))} of {column} removed: "
                "consumers filtering or mapping them lose rows",
            )
        grown = [v for v in new_values[column] if v not in values]
        if grown:
            add(
                Rule.ACCEPTED_VALUE_ADDED,
                column,
                False,
                f"accepted value(s) {', '.join(map(str, grown))} of {column} added: "
                "consumers with exhaustive mappings should handle them",
                warning=True,
            )
    if base.description != head.description:
        add(Rule.PORT_DESCRIPTION, None, False, "the port's description changed")
    return changes


def _accepted_values(port: OutputPort) -> dict[str, list[str | int]]:
    """Accepted values per column, from the port's blocking accepted_values rules."""
    return {
        rule.column: list(rule.values)
        for rule in port.quality.rules
        if isinstance(rule, AcceptedValuesRule) and rule.severity == Severity.ERROR
    }


# --- freshness --------------------------------------------------------------------------------------

_SAMPLE_START = datetime(2026, 1, 5, tzinfo=UTC)
"""A fixed Monday to sample cron deadlines from, so a verdict never depends on the clock."""
_SAMPLE_SPAN = timedelta(days=400)
_SAMPLE_MAX_TICKS = 3000


@cache
def _deadlines(cron: str, timezone: str) -> tuple[datetime, ...]:
    """The cron's ticks over the sample window, starting with the last tick before it."""
    # dagster's iterator understands the same cron dialect as the FreshnessPolicy the SLO becomes; it
    # is heavy to import, so only SLOs with a cron pay for it.
    from dagster._utils.schedules import cron_string_iterator

    start = _SAMPLE_START.timestamp()
    before = next(cron_string_iterator(start, cron, timezone, ascending=False))
    ticks = [before]
    for tick in cron_string_iterator(start, cron, timezone):
        if tick - _SAMPLE_START > _SAMPLE_SPAN or len(ticks) >= _SAMPLE_MAX_TICKS:
            break
        if tick > ticks[-1]:
            ticks.append(tick)
    return tuple(ticks)


def _worst_age(slo: FreshnessSlo) -> timedelta:
    """The oldest the data may ever be under the SLO.

    A rolling window allows `max_age`; a cron deadline promises an update within `lower_bound` before
    each tick, so just before the next tick the data may be the longest gap between ticks plus that old.
    """
    if slo.max_age is not None:
        return parse_duration(slo.max_age)
    ticks = _deadlines(slo.cron or "", slo.cron_timezone)
    gap = max((b - a for a, b in pairwise(ticks)), default=timedelta(0))
    return gap + parse_duration(slo.lower_bound or "0m")


def _deadline_later(old: FreshnessSlo, new: FreshnessSlo) -> bool:
    """Whether some deadline of `old` moves later under `new` (its nearest new deadline is after it).

    Consumers schedule on deadlines ("the data is in by 06:00"): a deadline that moves later breaks
    them even when the worst-case age stays the same.
    """
    old_ticks = _deadlines(old.cron or "", old.cron_timezone)
    new_ticks = _deadlines(new.cron or "", new.cron_timezone)
    for tick in old_ticks[1:]:
        after = bisect.bisect_right(new_ticks, tick)
        if after == 0 or after >= len(new_ticks):
            continue  # outside the sampled deadlines of `new`
        if new_ticks[after] - tick < tick - new_ticks[after - 1]:
            return True
    return False


def _compare_freshness(base: FreshnessSlo, head: FreshnessSlo) -> tuple[str, timedelta, timedelta]:
    """`weaker`, `stronger` or `same`, with each SLO's worst-case data age.

    Weaker when the data may get older than before, or (between two cron SLOs) a deadline comes later.
    """
    old, new = _worst_age(base), _worst_age(head)
    both_cron = base.cron is not None and head.cron is not None
    if new > old or (both_cron and _deadline_later(base, head)):
        return "weaker", old, new
    if new < old or (both_cron and _deadline_later(head, base)):
        return "stronger", old, new
    return "same", old, new


def _describe_freshness(slo: FreshnessSlo) -> str:
    if slo.max_age is not None:
        return f"max_age {slo.max_age}"
    return f"cron '{slo.cron}' ({slo.cron_timezone}) within {slo.lower_bound}"


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:g}h"


# --- one product ------------------------------------------------------------------------------------


def _diff_product(base: DataProductSpec, head: DataProductSpec, consumers: list[Consumer]) -> list[Change]:
    """Product-wide changes: SLOs, classification, access, access policy, rights, agreement, people."""
    key = head.key
    changes: list[Change] = []

    def add(
        rule: Rule,
        breaking: bool,
        reason: str,
        *,
        column: str | None = None,
        warning: bool = False,
        affected: Sequence[Consumer] = (),
    ) -> None:
        where = column or _PRODUCT_FIELDS.get(rule)
        changes.append(
            Change(key, None, where, rule, breaking, reason, warning=warning, consumers=tuple(affected))
        )

    slo_old, slo_new = base.slos, head.slos
    if slo_old.freshness != slo_new.freshness:
        old_text, new_text = _describe_freshness(slo_old.freshness), _describe_freshness(slo_new.freshness)
        try:
            verdict, old_age, new_age = _compare_freshness(slo_old.freshness, slo_new.freshness)
        except Exception as exc:  # a cron the scheduler cannot parse: say so rather than guess
            add(
                Rule.SLO_CHANGED,
                False,
                f"freshness {old_text} -> {new_text}; cannot compare ({exc})",
                warning=True,
                affected=consumers,
            )
        else:
            change = f"freshness {old_text} -> {new_text}"
            if verdict == "weaker":
                why = (
                    f"data may be {_hours(new_age)} old at worst (was {_hours(old_age)})"
                    if new_age > old_age
                    else "some deadlines come later, so readers scheduled on them get older data"
                )
                add(Rule.SLO_WEAKER, True, f"{change}: {why}", column="slos.freshness", affected=consumers)
            elif verdict == "stronger":
                add(
                    Rule.SLO_STRONGER,
                    False,
                    f"{change}: data at most {_hours(new_age)} old (was {_hours(old_age)})",
                    column="slos.freshness",
                )
            else:
                add(
                    Rule.SLO_CHANGED,
                    False,
                    f"freshness {old_text} -> {new_text} (same promise)",
                    column="slos.freshness",
                )
    for name, before, after in (
        ("availability", slo_old.availability, slo_new.availability),
        ("quality_pass_rate", slo_old.quality_pass_rate, slo_new.quality_pass_rate),
    ):
        if after < before:
            add(
                Rule.SLO_WEAKER,
                True,
                f"{name} target {before:g} -> {after:g}",
                column=f"slos.{name}",
                affected=consumers,
            )
        elif after > before:
            add(Rule.SLO_STRONGER, False, f"{name} target {before:g} -> {after:g}", column=f"slos.{name}")
    if slo_old.window != slo_new.window:
        add(
            Rule.SLO_CHANGED,
            False,
            f"SLIs measured over {slo_old.window} -> {slo_new.window}",
            column="slos.window",
        )

    rank = _CLASSIFICATION_ORDER.index
    if rank(head.classification) > rank(base.classification):
        # More sensitive data needs more clearance: consumers cleared for the old class lose access.
        add(
            Rule.CLASSIFICATION_STRICTER,
            bool(consumers),
            f"classification {base.classification} -> {head.classification}: readers need clearance "
            f"for {head.classification} data" + ("" if consumers else "; no consumer reads it yet"),
            warning=not consumers,
            affected=consumers,
        )
    elif rank(head.classification) < rank(base.classification):
        add(
            Rule.CLASSIFICATION_RELAXED,
            False,
            f"classification {base.classification} -> {head.classification}",
        )

    approved_before = {a.product for a in base.access.approved_consumers}
    approved_after = {a.product for a in head.access.approved_consumers}
    if head.access.mode == "approval_required":
        if base.access.mode == "open":
            dropped = [c for c in consumers if c.product not in approved_after]
            add(
                Rule.ACCESS_RESTRICTED,
                bool(dropped),
                "access open -> approval_required: "
                + (
                    f"{len(dropped)} current consumer(s) are not approved"
                    if dropped
                    else "every current consumer is approved"
                ),
                affected=dropped,
            )
        revoked = approved_before - approved_after
        if revoked and base.access.mode == "approval_required":
            dropped = [c for c in consumers if c.product in revoked]
            add(
                Rule.APPROVAL_REVOKED,
                bool(dropped),
                f"approval withdrawn from {', '.join(sorted(revoked))}"
                + ("" if dropped else "; none of them reads the product"),
                affected=dropped,
            )
        if approved_after - approved_before and base.access.mode == "approval_required":
            add(
                Rule.ACCESS_RELAXED,
                False,
                f"newly approved: {', '.join(sorted(approved_after - approved_before))}",
            )
    elif base.access.mode == "approval_required":
        add(Rule.ACCESS_RELAXED, False, "access approval_required -> open")

    policy_old, policy_new = base.access_policy, head.access_policy
    allowed_old, allowed_new = set(policy_old.allowed_roles), set(policy_new.allowed_roles)
    denied_old, denied_new = set(policy_old.denied_roles), set(policy_new.denied_roles)
    # Losing a reader breaks its consumers; gaining one does not.
    role_changes = [
        (allowed_old - allowed_new, Rule.ROLE_REMOVED, True, "may no longer read the ports", "allowed_roles"),
        (allowed_new - allowed_old, Rule.ROLE_ADDED, False, "may now read the ports", "allowed_roles"),
        (denied_new - denied_old, Rule.ROLE_DENIED, True, "is now refused", "denied_roles"),
        (denied_old - denied_new, Rule.ROLE_UNDENIED, False, "is no longer refused", "denied_roles"),
    ]
    for roles, rule, breaking, what, policy_list in role_changes:
        for role in sorted(roles):
            add(
                rule,
                breaking,
                f"role '{role}' {what}",
                column=f"access_policy.{policy_list}.{role}",
                affected=consumers if breaking else (),
            )
    if policy_old.pii_handling != policy_new.pii_handling:
        pii = sorted({c.name for p in head.output_ports for c in p.columns if c.pii})
        add(
            Rule.PII_HANDLING_CHANGED,
            bool(pii),
            f"PII handling {policy_old.pii_handling} -> {policy_new.pii_handling}: readers without the PII "
            f"privilege see other values in {', '.join(pii)}"
            if pii
            else f"PII handling {policy_old.pii_handling} -> {policy_new.pii_handling} (no PII column)",
            affected=consumers if pii else (),
        )

    rights_old, rights_new = base.distribution_rights, head.distribution_rights
    for name in ("redistribute_unmodified", "redistribute_modified"):
        before, after = getattr(rights_old, name), getattr(rights_new, name)
        if before and not after:
            add(
                Rule.REDISTRIBUTION_RESTRICTED,
                bool(consumers),
                f"{name} true -> false: consumers may no "
                "longer pass the data on" + ("" if consumers else "; no consumer reads it yet"),
                column=f"distribution_rights.{name}",
                warning=not consumers,
                affected=consumers,
            )
        elif after and not before:
            add(
                Rule.REDISTRIBUTION_RELAXED,
                False,
                f"{name} false -> true",
                column=f"distribution_rights.{name}",
            )
    if base.data_sharing_agreement != head.data_sharing_agreement:
        add(
            Rule.AGREEMENT_CHANGED,
            False,
            "the data sharing agreement changed: consumers must accept the new terms",
            warning=bool(consumers),
            affected=consumers,
        )
    if base.description != head.description:
        add(Rule.PRODUCT_DESCRIPTION, False, "the product's description changed")
    if base.owner != head.owner:
        add(
            Rule.OWNER_CHANGED,
            False,
            f"owner {base.owner.team} ({base.owner.steward}) -> {head.owner.team} ({head.owner.steward})",
        )
    if base.support != head.support:
        add(Rule.SUPPORT_CHANGED, False, f"support {base.support.channel} -> {head.support.channel}")
    return [replace(c, fix=_PRODUCT_FIXES.get(c.rule, "")) if c.breaking else c for c in changes]


def _replacement_major(text: str) -> int | None:
    head = text.strip().lstrip("v^").split(".")[0]
    return int(head) if head.isdigit() else None


def _replacement_served(spec: DataProductSpec, replacement: str, today: date) -> bool:
    """Whether the major a deprecation points to is published and still served (deprecated counts)."""
    major = _replacement_major(replacement)
    target = next((p for p in spec.output_ports if p.major == major), None)
    return target is not None and effective_status(spec, target, today) in {
        Status.ACTIVE,
        Status.BETA,
        Status.DEPRECATED,
    }


def _diff_status(
    base_spec: DataProductSpec,
    head_spec: DataProductSpec,
    before: OutputPort,
    after: OutputPort,
    consumers: list[Consumer],
    today: date,
) -> list[Change]:
    """Lifecycle changes of one port: retired, deprecated, restricted to preview or to its domain."""
    key, port = head_spec.key, f"v{after.major}"
    old, new = effective_status(base_spec, before, today), effective_status(head_spec, after, today)
    changes: list[Change] = []

    def add(rule: Rule, breaking: bool, reason: str, affected: Sequence[Consumer], **extra: Any) -> None:
        changes.append(Change(key, port, None, rule, breaking, reason, consumers=tuple(affected), **extra))

    dep = after.deprecation
    if new == Status.RETIRED and old != Status.RETIRED:
        # Only this code change retires a port (a passed sunset never does), so it is gated here.
        add(
            Rule.PORT_RETIRED,
            bool(consumers),
            f"{port} retired: "
            + (
                f"{len(consumers)} consumer(s) still read it and would be refused"
                if consumers
                else "no consumer reads it"
            ),
            consumers,
            fix="move the consumers first; until then keep it deprecated (past its sunset it stays served, "
            "overdue for retirement)",
        )
    elif new == Status.DRAFT and old != Status.DRAFT:
        outside = [c for c in consumers if c.domain != head_spec.domain]
        add(
            Rule.STATUS_RESTRICTED,
            bool(outside),
            f"status {old} -> draft: readable only inside domain '{head_spec.domain}'",
            outside,
        )
    elif new == Status.BETA and old in {Status.ACTIVE, Status.DEPRECATED}:
        refused = [c for c in consumers if c.domain != head_spec.domain and not c.preview]
        add(
            Rule.STATUS_RESTRICTED,
            bool(refused),
            f"status {old} -> beta: only consumers with preview: true may read it",
            refused,
        )
    elif new == Status.DEPRECATED and old != Status.DEPRECATED and dep is not None:
        add(
            Rule.PORT_DEPRECATED,
            False,
            f"{port} deprecated: served until {dep.sunset.isoformat()}, then retired; consumers move to "
            f"v{dep.replacement} ({dep.reason})",
            consumers,
            warning=True,
        )
    elif new != old:
        add(Rule.STATUS_CHANGED, False, f"status {old} -> {new}", ())
    if new == Status.DEPRECATED and dep is not None:
        # Report a dangling replacement when this diff causes it, not on every diff after.
        was_dangling = (
            old == Status.DEPRECATED
            and before.deprecation is not None
            and not _replacement_served(base_spec, before.deprecation.replacement, today)
        )
        if not _replacement_served(head_spec, dep.replacement, today) and not was_dangling:
            add(
                Rule.REPLACEMENT_MISSING,
                bool(consumers),
                f"deprecated in favour of v{dep.replacement}, which is not a served port of {key}",
                consumers,
                warning=not consumers,
                fix=f"publish v{dep.replacement} or name a served version",
            )
        old_dep = before.deprecation
        if old == Status.DEPRECATED and old_dep is not None and dep.sunset != old_dep.sunset:
            earlier = dep.sunset < old_dep.sunset
            passed = " (already past: overdue for retirement at once)" if dep.sunset < today else ""
            add(
                Rule.SUNSET_EARLIER if earlier else Rule.SUNSET_CHANGED,
                earlier and bool(consumers),
                f"sunset {old_dep.sunset.isoformat()} -> {dep.sunset.isoformat()}{passed}"
                + (": consumers get less time to move" if earlier else " (more time to move)"),
                consumers if earlier else (),
                warning=earlier and not consumers,
            )
    return changes


def _removed_port(
    spec: DataProductSpec, port: OutputPort, consumers: list[Consumer], today: date, moved_to: str | None
) -> Change:
    status = effective_status(spec, port, today)
    address = f"mesh://{spec.domain}/{spec.name}/v{port.major}"
    if moved_to is not None:
        domain, name = moved_to.split(".")
        what = f"port {address} ({port.version}, {status}) moved? to mesh://{domain}/{name}/v{port.major}"
        rule = Rule.PRODUCT_MOVED
    else:
        what = f"port {address} ({port.version}, {status}) removed"
        rule = Rule.PORT_REMOVED
    if status == Status.RETIRED:
        # Retired by an earlier change, already refused to everyone (`mesh validate` fails its remaining
        # consumers): removing it changes nothing for them. A port merely past its sunset is still
        # served, so removing it while consumers read it is breaking (below).
        return Change(
            spec.key,
            f"v{port.major}",
            None,
            rule,
            False,
            f"{what}: it was retired"
            + (f"; {len(consumers)} consumer(s) still declare it and are refused" if consumers else ""),
            consumers=tuple(consumers),
        )
    if consumers:
        return Change(
            spec.key,
            f"v{port.major}",
            None,
            rule,
            True,
            f"{what}: {len(consumers)} consumer(s) still read it",
            consumers=tuple(consumers),
            fix=f"keep v{port.major} (deprecate it with a sunset date) until its consumers moved",
        )
    if status == Status.ACTIVE:
        # No consumer in the mesh, but an active address is a promise to every reader (dashboards,
        # notebooks): it goes away through deprecation, not overnight.
        return Change(
            spec.key,
            f"v{port.major}",
            None,
            rule,
            True,
            f"{what}: it is active, so readers outside the mesh lose it without notice",
            fix=f"deprecate v{port.major} with a sunset date first, remove it after",
        )
    return Change(spec.key, f"v{port.major}", None, rule, False, f"{what}: no consumer reads it")


def _removed_product(
    spec: DataProductSpec, consumer_specs: Sequence[DataProductSpec], today: date, moved_to: str | None
) -> list[Change]:
    by_major = readers(consumer_specs, spec.key, spec.output_ports)
    return [_removed_port(spec, p, by_major.get(p.major, []), today, moved_to) for p in spec.output_ports]


def _allowance(spec: DataProductSpec, before: OutputPort, after: OutputPort, today: date) -> str | None:
    """Why a breaking change to a port in place is acceptable, if it is."""
    status = effective_status(spec, before, today)
    if status == Status.RETIRED:
        return "port is retired"
    if status == Status.DRAFT:
        return "port is a draft"
    if status == Status.BETA:
        return "port is in beta"  # preview consumers accepted a port that may still change
    if before.major == 0 and _version_key(after.version)[1] > _version_key(before.version)[1]:
        return f"in new minor {after.version} (0.x)"  # semver: below 1.0.0 a minor may break
    return None


def _versions(
    key: str,
    before: OutputPort,
    after: OutputPort,
    contract: list[Change],
) -> list[Change]:
    """Check the version bump of a port changed in place against what changed."""
    port = f"v{after.major}"
    old, new = _version_key(before.version), _version_key(after.version)
    if new < old:
        return [
            Change(
                key,
                port,
                None,
                Rule.VERSION_WENT_BACKWARDS,
                True,
                f"version {before.version} -> {after.version} goes backwards: consumers' ranges and "
                "code versions assume it only grows",
                fix=f"use a version above {before.version}",
            )
        ]
    relevant = [c for c in contract if c.rule not in _NO_BUMP_RULES and not c.blocking]
    if not relevant or any(c.blocking for c in contract):
        return []  # nothing to bump for, or the fix is a new major anyway
    rules = ", ".join(dict.fromkeys(str(c.rule) for c in relevant))
    # Below 1.0.0 a consumer's `^0.m` range excludes the next minor, so compatible changes take a patch.
    minor_needed = after.major > 0 and any(c.breaking or c.rule not in _PATCH_RULES for c in relevant)
    suggestion = f"{old[0]}.{old[1] + 1}.0" if minor_needed else f"{old[0]}.{old[1]}.{old[2] + 1}"
    if new == old:
        return [
            Change(
                key,
                port,
                None,
                Rule.VERSION_NOT_BUMPED,
                False,
                f"the contract changed ({rules}) but the version is still {before.version}",
                warning=True,
                fix=f"bump it to {suggestion}",
            )
        ]
    if minor_needed and new[1] == old[1]:
        return [
            Change(
                key,
                port,
                None,
                Rule.VERSION_BUMP_TOO_SMALL,
                False,
                f"{rules} need a minor bump, not a patch ({before.version} -> {after.version})",
                warning=True,
                fix=f"bump it to {suggestion}",
            )
        ]
    return []


def _attach(changes: list[Change], consumers: Sequence[Consumer]) -> list[Change]:
    # Name the consumers on what can hurt them; listing them on every new description is noise.
    return [
        replace(c, consumers=tuple(consumers)) if (c.breaking or c.warning) and not c.consumers else c
        for c in changes
    ]


def _consumer_moves(
    consumer_specs: Sequence[DataProductSpec], base: DataProductSpec, head: DataProductSpec
) -> list[Change]:
    """Consumers whose range now resolves to another major (a new major inside an open range)."""
    changes = []
    for spec in consumer_specs:
        before = readers([spec], base.key, base.output_ports)
        after = readers([spec], head.key, head.output_ports)
        old = {c.version_range: m for m, cs in before.items() for c in cs}
        new = {c.version_range: (m, c) for m, cs in after.items() for c in cs}
        for version_range, (major, consumer) in new.items():
            if version_range in old and old[version_range] != major:
                changes.append(
                    Change(
                        head.key,
                        f"v{major}",
                        None,
                        Rule.CONSUMER_SWITCHES_MAJOR,
                        False,
                        f"{consumer.product} reads '{version_range}', which now resolves to v{major} "
                        f"instead of v{old[version_range]}: another contract",
                        warning=True,
                        consumers=(consumer,),
                        fix=f"pin the consumer to '^{old[version_range]}' or adopt v{major}",
                    )
                )
    return changes


def diff_specs(
    base: DataProductSpec | None,
    head: DataProductSpec | None,
    *,
    consumers: Iterable[DataProductSpec] = (),
    today: date | None = None,
) -> list[Change]:
    """Every change to one product's contract from `base` to `head` (either may be None: added/removed).

    `consumers` are the specs of the mesh as it will be (the working tree); they tell who reads each
    port and are named on the changes that affect them. `today` only words a sunset moved into the
    past: time never changes a verdict (a port past its sunset is still served until it is retired).
    """
    today = today or date.today()
    consumer_specs = list(consumers)
    if base is None and head is None:
        return []
    if base is None:
        assert head is not None
        majors = ", ".join(f"v{p.major} ({p.version})" for p in head.output_ports)
        return [Change(head.key, None, None, Rule.PRODUCT_ADDED, False, f"new product with ports {majors}")]
    if head is None:
        return _removed_product(base, consumer_specs, today, None)

    key = head.key
    base_readers = readers(consumer_specs, key, base.output_ports)
    everyone = _unique(c for cs in base_readers.values() for c in cs)
    product_changes = _diff_product(base, head, everyone)
    live = {effective_status(base, p, today) for p in base.output_ports}
    if not live & {Status.ACTIVE, Status.DEPRECATED}:
        # Product-wide promises bind once a port is active; drafts and betas may still change.
        product_changes = [replace(c, allowed="no active port") if c.breaking else c for c in product_changes]
    changes = list(product_changes)

    old_ports = {p.major: p for p in base.output_ports}
    new_ports = {p.major: p for p in head.output_ports}
    for major in sorted(old_ports.keys() | new_ports.keys()):
        before, after = old_ports.get(major), new_ports.get(major)
        affected = base_readers.get(major, [])
        if after is None:
            assert before is not None
            changes.append(_removed_port(base, before, affected, today, None))
            continue
        if before is None:
            changes += _new_port(base, head, after)
            continue
        schema = _attach(diff_ports(key, before, after), affected)
        allowed = _allowance(base, before, after, today)
        if allowed:
            schema = [replace(c, allowed=allowed) if c.breaking else c for c in schema]
        else:
            fix = (
                f"publish it as a new major v{major + 1} beside v{major} (keep v{major} or deprecate it)"
                if major > 0
                else f"bump the minor (0.{_version_key(before.version)[1] + 1}.0) or publish v1"
            )
            schema = [replace(c, fix=c.fix or fix) if c.blocking else c for c in schema]
        lifecycle = _diff_status(base, head, before, after, affected, today)
        excluded = [c for c in affected if not satisfies(after.version, c.version_range)]
        if excluded:
            lifecycle.append(
                Change(
                    key,
                    f"v{major}",
                    None,
                    Rule.CONSUMER_RANGE_EXCLUDED,
                    False,
                    f"{after.version} is outside the range of {len(excluded)} consumer(s), which then read "
                    "another port or none",
                    warning=True,
                    consumers=tuple(excluded),
                    fix="widen their version ranges",
                )
            )
        port_changes = schema + lifecycle
        changes += port_changes
        if effective_status(base, before, today) != Status.RETIRED:
            changes += _versions(key, before, after, port_changes + product_changes)
    changes += _consumer_moves(consumer_specs, base, head)
    return changes


def _new_port(base: DataProductSpec, head: DataProductSpec, port: OutputPort) -> list[Change]:
    """A new major: announced, and compared with the major it succeeds so the migration is documented."""
    key, major = head.key, port.major
    changes = [Change(key, f"v{major}", None, Rule.PORT_ADDED, False, f"new major v{major} ({port.version})")]
    previous = [p for p in base.output_ports if p.major < major]
    if previous:
        predecessor = max(previous, key=lambda p: p.major)
        changes += [
            replace(c, port=f"v{major}", allowed=f"in new major v{major}")
            for c in diff_ports(key, predecessor, port)
            if c.breaking
        ]
    return changes


def _latest_columns(spec: DataProductSpec) -> set[str]:
    return {c.name for c in max(spec.output_ports, key=lambda p: p.major).columns}


def _pair_moves(
    base: Mapping[str, DataProductSpec], head: Mapping[str, DataProductSpec], gone: list[str], new: list[str]
) -> dict[str, str]:
    """Guess renamed or moved products: same name in another domain, or (nearly) the same columns."""
    scored = []
    for old in gone:
        for candidate in new:
            if base[old].name == head[candidate].name:
                score = 1.0
            else:
                a, b = _latest_columns(base[old]), _latest_columns(head[candidate])
                score = len(a & b) / len(a | b)
            if score >= 0.8:
                scored.append((-score, old, candidate))
    moves: dict[str, str] = {}
    for _, old, candidate in sorted(scored):
        if old not in moves and candidate not in moves.values():
            moves[old] = candidate
    return moves


def diff_mesh(
    base: Mapping[str, DataProductSpec],
    head: Mapping[str, DataProductSpec],
    *,
    base_unreadable: Mapping[str, str] | None = None,
    head_unreadable: Mapping[str, str] | None = None,
    today: date | None = None,
) -> list[Change]:
    """Every contract change between two states of the mesh, keyed by `<domain>.<product>`.

    `*_unreadable` map products whose spec does not parse to why: unreadable at the base is reported
    and the product compared as new; unreadable in the working tree is blocking (it cannot be checked).
    """
    today = today or date.today()
    base_unreadable = base_unreadable or {}
    head_unreadable = head_unreadable or {}
    consumer_specs = list(head.values())
    gone = [k for k in base if k not in head and k not in head_unreadable]
    new = [k for k in head if k not in base and k not in base_unreadable]
    moves = _pair_moves(base, head, gone, new)
    moved_from = {v: k for k, v in moves.items()}
    changes: list[Change] = []
    for key in sorted(set(base) | set(head) | set(head_unreadable) | set(base_unreadable)):
        if key in head_unreadable:
            changes.append(
                Change(
                    key,
                    None,
                    None,
                    Rule.SPEC_UNREADABLE,
                    True,
                    f"the working-tree spec does not parse ({head_unreadable[key]}), so its "
                    "contract cannot be checked",
                    fix="fix it: run `mesh validate`",
                )
            )
            continue
        if key in base and key in head:
            changes += diff_specs(base[key], head[key], consumers=consumer_specs, today=today)
        elif key in base:
            changes += _removed_product(base[key], consumer_specs, today, moves.get(key))
        elif key not in head:  # unreadable at the base and gone now
            changes.append(
                Change(
                    key,
                    None,
                    None,
                    Rule.BASE_SPEC_UNREADABLE,
                    False,
                    f"the spec at the base does not parse ({base_unreadable[key]}) and the "
                    "product is gone: what it published cannot be checked",
                    warning=True,
                )
            )
        else:
            if key in base_unreadable:
                changes.append(
                    Change(
                        key,
                        None,
                        None,
                        Rule.BASE_SPEC_UNREADABLE,
                        False,
                        f"the spec at the base does not parse ({base_unreadable[key]}): "
                        "compared as a new product",
                        warning=True,
                    )
                )
            added = diff_specs(None, head[key])
            if key in moved_from:
                added = [replace(c, reason=f"{c.reason} (moved? from {moved_from[key]})") for c in added]
            changes += added
    return changes


# --- git ---------------------------------------------------------------------------------------------


class ContractDiffError(Exception):
    """The diff cannot run: git is missing, the folder is not in a repository, or the ref is unknown."""


@dataclass(frozen=True)
class Snapshot:
    """The product specs of the mesh at one git ref."""

    ref: str
    commit: str
    specs: dict[str, DataProductSpec] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)
    """`<domain>.<product>` of specs that do not parse at the ref, to why."""


def _git(root: Path, *args: str, stdin: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(["git", *args], cwd=root, input=stdin, capture_output=True, check=False)
    except FileNotFoundError as exc:
        raise ContractDiffError("git is not installed; the contract diff reads specs from git") from exc
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip() or f"git {args[0]} failed"
        raise ContractDiffError(message)
    return done.stdout


def _parse_spec(text: bytes) -> DataProductSpec | str:
    """The spec, or why it does not parse (one line)."""
    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        return f"not valid YAML: {getattr(exc, 'problem', exc)}"
    if not isinstance(data, dict):
        return "not a mapping of fields"
    try:
        return DataProductSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        return f"{where}: {first['msg']}{more}"


def read_specs_at(root: Path, ref: str) -> Snapshot:
    """Every `domains/*/products/*/dataproduct.yaml` under `root` as it was at git `ref`.

    `root` may be a folder inside the repository. A spec that does not parse at the ref is recorded in
    `unreadable`; an unknown ref or a folder outside any repository raises `ContractDiffError`.
    """
    try:
        prefix = _git(root, "rev-parse", "--show-prefix").decode().strip()
    except ContractDiffError as exc:
        raise ContractDiffError(f"{root} is not inside a git repository ({exc})") from exc
    try:
        commit = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").decode().strip()
    except ContractDiffError as exc:
        raise ContractDiffError(
            f"'{ref}' is not a commit of the repository at {root}; in CI, fetch enough history "
            "(e.g. actions/checkout with fetch-depth: 2) for the base to exist"
        ) from exc
    listed = _git(root, "ls-tree", "-r", "-z", "--name-only", "--full-name", commit, "--", "domains")
    files: list[tuple[str, str]] = []
    for full in filter(None, listed.decode().split("\0")):
        parts = full[len(prefix) :].split("/")
        if len(parts) == 5 and parts[0] == "domains" and parts[2] == "products" and parts[4] == SPEC_FILE:
            files.append((f"{parts[1]}.{parts[3]}", full))
    snapshot = Snapshot(ref=ref, commit=commit)
    if not files:
        return snapshot
    # One `git cat-file --batch` for all specs: a process per file is slow on a large mesh.
    out = _git(root, "cat-file", "--batch", stdin="".join(f"{commit}:{p}\n" for _, p in files).encode())
    position = 0
    for key, _ in files:
        header_end = out.index(b"\n", position)
        header = out[position:header_end].split()
        position = header_end + 1
        if len(header) < 3 or header[1] != b"blob":
            snapshot.unreadable[key] = "not a file at the ref"
            continue
        size = int(header[2])
        parsed = _parse_spec(out[position : position + size])
        position += size + 1  # the content is followed by a newline
        if isinstance(parsed, str):
            snapshot.unreadable[key] = parsed
        else:
            snapshot.specs[parsed.key] = parsed
    return snapshot


# --- the working tree against a ref -----------------------------------------------------------------


@dataclass
class DiffReport:
    """The contract changes of the working tree against a git ref."""

    base: str
    commit: str
    changes: list[Change]

    @property
    def blocking(self) -> list[Change]:
        """Breaking changes without a new major (or another allowance): the command fails on these."""
        return [c for c in self.changes if c.blocking]

    @property
    def ok(self) -> bool:
        """No blocking change."""
        return not self.blocking

    def sorted(self) -> list[Change]:
        """Changes, blocking first, then by product, port and column."""
        return sorted(self.changes, key=lambda c: (c.rank, c.product, c.port or "", c.column or ""))

    def summary(self) -> str:
        """One line: how many changes of each kind."""
        if not self.changes:
            return f"no contract changes against {self.base} ({self.commit[:10]})"
        allowed = sum(1 for c in self.changes if c.breaking and not c.blocking)
        warnings = sum(1 for c in self.changes if c.warning)
        return (
            f"{len(self.changes)} contract change(s) against {self.base} ({self.commit[:10]}): "
            f"{len(self.blocking)} breaking without a new major, {allowed} breaking but allowed, "
            f"{warnings} warning(s)"
        )

    def to_json(self) -> str:
        """Machine-readable report, for CI."""
        return json.dumps(
            {
                "ok": self.ok,
                "base": self.base,
                "commit": self.commit,
                "summary": self.summary(),
                "changes": [c.to_dict() for c in self.sorted()],
            },
            indent=2,
        )


def working_tree_specs(
    root: Path, today: date | None = None
) -> tuple[dict[str, DataProductSpec], dict[str, str]]:
    """The specs of the working tree, and the unreadable ones (key to why), through the registry."""
    registry = load_registry(root, today)
    unreadable: dict[str, str] = {}
    for key in registry.unreadable:
        domain, name = key.split(".")
        reasons = [
            f"{i.field}: {i.message}" if i.field else i.message
            for i in registry.errors
            if i.file.parent.name == name and i.file.parent.parent.parent.name == domain
        ]
        unreadable[key] = reasons[0] if reasons else "invalid spec"
    return {k: p.spec for k, p in registry.products.items()}, unreadable


def diff_working_tree(root: Path, base: str = "HEAD", today: date | None = None) -> DiffReport:
    """Compare every product's contract in the working tree under `root` with the same at git `base`."""
    snapshot = read_specs_at(root, base)
    head, head_unreadable = working_tree_specs(root, today)
    changes = diff_mesh(
        snapshot.specs,
        head,
        base_unreadable=snapshot.unreadable,
        head_unreadable=head_unreadable,
        today=today,
    )
    return DiffReport(base=base, commit=snapshot.commit, changes=changes)
