"""GX expectations the warehouse answers: well-known great-expectations expectations compiled to SQL
aggregates with GX 1.x's own semantics, so they join the audit's single scan of the batch.

Why: the first import of great-expectations in a process costs 3-4 s (65% of the customers.customer_master
port's build, issue 15), to answer questions one `SUM(CASE ...)` answers. So an expectation in
`COMPILERS`, with only arguments its compiler understands, is judged in the warehouse; anything else
(another expectation, an argument such as `row_condition`, a type GX would coerce differently) returns
None and runs in GX as before. `tests/quality/test_expectations_sql.py` holds both engines to the same
verdict and count.

GX's semantics replicated here (read from its source, `expectations/core/` and `metrics/`):
- column-map expectations ignore missing values, and `mostly` is measured over the non-missing rows;
  `expect_column_values_to_not_be_null` is measured over all rows;
- pair expectations drop rows by `ignore_row_if` first; a compared null is unexpected;
- "missing" is pandas' `isnull`: SQL NULL, and NaN in a double column;
- `mostly` is `(considered - unexpected) / considered >= mostly`, vacuously true with nothing considered.

One known difference: GX sees a decimal column as floats (both warehouses hand pandas float64), SQL
compares it exactly; verdicts can differ only beyond a double's 15-17 significant digits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mesh_assets.product.spec import LogicalType
from mesh_assets.product.sql_text import quote_literal

NUMERIC = {LogicalType.INTEGER, LogicalType.BIGINT, LogicalType.DOUBLE, LogicalType.DECIMAL}
TEXT = {LogicalType.STRING}

IGNORE_ROW_IF = ("both_values_are_missing", "either_value_is_missing", "neither")
"""`ignore_row_if` values GX allows on a column pair (its default first)."""


@dataclass(frozen=True)
class CompiledExpectation:
    """An expectation as SQL: which rows GX counts, which of them it finds unexpected, its `mostly`."""

    considered: str
    """Predicate of the rows GX considers (the denominator of `mostly`)."""
    unexpected: str
    """Predicate of a considered row GX counts as unexpected (for uniqueness, a template on `{batch}`)."""
    mostly: float
    columns: tuple[str, ...]
    """The columns a failing sample shows."""
    exact_in_scan: bool = True
    """False when the scan gives only a lower bound (duplicates beyond the first) that is exact at 0."""

    def aggregates(self, alias: str) -> dict[str, str]:
        """The scan's aggregates: considered rows and unexpected rows (or duplicates, for uniqueness)."""
        counted = {f"{alias}__considered": f"SUM(CASE WHEN {self.considered} THEN 1 ELSE 0 END)"}
        if self.exact_in_scan:
            counted[f"{alias}__unexpected"] = (
                f"SUM(CASE WHEN {self.considered} AND {self.unexpected} THEN 1 ELSE 0 END)"
            )
        else:
            (column,) = self.columns
            kept = f'CASE WHEN {self.considered} THEN "{column}" END'
            counted[f"{alias}__unexpected"] = f"COUNT({kept}) - COUNT(DISTINCT {kept})"
        return counted

    def where(self, batch_sql: str) -> str:
        """Predicate of an unexpected row of the batch (for the exact count and the samples)."""
        unexpected = self.unexpected if self.exact_in_scan else self.unexpected.format(batch=batch_sql)
        return f"{self.considered} AND {unexpected}"

    def success(self, considered: int, unexpected: int) -> bool:
        """GX's verdict (`_mostly_success`, float arithmetic and all)."""
        if considered == 0:
            return True
        return (float(considered) - float(unexpected)) / float(considered) >= self.mostly


def compile_expectation(
    expectation: str, kwargs: Mapping[str, Any], types: Mapping[str, LogicalType], dialect: str
) -> CompiledExpectation | None:
    """The SQL form of an expectation, or None when only GX can judge it as GX would.

    `types` are the contract's column types (they decide which comparisons SQL makes as pandas does);
    `dialect` decides string escaping.
    """
    compiler = COMPILERS.get(expectation)
    if compiler is None:
        return None
    allowed, build = compiler
    if not set(kwargs) <= allowed | {"mostly"}:
        return None
    mostly = kwargs.get("mostly", 1)
    if not _is_number(mostly) or not 0 <= mostly <= 1:
        return None
    try:
        return build(_Args(kwargs, types, dialect), float(mostly))
    except _NotCompilable:
        return None


class _NotCompilable(Exception):
    """An argument outside what SQL answers exactly as GX does."""


@dataclass(frozen=True)
class _Args:
    kwargs: Mapping[str, Any]
    types: Mapping[str, LogicalType]
    dialect: str

    def column(self, key: str, family: set[LogicalType] | None = None) -> str:
        name = self.kwargs.get(key)
        if not isinstance(name, str) or name not in self.types:
            raise _NotCompilable
        if family is not None and self.types[name] not in family:
            raise _NotCompilable
        return name

    def flag(self, key: str, default: bool | None) -> bool | None:
        value = self.kwargs.get(key, default)
        if value is not None and not isinstance(value, bool):
            raise _NotCompilable  # GX (pydantic) would coerce "yes" and 1; leave that to GX
        return value

    def number(self, key: str, *, integer: bool = False) -> float | int | None:
        value = self.kwargs.get(key)
        if value is None:
            return None
        if not _is_number(value) or (integer and not isinstance(value, int)):
            raise _NotCompilable
        return value

    def literal(self, value: object) -> str:
        if _is_number(value):
            return repr(value)
        if isinstance(value, str):
            # Snowflake reads backslash escapes in string literals; DuckDB reads a backslash as itself.
            return quote_literal(value, backslash_escapes=self.dialect == "snowflake")
        raise _NotCompilable

    def missing(self, column: str) -> str:
        """pandas' `isnull` in SQL: NaN is missing in a double column (NaN = NaN in both warehouses)."""
        if self.types[column] == LogicalType.DOUBLE:
            return f'("{column}" IS NULL OR "{column}" = CAST(\'NaN\' AS DOUBLE))'
        return f'"{column}" IS NULL'


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _column_map(args: _Args, mostly: float, column: str, unexpected: str) -> CompiledExpectation:
    return CompiledExpectation(f"NOT {args.missing(column)}", f"({unexpected})", mostly, (column,))


def _not_null(args: _Args, mostly: float) -> CompiledExpectation:
    column = args.column("column")
    return CompiledExpectation("TRUE", args.missing(column), mostly, (column,))


def _unique(args: _Args, mostly: float) -> CompiledExpectation:
    column = args.column("column")
    # GX flags every row of a duplicated value (`duplicated(keep=False)`): a GROUP BY, not an aggregate.
    # A str.format template on the batch relation (column names are identifiers: no braces to escape).
    duplicated = (
        f'"{column}" IN (SELECT "{column}" FROM {{batch}} WHERE NOT {args.missing(column)} '
        f'GROUP BY "{column}" HAVING COUNT(*) > 1)'
    )
    return CompiledExpectation(
        f"NOT {args.missing(column)}", duplicated, mostly, (column,), exact_in_scan=False
    )


def _bounds(expression: str, low: object, high: object, strict_min: bool, strict_max: bool) -> str:
    """Predicate of a value outside the bounds (GX's `_pandas_vectorized`, negated)."""
    inside = []
    if low is not None:
        inside.append(f"{expression} {'>' if strict_min else '>='} {low}")
    if high is not None:
        inside.append(f"{expression} {'<' if strict_max else '<='} {high}")
    return f"NOT ({' AND '.join(inside)})"


def _between(args: _Args, mostly: float, *, lengths: bool) -> CompiledExpectation:
    column = args.column("column", TEXT if lengths else NUMERIC)
    low, high = args.number("min_value", integer=lengths), args.number("max_value", integer=lengths)
    strict_min, strict_max = args.flag("strict_min", False), args.flag("strict_max", False)
    if (low is None and high is None) or strict_min is None or strict_max is None:
        raise _NotCompilable  # GX refuses these; let it say so
    if low is not None and high is not None and low > high:
        raise _NotCompilable
    expression = f'LENGTH("{column}")' if lengths else f'"{column}"'
    bounds = _bounds(
        expression,
        None if low is None else args.literal(low),
        None if high is None else args.literal(high),
        strict_min,
        strict_max,
    )
    return _column_map(args, mostly, column, bounds)


def _length_equal(args: _Args, mostly: float) -> CompiledExpectation:
    column = args.column("column", TEXT)
    value = args.number("value")
    if value is None:
        raise _NotCompilable
    return _column_map(args, mostly, column, f'LENGTH("{column}") <> {args.literal(value)}')


def _in_set(args: _Args, mostly: float, *, negated: bool) -> CompiledExpectation:
    column = args.column("column", NUMERIC | TEXT)
    value_set = args.kwargs.get("value_set")
    if not isinstance(value_set, list):
        raise _NotCompilable  # None is vacuous in GX, but its renderers choke on it: GX's call
    # pandas' `isin` matches 1 and 1.0 but never 1 and "1": values must share the column's family.
    family = TEXT if args.types[column] in TEXT else NUMERIC
    if not all(isinstance(v, str) if family is TEXT else _is_number(v) for v in value_set):
        raise _NotCompilable
    member = f'"{column}" IN ({", ".join(args.literal(v) for v in value_set)})' if value_set else "FALSE"
    return _column_map(args, mostly, column, member if negated else f"NOT {member}")


def _a_greater_than_b(args: _Args, mostly: float) -> CompiledExpectation:
    a, b = args.column("column_A"), args.column("column_B")
    # pandas raises comparing across families (GX reports that), and on Snowflake a date column arrives
    # as `datetime.date` objects that do not compare with timestamps: temporal pairs must match exactly.
    comparable = (args.types[a] in NUMERIC and args.types[b] in NUMERIC) or args.types[a] == args.types[b]
    if not comparable or args.types[a] == LogicalType.BOOLEAN:
        raise _NotCompilable
    or_equal = args.flag("or_equal", None)
    ignore = args.kwargs.get("ignore_row_if", IGNORE_ROW_IF[0])
    if ignore not in IGNORE_ROW_IF:
        raise _NotCompilable
    considered = {
        "both_values_are_missing": f"NOT ({args.missing(a)} AND {args.missing(b)})",
        "either_value_is_missing": f"NOT ({args.missing(a)} OR {args.missing(b)})",
        "neither": "TRUE",
    }[ignore]
    # pandas compares a missing value as false: the row is unexpected, never skipped.
    holds = f'"{a}" {">=" if or_equal else ">"} "{b}"'
    unexpected = f"({args.missing(a)} OR {args.missing(b)} OR NOT ({holds}))"
    return CompiledExpectation(considered, unexpected, mostly, (a, b))


COMPILERS: dict[str, tuple[set[str], Callable[[_Args, float], CompiledExpectation]]] = {
    "expect_column_values_to_not_be_null": ({"column"}, _not_null),
    "expect_column_values_to_be_unique": ({"column"}, _unique),
    "expect_column_values_to_be_between": (
        {"column", "min_value", "max_value", "strict_min", "strict_max"},
        lambda args, mostly: _between(args, mostly, lengths=False),
    ),
    "expect_column_value_lengths_to_be_between": (
        {"column", "min_value", "max_value", "strict_min", "strict_max"},
        lambda args, mostly: _between(args, mostly, lengths=True),
    ),
    "expect_column_value_lengths_to_equal": ({"column", "value"}, _length_equal),
    "expect_column_values_to_be_in_set": (
        {"column", "value_set"},
        lambda args, mostly: _in_set(args, mostly, negated=False),
    ),
    "expect_column_values_to_not_be_in_set": (
        {"column", "value_set"},
        lambda args, mostly: _in_set(args, mostly, negated=True),
    ),
    "expect_column_pair_values_a_to_be_greater_than_b": (
        {"column_A", "column_B", "or_equal", "ignore_row_if"},
        _a_greater_than_b,
    ),
}
"""Expectation name -> (the arguments its compiler understands besides `mostly`, the compiler)."""
