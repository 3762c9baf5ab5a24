"""Column lineage of one SQL statement: which columns of which tables each selected column comes from.

sqlglot (imported only when a statement is read) qualifies the statement against the schemas of the
tables it reads, so `SELECT *` expands to the known columns and every column is tied to its table through
CTEs, subqueries, joins and window functions; `sqlglot.lineage` then walks each output column down to
base tables. Besides the columns each output is computed from, a statement *reads* the columns its
joins, filters, groupings and unused CTE columns name: a consumer that joins on a column breaks when it
goes, even if no output column is computed from it. Both are over-approximations when in doubt: a
column the walker cannot place (a `SELECT *` from a table whose columns are unknown, unparseable SQL)
becomes `*`, "every column of that table", never "nothing".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

WILDCARD = "*"
"""A column name meaning "every column of the table": what is read when lineage cannot say which."""

# Aggregates whose result is a statistic, not one of the rows' values: personal data does not survive them.
# min/max/first/any_value/string_agg/list return input values themselves, so they are deliberately absent.
_PROTECTING_AGGREGATES = {
    "count",
    "sum",
    "avg",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "variance",
    "var_pop",
    "var_samp",
    "approx_distinct",
    "approx_count_distinct",
    "approx_quantile",
    "median",
    "quantile",
    "quantile_cont",
    "corr",
    "covar_pop",
    "covar_samp",
}
# Hashing and masking: the value no longer identifies the person (the platform's own PII handling uses these).
_PROTECTING_FUNCTIONS = {"md5", "sha1", "sha2", "sha256", "sha512", "hash", "md5_number", "mask", "hll"}


@dataclass(frozen=True)
class TableColumn:
    """A column of a base table the statement reads: `table` as `(schema, name)` in lower case."""

    table: tuple[str, str]
    column: str
    carries: bool = True
    """The value passes into the output unprotected (no statistic aggregate, hash or mask on the way)."""


@dataclass
class StatementLineage:
    """The lineage of one statement: output columns to table columns, and every table column read."""

    columns: dict[str, list[TableColumn]] = field(default_factory=dict)
    reads: set[tuple[tuple[str, str], str]] = field(default_factory=set)
    error: str | None = None
    """Why the statement could not be read; then `columns` is empty and callers assume every column."""


def _function_names(expression: Any) -> set[str]:
    from sqlglot import exp

    names = set()
    for node in expression.find_all(exp.Func):
        name = node.sql_name() if not isinstance(node, exp.Anonymous) else node.name
        names.add(name.lower())
    return names


def _protects(expression: Any) -> bool:
    names = _function_names(expression)
    return bool(names & (_PROTECTING_AGGREGATES | _PROTECTING_FUNCTIONS))


def _table_of(source: Any) -> tuple[str, str] | None:
    from sqlglot import exp

    if isinstance(source, exp.Table) and source.name:
        return (source.db.lower(), source.name.lower())
    return None


def statement_lineage(
    sql: str, schema: dict[str, dict[str, dict[str, str]]], dialect: str = "duckdb"
) -> StatementLineage:
    """The column lineage of `sql` (`dialect`), given `schema[db][table] = {column: type}` of known tables.

    Tables missing from `schema` are read as `*` when the statement selects all their columns.
    """
    import sqlglot
    from sqlglot import exp
    from sqlglot.lineage import lineage
    from sqlglot.optimizer.qualify import qualify
    from sqlglot.optimizer.scope import build_scope

    result = StatementLineage()
    try:
        parsed = sqlglot.parse_one(sql, read=dialect)
        qualified = qualify(
            parsed,
            schema=schema,
            dialect=dialect,
            validate_qualify_columns=False,
            quote_identifiers=False,
            identify=False,
        )
        root = build_scope(qualified)
        if root is None:
            raise ValueError("not a query")
        for scope in root.traverse():
            for column in scope.columns:
                table = _table_of(scope.sources.get(column.table))
                if table is not None:
                    result.reads.add((table, column.name.lower()))
            projections = scope.expression.expressions if isinstance(scope.expression, exp.Select) else []
            for projection in projections:
                # A star left after qualifying: the table's columns are unknown, so all of them are read.
                if isinstance(projection, exp.Star) or (
                    isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star)
                ):
                    named = projection.table if isinstance(projection, exp.Column) else ""
                    for alias, source in scope.sources.items():
                        table = _table_of(source)
                        if table is not None and named in ("", alias):
                            result.reads.add((table, WILDCARD))
        for name in qualified.named_selects:
            node = lineage(
                name, qualified, schema=schema, dialect=dialect, scope=root, trim_selects=False, copy=False
            )
            found: dict[tuple[tuple[str, str], str], bool] = {}
            _walk(node, False, found)
            result.columns[name.lower()] = [TableColumn(t, c, carries) for (t, c), carries in found.items()]
    except Exception as exc:  # sqlglot raises many types; any failure means "unknown", never "unused"
        return StatementLineage(error=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    return result


def _walk(node: Any, protected: bool, found: dict[tuple[tuple[str, str], str], bool]) -> None:
    from sqlglot import exp

    protected = protected or (node.expression is not None and _protects(node.expression))
    if node.downstream:
        for child in node.downstream:
            _walk(child, protected, found)
        return
    table = _table_of(node.source)
    if table is None or not isinstance(node.expression, exp.Table):
        return  # a literal or `count(*)`: computed from no column
    column = node.name.split(".")[-1].strip('"').lower()
    key = (table, column)
    found[key] = found.get(key, False) or not protected
