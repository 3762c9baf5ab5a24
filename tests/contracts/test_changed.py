"""Which products a change touches: changed files against a git ref, mapped onto products and downstream."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import copy_mesh

from mesh_assets.contracts.changed import changes_against, downstream_of, products_of_file
from mesh_assets.contracts.diff_git import ContractDiffError
from mesh_assets.product.registry import load_registry

ALL = {
    "commercial_analytics.customer_360",
    "commercial_analytics.sales_forecast",
    "customers.customer_master",
    "diagnostics.instrument_runs",
    "sales.orders",
    "sales.sales",
}


@pytest.fixture(scope="module")
def registry(repo_root: Path):
    return load_registry(repo_root)


@pytest.mark.parametrize(
    ("path", "products"),
    [
        ("domains/customers/products/customer_master/transform.py", {"customers.customer_master"}),
        ("domains/sales/definitions.py", {"sales.orders", "sales.sales"}),
        ("dbt_projects/sales/models/sales/sales_v2.sql", {"sales.sales"}),
        ("dbt_projects/sales/models/orders/stg_orders.sql", {"sales.orders"}),
        ("dbt_projects/sales/dbt_project.yml", {"sales.orders", "sales.sales"}),
        ("dbt_projects/sales/target/manifest.json", set()),
        ("mesh_assets/assets/publish.py", ALL),
        ("pyproject.toml", ALL),
        ("docs/environments.md", set()),
        ("domains/sales/products/sales/access/team.finance.yaml", set()),  # who reads, not what is built
        ("domains/sales/products/sales/access/audit.jsonl", set()),
        ("tests/test_layout.py", set()),
    ],
)
def test_each_changed_file_maps_onto_the_products_it_can_change(path: str, products: set, registry) -> None:
    assert products_of_file(path, registry) == products


def test_downstream_follows_consumers_transitively_and_names_the_change_they_follow(registry) -> None:
    downstream = downstream_of({"sales.orders"}, registry)
    assert downstream["sales.sales"] == ["sales.orders"]
    assert downstream["commercial_analytics.customer_360"] == ["sales.orders"]
    assert "sales.orders" not in downstream


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=root, check=True, capture_output=True
    )


def test_committed_and_uncommitted_and_new_files_all_count_against_the_base(tmp_path: Path) -> None:
    root = copy_mesh(tmp_path / "repo")
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "base")
    sql = root / "domains/commercial_analytics/products/customer_360/customer_360_v1.sql"
    sql.write_text(sql.read_text() + "\n-- committed\n")
    _git(root, "commit", "-qam", "change")
    forecast = root / "domains/commercial_analytics/products/sales_forecast/transform.py"
    forecast.write_text(forecast.read_text() + "\n# uncommitted\n")
    (root / "dbt_projects/sales/models/orders/new_model.sql").write_text("select 1\n")  # untracked

    changes = changes_against(root, load_registry(root), "main~1")

    assert set(changes.changed) == {
        "commercial_analytics.customer_360",
        "commercial_analytics.sales_forecast",
        "sales.orders",  # a new model file nobody owns yet: every product of the project
        "sales.sales",
    }
    assert changes.to_build == sorted(changes.changed)


def test_an_unknown_base_says_how_to_fetch_it(tmp_path: Path) -> None:
    root = copy_mesh(tmp_path / "repo")
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "base")
    with pytest.raises(ContractDiffError, match="fetch-depth"):
        changes_against(root, load_registry(root), "origin/main")


def test_a_product_whose_spec_no_longer_parses_is_still_changed_and_its_base_consumers_rebuild(
    tmp_path: Path,
) -> None:
    root = copy_mesh(tmp_path / "repo")
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "base")
    spec = root / "domains/customers/products/customer_master/dataproduct.yaml"
    spec.write_text(spec.read_text() + "not_a_field: true\n")
    registry = load_registry(root)
    assert "customers.customer_master" in registry.unreadable

    changes = changes_against(root, registry, "main")

    # A file in the product's folder is that product's change, whether its spec parses or not ...
    assert changes.changed == {"customers.customer_master": [str(spec.relative_to(root))]}
    # ... and who reads it is known from the base, where it parsed.
    assert changes.downstream == {
        "commercial_analytics.customer_360": ["customers.customer_master"],
        "commercial_analytics.sales_forecast": ["customers.customer_master"],
        "diagnostics.instrument_runs": ["customers.customer_master"],
    }
