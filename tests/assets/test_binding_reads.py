"""A Python consumer reading its input through the producer port's Iceberg binding (`via: iceberg`)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from binding_specs import MINIMAL_SPEC

from mesh_assets.assets import binding_reads, bindings
from mesh_assets.infra import environment
from mesh_assets.infra.warehouse.duckdb import DuckDBWarehouse
from mesh_assets.product.access import protected_select
from mesh_assets.product.binding_inputs import via_issues, via_of
from mesh_assets.product.registry import Product, ResolvedInput
from mesh_assets.product.spec import DataProductSpec

ROWS = (
    "SELECT 'w' || i AS widget_id, (i / 4)::DECIMAL(12,2) AS price, "
    "CASE WHEN i % 3 = 0 THEN NULL ELSE 'buyer' || i || '@x.io' END AS email FROM range({rows}) t(i)"
)


def producer_spec(binding: dict | None) -> DataProductSpec:
    data = {**MINIMAL_SPEC, "output_ports": [dict(MINIMAL_SPEC["output_ports"][0])]}
    email = {"name": "email", "type": "string", "pii": True, "description": "Buyer email."}
    data["output_ports"][0]["columns"] = [*MINIMAL_SPEC["output_ports"][0]["columns"], email]
    data["output_ports"][0]["bindings"] = [binding] if binding else []
    return DataProductSpec.model_validate(data)


def consumer_spec(kind: str = "python") -> DataProductSpec:
    data = {**MINIMAL_SPEC, "name": "report", "domain": "finance", "transformation": {"kind": kind}}
    data["input_ports"] = [{"product": "sales.widgets"}]
    return DataProductSpec.model_validate(data)


def resolved_input(tmp_path: Path, binding: dict | None, kind: str = "python") -> ResolvedInput:
    producer = producer_spec(binding)
    consumer = consumer_spec(kind)
    folder = tmp_path / "repo" / "domains"
    # Until `ProductInput.via` is a spec field, the tests set it on a copy (as the spec will).
    declared = consumer.product_inputs[0].model_copy(update={"via": "iceberg"})
    return ResolvedInput(
        Product(consumer, folder / "finance" / "products" / "report" / "dataproduct.yaml"),
        declared,
        Product(producer, folder / "sales" / "products" / "widgets" / "dataproduct.yaml"),
        producer.output_ports[0],
    )


def env_of(repo_root: Path, tmp_path: Path, name: str, **more: str) -> environment.Environment:
    environ = {"MESH_ROOT": str(repo_root), "MESH_DATA_DIR": str(tmp_path / "data"), "MESH_ENV": name}
    return environment.resolve(environ=environ | more)


def publish(env: environment.Environment, resolved: ResolvedInput, rows: int, path: Path) -> pd.DataFrame:
    """Publish the producer's table with its bindings; the frame the consumer reads from the table."""
    spec, port = resolved.producer.spec, resolved.port
    with DuckDBWarehouse(path=str(path)).isolated_session() as session:
        session.execute("CREATE SCHEMA IF NOT EXISTS sales")
        session.execute(f"CREATE OR REPLACE TABLE sales.widgets_v1 AS {ROWS.format(rows=rows)}")
        outcomes = bindings.write_bindings(session, spec, port, env, f"p{rows}")
        assert all(o.written and not o.parity for o in outcomes), [(o.kind, o.error) for o in outcomes]
        table_read = protected_select(spec, port, resolved.consumer.spec) or "SELECT * FROM sales.widgets_v1"
        return session.query_df(table_read)


@pytest.mark.parametrize("pii", ["protected", "clear"])
def test_a_python_consumer_reads_via_iceberg_the_frame_it_reads_from_the_table_pii_protected_alike(
    repo_root: Path, tmp_path: Path, pii: str
) -> None:
    resolved = resolved_input(tmp_path, {"kind": "iceberg", "pii": pii})
    env = env_of(repo_root, tmp_path, "dev")
    from_table = publish(env, resolved, 30, tmp_path / "mesh.duckdb")
    from_binding = binding_reads.read_input(resolved, env)
    assert "***" in set(from_binding["email"])  # masked for a consumer without the PII privilege
    pd.testing.assert_frame_equal(
        from_binding.sort_values("widget_id", ignore_index=True),
        from_table.sort_values("widget_id", ignore_index=True),
    )


def test_a_branch_reads_its_own_binding_and_one_deferring_to_prod_reads_prods_until_it_builds_its_own(
    repo_root: Path, tmp_path: Path
) -> None:
    resolved = resolved_input(tmp_path, {"kind": "iceberg"})
    publish(env_of(repo_root, tmp_path, "prod"), resolved, 40, tmp_path / "prod.duckdb")
    branch = env_of(repo_root, tmp_path, "feature_x", MESH_DEFER="prod")
    assert binding_reads.iceberg_place(resolved, branch).identifier == "sales.widgets_v1"
    assert len(binding_reads.read_input(resolved, branch)) == 40
    publish(branch, resolved, 12, tmp_path / "branch.duckdb")
    assert binding_reads.iceberg_place(resolved, branch).identifier == "feature_x__sales.widgets_v1"
    assert len(binding_reads.read_input(resolved, branch)) == 12
    # Not deferring, with nothing built: a clear failure, never prod's rows.
    alone = env_of(repo_root, tmp_path, "feature_y", MESH_DEFER="none")
    with pytest.raises(dg.Failure, match=r"no Iceberg snapshot in feature_y__sales\.widgets_v1"):
        binding_reads.read_input(resolved, alone)


def test_via_iceberg_is_refused_for_a_sql_consumer_and_for_a_port_without_an_iceberg_binding(
    tmp_path: Path,
) -> None:
    sound = resolved_input(tmp_path, {"kind": "iceberg"})
    assert via_of(sound.declared) == "iceberg"
    assert via_issues(sound.consumer, sound, "input_ports[0]") == []
    sql = resolved_input(tmp_path, {"kind": "iceberg"}, kind="sql")
    [issue] = via_issues(sql.consumer, sql, "input_ports[0]")
    assert (issue.field, issue.severity) == ("input_ports[0].via", "error")
    assert "only a Python product" in issue.message and "remove `via`" in issue.fix
    unbound = resolved_input(tmp_path, {"kind": "parquet"})
    [issue] = via_issues(unbound.consumer, unbound, "input_ports[0]")
    assert "declares no iceberg binding" in issue.message and "kind: iceberg" in issue.fix
    # The default reads the table: nothing to check.
    table = ResolvedInput(sound.consumer, sound.consumer.spec.product_inputs[0], sound.producer, sound.port)
    assert via_of(table.declared) == "table" and via_issues(table.consumer, table, "input_ports[0]") == []
