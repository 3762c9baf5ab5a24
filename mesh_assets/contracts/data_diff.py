"""Data diff: what a change does to a port's rows, compared by primary key against prod.

`mesh ci` builds a changed product in a branch environment and calls `diff_port` for each changed output
port, with the branch's and prod's fully qualified relations. The diff counts rows added, removed, changed
and unchanged by primary key, lists schema changes, flags columns whose null rate or distinct count moved,
and keeps a few example rows with every PII column masked. `to_markdown` renders it for a pull request.

The SQL is portable between DuckDB and Snowflake (FULL OUTER JOIN, `IS DISTINCT FROM`, COUNT/SUM/CASE);
only the catalog lookup differs by dialect (`_catalog_sql`). Keys are assumed unique (the contract's
primary-key check holds them so) and non-null: a row with a NULL key never matches and counts as added on
one side and removed on the other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mesh_assets.contracts.markdown import markdown_cell
from mesh_assets.product.sql_text import quote_identifier, quote_literal

if TYPE_CHECKING:
    from mesh_assets.infra.warehouse.base import WarehouseSession
    from mesh_assets.product.spec import OutputPort

NULL_RATE_MOVE = 0.01
"""A column's null rate moved when it changed by more than this (absolute, 0.01 = 1 percentage point)."""

DISTINCT_MOVE = 0.05
"""A column's distinct count moved when it changed by more than this fraction of prod's count (5%)."""

MASK = "***"
"""What an example shows instead of the value of a PII column (or of a column the spec does not declare)."""

_MAX_SHOWN = 40  # characters of a value shown in an example; a PR comment is not a data dump
_SIDE = '"_mesh_side"'  # presence marker: tells a missing row from a row whose key columns are NULL


@dataclass(frozen=True)
class ColumnDrift:
    """Null rate (fraction of rows) and distinct count of one column, in prod and in the branch."""

    column: str
    prod_null_rate: float
    branch_null_rate: float
    prod_distinct: int
    branch_distinct: int

    @property
    def moved(self) -> bool:
        """Whether the null rate or the distinct count moved past `NULL_RATE_MOVE` / `DISTINCT_MOVE`."""
        nulls = abs(self.branch_null_rate - self.prod_null_rate) > NULL_RATE_MOVE
        base = max(self.prod_distinct, 1)
        return nulls or abs(self.branch_distinct - self.prod_distinct) / base > DISTINCT_MOVE


@dataclass(frozen=True)
class ChangedRow:
    """One example changed row: its key (as shown) and `(column, prod value, branch value)` per difference."""

    key: tuple[str, ...]
    changes: tuple[tuple[str, str, str], ...]


@dataclass
class PortDataDiff:
    """The data diff of one output port, branch against prod. Counts are rows; examples are masked text."""

    name: str
    keys: list[str]
    branch_rows: int
    prod_rows: int = 0
    new_port: bool = False
    """Prod has no such table (a new port or major): nothing was compared."""
    added: int = 0
    removed: int = 0
    changed: int = 0
    unchanged: int = 0
    only_in_prod: list[str] = field(default_factory=list)
    only_in_branch: list[str] = field(default_factory=list)
    retyped: list[tuple[str, str, str]] = field(default_factory=list)
    """`(column, prod type, branch type)`; such columns are compared as text."""
    drift: list[ColumnDrift] = field(default_factory=list)
    changed_examples: list[ChangedRow] = field(default_factory=list)
    added_examples: list[tuple[str, ...]] = field(default_factory=list)
    removed_examples: list[tuple[str, ...]] = field(default_factory=list)
    note: str | None = None
    """Why rows were not compared, when they could not be (a key column missing on one side)."""

    @property
    def moved(self) -> list[ColumnDrift]:
        """The columns whose null rate or distinct count moved."""
        return [d for d in self.drift if d.moved]

    @property
    def has_schema_changes(self) -> bool:
        """Columns were dropped, added or retyped."""
        return bool(self.only_in_prod or self.only_in_branch or self.retyped)

    @property
    def has_row_changes(self) -> bool:
        """Rows were added, removed or changed."""
        return bool(self.added or self.removed or self.changed)

    @property
    def has_changes(self) -> bool:
        """Anything to tell a reviewer: a new port, row or schema changes, or a moved column."""
        return self.new_port or self.has_row_changes or self.has_schema_changes or bool(self.moved)

    @property
    def is_empty(self) -> bool:
        """The branch's port holds the same data, with the same schema, as prod's."""
        return not self.has_changes


def diff_port(
    session: WarehouseSession,
    *,
    branch_sql: str,
    prod_sql: str,
    port: OutputPort,
    name: str,
    examples: int = 3,
) -> PortDataDiff:
    """Compare the branch's port `branch_sql` with prod's `prod_sql` (fully qualified, quoted relations).

    Raises `ValueError` when the branch relation does not exist (the branch must have built it).
    """
    branch_cols = _describe(session, branch_sql)
    if not branch_cols:
        raise ValueError(f"{name}: the branch has no table {branch_sql}; build the port before diffing it")
    keys = list(port.primary_key)
    branch_rows = _count(session, branch_sql)
    prod_cols = _describe(session, prod_sql)
    if not prod_cols:
        return PortDataDiff(name=name, keys=keys, branch_rows=branch_rows, new_port=True)
    diff = PortDataDiff(name=name, keys=keys, branch_rows=branch_rows, prod_rows=_count(session, prod_sql))
    prod_types, branch_types = dict(prod_cols), dict(branch_cols)
    diff.only_in_prod = [c for c in prod_types if c not in branch_types]
    diff.only_in_branch = [c for c in branch_types if c not in prod_types]
    common = [c for c in branch_types if c in prod_types]
    diff.retyped = [
        (c, prod_types[c], branch_types[c])
        for c in common
        if prod_types[c].upper() != branch_types[c].upper()
    ]
    diff.drift = _drift(session, prod_sql, branch_sql, common, diff.prod_rows, branch_rows)
    missing_keys = [k for k in keys if k not in common]
    if missing_keys:
        diff.note = f"key column(s) {', '.join(missing_keys)} not in both tables: rows not compared"
        return diff
    retyped = {c for c, _, _ in diff.retyped}
    values = [c for c in common if c not in keys]
    _compare_rows(session, diff, branch_sql, prod_sql, values, retyped)
    pii = {c.name for c in port.columns if c.pii}
    declared = {c.name for c in port.columns}
    masked = pii | (set(common) - declared)
    _collect_examples(session, diff, branch_sql, prod_sql, common, retyped, masked, examples)
    return diff


def _compare_rows(
    session: WarehouseSession,
    diff: PortDataDiff,
    branch_sql: str,
    prod_sql: str,
    values: list[str],
    retyped: set[str],
) -> None:
    differs = _differs(values, retyped)
    row = session.query(
        "SELECT "
        f"COALESCE(SUM(CASE WHEN p.{_SIDE} IS NULL THEN 1 ELSE 0 END), 0), "
        f"COALESCE(SUM(CASE WHEN b.{_SIDE} IS NULL THEN 1 ELSE 0 END), 0), "
        f"COALESCE(SUM(CASE WHEN b.{_SIDE} IS NOT NULL AND p.{_SIDE} IS NOT NULL AND ({differs}) "
        "THEN 1 ELSE 0 END), 0), "
        f"COUNT(*) FROM {_join(diff.keys, branch_sql, prod_sql, 'FULL OUTER')}"
    )[0]
    diff.added, diff.removed, diff.changed = int(row[0]), int(row[1]), int(row[2])
    diff.unchanged = int(row[3]) - diff.added - diff.removed - diff.changed


def _collect_examples(
    session: WarehouseSession,
    diff: PortDataDiff,
    branch_sql: str,
    prod_sql: str,
    common: list[str],
    retyped: set[str],
    masked: set[str],
    examples: int,
) -> None:
    if examples <= 0:
        return
    keys = diff.keys
    values = [c for c in common if c not in keys]
    order = ", ".join(f"b.{quote_identifier(k)}" for k in keys)
    if diff.changed and values:
        select = [f"b.{quote_identifier(k)}" for k in keys]
        for c in values:
            select += [_val("p", c, c in retyped), _val("b", c, c in retyped)]
            select.append(f"CASE WHEN {_differs([c], retyped)} THEN 1 ELSE 0 END")
        # Distinct aliases: both sides' columns share names, and some drivers keep one column per name.
        aliased = ", ".join(f'{expr} AS "_mesh_{i}"' for i, expr in enumerate(select))
        rows = session.query(
            f"SELECT {aliased} FROM {_join(keys, branch_sql, prod_sql, 'INNER')} "
            f"WHERE {_differs(values, retyped)} ORDER BY {order} LIMIT {int(examples)}"
        )
        for row in rows:
            key = tuple(_show(v, k in masked) for k, v in zip(keys, row, strict=False))
            changes = []
            for i, c in enumerate(values):
                before, after, flag = row[len(keys) + 3 * i : len(keys) + 3 * i + 3]
                if flag:
                    changes.append((c, _show(before, c in masked), _show(after, c in masked)))
            diff.changed_examples.append(ChangedRow(key=key, changes=tuple(changes)))
    for side, other, count, out in (
        ("b", "p", diff.added, diff.added_examples),
        ("p", "b", diff.removed, diff.removed_examples),
    ):
        if not count:
            continue
        rows = session.query(
            f"SELECT {', '.join(f'{side}.{quote_identifier(k)}' for k in keys)} "
            f"FROM {_join(keys, branch_sql, prod_sql, 'FULL OUTER')} WHERE {other}.{_SIDE} IS NULL "
            f"ORDER BY {', '.join(f'{side}.{quote_identifier(k)}' for k in keys)} LIMIT {int(examples)}"
        )
        out.extend(tuple(_show(v, k in masked) for k, v in zip(keys, row, strict=False)) for row in rows)


def _drift(
    session: WarehouseSession,
    prod_sql: str,
    branch_sql: str,
    columns: list[str],
    prod_rows: int,
    branch_rows: int,
) -> list[ColumnDrift]:
    if not columns:
        return []
    select = ", ".join(
        f"COUNT({quote_identifier(c)}), COUNT(DISTINCT {quote_identifier(c)})" for c in columns
    )
    prod = session.query(f"SELECT {select} FROM {prod_sql}")[0]
    branch = session.query(f"SELECT {select} FROM {branch_sql}")[0]

    def null_rate(rows: int, non_null: Any) -> float:
        return (rows - int(non_null)) / rows if rows else 0.0

    return [
        ColumnDrift(
            column=c,
            prod_null_rate=null_rate(prod_rows, prod[2 * i]),
            branch_null_rate=null_rate(branch_rows, branch[2 * i]),
            prod_distinct=int(prod[2 * i + 1]),
            branch_distinct=int(branch[2 * i + 1]),
        )
        for i, c in enumerate(columns)
    ]


def _val(alias: str, column: str, as_text: bool) -> str:
    # A retyped column is compared as text: the two sides' types need not compare with each other.
    ref = f"{alias}.{quote_identifier(column)}"
    return f"CAST({ref} AS VARCHAR)" if as_text else ref


def _differs(columns: list[str], retyped: set[str]) -> str:
    if not columns:
        return "1 = 0"
    return " OR ".join(
        f"{_val('b', c, c in retyped)} IS DISTINCT FROM {_val('p', c, c in retyped)}" for c in columns
    )


def _join(keys: list[str], branch_sql: str, prod_sql: str, kind: str) -> str:
    on = " AND ".join(f"b.{quote_identifier(k)} = p.{quote_identifier(k)}" for k in keys)
    return (
        f"(SELECT t.*, 1 AS {_SIDE} FROM {branch_sql} t) b {kind} JOIN "
        f"(SELECT t.*, 1 AS {_SIDE} FROM {prod_sql} t) p ON {on}"
    )


def _count(session: WarehouseSession, relation_sql: str) -> int:
    return int(session.query(f"SELECT COUNT(*) FROM {relation_sql}")[0][0])


_PART = re.compile(r'"((?:[^"]|"")*)"|([^."]+)')


def _parts(relation_sql: str) -> list[str]:
    """`"db"."schema"."name"` (or `schema.name`) split into its identifiers, unquoted."""
    return [plain.strip() or quoted.replace('""', '"') for quoted, plain in _PART.findall(relation_sql)]


def _catalog_sql(dialect: str, relation_sql: str) -> str:
    """The information_schema query for a relation's columns, which is where the two dialects differ.

    DuckDB has one `information_schema` for every attached database (filter by `table_catalog`); Snowflake
    has one per database (prefix it with the database).
    """
    *database, schema, table = _parts(relation_sql)
    source, where = (
        "information_schema.columns",
        f"table_schema = {quote_literal(schema)} AND table_name = {quote_literal(table)}",
    )
    if database and dialect == "snowflake":
        source = f"{quote_identifier(database[0])}.information_schema.columns"
    elif database:
        where += f" AND table_catalog = {quote_literal(database[0])}"
    elif dialect != "snowflake":  # unqualified: the session's own database, not a same-named attached table
        where += " AND table_catalog = current_database()"
    return (
        f"SELECT column_name, data_type, numeric_precision, numeric_scale FROM {source} "
        f"WHERE {where} ORDER BY ordinal_position"
    )


def _describe(session: WarehouseSession, relation_sql: str) -> list[tuple[str, str]]:
    """`(column, type)` of a relation, in order; empty when it does not exist."""
    rows = session.query(_catalog_sql(session.dialect, relation_sql))
    # Snowflake reports NUMBER for every integer and decimal: keep precision and scale to tell them apart.
    return [(str(n), f"NUMBER({p},{s})" if str(t).upper() == "NUMBER" else str(t)) for n, t, p, s in rows]


def _show(value: Any, masked: bool) -> str:
    if masked:
        return MASK
    if value is None:
        return "NULL"
    text = str(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"


def to_markdown(diff: PortDataDiff) -> str:
    """A compact Markdown section for a pull-request comment: summary, counts, drift, schema, examples."""
    title = f"### Data diff: {diff.name}"
    if diff.new_port:
        return f"{title}\n\nNew port: {diff.branch_rows} rows, nothing to compare in prod.\n"
    if diff.is_empty:
        summary = f"No change: {diff.branch_rows} rows, identical to prod."
    else:
        summary = (
            f"{diff.added} added, {diff.removed} removed, {diff.changed} changed "
            f"(prod {diff.prod_rows} rows → branch {diff.branch_rows}; key {', '.join(diff.keys)})."
        )
    lines = [title, "", summary]
    if diff.note:
        lines += ["", f"_{diff.note}_"]
    lines += [
        "",
        "| prod rows | branch rows | added | removed | changed | unchanged |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {diff.prod_rows} | {diff.branch_rows} | {diff.added} | {diff.removed} | {diff.changed} "
        f"| {diff.unchanged} |",
    ]
    if diff.has_schema_changes:
        lines += ["", "**Schema changes**", ""]
        lines += [f"- `{c}` removed in branch (not compared)" for c in diff.only_in_prod]
        lines += [f"- `{c}` added in branch" for c in diff.only_in_branch]
        lines += [f"- `{c}` retyped {a} → {b} (compared as text)" for c, a, b in diff.retyped]
    if diff.moved:
        lines += ["", "**Columns that moved**", "", "| column | null rate | distinct |", "|---|---|---|"]
        lines += [
            f"| `{d.column}` | {d.prod_null_rate:.1%} → {d.branch_null_rate:.1%} "
            f"| {d.prod_distinct} → {d.branch_distinct} |"
            for d in diff.moved
        ]
    if diff.changed_examples:
        lines += ["", "**Example changed rows** (PII masked)", "", "| key | column | prod | branch |"]
        lines.append("|---|---|---|---|")
        for ex in diff.changed_examples:
            key = markdown_cell(", ".join(ex.key))
            lines += [
                f"| {key} | `{c}` | {markdown_cell(a)} | {markdown_cell(b)} |" for c, a, b in ex.changes
            ]
    for label, keys in (("added", diff.added_examples), ("removed", diff.removed_examples)):
        if keys:
            shown = "; ".join(markdown_cell(", ".join(k)) for k in keys)
            lines += ["", f"Example {label} keys: {shown}"]
    return "\n".join(lines) + "\n"
