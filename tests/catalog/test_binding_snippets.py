"""The catalog shows, per binding of a port, how to read it (the snippets run in test_bindings_mesh.py)."""

from __future__ import annotations

from pathlib import Path

from mesh_assets.catalog.bindings import binding_views
from mesh_assets.catalog.site import build_site
from mesh_assets.contracts.odcs_servers import Deployment
from mesh_assets.product.registry import load_registry


def sales_v2(repo_root: Path):
    registry = load_registry(repo_root)
    spec = registry.products["sales.sales"].spec
    return registry, spec, next(p for p in spec.output_ports if p.major == 2)


def test_prods_catalog_tells_how_to_read_each_binding_where_consumers_read_it(repo_root: Path) -> None:
    _, spec, port = sales_v2(repo_root)
    prod = Deployment(environment="prod", is_prod=True, data_dir="data/envs/prod")
    views = {(v["binding"], v["tool"]): v["code"] for v in binding_views(prod, spec, port)}
    assert sorted(views) == [("iceberg", "pyiceberg"), ("parquet", "duckdb"), ("parquet", "pyarrow")]
    assert "read_parquet('data/envs/prod/bindings/sales/sales/v2/parquet/latest/**/*.parquet'" in views[
        ("parquet", "duckdb")
    ]
    assert "hive_types = {'product_line': 'VARCHAR'}" in views[("parquet", "duckdb")]
    assert "catalog.load_table('sales.sales_v2')" in views[("iceberg", "pyiceberg")]


def test_a_ports_catalog_page_shows_its_binding_snippets(repo_root: Path, tmp_path: Path) -> None:
    registry, _, _ = sales_v2(repo_root)
    build_site(registry, tmp_path / "catalog")
    page = (tmp_path / "catalog" / "products" / "sales.sales.html").read_text()
    assert "Read the iceberg binding with pyiceberg" in page
    assert "Read the parquet binding with duckdb" in page
    assert page.count('class="binding"') == 3  # v2 only: v1 is served as its table alone
