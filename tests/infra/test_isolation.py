"""The engine's half of "ports only": product code that `mesh validate` would refuse, run anyway.

Each test bypasses the lint on purpose (it materializes the domain's definitions directly, as a run launched
from the UI would) in a private copy of the mesh on a private DuckDB file, after a good run. The step must
fail before anything is written: no candidate holding what was read, nothing published, the port keeping
its last good data.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from mesh_assets.assets.location import build_domain
from mesh_assets.product.addressing import Relation

RUNS_SQL = Path("domains/diagnostics/products/instrument_runs/instrument_runs_v1.sql")
TRANSFORM = Path("domains/customers/products/customer_master/transform.py")
RUNS_PORT = Relation("diagnostics", "instrument_runs_v1")
FX_RATES = Path("dbt_projects/sales/models/sales/fx_rates.sql")
SALES_PORT = Relation("sales", "sales_v2")
MASTER_PORT = Relation("customers", "customer_master_v1")


def materialize(domain: str) -> dg.ExecuteInProcessResult:
    """One run of every asset of a domain's location, on the test's private instance and warehouse."""
    defs = build_domain(domain)
    with dg.DagsterInstance.get() as instance:
        return defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, raise_on_error=False
        )


def warehouse_query(sql: str) -> list[tuple]:
    """Read the test's warehouse file directly, independently of the platform's session code."""
    with duckdb.connect(os.environ["MESH_DUCKDB_PATH"], read_only=True) as connection:
        return connection.execute(sql).fetchall()


def fingerprint(relation: Relation) -> tuple[int, str]:
    """Row count and a checksum of every row."""
    count, rows = warehouse_query(
        f"SELECT COUNT(*), md5(string_agg(t::VARCHAR, '|' ORDER BY t::VARCHAR)) FROM {relation.sql} t"
    )[0]
    return count, rows


def emails_outside_customers() -> list[tuple]:
    """Tables outside the customers domain with a contact_email column: where a leaked read would land."""
    return warehouse_query(
        "SELECT table_schema, table_name FROM information_schema.columns WHERE column_name = 'contact_email' "
        "AND table_schema NOT LIKE 'customers%'"
    )


def the_failure(result: dg.ExecuteInProcessResult, step: str) -> str:
    """What the failed step said (its user failure's description, else its error)."""
    assert not result.success
    failures = {f.step_key: f.step_failure_data for f in result.get_step_failure_events()}
    assert step in failures, list(failures)
    data = failures[step]
    if data.user_failure_data is not None:
        return str(data.user_failure_data.description)
    error = data.error
    text = ""
    while error is not None:
        text += error.message
        error = error.cause
    return text


@pytest.fixture
def published(mesh_copy: Path, isolated: Path) -> tuple[int, str]:
    """A good run of customers, then diagnostics; the fingerprint of instrument_runs v1 as published."""
    assert materialize("customers").success
    assert materialize("diagnostics").success
    return fingerprint(RUNS_PORT)


def edit_runs_sql(root: Path, column: str, join: str) -> None:
    """Select `column` into the instrument_runs v1 port and append `join` to its SQL."""
    path = root / RUNS_SQL
    text = path.read_text().replace("    r.error_code\nfrom", f"    r.error_code,\n    {column}\nfrom")
    path.write_text(text.rstrip() + "\n" + join + "\n")


def test_read_csv_of_another_domains_extract_is_refused_by_the_engine_and_nothing_is_published(
    mesh_copy: Path, published: tuple[int, str]
) -> None:
    extract = Path(os.environ["MESH_SOURCES_DIR"]) / "crm" / "customers.csv"
    assert extract.exists()
    edit_runs_sql(
        mesh_copy,
        "crm.contact_email",
        f"left join read_csv_auto('{extract}') as crm on crm.customer_id = r.customer_id",
    )

    result = materialize("diagnostics")

    failure = the_failure(result, "diagnostics__instrument_runs__v1")
    assert "file system operations are disabled by configuration" in failure
    assert fingerprint(RUNS_PORT) == published
    assert emails_outside_customers() == []  # no candidate holds the emails


@pytest.mark.parametrize(
    ("column", "join", "said"),
    [
        (
            "crm.contact_email",
            "left join query_table('customers_internal.src_crm__customers') as crm "
            "on crm.customer_id = r.customer_id",
            "reads customers_internal.src_crm__customers, which it does not declare",
        ),
        (
            "crm.contact_email",
            "left join query('select * from customers_internal.src_crm__customers') as crm "
            "on crm.customer_id = r.customer_id",
            "reads customers_internal.src_crm__customers, which it does not declare",
        ),
        ("null as nothing", ";\nCOPY (SELECT 1) TO 'leak.csv'", "expected one query (a SELECT)"),
    ],
    ids=["query_table", "query", "COPY TO"],
)
def test_sql_binding_to_an_undeclared_table_or_not_a_query_is_refused_at_run_time(
    mesh_copy: Path, published: tuple[int, str], column: str, join: str, said: str
) -> None:
    edit_runs_sql(mesh_copy, column, join)

    result = materialize("diagnostics")

    failure = the_failure(result, "diagnostics__instrument_runs__v1")
    assert "refused at run time" in failure and said in failure
    assert "Nothing was written or published" in failure
    assert fingerprint(RUNS_PORT) == published
    assert emails_outside_customers() == []
    assert not (mesh_copy / "leak.csv").exists()


def test_a_python_transform_opening_the_warehouse_file_is_refused_by_the_engine(
    mesh_copy: Path, isolated: Path
) -> None:
    assert materialize("customers").success
    before = fingerprint(MASTER_PORT)
    path = mesh_copy / TRANSFORM
    path.write_text(
        path.read_text()
        + "\n\n_shipped = customer_master_v1\n\n\n"
        + "def customer_master_v1(inputs):\n"
        + "    import os\n\n    import duckdb\n\n"
        + "    warehouse = duckdb.connect(os.environ['MESH_DUCKDB_PATH'])\n"
        + "    warehouse.sql('select * from customers_internal.src_crm__customers')\n"
        + "    return _shipped(inputs)\n"
    )

    result = materialize("customers")

    failure = the_failure(result, "customers__customer_master__v1")
    assert "different configuration" in failure
    assert fingerprint(MASTER_PORT) == before


@pytest.mark.slow  # a whole dbt run of the sales project: `make test`, not `make check`
def test_a_dbt_model_reading_a_file_is_refused_by_dbts_own_connection_and_nothing_is_published(
    mesh_copy: Path, isolated: Path
) -> None:
    assert materialize("sales").success
    before = fingerprint(SALES_PORT)
    extract = Path(os.environ["MESH_SOURCES_DIR"]) / "crm" / "customers.csv"
    model = mesh_copy / FX_RATES
    model.write_text(
        model.read_text().rstrip() + f"\nwhere (select count(*) from read_csv_auto('{extract}')) >= 0\n"
    )

    result = materialize("sales")

    # A failed dbt node does not fail the dbt step (the ports it does not feed still publish); the ports
    # it feeds are not built.
    built = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "sales/sales/v2" not in built and "sales/sales/internal/fx_rates" not in built
    assert fingerprint(SALES_PORT) == before
    with dg.DagsterInstance.get() as instance:
        said = " ".join(log.message for log in instance.all_logs(result.run_id))
    assert "dbt did not build fx_rates" in said
    assert "file system operations are disabled by configuration" in said
