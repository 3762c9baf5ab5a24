"""The data diff of a port, branch against prod, on real DuckDB files (prod attached read-only, as a branch
environment reads it), and the same SQL on fakesnow for portability."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from mesh_assets.contracts.data_diff import PortDataDiff, diff_port, to_markdown
from mesh_assets.infra.warehouse.duckdb import DuckDBSession
from mesh_assets.product.spec import Column, LogicalType, OutputPort

PORT = OutputPort(
    version="1.0.0",
    columns=[
        Column(name="order_id", type=LogicalType.INTEGER, nullable=False, description="Order number."),
        Column(name="email", type=LogicalType.STRING, pii=True, description="Buyer's e-mail."),
        Column(name="amount", type=LogicalType.DOUBLE, description="Order amount."),
        Column(name="region", type=LogicalType.STRING, description="Sales region."),
    ],
    primary_key=["order_id"],
)
TABLE = "CREATE TABLE sales.sales_v1 (order_id INTEGER, email VARCHAR, amount DOUBLE, region VARCHAR)"
BRANCH, PROD = '"mesh"."sales"."sales_v1"', '"mesh_prod"."sales"."sales_v1"'

# 100 prod rows; the branch drops orders 1-2, adds 101-103, changes the amount of 10 and 11 and the e-mail
# of 12, and blanks the region of 20-29 (10 more rows null: a null-rate move of ~10 points).
PROD_ROWS = [(i, f"buyer{i}@example.com", float(i), ["north", "south"][i % 2]) for i in range(1, 101)]


def branch_rows() -> list[tuple]:
    rows = {r[0]: list(r) for r in PROD_ROWS if r[0] > 2}
    rows[10][2], rows[11][2] = 999.0, None
    rows[12][1] = "secret.new@example.com"
    for i in range(20, 30):
        rows[i][3] = None
    rows.update({i: [i, f"buyer{i}@example.com", float(i), "north"] for i in (101, 102, 103)})
    return [tuple(r) for r in rows.values()]


def insert(connection: duckdb.DuckDBPyConnection, table: str, rows: list[tuple]) -> None:
    width = len(rows[0])
    connection.executemany(f"INSERT INTO {table} VALUES ({', '.join(['?'] * width)})", rows)


@pytest.fixture
def two_files(tmp_path: Path) -> Iterator[tuple[DuckDBSession, duckdb.DuckDBPyConnection]]:
    """The branch's file `mesh.duckdb`, with prod's `mesh_prod.duckdb` attached read-only as `mesh_prod`."""
    prod = duckdb.connect(str(tmp_path / "mesh_prod.duckdb"))
    prod.execute("CREATE SCHEMA sales")
    prod.execute(TABLE)
    insert(prod, "sales.sales_v1", PROD_ROWS)
    prod.close()
    branch = duckdb.connect(str(tmp_path / "mesh.duckdb"))
    branch.execute(f"ATTACH '{tmp_path / 'mesh_prod.duckdb'}' AS mesh_prod (READ_ONLY)")
    branch.execute("CREATE SCHEMA sales")
    yield DuckDBSession(branch), branch
    branch.close()


def run(session: DuckDBSession, port: OutputPort = PORT, branch: str = BRANCH) -> PortDataDiff:
    return diff_port(session, branch_sql=branch, prod_sql=PROD, port=port, name="sales.sales v1")


def test_rows_added_removed_and_changed_are_counted_by_primary_key(two_files) -> None:
    session, connection = two_files
    connection.execute(TABLE)
    insert(connection, "sales.sales_v1", branch_rows())
    diff = run(session)
    assert (diff.prod_rows, diff.branch_rows) == (100, 101)
    assert (diff.added, diff.removed, diff.changed, diff.unchanged) == (3, 2, 13, 85)
    assert diff.added_examples == [("101",), ("102",), ("103",)]
    assert diff.removed_examples == [("1",), ("2",)]
    assert diff.has_changes and not diff.has_schema_changes


def test_a_null_spike_moves_the_column_and_only_that_column(two_files) -> None:
    session, connection = two_files
    connection.execute(TABLE)
    insert(connection, "sales.sales_v1", branch_rows())
    diff = run(session)
    region = next(d for d in diff.drift if d.column == "region")
    assert region.prod_null_rate == 0.0
    assert region.branch_null_rate == pytest.approx(10 / 101)
    assert [d.column for d in diff.moved] == ["region"]  # 3 new orders move order_id/amount by 3%, under 5%
    assert "| `region` | 0.0% → 9.9% | 2 → 2 |" in to_markdown(diff)


def test_pii_values_are_masked_in_examples_and_appear_nowhere_in_the_markdown(two_files) -> None:
    session, connection = two_files
    connection.execute(TABLE)
    insert(connection, "sales.sales_v1", branch_rows())
    diff = diff_port(session, branch_sql=BRANCH, prod_sql=PROD, port=PORT, name="sales.sales v1", examples=5)
    by_key = {ex.key: dict((c, (a, b)) for c, a, b in ex.changes) for ex in diff.changed_examples}
    assert by_key[("10",)] == {"amount": ("10.0", "999.0")}
    assert by_key[("11",)] == {"amount": ("11.0", "NULL")}
    assert by_key[("12",)] == {"email": ("***", "***")}
    markdown = to_markdown(diff)
    assert "| 12 | `email` | *** | *** |" in markdown
    assert "example.com" not in markdown and "buyer12" not in markdown


def test_a_pii_key_is_masked_too(two_files) -> None:
    session, connection = two_files
    connection.execute(TABLE)
    insert(connection, "sales.sales_v1", branch_rows())
    port = PORT.model_copy(update={"primary_key": ["email"]})
    diff = run(session, port)
    # Keyed by e-mail, order 12's new e-mail is one row added and one removed.
    assert (diff.added, diff.removed) == (4, 3)
    assert diff.changed_examples and all(ex.key == ("***",) for ex in diff.changed_examples)
    assert set(diff.added_examples) == {("***",)} and set(diff.removed_examples) == {("***",)}
    assert "example.com" not in to_markdown(diff)


def test_a_removed_column_is_a_schema_change_and_is_not_compared(two_files) -> None:
    session, connection = two_files
    connection.execute("CREATE TABLE sales.sales_v1 (order_id INTEGER, email VARCHAR, amount VARCHAR)")
    insert(connection, "sales.sales_v1", [(i, e, str(a)) for i, e, a, _ in PROD_ROWS])
    port = OutputPort(
        version="1.0.0", columns=[c for c in PORT.columns if c.name != "region"], primary_key=["order_id"]
    )
    diff = run(session, port)
    assert diff.only_in_prod == ["region"] and diff.only_in_branch == []
    assert diff.retyped == [("amount", "DOUBLE", "VARCHAR")]
    # The retyped amount compares as text (DOUBLE 1.0 and '1.0' are the same text): no row changed.
    assert (diff.added, diff.removed, diff.changed, diff.unchanged) == (0, 0, 0, 100)
    assert [d.column for d in diff.drift] == ["order_id", "email", "amount"]
    markdown = to_markdown(diff)
    assert "- `region` removed in branch (not compared)" in markdown
    assert "- `amount` retyped DOUBLE → VARCHAR (compared as text)" in markdown


def test_a_port_prod_does_not_have_is_new_with_nothing_to_compare(two_files) -> None:
    session, connection = two_files
    connection.execute(TABLE.replace("sales_v1", "sales_v2"))
    insert(connection, "sales.sales_v2", branch_rows())
    diff = diff_port(
        session,
        branch_sql='"mesh"."sales"."sales_v2"',
        prod_sql='"mesh_prod"."sales"."sales_v2"',
        port=PORT,
        name="sales.sales v2",
    )
    assert diff.new_port and diff.branch_rows == 101 and diff.has_changes
    assert (
        to_markdown(diff)
        == "### Data diff: sales.sales v2\n\nNew port: 101 rows, nothing to compare in prod.\n"
    )


def test_an_identical_port_is_empty(two_files) -> None:
    session, connection = two_files
    connection.execute(f"CREATE TABLE sales.sales_v1 AS SELECT * FROM {PROD}")
    diff = run(session)
    assert diff.is_empty and (diff.unchanged, diff.changed) == (100, 0)
    assert "No change: 100 rows, identical to prod." in to_markdown(diff)


def test_a_branch_without_the_table_is_an_error_naming_it(two_files) -> None:
    session, _ = two_files
    with pytest.raises(ValueError, match="branch has no table"):
        run(session)


def test_the_diff_sql_also_runs_in_snowflakes_dialect_on_fakesnow() -> None:
    """The same queries on fakesnow: two databases, the catalog lookup `"DB".information_schema.columns`.

    fakesnow runs on DuckDB, so this proves the SQL parses in Snowflake's dialect and that the catalog
    lookup takes Snowflake's per-database form; it does not prove Snowflake's own type coercions.
    """
    fakesnow = pytest.importorskip("fakesnow")
    from mesh_assets.infra.warehouse.snowflake import SnowflakeWarehouse

    with fakesnow.patch():
        warehouse = SnowflakeWarehouse(
            account="a", user="u", password="p", warehouse="w", database="MESH_PROD"
        )
        with warehouse.session() as session:
            session.ensure_schema("sales")
            session.execute(f'CREATE TABLE "MESH_PROD".{TABLE_SF}')
            session.execute(f'INSERT INTO "MESH_PROD"."sales"."sales_v1" VALUES {values(PROD_ROWS)}')
            session.execute("CREATE DATABASE MESH_FEATURE_X")
            session.execute('CREATE SCHEMA "MESH_FEATURE_X"."sales"')
            session.execute(f'CREATE TABLE "MESH_FEATURE_X".{TABLE_SF}')
            session.execute(f'INSERT INTO "MESH_FEATURE_X"."sales"."sales_v1" VALUES {values(branch_rows())}')
            diff = diff_port(
                session,
                branch_sql='"MESH_FEATURE_X"."sales"."sales_v1"',
                prod_sql='"MESH_PROD"."sales"."sales_v1"',
                port=PORT,
                name="sales.sales v1",
            )
            new = diff_port(
                session,
                branch_sql='"MESH_FEATURE_X"."sales"."sales_v1"',
                prod_sql='"MESH_PROD"."sales"."sales_v9"',
                port=PORT,
                name="sales.sales v9",
            )
    assert (diff.added, diff.removed, diff.changed, diff.unchanged) == (3, 2, 13, 85)
    assert [d.column for d in diff.moved] == ["region"]
    assert [ex.key for ex in diff.changed_examples] == [("10",), ("11",), ("12",)]
    assert diff.changed_examples[2].changes == (("email", "***", "***"),)
    assert "example.com" not in to_markdown(diff)
    assert new.new_port


TABLE_SF = '"sales"."sales_v1" ("order_id" INTEGER, "email" VARCHAR, "amount" DOUBLE, "region" VARCHAR)'


def values(rows: list[tuple]) -> str:
    def lit(v: object) -> str:
        return "NULL" if v is None else repr(v) if not isinstance(v, str) else "'" + v + "'"

    return ", ".join("(" + ", ".join(lit(v) for v in row) + ")" for row in rows)
