"""Reading a dbt manifest and run results: seeds read as sources, and why dbt did not build a node."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from mesh_assets.assets.dbt_contracts import dbt_data_type, project_vars, vars_args
from mesh_assets.assets.dbt_outcomes import (
    failed_nodes,
    link_seeded_sources,
    seed_backed_sources,
    seed_source_ids,
)
from mesh_assets.product.errors import MeshSpecError
from mesh_assets.product.registry import load_registry


def node(uid: str, kind: str, schema: str = "shop_internal", parents: list[str] = ()) -> dict[str, Any]:
    return {
        "unique_id": uid,
        "name": uid.split(".")[-1],
        "resource_type": kind,
        "schema": schema,
        "depends_on": {"nodes": list(parents)},
    }


SEED = "seed.shop.raw_products"
SOURCE = "source.shop.ecom.raw_products"
STAGING = "model.shop.stg_products"
MART = "model.shop.order_items"
ORDERS = "model.shop.orders"
OTHER = "model.shop.products"
UNIT = "unit_test.shop.order_items.test_supply_costs_sum_correctly"
DATA = "test.shop.unique_stg_products_product_id"

MANIFEST: dict[str, Any] = {
    "nodes": {
        SEED: node(SEED, "seed", schema="raw"),
        STAGING: node(STAGING, "model", parents=[SOURCE]),
        MART: node(MART, "model", parents=[STAGING]),
        ORDERS: node(ORDERS, "model", parents=[MART]),
        OTHER: node(OTHER, "model", parents=[STAGING]),
        DATA: node(DATA, "test", parents=[STAGING]),
    },
    "unit_tests": {UNIT: node(UNIT, "unit_test", parents=[MART])},
    "sources": {
        SOURCE: {
            "unique_id": SOURCE,
            "source_name": "ecom",
            "name": "raw_products",
            "schema": "raw",
            "identifier": "raw_products",
            "resource_type": "source",
        },
        "source.shop.ecom.raw_elsewhere": {
            "unique_id": "source.shop.ecom.raw_elsewhere",
            "source_name": "ecom",
            "name": "raw_elsewhere",
            "schema": "raw",
            "resource_type": "source",
        },
    },
    "parent_map": {STAGING: [SOURCE], SOURCE: [], SEED: []},
    "child_map": {SOURCE: [STAGING], SEED: []},
}


def test_a_source_naming_a_seeds_relation_is_that_seed_and_no_other_source_is() -> None:
    assert seed_backed_sources(MANIFEST) == {("ecom", "raw_products"): "raw_products"}
    assert seed_source_ids(MANIFEST) == {SOURCE: SEED}


def test_linking_seeded_sources_draws_the_seed_feeding_the_models_that_read_the_source() -> None:
    linked = link_seeded_sources(copy.deepcopy(MANIFEST))
    assert linked["nodes"][STAGING]["depends_on"]["nodes"] == [SEED]
    assert linked["parent_map"][STAGING] == [SEED] and linked["child_map"][SEED] == [STAGING]
    assert SOURCE not in linked["sources"] and "source.shop.ecom.raw_elsewhere" in linked["sources"]


def test_a_failed_unit_test_names_itself_on_every_model_dbt_skipped_below_it() -> None:
    results = [
        {"unique_id": SEED, "status": "success"},
        {"unique_id": STAGING, "status": "success"},
        {"unique_id": OTHER, "status": "success"},
        {"unique_id": UNIT, "status": "fail", "message": "\x1b[32mactual\x1b[0m differs from expected"},
        {"unique_id": MART, "status": "skipped"},
        {"unique_id": ORDERS, "status": "skipped"},
    ]
    reasons = failed_nodes(MANIFEST, results)
    assert set(reasons) == {MART, ORDERS}, "the product beside it (products) was built"
    assert reasons[ORDERS] == (
        "skipped by dbt: unit test test_supply_costs_sum_correctly failed: actual differs from expected"
    ), "dbt's own words, without its terminal colours"


def test_a_model_that_errored_carries_dbts_message_and_a_failed_data_test_explains_the_skips() -> None:
    results = [
        {"unique_id": SEED, "status": "success"},
        {"unique_id": STAGING, "status": "success"},
        {"unique_id": DATA, "status": "fail", "message": "Got 1 result, configured to fail if != 0"},
        {"unique_id": MART, "status": "skipped"},
        {"unique_id": OTHER, "status": "error", "message": "Binder Error: column x not found"},
    ]
    reasons = failed_nodes(MANIFEST, results)
    assert reasons[OTHER] == "model products failed: Binder Error: column x not found"
    assert reasons[MART].startswith("skipped by dbt: test unique_stg_products_product_id failed: Got 1")


def test_a_hugeint_column_is_declared_to_dbt_as_what_each_warehouse_sums_into() -> None:
    assert dbt_data_type("decimal(38,0)") == "{{ 'hugeint' if target.type == 'duckdb' else 'decimal(38,0)' }}"
    assert dbt_data_type("decimal(38,2)") == "decimal(38,2)" and dbt_data_type("bigint") == "bigint"


def test_dbt_vars_are_one_per_project_and_products_that_disagree_are_refused(mesh_copy: Path) -> None:
    assert vars_args({}) == [] and vars_args({"b": 1, "a": True}) == ["--vars", '{"a": true, "b": 1}']
    registry = load_registry(mesh_copy)
    assert project_vars(registry, "sales") == {}
    for name, value in (("orders", "1"), ("sales", "2")):
        spec = mesh_copy / "domains" / "sales" / "products" / name / "dataproduct.yaml"
        line = f"  kind: dbt\n  vars: {{load_source_data: {value}}}\n"
        text = spec.read_text().replace("  kind: dbt\n", line)
        assert text != spec.read_text()
        spec.write_text(text)
    with pytest.raises(MeshSpecError, match="give every product of the project the same dbt vars"):
        project_vars(load_registry(mesh_copy), "sales")
