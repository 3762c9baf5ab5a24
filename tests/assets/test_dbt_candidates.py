"""A consumer built in the same dbt project and domain as its producer reads the producer's candidate in
the stage's one dbt invocation: what `mesh prepare` generates for it, and how Dagster sees the edge."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from spec_edits import edit_spec

from mesh_assets.assets.dbt_contracts import (
    candidate_reads,
    candidate_sources,
    generated_drift,
    generated_macros,
    generated_macros_path,
)
from mesh_assets.assets.dbt_outcomes import link_candidate_sources
from mesh_assets.govern.validate import validate
from mesh_assets.product.registry import load_registry

SOURCE = "source.sales.port_sales.orders_v1"
PRODUCER = "model.sales.orders_v1"
CONSUMER = "model.sales.sales_v2"


def test_sales_reads_the_orders_candidate_because_one_dbt_project_of_one_domain_builds_both(
    repo_root: Path,
) -> None:
    registry = load_registry(repo_root)

    [read] = candidate_reads(registry, registry.products["sales.sales"])
    assert (read.producer.key, read.port.major) == ("sales.orders", 1)
    assert candidate_reads(registry, registry.products["sales.orders"]) == []
    # Consumers in other domains or built otherwise read published ports, as always.
    for key in ("commercial_analytics.customer_360", "diagnostics.instrument_runs"):
        assert candidate_reads(registry, registry.products[key]) == []
    assert candidate_sources(registry, "sales") == {"port_sales.orders_v1": "orders_v1"}


def test_the_generated_source_macro_reads_the_candidate_only_when_the_invocation_builds_the_producer(
    repo_root: Path,
) -> None:
    text = generated_macros(load_registry(repo_root), "sales")

    assert text is not None
    assert '{"port_sales.orders_v1": "orders_v1"}' in text
    # Both branches are recorded at parse time (so dbt orders the models); which one renders is decided
    # by what the invocation selected.
    assert "builtins.ref(producer)" in text and "builtins.source(source_name, table_name)" in text
    assert "in selected_resources" in text
    assert (generated_macros_path(repo_root / "dbt_projects" / "sales")).read_text() == text


def test_a_missing_or_unneeded_generated_macro_is_drift_that_validate_reports(mesh_copy: Path) -> None:
    macros = generated_macros_path(mesh_copy / "dbt_projects" / "sales")
    assert generated_drift(load_registry(mesh_copy), "sales") == []

    macros.unlink()
    assert generated_drift(load_registry(mesh_copy), "sales") == [macros]
    assert any(i.file == macros and "out of date" in i.message for i in validate(mesh_copy).errors)

    # sales no longer reads orders: the override is not needed, and a leftover one is drift too.
    macros.write_text(generated_macros(load_registry(mesh_copy), "sales") or "")
    edit_spec(mesh_copy, "sales.sales", lambda spec: spec.update(input_ports=[]))
    assert generated_macros(load_registry(mesh_copy), "sales") is None
    assert macros in generated_drift(load_registry(mesh_copy), "sales")


def test_dagster_sees_the_consumer_reading_the_producers_model_inside_the_dbt_step_not_its_port() -> None:
    def model(uid: str, parents: list[str]) -> dict[str, Any]:
        name = uid.split(".")[-1]
        return {"unique_id": uid, "name": name, "resource_type": "model", "depends_on": {"nodes": parents}}

    manifest = {
        "nodes": {PRODUCER: model(PRODUCER, []), CONSUMER: model(CONSUMER, [SOURCE, PRODUCER])},
        "sources": {SOURCE: {"unique_id": SOURCE, "source_name": "port_sales", "name": "orders_v1"}},
        "parent_map": {CONSUMER: [SOURCE, PRODUCER], SOURCE: [], PRODUCER: []},
        "child_map": {SOURCE: [CONSUMER], PRODUCER: [CONSUMER], CONSUMER: []},
    }

    linked = link_candidate_sources(manifest, {"port_sales.orders_v1": "orders_v1"})

    assert linked["nodes"][CONSUMER]["depends_on"]["nodes"] == [PRODUCER]
    assert linked["parent_map"][CONSUMER] == [PRODUCER]
    assert linked["child_map"][PRODUCER] == [CONSUMER]
    assert SOURCE not in linked["sources"] and SOURCE not in linked["child_map"]


def test_a_port_source_no_sibling_builds_stays_a_source() -> None:
    manifest = {
        "nodes": {
            CONSUMER: {"name": "sales_v2", "resource_type": "model", "depends_on": {"nodes": [SOURCE]}}
        },
        "sources": {SOURCE: {"source_name": "port_sales", "name": "orders_v1"}},
    }

    linked = link_candidate_sources(manifest, {})

    assert linked["nodes"][CONSUMER]["depends_on"]["nodes"] == [SOURCE]
    assert SOURCE in linked["sources"]
