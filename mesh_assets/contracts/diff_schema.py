"""One port's schema between two versions: columns, types, keys, quality and description.

Types are compared by what their values can hold: a type that keeps every old value widens, one that
loses values narrows (breaking), and one that keeps values but changes kind still breaks readers' queries.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from mesh_assets.contracts.diff_rules import Change, Rule
from mesh_assets.contracts.odcs_vocabulary import mesh_type
from mesh_assets.product.spec import AcceptedValuesRule, Column, LogicalType, OutputPort, Severity

_INTEGER_DIGITS = {LogicalType.INTEGER: 10, LogicalType.BIGINT: 19}
"""Decimal digits of the largest value of each integer type (2,147,483,647 and 9.2e18)."""


def _type_change(old: Column, new: Column) -> tuple[Rule, str] | None:
    """Classify a column's type change: widened (every old value fits), narrowed (values are lost) or
    changed (values survive but readers' queries built for the old type break)."""
    a, b = mesh_type(old), mesh_type(new)
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
            if mesh_type(r) == mesh_type(a)
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


@dataclass
class _Found:
    """The schema changes of one port found so far."""

    product: str
    port: str
    changes: list[Change] = field(default_factory=list)

    def add(self, rule: Rule, column: str | None, breaking: bool, reason: str, warning: bool = False) -> None:
        self.changes.append(Change(self.product, self.port, column, rule, breaking, reason, warning=warning))


def diff_ports(product: str, base: OutputPort, head: OutputPort) -> list[Change]:
    """The schema changes between two versions of a port: columns, keys, quality and description.

    Breaking: a column removed or renamed, a type that loses values or changes kind, a column that
    becomes nullable, no longer unique or PII, a changed primary key or event time, a check that no
    longer blocks a publish. Lifecycle, versions and consumers are judged by `diff_specs`.
    """
    found = _Found(product, f"v{head.major}")
    for judge in (_columns, _keys, _quality):
        judge(base, head, found)
    if base.description != head.description:
        found.add(Rule.PORT_DESCRIPTION, None, False, "the port's description changed")
    return found.changes


def _columns(base: OutputPort, head: OutputPort, found: _Found) -> None:
    """Columns removed, renamed or added; each kept column's type, nullability, uniqueness, PII, wording."""
    old = {c.name: c for c in base.columns}
    new = {c.name: c for c in head.columns}
    removed = [c for c in base.columns if c.name not in new]
    added = [c for c in head.columns if c.name not in old]
    renames = _pair_renames(removed, added)
    for column in removed:
        if column.name in renames:
            found.add(
                Rule.COLUMN_RENAMED,
                column.name,
                True,
                f"renamed? {column.name} -> {renames[column.name].name}: readers of '{column.name}' fail",
            )
        else:
            found.add(
                Rule.COLUMN_REMOVED, column.name, True, f"column '{column.name}' removed: readers of it fail"
            )
    renamed_to = {c.name for c in renames.values()}
    for column in added:
        if column.name not in renamed_to:
            nullability = "nullable" if column.nullable else "not null"
            found.add(
                Rule.COLUMN_ADDED,
                column.name,
                False,
                f"column '{column.name}' added ({mesh_type(column)}, {nullability}); readers ignore it",
            )
    base_unique, head_unique = _unique_columns(base), _unique_columns(head)
    for name in (c.name for c in base.columns if c.name in new):
        before, after = old[name], new[name]
        typed = _type_change(before, after)
        if typed is not None:
            found.add(typed[0], name, typed[0] != Rule.TYPE_WIDENED, typed[1])
        if not before.nullable and after.nullable:
            found.add(
                Rule.BECAME_NULLABLE, name, True, f"'{name}' may now be null: readers relying on values break"
            )
        elif before.nullable and not after.nullable:
            found.add(Rule.BECAME_NOT_NULL, name, False, f"'{name}' is now never null (a stronger promise)")
        if name in base_unique and name not in head_unique:
            found.add(Rule.NO_LONGER_UNIQUE, name, True, f"'{name}' is no longer unique: joins on it fan out")
        elif name in head_unique and name not in base_unique:
            found.add(Rule.BECAME_UNIQUE, name, False, f"'{name}' is now unique (a stronger promise)")
        if not before.pii and after.pii:
            found.add(
                Rule.BECAME_PII,
                name,
                True,
                f"'{name}' is now personal data: readers without the PII privilege get it masked",
            )
        elif before.pii and not after.pii:
            found.add(Rule.NO_LONGER_PII, name, False, f"'{name}' is no longer marked as personal data")
        if before.description != after.description:
            found.add(Rule.COLUMN_DESCRIPTION, name, False, f"description of '{name}' changed")
        if before.examples != after.examples:
            found.add(Rule.COLUMN_EXAMPLES, name, False, f"examples of '{name}' changed")
    kept_order = [c.name for c in base.columns if c.name in new]
    if kept_order != [c.name for c in head.columns if c.name in old]:
        found.add(Rule.COLUMNS_REORDERED, None, False, "columns are in a new order; readers select by name")


def _keys(base: OutputPort, head: OutputPort, found: _Found) -> None:
    """The primary key (the grain of a row) and the event time (what incremental readers load by)."""
    if set(base.primary_key) != set(head.primary_key):
        # The key is the grain of a row: another key means other rows, so every reader's join or merge
        # on the old key is wrong, whether the key grew or shrank.
        found.add(
            Rule.PRIMARY_KEY_CHANGED,
            ", ".join(head.primary_key),
            True,
            f"primary key [{', '.join(base.primary_key)}] -> [{', '.join(head.primary_key)}]: the grain of "
            "a row changes and readers' keys no longer identify rows",
        )
    if base.event_time is not None and base.event_time != head.event_time:
        found.add(
            Rule.EVENT_TIME_CHANGED,
            base.event_time,
            True,
            f"event time '{base.event_time}' -> '{head.event_time or 'none'}': readers' incremental "
            "loads and data-time filters break",
        )


def _quality(base: OutputPort, head: OutputPort, found: _Found) -> None:
    """Check severities, row-count bounds and accepted values: what a published batch is held to."""
    new = {c.name for c in head.columns}
    for check, before_severity, after_severity in (
        ("schema", base.quality.schema_severity, head.quality.schema_severity),
        ("primary key", base.quality.key_severity, head.quality.key_severity),
    ):
        if before_severity != after_severity:
            weaker = after_severity == "warn"
            found.add(
                Rule.QUALITY_WEAKER if weaker else Rule.QUALITY_STRONGER,
                None,
                weaker,
                f"the {check} check is now '{after_severity}'"
                + (": a batch that breaks the contract is published anyway" if weaker else ""),
            )
    old_rows, new_rows = base.quality.row_count, head.quality.row_count
    if new_rows.min < old_rows.min:
        found.add(
            Rule.QUALITY_WEAKER,
            None,
            False,
            f"row count minimum {old_rows.min} -> {new_rows.min}: smaller batches now pass",
            warning=True,
        )
    elif new_rows.min > old_rows.min:
        found.add(Rule.QUALITY_STRONGER, None, False, f"row count minimum {old_rows.min} -> {new_rows.min}")
    if new_rows.max != old_rows.max:
        found.add(
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
            found.add(
                Rule.ACCEPTED_VALUE_REMOVED,
                column,
                True,
                f"the accepted values of {column} are no longer enforced: any value may now appear",
            )
            continue
        dropped = [v for v in values if v not in new_values[column]]
        if dropped:
            found.add(
                Rule.ACCEPTED_VALUE_REMOVED,
                column,
                True,
                f"accepted value(s) {', '.join(map(str, dropped))} of {column} removed: "
                "consumers filtering or mapping them lose rows",
            )
        grown = [v for v in new_values[column] if v not in values]
        if grown:
            found.add(
                Rule.ACCEPTED_VALUE_ADDED,
                column,
                False,
                f"accepted value(s) {', '.join(map(str, grown))} of {column} added: "
                "consumers with exhaustive mappings should handle them",
                warning=True,
            )


def _accepted_values(port: OutputPort) -> dict[str, list[str | int]]:
    """Accepted values per column, from the port's blocking accepted_values rules."""
    return {
        rule.column: list(rule.values)
        for rule in port.quality.rules
        if isinstance(rule, AcceptedValuesRule) and rule.severity == Severity.ERROR
    }
