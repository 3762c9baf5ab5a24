"""The data product catalog: a static site that opens from a file browser, and the asset that rebuilds it.

Built on a private Dagster instance where nothing has run, every port is "not yet published"; a port's
publish and check results are recorded on an `isolated` instance as runless events to see them appear.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import dagster as dg
import pytest
import typer
from typer.testing import CliRunner

from mesh_assets.catalog import definitions
from mesh_assets.catalog.runtime import read_runtime
from mesh_assets.catalog.site import CatalogError, build_site
from mesh_assets.cli import catalog as catalog_command
from mesh_assets.infra import environment
from mesh_assets.product.registry import load_registry

PRODUCTS = [
    "commercial_analytics.customer_360",
    "commercial_analytics.sales_forecast",
    "customers.customer_master",
    "diagnostics.instrument_runs",
    "sales.orders",
    "sales.sales",
]
SVG = "{http://www.w3.org/2000/svg}"


class Links(HTMLParser):
    """Every href and src of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [value for name, value in attrs if name in ("href", "src") and value]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, repo_root: Path) -> Path:
    """The catalog of the example mesh, built once by `mesh catalog build` on a private, empty instance.

    The same private environment as the `isolated` fixture (own DAGSTER_HOME and DuckDB file), set up at
    module scope so the pages are built once for all the tests that only read them.
    """
    work = tmp_path_factory.mktemp("catalog_site")
    home = work / "dagster_home"
    home.mkdir()
    shutil.copy(repo_root / "dagster.yaml", home / "dagster.yaml")
    app = typer.Typer()
    catalog_command.register(app)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(home))
        patch.setenv("MESH_DUCKDB_PATH", str(work / "mesh.duckdb"))
        patch.delenv("MESH_TARGET", raising=False)
        result = CliRunner().invoke(app, ["catalog", "build", "--out", str(work / "catalog")])
    assert result.exit_code == 0, result.output
    assert "built 7 pages for 6 products (0 of 7 ports published)" in result.output
    return work / "catalog"


def page(site: Path, product: str) -> str:
    return (site / "products" / f"{product}.html").read_text()


def search_index(site: Path) -> dict[str, dict]:
    html = (site / "index.html").read_text()
    blob = re.search(r'<script type="application/json" id="search-index">(.*?)</script>', html, re.S)
    assert blob is not None
    return {entry["key"]: entry for entry in json.loads(blob.group(1))}


def lineage_texts(html: str) -> list[str]:
    svg = re.search(r"<svg .*?</svg>", html, re.S)
    assert svg is not None
    root = ET.fromstring(svg.group(0))  # well-formed XML, not just tolerated by browsers
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def test_the_site_has_a_home_page_and_a_page_per_product(site: Path) -> None:
    assert (site / "index.html").exists()
    assert sorted(p.stem for p in (site / "products").glob("*.html")) == PRODUCTS
    assert (site / "assets" / "catalog.css").exists() and (site / "assets" / "catalog.js").exists()
    assert len(list((site / "contracts").glob("*.odcs.yaml"))) == 7
    assert len(list((site / "contracts").glob("*.odps.yaml"))) == 6


def test_on_a_fresh_instance_every_port_is_not_yet_published(site: Path) -> None:
    for product in PRODUCTS:
        html = page(site, product)
        assert "not yet published" in html and 'class="ok"' not in html
    assert page(site, "sales.sales").count('<dd class="unpublished">not yet published</dd>') == 2


def test_the_search_index_contains_column_names_and_tags(site: Path) -> None:
    index = search_index(site)
    assert sorted(index) == PRODUCTS
    sales = index["sales.sales"]
    assert {"net_revenue_eur", "sales_month", "month", "revenue"} <= set(sales["columns"])
    assert sales["tags"] == ["sales", "revenue", "monthly", "eur"]
    assert "contact_email" in index["customers.customer_master"]["columns"]
    assert "pii" in index["customers.customer_master"]["tags"]
    assert "Planning FX rates" in sales["text"]
    assert sales["href"] == "products/sales.sales.html"


def test_the_home_page_filters_by_domain_type_status_and_classification(site: Path) -> None:
    html = (site / "index.html").read_text()
    for name in ("domain", "type", "status", "classification"):
        assert f'<select id="filter-{name}" data-filter="{name}">' in html
    assert '<option value="commercial_analytics">' in html and '<option value="consumer-aligned">' in html
    index = search_index(site)
    assert index["sales.sales"]["status"] == ["active", "deprecated"]  # a product with a deprecated port
    assert index["commercial_analytics.sales_forecast"]["status"] == ["beta"]
    assert index["customers.customer_master"]["classification"] == "confidential"
    assert index["sales.orders"]["type"] == "source-aligned" and index["sales.orders"]["domain"] == "sales"
    assert '<script src="assets/catalog.js"></script>' in html


def test_the_embedded_index_cannot_close_its_script_element(site: Path) -> None:
    html = (site / "index.html").read_text()
    blob = html.split('id="search-index">', 1)[1].split("</script>", 1)[0]
    assert "<" not in blob and ">" not in blob


def test_the_deprecation_of_sales_v1_is_shown_with_its_sunset_date(tmp_path: Path, repo_root: Path) -> None:
    # Built on a day before the sunset (2027-03-31), whatever day the test runs.
    before = datetime(2026, 11, 21, 12, tzinfo=UTC)
    site = build_site(load_registry(repo_root, before.date()), tmp_path / "catalog", now=before).path
    sales = page(site, "sales.sales")
    assert "<strong>v1 (1.4.0) is deprecated</strong>" in sales
    assert '<strong class="sunset">2027-03-31</strong>' in sales and "Move to v2." in sales
    assert "sunset <strong>2027-03-31</strong>, replaced by v2" in sales
    assert "overdue" not in sales.split("<body", 1)[1].split('id="search-index"', 1)[0]
    consumer = page(site, "commercial_analytics.customer_360")
    assert "deprecated until its sunset\n  2027-03-31: move to v2." in consumer


def test_the_lineage_svg_names_producers_and_consumers(site: Path) -> None:
    texts = lineage_texts(page(site, "sales.sales"))
    assert {"sales.orders", "sales.sales", "commercial_analytics.customer_360"} <= set(texts)
    assert "commercial_analytics.sales_forecast" in texts
    assert "consumer · reads v1" in texts and "consumer · reads v2" in texts
    master = lineage_texts(page(site, "customers.customer_master"))
    assert {"crm.customers", "diagnostics.instrument_runs", "commercial_analytics.customer_360"} <= set(
        master
    )
    mesh = lineage_texts((site / "index.html").read_text())
    assert set(PRODUCTS) <= set(mesh)


def test_links_are_relative_and_resolve_to_existing_files(site: Path) -> None:
    pages = [site / "index.html", *sorted((site / "products").glob("*.html"))]
    checked = 0
    for html_file in pages:
        parser = Links()
        parser.feed(html_file.read_text())
        for link in parser.found:
            if link.startswith("mailto:"):
                continue  # the steward's address: opens the mail client, no file
            assert "://" not in link and not link.startswith("/"), f"{html_file.name}: {link} is not relative"
            target = link.split("#", 1)[0]
            if target:
                assert (html_file.parent / target).resolve().exists(), f"{html_file.name}: {link} is broken"
                checked += 1
    assert checked > 50


def test_product_pages_say_what_where_when_with_what_how_and_who(site: Path) -> None:
    html = page(site, "customers.customer_master")
    for section in ("what", "where", "when", "lineage", "how", "access", "versions"):
        assert f'<section id="{section}">' in html
    assert "Stable CRM identifier of the customer." in html and "C000042" in html  # meaning and examples
    assert '<span class="flag pii">PII</span>' in html
    assert "<code>mesh://customers/customer_master/v1</code>" in html
    assert "duckdb -readonly " in html and "read_only=True" in html
    assert (
        "USE ROLE ANALYST;" in html
        and "SELECT * FROM MESH.&#34;customers&#34;.&#34;customer_master_v1&#34;" in html
    )
    assert "pandas functions in `transform.py`" in html
    assert "domains/customers/products/customer_master/transform.py" in html
    assert "How to request access" in html and "mailto:maria.keller@example.com" in html
    assert "<code>external_partner</code>" in html
    assert "row_count_within_bounds" in html and "not yet run" in html
    forecast = page(site, "commercial_analytics.sales_forecast")
    assert "Access needs approval" in forecast


def test_a_published_port_shows_its_last_publish_check_results_and_slo_status(
    isolated: Path, repo_root: Path
) -> None:
    key = dg.AssetKey(["sales", "sales", "v2"])
    registry = load_registry(repo_root)
    with dg.DagsterInstance.get() as instance:
        instance.report_runless_asset_event(
            dg.AssetMaterialization(asset_key=key, metadata={"dagster/row_count": 4321})
        )
        instance.report_runless_asset_event(
            dg.AssetCheckEvaluation(
                asset_key=key,
                check_name="primary_key_unique_not_null",
                passed=False,
                metadata={"observed": "3 duplicate, 0 null", "threshold": "0 duplicate, 0 null"},
            )
        )
        # Seen at the moment of the publish: ages read "0 min" however long the test took to get here.
        published = instance.get_latest_materialization_event(key)
        assert published is not None
        now = datetime.fromtimestamp(published.timestamp, tz=UTC)
        runtime = read_runtime(instance, registry, now=now)
    report = build_site(registry, isolated / "catalog", runtime=runtime, now=now)
    assert (report.pages, report.published_ports, report.ports) == (7, 1, 7)
    html = page(report.path, "sales.sales")
    v2 = html.split("<h3>v2</h3>", 1)[1].split("<h3>v1</h3>", 1)[0]
    assert '<dd class="ok">' in v2 and "(0 min ago)" in v2 and "<dd>4,321</dd>" in v2
    assert '<span class="state state-failed">failed</span>' in v2 and "3 duplicate, 0 null" in v2
    assert "last publish 0m ago" in v2 and '<span class="state state-met">met</span>' in v2
    assert "0.0% (0 of 1)" in v2 and '<span class="state state-breached">breached</span>' in v2
    assert '<dd class="unpublished">not yet published</dd>' in html.split("<h3>v1</h3>", 1)[1]


def test_a_rebuild_replaces_the_site_but_never_a_folder_it_did_not_build(
    tmp_path: Path, repo_root: Path
) -> None:
    registry = load_registry(repo_root)
    out = tmp_path / "catalog"
    build_site(registry, out)
    (out / "products" / "stale.html").write_text("from an earlier build")
    build_site(registry, out)
    assert not (out / "products" / "stale.html").exists()
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(CatalogError, match="not a catalog built by mesh"):
        build_site(registry, foreign)
    assert (foreign / "keep.txt").read_text() == "mine"


def test_the_catalog_asset_materializes_and_reports_the_path_and_page_count(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = isolated / "asset_catalog"
    monkeypatch.setenv("MESH_CATALOG_DIR", str(out))
    env = environment.resolve()
    defs = dg.Definitions.merge(
        definitions(load_registry(env.root), env), dg.Definitions(resources={"warehouse": env.warehouse()})
    )
    with dg.DagsterInstance.get() as instance:
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(instance=instance)
    assert result.success
    (materialization,) = result.asset_materializations_for_node("mesh__catalog")
    assert materialization.asset_key == dg.AssetKey(["mesh", "catalog"])
    assert materialization.metadata["path"] == dg.MetadataValue.path(str(out))
    assert materialization.metadata["pages"] == dg.MetadataValue.int(7)
    assert (out / "index.html").exists() and len(list((out / "products").glob("*.html"))) == 6


def test_the_catalog_asset_depends_on_every_port_and_refreshes_with_the_mesh(repo_root: Path) -> None:
    registry = load_registry(repo_root)
    env = environment.Environment(
        target="duckdb", root=repo_root, duckdb_path=repo_root / "data" / "x.duckdb"
    )
    specs = definitions(registry, env).resolve_all_asset_specs()
    (spec,) = [s for s in specs if s.key == dg.AssetKey(["mesh", "catalog"])]
    ports = {
        dg.AssetKey([p.spec.domain, p.spec.name, f"v{port.major}"])
        for p in registry.products.values()
        for port in p.spec.output_ports
    }
    assert {dep.asset_key for dep in spec.deps} == ports and len(ports) == 7
    assert spec.automation_condition is not None
    # Once per cascade, after the last port of it (mesh_assets/assets/automation.py).
    assert spec.automation_condition.get_label() == "eager, after upstream settles"
    assert spec.group_name == "governance"


def test_loading_the_catalog_and_contract_modules_imports_nothing_heavy() -> None:
    code = (
        "import sys, mesh_assets.catalog, mesh_assets.contracts.odcs, mesh_assets.contracts.odps, "
        "mesh_assets.cli.catalog, mesh_assets.cli.contract_io; "
        "heavy = ('jinja2', 'jsonschema', 'open_data_contract_standard'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    output = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert output.strip() == "[]"


def test_each_column_shows_its_upstream_columns_and_its_readers(site: Path) -> None:
    master = page(site, "customers.customer_master")
    # country_code is read by customer_360 (column lineage); city by no product.
    assert (
        "read by <code>customers.customer_master.country_code → "
        "commercial_analytics.customer_360.country_code</code>" in master
    )
    c360 = page(site, "commercial_analytics.customer_360")
    assert "from <code>customers.customer_master.country_code</code>" in c360
