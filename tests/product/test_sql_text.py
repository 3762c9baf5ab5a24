"""Quoted identifiers and string literals the platform writes, checked against DuckDB executing them."""

from __future__ import annotations

import duckdb
import pytest

from mesh_assets.product.sql_text import qualified, quote_identifier, quote_literal

HOSTILE = ["plain", "Mixed Case", 'a"b', '""', "x.y", "it's", "naïve_ünïcödé", "日本", "semi;--colon", "a\\b"]
"""Names that break naive quoting: embedded quotes, dots, spaces, unicode, comment markers, backslashes."""


def test_an_identifier_is_double_quoted_with_its_own_quotes_doubled() -> None:
    assert quote_identifier("orders_v1") == '"orders_v1"'
    assert quote_identifier('a"b') == '"a""b"'
    assert quote_identifier("x.y") == '"x.y"'


def test_a_qualified_name_quotes_each_part_so_a_dot_inside_a_part_stays_in_it() -> None:
    assert qualified("sales", "orders_v1") == '"sales"."orders_v1"'
    assert qualified("a.b", 'c"d') == '"a.b"."c""d"'
    with pytest.raises(ValueError, match="at least one name"):
        qualified()


def test_a_literal_doubles_its_quotes_and_only_snowflake_text_doubles_backslashes() -> None:
    assert quote_literal("it's") == "'it''s'"
    assert quote_literal(42) == "'42'"
    assert quote_literal("a\\b") == "'a\\b'"
    assert quote_literal("a\\'b", backslash_escapes=True) == "'a\\\\''b'"


@pytest.mark.parametrize("name", HOSTILE)
def test_duckdb_reads_back_every_hostile_name_exactly_as_written(name: str) -> None:
    with duckdb.connect(":memory:") as con:
        con.execute(f"CREATE SCHEMA {quote_identifier(name)}")
        con.execute(f"CREATE TABLE {qualified(name, name)} ({quote_identifier(name)} VARCHAR)")
        con.execute(f"INSERT INTO {qualified(name, name)} VALUES ({quote_literal(name)})")
        [(value,)] = con.execute(f"SELECT {quote_identifier(name)} FROM {qualified(name, name)}").fetchall()
        [(schema, table, column)] = con.execute(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns "
            f"WHERE table_schema = {quote_literal(name)}"
        ).fetchall()
    assert (value, schema, table, column) == (name, name, name, name)
