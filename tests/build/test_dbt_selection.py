"""The dbt code location reads dbt's default selection from the manifest instead of dbt's graph selector.

Both must give the same nodes: otherwise the dbt multi-asset would gain or lose assets and checks.
"""

from __future__ import annotations

import json
from pathlib import Path

from dagster_dbt import asset_utils

from mesh_assets.build.builders.dbt import default_selection_from_manifest, selects_every_node
from mesh_assets.build.dbt_contracts import prepare
from mesh_assets.product.registry import load_registry


def _manifest(mesh_copy: Path, isolated: Path) -> dict:
    registry = load_registry(mesh_copy)
    path = prepare(registry, "sales", dbt_env={"MESH_DUCKDB_PATH": str(isolated / "mesh.duckdb")})
    return json.loads(path.read_text())


def test_the_default_selection_read_from_the_manifest_is_the_one_dbt_makes(
    mesh_copy: Path, isolated: Path
) -> None:
    manifest = _manifest(mesh_copy, isolated)
    by_dbt = asset_utils.select_unique_ids(
        select="fqn:*", exclude="", selector="", project=None, manifest_json=manifest
    )

    with default_selection_from_manifest():
        from_manifest = asset_utils.select_unique_ids(
            select="fqn:*", exclude="", selector="", project=None, manifest_json=manifest
        )
        narrowed = asset_utils.select_unique_ids(
            select="orders_v1", exclude="", selector="", project=None, manifest_json=manifest
        )

    assert selects_every_node("fqn:*", "", "", manifest)
    assert from_manifest == by_dbt
    assert {u for u in by_dbt if u.startswith("model.")} == {
        f"model.sales.{name}" for name in ("stg_orders", "orders_v1", "fx_rates", "sales_v2", "sales_v1")
    }
    # Any other selection is still dbt's: the model and (dbt's indirect selection) its tests.
    assert {u for u in narrowed if not u.startswith("test.")} == {"model.sales.orders_v1"}
    assert "test.sales.unique_orders_v1_order_id" in {u.rsplit(".", 1)[0] for u in narrowed}


def test_a_manifest_with_other_node_types_keeps_dbts_selector() -> None:
    nodes = {"analysis.p.a": {"resource_type": "analysis"}, "model.p.m": {"resource_type": "model"}}
    manifest = {"nodes": nodes}

    assert not selects_every_node("fqn:*", "", "", manifest)
    assert not selects_every_node("fqn:*", "tag:slow", "", {"nodes": {}})
    assert selects_every_node("", "", None, {"nodes": {"model.p.m": {"resource_type": "model"}}})
