"""Back doors in code: the SQL of every product (dbt's compiled code included) read with sqlglot.

Each test adds offending SQL to a private copy of the mesh (`mesh_copy`) and asserts on the finding: the
SQL file, the table as written, and the port to read instead. `mesh validate` reports the same findings.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mesh_assets.govern import backdoors
from mesh_assets.govern.validate import validate
from mesh_assets.product.errors import SpecIssue
from mesh_assets.product.registry import load_registry

RUNS_SQL = Path("domains/diagnostics/products/instrument_runs/instrument_runs_v1.sql")
SALES_V2 = Path("dbt_projects/sales/models/sales/sales_v2.sql")
COMPILED_SALES_V2 = Path("dbt_projects/sales/target/compiled/sales/models/sales/sales_v2.sql")
LAST_LINE = "left join {{ input('customers.customer_master') }} as c on c.customer_id = r.customer_id"


def add_join(root: Path, join: str) -> Path:
    """Append a join to the instrument_runs v1 port's SQL."""
    path = root / RUNS_SQL
    text = path.read_text()
    assert LAST_LINE in text
    path.write_text(text.rstrip() + "\n" + join + "\n")
    return path


def the_finding(issues: list[SpecIssue], file: Path) -> SpecIssue:
    found = [i for i in issues if i.file.resolve() == file.resolve()]
    listing = "\n".join(f"  {i.file} | {i.field} | {i.message} | {i.fix}" for i in issues)
    assert len(found) == 1, f"expected one finding on {file}, got:\n{listing}"
    return found[0]


def test_the_shipped_mesh_has_no_back_doors(repo_root: Path) -> None:
    registry = load_registry(repo_root)

    assert backdoors.lint(registry) == []
    # Every SQL and dbt model of the mesh was read: 3 SQL files, 5 dbt models.
    sources = backdoors.sql_sources(registry)
    assert len(sources) == 8
    assert {s.product.key for s in sources} == {
        "commercial_analytics.customer_360",
        "diagnostics.instrument_runs",
        "sales.orders",
        "sales.sales",
    }


# --- SQL products ---------------------------------------------------------------------------------------


def test_sql_reading_another_domains_internals_is_refused_naming_the_port_to_use(mesh_copy: Path) -> None:
    path = add_join(
        mesh_copy, 'left join "sales_internal"."stg_orders" as o on o.customer_id = r.customer_id'
    )

    finding = the_finding(backdoors.lint(load_registry(mesh_copy)), path)

    assert finding.field == "sales_internal.stg_orders"
    assert "the dbt model of sales.orders (another domain)" in finding.message
    assert "back door" in finding.message
    assert "- product: sales.orders" in finding.fix and "{{ input('sales.orders') }}" in finding.fix
    assert finding.severity == "error"


def test_sql_reading_a_landed_extract_of_another_domain_is_refused(mesh_copy: Path) -> None:
    path = add_join(
        mesh_copy, "left join customers_internal.src_crm__customers as x on x.customer_id = r.customer_id"
    )

    finding = the_finding(backdoors.lint(load_registry(mesh_copy)), path)

    assert "landed extract crm.customers of customers.customer_master" in finding.message
    assert "{{ input('customers.customer_master') }}" in finding.fix


def test_sql_reading_a_port_it_does_not_declare_is_refused(mesh_copy: Path) -> None:
    path = add_join(mesh_copy, "left join sales.orders_v1 as o on o.customer_id = r.customer_id")

    finding = the_finding(backdoors.lint(load_registry(mesh_copy)), path)

    assert finding.field == "sales.orders_v1"
    assert (
        "the output port sales.orders v1, which diagnostics.instrument_runs does not declare"
        in finding.message
    )
    assert "declare '- product: sales.orders, version: \"^1\"' in input_ports" in finding.fix


def test_sql_naming_a_declared_port_by_its_table_is_told_to_use_input(mesh_copy: Path) -> None:
    path = add_join(
        mesh_copy, 'left join "customers"."customer_master_v1" as m on m.customer_id = r.customer_id'
    )

    finding = the_finding(backdoors.lint(load_registry(mesh_copy)), path)

    assert "names the port customers.customer_master v1 by its table" in finding.message
    assert "{{ input('customers.customer_master') }}" in finding.fix
    assert "access policy" in finding.fix


def test_sql_reading_its_own_internals_by_name_is_not_a_back_door(mesh_copy: Path) -> None:
    add_join(
        mesh_copy, 'left join "diagnostics_internal"."instrument_runs__stg_runs" as s on s.run_id = r.run_id'
    )

    assert backdoors.lint(load_registry(mesh_copy)) == []


def test_sql_that_sqlglot_cannot_parse_is_a_warning_not_a_silent_pass(mesh_copy: Path) -> None:
    path = add_join(mesh_copy, "left join lateral (((")

    finding = the_finding(backdoors.lint(load_registry(mesh_copy)), path)

    assert finding.severity == "warning"
    assert "cannot parse" in finding.message


def test_mesh_validate_reports_back_doors_as_errors(mesh_copy: Path) -> None:
    path = add_join(mesh_copy, "left join sales.orders_v1 as o on o.customer_id = r.customer_id")

    report = validate(mesh_copy)

    finding = the_finding(report.errors, path)
    assert finding.field == "sales.orders_v1"


# --- dbt products ---------------------------------------------------------------------------------------


def test_dbt_compiled_code_reading_another_domains_internals_is_refused(mesh_copy: Path) -> None:
    compiled = mesh_copy / COMPILED_SALES_V2
    compiled.parent.mkdir(parents=True)
    compiled.write_text(
        'select o.*, c.city from "mesh"."sales"."orders_v1" as o\n'
        'join "mesh"."customers_internal"."customer_master__dedup" as c on c.customer_id = o.customer_id\n'
    )

    finding = the_finding(backdoors.lint(load_registry(mesh_copy)), mesh_copy / SALES_V2)

    assert finding.field == "customers_internal.customer_master__dedup"
    assert "(in its compiled code)" in finding.message
    assert "customers.customer_master" in finding.message
    assert "{{ source('port_customers', 'customer_master_v1') }}" in finding.fix
    assert "run `mesh prepare`" in finding.fix


def test_dbt_compiled_code_older_than_the_model_is_not_trusted(mesh_copy: Path) -> None:
    compiled = mesh_copy / COMPILED_SALES_V2
    compiled.parent.mkdir(parents=True)
    compiled.write_text('select * from "customers_internal"."customer_master__dedup"\n')
    model = mesh_copy / SALES_V2
    stat = compiled.stat()
    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # edited after the compile

    assert backdoors.lint(load_registry(mesh_copy)) == []


def test_dbt_manifest_compiled_code_reading_an_undeclared_port_is_refused(mesh_copy: Path) -> None:
    target = mesh_copy / "dbt_projects" / "sales" / "target"
    target.mkdir()
    node = {
        "resource_type": "model",
        "package_name": "sales",
        "name": "sales_v2",
        "schema": "sales_internal",
        "alias": "sales_v2",
        "original_file_path": "models/sales/sales_v2.sql",
        "compiled_code": 'select * from "mesh"."diagnostics"."instrument_runs_v1"',
    }
    manifest = {
        "metadata": {"adapter_type": "duckdb"},
        "nodes": {"model.sales.sales_v2": node},
        "sources": {},
    }
    (target / "manifest.json").write_text(json.dumps(manifest))

    finding = the_finding(backdoors.lint(load_registry(mesh_copy)), mesh_copy / SALES_V2)

    assert finding.field == "diagnostics.instrument_runs_v1"
    assert "(in its manifest code)" in finding.message
    assert "sales.sales does not declare" in finding.message
    assert "- product: diagnostics.instrument_runs" in finding.fix


def test_dbt_raw_code_is_read_with_its_jinja_resolved_when_nothing_is_compiled(mesh_copy: Path) -> None:
    model = mesh_copy / SALES_V2
    model.write_text(
        model.read_text().rstrip()
        + "\nunion all select * from {{ ref('stg_orders') }}"
        + "{% if target.type == 'snowflake' %} where 1 = 0 {% endif %}\n"
    )

    finding = the_finding(backdoors.lint(load_registry(mesh_copy)), model)

    # stg_orders is the internal dbt model of sales.orders, a sibling product of the same domain.
    assert finding.field == "sales_internal.stg_orders"
    assert "the dbt model of sales.orders (another product of the domain)" in finding.message
    assert "compiled" not in finding.message
    assert "{{ source('port_sales', 'orders_v1') }}" in finding.fix


@pytest.mark.parametrize("model", ["stg_orders", "orders_v1", "fx_rates", "sales_v1"])
def test_dbt_models_reading_their_own_internals_and_declared_ports_pass(mesh_copy: Path, model: str) -> None:
    sources = [s for s in backdoors.sql_sources(load_registry(mesh_copy)) if s.file.stem == model]

    [source] = sources
    assert source.origin == "raw"
    assert backdoors.lint(load_registry(mesh_copy)) == []
