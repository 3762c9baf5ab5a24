"""SQL text the platform writes itself: quoted identifiers and string literals, for DuckDB and Snowflake.

Hand-written on purpose: sqlglot would do it too, but code locations load this module and must not
import sqlglot (see docs/architecture.md). Both rules are the SQL standard's, which DuckDB and Snowflake
share: an identifier goes in double quotes with each `"` doubled, a literal in single quotes with each
`'` doubled. Only Snowflake also reads a backslash in a literal as an escape, so text bound for Snowflake
doubles it too (`quote_literal(..., backslash_escapes=True)`).
"""

from __future__ import annotations


def quote_identifier(name: str) -> str:
    """`name` as a quoted identifier, e.g. `orders_v1` → `"orders_v1"`, `a"b` → `"a""b"`.

    Quoted, the name keeps its case and may hold any character (dots, spaces, unicode) as part of it.
    """
    return '"' + name.replace('"', '""') + '"'


def qualified(*names: str) -> str:
    """A dotted name of quoted identifiers, e.g. `qualified("sales", "orders_v1")` → `"sales"."orders_v1"`.

    Each part is quoted on its own, so a dot inside a part stays part of that name.
    """
    if not names:
        raise ValueError("qualified() needs at least one name")
    return ".".join(quote_identifier(name) for name in names)


def quote_literal(text: object, *, backslash_escapes: bool = False) -> str:
    """`text` (its `str`) as a string literal, e.g. `it's` → `'it''s'`.

    `backslash_escapes=True` for Snowflake, whose string literals read `\\` as an escape character: the
    backslash is doubled so it stands for itself (DuckDB reads it literally and must not get it doubled).
    """
    value = str(text)
    if backslash_escapes:
        value = value.replace("\\", "\\\\")
    return "'" + value.replace("'", "''") + "'"
