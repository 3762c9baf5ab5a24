"""Back doors in code: the SQL of every product (dbt's compiled code included) read with sqlglot.

Each test adds offending SQL to a private copy of the mesh (`mesh_copy`) and asserts on the finding: the
SQL file, the table as written, and the port to read instead. `mesh validate` reports the same findings.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mesh_assets.govern import backdoors, code_access, python_access
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
    assert code_access.lint(registry) == []
    assert python_access.lint(registry) == []
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


def test_dbt_compiled_code_reading_the_candidate_of_a_declared_input_built_in_the_same_run_passes(
    mesh_copy: Path,
) -> None:
    # What the generated source() compiles to when one dbt invocation builds orders and sales.
    compiled = mesh_copy / COMPILED_SALES_V2
    compiled.parent.mkdir(parents=True)
    compiled.write_text('select * from "mesh"."sales_internal"."orders_v1" as o\n')

    assert backdoors.lint(load_registry(mesh_copy)) == []


def test_dbt_compiled_code_reading_the_candidate_of_a_sibling_it_does_not_declare_is_refused(
    mesh_copy: Path,
) -> None:
    compiled = mesh_copy / "dbt_projects/sales/target/compiled/sales/models/orders/orders_v1.sql"
    compiled.parent.mkdir(parents=True)
    compiled.write_text('select * from "mesh"."sales_internal"."sales_v2"\n')

    orders = mesh_copy / "dbt_projects/sales/models/orders/orders_v1.sql"
    finding = the_finding(backdoors.lint(load_registry(mesh_copy)), orders)

    assert finding.field == "sales_internal.sales_v2"
    assert "the dbt model of sales.sales" in finding.message


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


# --- the allowlist: only relations input(), source() and ref() resolved ----------------------------------

CRM_EXTRACT = "data/sources/crm/customers.csv"
# What a SQL product may not read or do, each appended to instrument_runs v1 on a line of its own, and
# what the finding must say. DuckDB reads files, URLs and databases through many more; the engine's
# isolated session refuses those at run time (tests/infra/test_warehouse_duckdb_isolation.py).
REFUSED_SQL = {
    "read_csv_auto": (f"left join read_csv_auto('{CRM_EXTRACT}') as x on true", "reads files or URLs"),
    "read_csv": (f"left join read_csv('{CRM_EXTRACT}') as x on true", "reads files or URLs"),
    "read_parquet": ("left join read_parquet('data/x.parquet') as x on true", "reads files or URLs"),
    "read_json": ("left join read_json('data/x.json') as x on true", "reads files or URLs"),
    "read_json_auto": ("left join read_json_auto('data/x.json') as x on true", "reads files or URLs"),
    "read_text": ("left join read_text('/etc/passwd') as x on true", "reads files or URLs"),
    "read_blob": ("left join read_blob('/etc/passwd') as x on true", "reads files or URLs"),
    "glob": ("left join glob('data/**') as x on true", "reads files or URLs"),
    "parquet_scan": ("left join parquet_scan('data/x.parquet') as x on true", "reads files or URLs"),
    "iceberg_scan": ("left join iceberg_scan('s3://lake/t') as x on true", "reads files or URLs"),
    "delta_scan": ("left join delta_scan('s3://lake/t') as x on true", "reads files or URLs"),
    "sqlite_scan": ("left join sqlite_scan('crm.db', 'customers') as x on true", "another database"),
    "postgres_scan": ("left join postgres_scan('host=crm', 'public', 'c') as x on true", "another database"),
    "a path as a table": (f"left join '{CRM_EXTRACT}' as x on true", "reads the file"),
    "query_table": ("left join query_table('sales_internal.stg_orders') as x on true", "dynamic-table"),
    "query": ("left join query('select * from sales_internal.stg_orders') as x on true", "dynamic-table"),
    "an undeclared name": ("left join customers as x on true", "neither a CTE nor a relation"),
    "another catalog": ("left join mesh_prod.customers.customer_master_v1 as x on true", "from the catalog"),
    "a schema of no domain": ("left join information_schema.tables as x on true", "no domain's"),
    "ATTACH": (";\nATTACH 'other.duckdb' AS other", "runs ATTACH, not a query"),
    "COPY TO": (";\nCOPY (SELECT 1) TO 'leak.csv'", "runs COPY, not a query"),
    "INSTALL": (";\nINSTALL httpfs", "runs INSTALL, not a query"),
    "SET": (";\nSET enable_external_access = true", "runs SET, not a query"),
    "EXPORT DATABASE (sqlglot cannot parse it)": (";\nEXPORT DATABASE 'dump'", "runs EXPORT, not a query"),
}


@pytest.mark.parametrize("what", REFUSED_SQL)
def test_sql_reading_outside_its_declared_relations_is_refused_by_validate_naming_line_and_fix(
    mesh_copy: Path, what: str
) -> None:
    added, message = REFUSED_SQL[what]
    path = add_join(mesh_copy, added)
    line = len(path.read_text().splitlines())

    report = validate(mesh_copy)

    [finding] = [i for i in report.errors if i.file.resolve() == path.resolve() and message in i.message]
    assert finding.field.startswith(f"line {line}: ")
    assert added.splitlines()[-1].strip() in finding.field
    assert "declare" in finding.fix and "input_ports" in finding.fix


def test_read_csv_of_another_domains_extract_is_refused_naming_line_and_the_port_behind_it(
    mesh_copy: Path,
) -> None:
    path = add_join(
        mesh_copy, f"left join read_csv_auto('{CRM_EXTRACT}') as crm on crm.customer_id = r.customer_id"
    )

    [finding] = [i for i in code_access.lint(load_registry(mesh_copy)) if i.file.resolve() == path.resolve()]

    assert finding.field.startswith("line 16: left join read_csv_auto(")
    assert "around every port, its contract and its access policy (PII masking)" in finding.message
    assert "the raw extract behind customers.customer_master's port" in finding.fix
    assert "{{ input('customers.customer_master') }}" in finding.fix


def test_query_table_of_another_domains_internal_model_is_refused_naming_whose_it_is(mesh_copy: Path) -> None:
    path = add_join(mesh_copy, "left join query_table('sales_internal.stg_orders') as o on true")

    [finding] = [i for i in code_access.lint(load_registry(mesh_copy)) if i.file.resolve() == path.resolve()]

    assert finding.field == "line 16: left join query_table('sales_internal.stg_orders') as o on true"
    assert "dynamic-table function" in finding.message
    assert "it names sales_internal.stg_orders, data of sales.orders" in finding.fix
    assert "{{ input('sales.orders') }}" in finding.fix


def test_a_top_level_pivot_is_a_query_not_a_statement_to_refuse(mesh_copy: Path) -> None:
    path = mesh_copy / RUNS_SQL
    path.write_text("pivot {{ ref('stg_runs') }} on status in ('ok', 'error') using count(*)\n")

    assert [i for i in code_access.lint(load_registry(mesh_copy)) if i.file.resolve() == path.resolve()] == []


def test_generators_and_ctes_are_not_refused(mesh_copy: Path) -> None:
    path = mesh_copy / RUNS_SQL
    path.write_text(
        "with days as (select * from range(3) t(d))\n"
        + path.read_text().replace("from {{ ref('stg_runs') }} as r", "from {{ ref('stg_runs') }} as r, days")
    )

    assert [i for i in code_access.lint(load_registry(mesh_copy)) if i.file.resolve() == path.resolve()] == []


def test_a_dbt_model_reading_a_file_is_refused_naming_the_model_and_line(mesh_copy: Path) -> None:
    model = mesh_copy / SALES_V2
    model.write_text(
        model.read_text().rstrip() + "\nunion all select * from read_parquet('fx/rates.parquet')\n"
    )
    line = len(model.read_text().splitlines())

    [finding] = [i for i in code_access.lint(load_registry(mesh_copy)) if i.file.resolve() == model.resolve()]

    assert finding.field.startswith(f"line {line}: union all select * from read_parquet(")
    assert "reads files or URLs through read_parquet()" in finding.message
    assert "{{ source('port_<domain>', '<product>_v<major>') }}" in finding.fix


# --- Python products -------------------------------------------------------------------------------------

CUSTOMER_MASTER = Path("domains/customers/products/customer_master")
REFUSED_PYTHON = {
    "opening the warehouse file": (
        "import duckdb",
        "duckdb.connect('data/mesh.duckdb').sql('select * from sales_internal.stg_orders')",
    ),
    "pd.read_csv of a raw extract": ("import pandas as pd", f"pd.read_csv('{CRM_EXTRACT}')"),
    "pandas.read_parquet": ("import pandas", "pandas.read_parquet('data/x.parquet')"),
    "open()": ("import json", "json.load(open('secrets.json'))"),
    "Path.read_text": ("from pathlib import Path", "Path('data/sources/crm/customers.csv').read_text()"),
    "sqlite3.connect": ("import sqlite3", "sqlite3.connect('crm.db')"),
    "snowflake.connector": ("import snowflake.connector", "snowflake.connector.connect(user='x')"),
    "a from-import of read_csv": ("from pandas import read_csv", f"read_csv('{CRM_EXTRACT}')"),
}


def add_to_transform(root: Path, import_line: str, call: str) -> tuple[Path, int]:
    """`import_line` atop customer_master's transform, `call` in a function; the call's line."""
    path = root / CUSTOMER_MASTER / "transform.py"
    path.write_text(f"{import_line}\n{path.read_text()}\n\ndef _peek():\n    return {call}\n")
    return path, len(path.read_text().splitlines())


@pytest.mark.parametrize("what", REFUSED_PYTHON)
def test_a_python_transform_reaching_files_or_connections_is_refused_naming_line_and_fix(
    mesh_copy: Path, what: str
) -> None:
    path, line = add_to_transform(mesh_copy, *REFUSED_PYTHON[what])

    report = validate(mesh_copy)

    found = [i for i in report.errors if i.file.resolve() == path.resolve()]
    assert any(i.field.startswith(f"line {line}: return ") for i in found), found
    assert all("external_access.reason" in i.fix and "inputs['<domain>.<product>']" in i.fix for i in found)


def test_a_helper_module_beside_the_transform_is_read_too(mesh_copy: Path) -> None:
    helper = mesh_copy / CUSTOMER_MASTER / "helpers.py"
    helper.write_text("import pandas as pd\n\n\ndef crm():\n    return pd.read_csv('crm.csv')\n")

    [finding] = [
        i for i in python_access.lint(load_registry(mesh_copy)) if i.file.resolve() == helper.resolve()
    ]

    assert finding.field == "line 5: return pd.read_csv('crm.csv')"
    assert "reads or reaches files (pandas.read_csv())" in finding.message


def test_a_python_transform_stating_why_it_reaches_outside_passes_validate_and_is_red_in_secure(
    mesh_copy: Path,
) -> None:
    from mesh_assets.govern.fitness import secure

    add_to_transform(mesh_copy, "import pickle", "pickle.load(open('model.pkl', 'rb'))")
    spec = mesh_copy / CUSTOMER_MASTER / "dataproduct.yaml"
    reason = "loads the address-normalisation model shipped beside transform.py"
    text = spec.read_text()
    assert "kind: python\n" in text
    spec.write_text(
        text.replace("kind: python\n", f"kind: python\n  external_access:\n    reason: {reason}\n", 1)
    )
    registry = load_registry(mesh_copy)

    assert python_access.lint(registry) == []
    verdict = secure(registry.products["customers.customer_master"], registry)
    assert not verdict.passed and not verdict.gating
    assert reason in verdict.reason
