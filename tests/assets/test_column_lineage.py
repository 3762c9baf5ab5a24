"""Column lineage: a table of SQL cases, dbt models with Jinja, Python with and without declared lineage."""

from __future__ import annotations

from pathlib import Path

import pytest
from spec_edits import edit_spec

from mesh_assets.assets import column_lineage as cl
from mesh_assets.assets.lineage_cache import mesh_lineage
from mesh_assets.assets.lineage_models import _render_raw
from mesh_assets.assets.lineage_sql import WILDCARD, statement_lineage
from mesh_assets.product.registry import load_registry

SCHEMA = {
    "crm": {
        "customers": {"id": "VARCHAR", "name": "VARCHAR", "email": "VARCHAR", "country": "VARCHAR"},
        "orders": {"order_id": "VARCHAR", "customer_id": "VARCHAR", "amount": "DOUBLE", "ts": "TIMESTAMP"},
    }
}
CUS, ORD = ("crm", "customers"), ("crm", "orders")

# (case, SQL, output column, expected upstream columns as {(table, column): carries})
CASES = [
    ("a rename", "select name as customer_name from crm.customers", "customer_name", {(CUS, "name"): True}),
    (
        "an expression of two columns",
        "select upper(name) || country as label from crm.customers",
        "label",
        {(CUS, "name"): True, (CUS, "country"): True},
    ),
    (
        "an aggregate protects the value",
        "select customer_id, sum(amount) as total from crm.orders group by customer_id",
        "total",
        {(ORD, "amount"): False},
    ),
    (
        "max returns a row's value, so it carries",
        "select max(email) as latest from crm.customers",
        "latest",
        {(CUS, "email"): True},
    ),
    ("a hash protects the value", "select md5(email) as h from crm.customers", "h", {(CUS, "email"): False}),
    ("a star expands to the contract", "select * from crm.customers", "email", {(CUS, "email"): True}),
    (
        "a join takes each column from its side",
        "select c.country, o.amount from crm.orders o join crm.customers c on c.id = o.customer_id",
        "country",
        {(CUS, "country"): True},
    ),
    (
        "a CTE is seen through",
        "with t as (select id as k, country from crm.customers) select country as cc from t",
        "cc",
        {(CUS, "country"): True},
    ),
    (
        "a window function reads its partition and order columns",
        "select row_number() over (partition by customer_id order by ts) as n from crm.orders",
        "n",
        {(ORD, "customer_id"): True, (ORD, "ts"): True},
    ),
    ("a constant reads nothing", "select 1 as one from crm.customers", "one", {}),
]


@pytest.mark.parametrize(("case", "sql", "column", "expected"), CASES, ids=[c[0] for c in CASES])
def test_each_output_column_is_traced_to_its_table_columns(case, sql, column, expected) -> None:
    found = statement_lineage(sql, SCHEMA)
    assert found.error is None
    assert {(c.table, c.column): c.carries for c in found.columns[column]} == expected


def test_join_and_filter_columns_are_read_though_no_output_is_computed_from_them() -> None:
    found = statement_lineage(
        "select c.country from crm.customers c join crm.orders o on o.customer_id = c.id where o.amount > 0",
        SCHEMA,
    )
    assert {(ORD, "customer_id"), (CUS, "id"), (ORD, "amount")} <= found.reads
    assert (CUS, "email") not in found.reads


def test_a_star_over_a_table_without_known_columns_reads_every_column() -> None:
    found = statement_lineage("select * from lims.runs", SCHEMA)
    assert (("lims", "runs"), WILDCARD) in found.reads


def test_snowflake_sql_is_read_in_its_own_dialect() -> None:
    found = statement_lineage(
        "select iff(amount > 0, customer_id, null) as payer from crm.orders qualify row_number() "
        "over (partition by customer_id order by ts) = 1",
        SCHEMA,
        dialect="snowflake",
    )
    assert {(c.table, c.column) for c in found.columns["payer"]} == {(ORD, "amount"), (ORD, "customer_id")}


def test_sql_that_cannot_be_parsed_is_unknown_not_unused() -> None:
    assert statement_lineage("select from where (", SCHEMA).error is not None


def test_a_dbt_model_with_jinja_is_rendered_with_refs_and_the_local_target() -> None:
    raw = (
        "select {% if target.type == 'snowflake' %}to_char(m){% else %}strftime(m, '%Y'){% endif %} as y, "
        "{{ config(materialized='table') }} customer_id from {{ ref('sales_v2') }}"
    )
    by_name = {"sales_v2": {"name": "sales_v2", "schema": "sales_internal", "alias": "sales_v2"}}
    sql = _render_raw(raw, {"name": "sales_v1", "schema": "sales_internal"}, by_name, {})
    found = statement_lineage(sql, {"sales_internal": {"sales_v2": {"m": "DATE", "customer_id": "VARCHAR"}}})
    assert {c.column for c in found.columns["y"]} == {"m"}


def _upstream(registry, lineage, key: str, major: int, column: str) -> set[str]:
    product = registry.products[key]
    model = cl.composed(product, lineage[key], major)
    assert model is not None
    return {d.ref.path for d in model.columns[column]}


def test_a_sql_port_is_traced_through_its_internals_to_the_source(repo_root: Path) -> None:
    registry = load_registry(repo_root)
    lineage = mesh_lineage(registry)
    assert _upstream(registry, lineage, "diagnostics.instrument_runs", 1, "run_date") == {
        "source lims.instrument_runs.started_at"
    }
    assert _upstream(registry, lineage, "diagnostics.instrument_runs", 1, "country_code") == {
        "customers.customer_master.country_code"
    }


def test_a_dbt_port_is_traced_through_its_models_to_the_ports_it_reads(repo_root: Path) -> None:
    registry = load_registry(repo_root)
    lineage = mesh_lineage(registry)
    # sales v1 is served from the v2 model, which reads the published orders port.
    assert _upstream(registry, lineage, "sales.sales", 1, "month") == {"sales.orders.order_date"}
    assert _upstream(registry, lineage, "sales.sales", 2, "net_revenue_eur") == {"sales.orders.amount"}


def test_a_python_port_with_declared_lineage_reads_only_what_it_declares(repo_root: Path) -> None:
    registry = load_registry(repo_root)
    product = registry.products["commercial_analytics.sales_forecast"]
    model = cl.composed(product, mesh_lineage(registry)[product.key], 0)
    assert model.how == "declared"
    assert {d.ref.path for d in model.columns["country_code"]} == {
        "commercial_analytics.customer_360.country_code"
    }
    read = {r.path for r in model.reads if r.node.product == "commercial_analytics.customer_360"}
    assert read == {
        "commercial_analytics.customer_360.country_code",
        "commercial_analytics.customer_360.customer_id",
    }


def test_a_python_port_without_declared_lineage_depends_on_every_input_column(mesh_copy: Path) -> None:
    edit_spec(mesh_copy, "commercial_analytics.sales_forecast", lambda s: s["output_ports"][0].pop("lineage"))
    registry = load_registry(mesh_copy)
    product = registry.products["commercial_analytics.sales_forecast"]
    model = cl.composed(product, mesh_lineage(registry)[product.key], 0)
    assert model.how == "assumed"
    assert "commercial_analytics.customer_360.runs_last_90d" in {d.ref.path for d in model.columns["method"]}


def test_declared_lineage_naming_a_column_the_input_lacks_is_reported(mesh_copy: Path) -> None:
    def declare(spec: dict) -> None:
        spec["output_ports"][0]["lineage"]["columns"]["country_code"] = [
            "commercial_analytics.customer_360.nope"
        ]

    edit_spec(mesh_copy, "commercial_analytics.sales_forecast", declare)
    registry = load_registry(mesh_copy)
    issues = cl.declared_lineage_issues(registry.products["commercial_analytics.sales_forecast"], registry)
    assert any("no column 'nope'" in message for _, message, _ in issues)


def test_ports_and_internals_carry_dagster_column_lineage(isolated: Path) -> None:
    from mesh_assets.run.runner import load_location

    specs = {s.key.to_user_string(): s for s in load_location("diagnostics").resolve_all_asset_specs()}
    port = specs["diagnostics/instrument_runs/v1"].metadata["dagster/column_lineage"]
    deps = {(d.asset_key.to_user_string(), d.column_name) for d in port.deps_by_column["country_code"]}
    assert deps == {("customers/customer_master/v1", "country_code")}
    internal = specs["diagnostics/instrument_runs/internal/stg_runs"].metadata["dagster/column_lineage"]
    assert internal.deps_by_column["run_id"][0].asset_key.to_user_string().endswith("lims__instrument_runs")


def test_sql_that_cannot_be_read_makes_every_port_column_depend_on_every_input_column(
    mesh_copy: Path,
) -> None:
    sql = mesh_copy / "domains/commercial_analytics/products/customer_360/customer_360_v1.sql"
    sql.write_text("select from where (")
    registry = load_registry(mesh_copy)
    product = registry.products["commercial_analytics.customer_360"]
    model = cl.composed(product, mesh_lineage(registry, [product])[product.key], 1)
    assert model.how == "unknown" and model.note
    # Unknown never reads as unused: city, which the real SQL does not read, is now read.
    assert "customers.customer_master.city" in {r.path for r in model.reads}
