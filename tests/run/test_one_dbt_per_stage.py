"""A domain's stage is one dbt process: a consumer built in the same dbt project and domain as its producer
reads the producer's candidate in that one invocation, and publishes only once the producer's port passed
its audit and published (write-audit-publish without a publish between two dbt invocations)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pytest
from conftest import TEST_SCALE
from spec_edits import edit_spec

from mesh_assets.run.runner import run_mesh
from mesh_assets.selfservice.generate import AS_OF, generate_sources

pytestmark = pytest.mark.slow

PORTS = ["sales.orders_v1", "sales.sales_v1", "sales.sales_v2"]


def contents(database: Path, relations: list[str]) -> dict[str, tuple[int, int]]:
    """Rows and an order-independent checksum of each relation."""
    with duckdb.connect(str(database), read_only=True) as con:
        return {r: con.execute(f"SELECT COUNT(*), SUM(hash(t)) FROM {r} t").fetchone() for r in relations}


def sales_from_the_published_orders(root: Path) -> str:
    """The sales v2 model's SQL reading the *published* orders port, as a run without orders would."""
    sql = (root / "dbt_projects/sales/models/sales/sales_v2.sql").read_text()
    sql = sql.replace("{{ source('port_sales', 'orders_v1') }}", "sales.orders_v1")
    return sql.replace("{{ ref('fx_rates') }}", "sales_internal.fx_rates")


def dbt_steps_of_the_only_run() -> list[str]:
    with dg.DagsterInstance.get() as instance:
        [run] = instance.get_runs()
        records = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.STEP_START).records
    return [r.event_log_entry.step_key for r in records if r.event_log_entry.step_key.endswith("__dbt")]


def test_the_sales_stage_runs_one_dbt_process_and_publishes_sales_as_if_read_from_the_published_orders(
    mesh_copy: Path, isolated: Path
) -> None:
    results = run_mesh(["sales"])
    assert [r.status for r in results] == ["ok", "ok"], [(r.product, r.error) for r in results]

    assert dbt_steps_of_the_only_run() == ["sales__sales__dbt"]
    invocations = [p.parent for p in (isolated / "data" / "dbt" / "sales").glob("*/run_results.json")]
    assert len(invocations) == 1, invocations
    built = (invocations[0] / "run_results.json").read_text()
    assert '"model.sales.orders_v1"' in built and '"model.sales.sales_v2"' in built

    # sales read orders' candidate; the audit passed and orders published it unchanged, so the published
    # sales is row for row what reading the published orders port gives.
    with duckdb.connect(str(isolated / "mesh.duckdb"), read_only=True) as con:
        recomputed = sales_from_the_published_orders(mesh_copy)
        for left, right in [("sales.sales_v2", f"({recomputed})"), (f"({recomputed})", "sales.sales_v2")]:
            assert con.execute(f"SELECT COUNT(*) FROM (FROM {left} EXCEPT ALL FROM {right})").fetchone() == (
                0,
            )
        assert con.execute("SELECT COUNT(*) FROM sales.sales_v2").fetchone()[0] > 0


def test_when_orders_fails_its_audit_sales_in_the_same_stage_is_not_published_and_keeps_its_last_good_data(
    mesh_copy: Path, isolated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = run_mesh(["sales"])
    assert [r.status for r in first] == ["ok", "ok"], [(r.product, r.error) for r in first]
    database = isolated / "mesh.duckdb"
    last_good = contents(database, PORTS)
    # dbt's table of sales v2 is the batch that was published (same rows, same types) ...
    built = "sales_internal.sales_v2"
    assert contents(database, [built])[built] == last_good["sales.sales_v2"]

    # Other data (so a publish would show), and an orders audit that cannot pass.
    other = tmp_path / "sources_b"
    generate_sources(other, scale=TEST_SCALE, seed=4242, as_of=AS_OF)
    monkeypatch.setenv("MESH_SOURCES_DIR", str(other))
    edit_spec(
        mesh_copy,
        "sales.orders",
        lambda spec: spec["output_ports"][0]["quality"].update(row_count={"min": 1_000_000_000}),
    )
    results = {r.product: r for r in run_mesh(["sales"])}

    assert results["sales.orders"].status == "failed", results["sales.orders"].error
    assert results["sales.sales"].status == "skipped"
    assert "sales.orders" in results["sales.sales"].error
    assert contents(database, PORTS) == last_good
    # ... and now dbt built sales from the new, unaudited orders candidate: only its publish was withheld.
    assert contents(database, [built])[built] != last_good["sales.sales_v2"]


def test_a_run_building_the_orders_model_without_its_port_refuses_to_publish_sales_from_it(
    mesh_copy: Path, isolated: Path
) -> None:
    from mesh_assets.run.runner import QUIET, load_location

    defs = load_location("sales")
    orders_port = dg.AssetKey(["sales", "orders", "v1"])
    picked = [spec.key for spec in defs.resolve_all_asset_specs() if spec.key != orders_port]
    with dg.DagsterInstance.get() as instance:
        outcome = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, asset_selection=picked, raise_on_error=False, run_config=QUIET
        )

    published = {e.asset_key for e in outcome.get_asset_materialization_events()}
    assert dg.AssetKey(["sales", "orders", "internal", "orders_v1"]) in published
    assert not {k for k in published if k.path[:2] == ["sales", "sales"] and k.path[2].startswith("v")}
    failures = [e for e in outcome.all_events if e.is_step_failure and "sales__sales__v" in e.step_key]
    assert len(failures) == 2
    for failure in failures:
        error, said = failure.step_failure_data.error, ""
        while error is not None:
            said, error = said + error.message, error.cause
        assert "read the candidate of sales/orders/v1" in said
