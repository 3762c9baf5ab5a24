"""The isolated DuckDB session product code runs in: no file, URL, other database or extension, for real.

Each test opens a DuckDB file under tmp_path and tries, from inside an isolated session, what a product's
SQL or Python could try; an ordinary session beside it (landing extracts, the platform's own work) keeps
the access it needs.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from mesh_assets.infra.warehouse.base import NotAQueryError
from mesh_assets.infra.warehouse.duckdb import DuckDBWarehouse
from mesh_assets.product.addressing import Relation

PORT = Relation("customers", "customer_master_v1")
INTERNAL = Relation("sales_internal", "stg_orders")


@pytest.fixture
def extract(tmp_path: Path) -> Path:
    """A CRM extract with an email in clear, as a landing step would read it."""
    path = tmp_path / "sources" / "crm" / "customers.csv"
    path.parent.mkdir(parents=True)
    path.write_text("customer_id,contact_email\nC1,ada@example.com\n")
    return path


@pytest.fixture
def warehouse(tmp_path: Path, extract: Path) -> DuckDBWarehouse:
    """A warehouse with one port and one internal table, built by an ordinary session."""
    warehouse = DuckDBWarehouse(path=str(tmp_path / "wh.duckdb"), lock_timeout_s=5)
    with warehouse.session() as session:
        session.load_extract(Relation("customers_internal", "src_crm__customers"), extract, "csv")
        session.create_table_as(PORT, "SELECT 'C1' AS customer_id, 'DE' AS country_code")
        session.create_table_as(INTERNAL, "SELECT 1 AS order_id")
    return warehouse


REFUSED = {
    "read_csv_auto": "SELECT * FROM read_csv_auto('{extract}')",
    "read_csv": "SELECT * FROM read_csv('{extract}')",
    "read_parquet": "SELECT * FROM read_parquet('{extract}')",
    "read_json_auto": "SELECT * FROM read_json_auto('{extract}')",
    "read_text": "SELECT * FROM read_text('{extract}')",
    "read_blob": "SELECT * FROM read_blob('{extract}')",
    "glob": "SELECT * FROM glob('{extract}')",
    "a path as a table": "SELECT * FROM '{extract}'",
    "a URL": "SELECT * FROM read_csv_auto('https://example.com/customers.csv')",
    "sqlite_scan": "SELECT * FROM sqlite_scan('{extract}', 't')",
    "postgres_scan": "SELECT * FROM postgres_scan('host=localhost', 'public', 't')",
    "iceberg_scan": "SELECT * FROM iceberg_scan('{extract}')",
    "delta_scan": "SELECT * FROM delta_scan('{extract}')",
    "ATTACH": "ATTACH '{tmp}/other.duckdb' AS other",
    "COPY TO": "COPY (SELECT * FROM customers.customer_master_v1) TO '{tmp}/leak.csv'",
    "EXPORT DATABASE": "EXPORT DATABASE '{tmp}/dump'",
    "INSTALL": "INSTALL httpfs",
    "LOAD": "LOAD httpfs",
    "switching access back on": "SET enable_external_access = true",
    "unlocking the settings": "SET lock_configuration = false",
    "RESET": "RESET enable_external_access",
}


@pytest.mark.parametrize("what", REFUSED)
def test_an_isolated_session_refuses_files_urls_databases_and_settings(
    warehouse: DuckDBWarehouse, extract: Path, tmp_path: Path, what: str
) -> None:
    sql = REFUSED[what].format(extract=extract, tmp=tmp_path)

    with warehouse.isolated_session() as session, pytest.raises(duckdb.Error):
        session.query(sql)

    assert not (tmp_path / "leak.csv").exists()
    assert not (tmp_path / "dump").exists()


def test_an_isolated_session_still_reads_writes_and_publishes_inside_the_file(
    warehouse: DuckDBWarehouse,
) -> None:
    candidate = Relation("diagnostics_internal", "runs_v1__candidate")
    staging = Relation("diagnostics_internal", "runs_v1__staging")
    port = Relation("diagnostics", "runs_v1")

    with warehouse.isolated_session() as session:
        session.create_table_as(candidate, f"SELECT customer_id FROM {PORT.sql}")
        session.stage(staging, f"SELECT * FROM {candidate.sql}")
        session.publish(staging, port)
        frame = session.query_df(f"SELECT * FROM {port.sql}")
        session.write_dataframe(Relation("diagnostics_internal", "frame"), frame)

        assert session.query(f"SELECT * FROM {port.sql}") == [("C1",)]
        assert session.row_count(Relation("diagnostics_internal", "frame")) == 1


def test_an_ordinary_session_after_an_isolated_one_still_lands_extracts(
    warehouse: DuckDBWarehouse, extract: Path
) -> None:
    with warehouse.isolated_session() as session:
        session.query("SELECT 1")

    # The settings are the database instance's; it closed with the isolated session.
    with warehouse.session() as session:
        session.load_extract(Relation("customers_internal", "again"), extract, "csv")
        assert session.row_count(Relation("customers_internal", "again")) == 1


def test_product_code_cannot_open_a_second_connection_to_the_file_while_isolated(
    warehouse: DuckDBWarehouse,
) -> None:
    # A Python transform runs in the platform's process while the product's isolated session is open: a
    # plain connection would share that database instance and read every table.
    with warehouse.isolated_session(), pytest.raises(duckdb.ConnectionException) as refused:
        duckdb.connect(warehouse.path)

    assert "different configuration" in str(refused.value)


def test_nested_isolated_sessions_share_the_locked_instance(
    warehouse: DuckDBWarehouse, extract: Path
) -> None:
    with warehouse.isolated_session() as outer:
        with warehouse.isolated_session() as inner:
            assert inner.row_count(PORT) == 1
        with pytest.raises(duckdb.Error):
            outer.query(f"SELECT * FROM read_csv('{extract}')")


def test_a_deferring_isolated_session_reads_prod_attached_before_the_lock(
    tmp_path: Path, extract: Path
) -> None:
    prod = DuckDBWarehouse(path=str(tmp_path / "prod.duckdb"), lock_timeout_s=5)
    with prod.session() as session:
        session.create_table_as(PORT, "SELECT 'P1' AS customer_id")
    branch = DuckDBWarehouse(
        path=str(tmp_path / "branch.duckdb"), prod_path=str(tmp_path / "prod.duckdb"), lock_timeout_s=5
    )

    with branch.isolated_session() as session:
        assert session.query(f"SELECT * FROM {branch.prod_sql(PORT)}") == [("P1",)]
        with pytest.raises(duckdb.Error):
            session.query(f"SELECT * FROM read_csv('{extract}')")


def test_the_engine_names_the_tables_a_query_binds_to_query_table_and_views_included(
    warehouse: DuckDBWarehouse,
) -> None:
    with warehouse.session() as session:
        session.execute(f"CREATE OR REPLACE VIEW customers.v AS SELECT * FROM {INTERNAL.sql}")

    with warehouse.isolated_session() as session:
        read = session.relations_read(
            f"SELECT * FROM {PORT.sql}, query_table('sales_internal.stg_orders'), customers.v, range(3)"
        )

    assert read == {("customers", "customer_master_v1"), ("sales_internal", "stg_orders")}


def test_a_pivot_listing_its_values_is_a_query_and_one_that_does_not_is_refused_naming_the_fix(
    warehouse: DuckDBWarehouse,
) -> None:
    with warehouse.isolated_session() as session:
        read = session.relations_read(f"PIVOT {PORT.sql} ON country_code IN ('DE', 'CH') USING count(*)")
        with pytest.raises(NotAQueryError, match=r"list the values, ON col IN \(\.\.\.\)"):
            session.relations_read(f"PIVOT {PORT.sql} ON country_code USING count(*)")

    assert read == {("customers", "customer_master_v1")}


@pytest.mark.parametrize(
    "sql",
    ["SELECT 1; ATTACH 'x.duckdb' AS x", "COPY (SELECT 1) TO 'x.csv'", "CREATE TABLE t AS SELECT 1", ""],
)
def test_product_sql_must_be_exactly_one_query(warehouse: DuckDBWarehouse, sql: str) -> None:
    with warehouse.isolated_session() as session, pytest.raises(NotAQueryError):
        session.relations_read(sql)


def test_an_isolated_session_inside_an_ordinary_one_is_refused_saying_why(warehouse: DuckDBWarehouse) -> None:
    # DuckDB's settings are the database instance's: isolating it would lock down the outer session too.
    with (
        warehouse.session(),
        pytest.raises(duckdb.ConnectionException) as refused,
        warehouse.isolated_session(),
    ):
        pass

    assert "an isolated session cannot open inside an ordinary one" in str(refused.value)


@pytest.mark.parametrize("seeds", [False, True])
def test_dbts_connection_is_isolated_unless_the_project_loads_seeds_from_files(
    tmp_path: Path, seeds: bool
) -> None:
    import yaml

    project = tmp_path / "shop"
    project.mkdir()
    (project / "dbt_project.yml").write_text("name: shop\nseed-paths: [data]\n")
    (project / "profiles.yml").write_text(
        "shop:\n  target: local\n  outputs:\n    local: {type: duckdb, path: x.duckdb, threads: 1}\n"
    )
    if seeds:
        (project / "data").mkdir()
        (project / "data" / "raw_orders.csv").write_text("id\n1\n")
    warehouse = DuckDBWarehouse(path=str(tmp_path / "wh.duckdb"))

    folder = warehouse.dbt_profiles_dir(project, tmp_path / "profile")

    output = yaml.safe_load((folder / "profiles.yml").read_text())["shop"]["outputs"]["local"]
    assert output["path"] == str((tmp_path / "wh.duckdb").resolve())
    # dbt-duckdb loads a seed with COPY ... FROM its file, which an isolated connection refuses.
    expected = None if seeds else {"enable_external_access": False}
    assert output.get("settings") == expected
