"""dbt Labs' current jaffle-shop onboards unchanged, and one product's failing test blocks no other's publish.

`tests/fixtures/jaffle_shop` is a hand-written trim of dbt-labs/jaffle-shop (the hub and GitHub are not
reachable from the tests) with the features that stopped onboarding: raw data as seeds enabled only by a
var and read as the `ecom` sources, a custom `generate_schema_name` (seeds land in a `raw` schema), a
`sum()` of integers (HUGEINT on DuckDB), unit tests (one given `ref('stg_products')`, which becomes
another product's port), a semantic model and its time spine. The project is onboarded once per module
with flags only, into a private copy of the mesh; `mesh run` runs in subprocesses whose `PYTHONPATH` is
the copy (the new domain is not importable from this process) and whose environment points every
output at the module's temp dir.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest
import yaml
from conftest import REPO, copy_mesh, mesh_command_dir

from mesh_assets.govern.validate import validate
from mesh_assets.product.registry import load_registry

pytestmark = pytest.mark.slow

FIXTURE = Path(__file__).parent.parent / "fixtures" / "jaffle_shop"
FLAGS = [
    "--port",
    "customers",
    "--port",
    "orders",
    "--port",
    "products",
    "--primary-key",
    "products=product_id",
    "--steward",
    "shop.lead@example.com",
    "--owner-team",
    "shop_data",
    "--no-input",
]
VARS = ["--dbt-vars", '{"load_source_data": true}']


def files(folder: Path) -> dict[str, str]:
    """Every file under `folder` with its content."""
    return {str(f.relative_to(folder)): f.read_text() for f in sorted(folder.rglob("*")) if f.is_file()}


def mesh_env(base: Path) -> dict[str, str]:
    """The environment of a `mesh` subprocess working on the copy under `base` (the parent's is untouched)."""
    home = base / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if k not in {"MESH_TARGET", "MESH_ENV"}}
    return {
        **env,
        "MESH_ROOT": str(base / "repo"),
        "PYTHONPATH": str(base / "repo"),
        "DAGSTER_HOME": str(home),
        "MESH_DATA_DIR": str(base / "data"),
        "MESH_DUCKDB_PATH": str(base / "mesh.duckdb"),
        "GIT_CONFIG_GLOBAL": str(base / "gitconfig"),
        "GIT_CONFIG_NOSYSTEM": "1",
    }


def mesh(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`mesh <args>` in a subprocess on the copy."""
    return subprocess.run(
        [str(mesh_command_dir() / "mesh"), *args],
        cwd=env["MESH_ROOT"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def copy_of_the_mesh(base: Path) -> Path:
    root = copy_mesh(base / "repo")
    shutil.copy(REPO / "workspace.yaml", root / "workspace.yaml")
    return root


@pytest.fixture(scope="module")
def onboarded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], str]:
    """The fixture project onboarded as domain `shop` with flags only: root, environment, output."""
    base = tmp_path_factory.mktemp("jaffle")
    root = copy_of_the_mesh(base)
    env = mesh_env(base)
    before = files(FIXTURE)
    result = mesh(env, "new", "domain", "shop", "--from-dbt", str(FIXTURE), *FLAGS, *VARS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert files(FIXTURE) == before, "a copy: the team's project is untouched"
    return root, env, " ".join(result.stdout.split())


def run_summary(env: dict[str, str], tmp: Path) -> dict[str, dict[str, Any]]:
    """`mesh run --domain shop`: each product's result, by product."""
    summary = tmp / "summary.json"
    mesh(env, "run", "--domain", "shop", "--summary-json", str(summary))
    assert summary.exists()
    return {r["product"]: r for r in json.loads(summary.read_text())}


@pytest.fixture(scope="module")
def built(onboarded, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The onboarded domain built once by `mesh run --domain shop`."""
    _, env, _ = onboarded
    return run_summary(env, tmp_path_factory.mktemp("run"))


def test_a_var_gated_seed_onboards_with_dbt_vars_and_flags_only(
    onboarded, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, env, out = onboarded
    for name in ("MESH_ROOT", "MESH_DATA_DIR", "MESH_DUCKDB_PATH", "DAGSTER_HOME"):
        monkeypatch.setenv(name, env[name])  # what `validate` resolves is the copy's, never the repository's
    products = {p.spec.name: p.spec for p in load_registry(root).domain_products("shop")}
    assert set(products) == {"customers", "orders", "products", "stg_products"}
    assert "stg_products feeds orders and products: published as the product stg_products" in out
    for spec in products.values():
        assert spec.transformation.vars == {"load_source_data": True}, "kept for every dbt run, as code"
    internals = products["orders"].transformation.internals
    assert {"raw_orders", "raw_items", "raw_supplies"} <= set(internals), "the seeds behind its sources"
    assert products["stg_products"].transformation.internals == ["raw_products"]
    assert "which the platform does not land" not in out, "a seeded source is no foreign table"
    assert products["products"].output_ports[0].primary_key == ["product_id"], "from --primary-key"
    # The new domain's own files (the repository's schema file is another change's to keep current).
    mine = (root / "domains" / "shop", root / "dbt_projects" / "shop", root / "workspace.yaml")
    errors = [e for e in validate(root).errors if any(e.file.is_relative_to(m) for m in mine)]
    assert not errors, [e.render(root) for e in errors]


def test_a_duckdb_hugeint_sum_is_published_as_decimal_38_0_and_the_contract_says_so(onboarded) -> None:
    root, _, out = onboarded
    orders = load_registry(root).products["shop.orders"].spec.output_ports[0]
    column = next(c for c in orders.columns if c.name == "count_food_items")
    assert (column.type, column.precision, column.scale) == ("decimal", 38, 0)
    assert "DuckDB's HUGEINT" in column.description and "decimal(38,0)" in column.description
    assert "orders.count_drink_items: DuckDB's HUGEINT is published as decimal(38,0)" in out
    generated = yaml.safe_load((root / "dbt_projects/shop/models/_mesh_generated.yml").read_text())
    model = next(m for m in generated["models"] if m["name"] == "orders")
    declared = {c["name"]: c["data_type"] for c in model["columns"]}
    assert "'hugeint' if target.type == 'duckdb'" in declared["count_food_items"]


def test_a_unit_test_given_a_model_that_became_a_port_reads_the_port(onboarded) -> None:
    root, _, _ = onboarded
    project = root / "dbt_projects" / "shop"
    order_items = (project / "models/marts/order_items.yml").read_text()
    assert "- input: source('port_shop', 'stg_products_v1')" in order_items
    assert "ref('stg_products')" not in order_items
    assert "- input: ref('stg_supplies')" in order_items, "its own internals are still refs"
    model = (project / "models/marts/order_items.sql").read_text()
    assert "{{ source('port_shop', 'stg_products_v1') }}" in model
    assert "- input: ref('order_items')" in (project / "models/marts/orders.yml").read_text()


def test_the_domain_publishes_every_port_and_the_projects_unit_tests_pass_in_the_mesh_build(
    onboarded, built
) -> None:
    _, env, _ = onboarded
    assert {k: r["status"] for k, r in built.items()} == dict.fromkeys(
        ["shop.stg_products", "shop.orders", "shop.customers", "shop.products"], "ok"
    ), built
    with duckdb.connect(env["MESH_DUCKDB_PATH"], read_only=True) as con:
        counts = {
            name: con.execute(f"SELECT COUNT(*) FROM shop.{name}_v1").fetchone()[0]
            for name in ("customers", "orders", "products", "stg_products")
        }
        food = con.execute("SELECT typeof(count_food_items) FROM shop.orders_v1 LIMIT 1").fetchone()[0]
    assert counts == {"customers": 4, "orders": 5, "products": 4, "stg_products": 4}
    assert food == "DECIMAL(38,0)"
    results = [
        r
        for path in (Path(env["MESH_DATA_DIR"]) / "dbt" / "shop").rglob("run_results.json")
        for r in json.loads(path.read_text())["results"]
    ]
    unit = {r["unique_id"].split(".")[-1]: r["status"] for r in results if r["unique_id"].startswith("unit")}
    # As for the example domains: every key in the domain's namespace, the seeds as the products' own.
    instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
    keys = {key.to_user_string() for key in instance.get_asset_keys()}
    assert all(key.startswith("shop/") for key in keys), sorted(keys)
    assert {"shop/orders/v1", "shop/orders/internal/raw_orders", "shop/customers/internal/customers"} <= keys
    assert unit == {
        "test_supply_costs_sum_correctly": "pass",
        "test_order_items_compute_to_bools_correctly": "pass",
    }


def test_a_failing_test_of_one_product_does_not_stop_another_product_of_the_domain(
    onboarded, built, tmp_path: Path
) -> None:
    root, env, _ = onboarded
    project = root / "dbt_projects" / "shop"
    unit_tests = project / "models/marts/order_items.yml"
    original = unit_tests.read_text()
    singular = project / "tests" / "products_are_never_sold_out.sql"
    try:
        # A unit test of order_items (an internal of orders), and a data test of the products port model.
        unit_tests.write_text(original.replace("supply_cost: 6.80 }", "supply_cost: 9.99 }"))
        singular.parent.mkdir(exist_ok=True)
        singular.write_text("select * from {{ ref('products') }} where product_price > 0\n")
        results = run_summary(env, tmp_path)
    finally:
        unit_tests.write_text(original)
        singular.unlink(missing_ok=True)
    status = {k: r["status"] for k, r in results.items()}
    assert status == {
        "shop.stg_products": "ok",
        "shop.orders": "failed",
        "shop.customers": "skipped",
        "shop.products": "failed",
    }, results
    assert (
        "unit test test_supply_costs_sum_correctly failed: actual differs from expected"
        in (results["shop.orders"]["error"])
    ), "dbt's own words"
    assert results["shop.customers"]["error"] == "upstream failed: shop.orders", "customers reads orders"
    assert (
        "dbt test(s) of its models failed: products_are_never_sold_out on products"
        in (results["shop.products"]["error"])
    )
    assert results["shop.stg_products"]["rows"] == {"v1": 4}, "the independent product published"


def test_without_the_var_the_refusal_shows_dbts_own_error(tmp_path: Path) -> None:
    copy_of_the_mesh(tmp_path)
    env = mesh_env(tmp_path)
    result = mesh(env, "new", "domain", "shop", "--from-dbt", str(FIXTURE), *FLAGS)
    assert result.returncode == 2, result.stdout
    text = " ".join(result.stdout.split())
    assert "the model did not build on DuckDB" in text
    assert "dbt's message when it built the project empty" in text
    assert 'Table with name "raw.raw_customers" does not exist' in text, "why: no var, no seeds"
    assert not (tmp_path / "repo" / "dbt_projects" / "shop").exists(), "undone"
