"""End to end: the whole example mesh built for real (DuckDB file, dbt-duckdb, Dagster instance)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from mesh_assets.observe.anomalies import latest_monitors
from mesh_assets.product.registry import load_registry
from mesh_assets.run.results import RunStatus
from mesh_assets.run.runner import plan, run_mesh

pytestmark = pytest.mark.slow

HANG_S = 1800
"""How long a child process may take before the test calls it hung: a hang guard, not a timing window."""


def port_tables(root: Path) -> list[str]:
    registry = load_registry(root)
    return sorted(
        f"{p.spec.domain}.{p.spec.name}_v{port.major}"
        for p in registry.products.values()
        for port in p.spec.output_ports
    )


def snapshot(database: Path, tables: list[str]) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent content hash of each table."""
    with duckdb.connect(str(database), read_only=True) as con:
        return {
            table: con.execute(
                f"SELECT COUNT(*), COALESCE(SUM(HASH(t)), 0)::VARCHAR FROM {table} AS t"
            ).fetchone()
            for table in tables
        }


def test_the_whole_mesh_builds_every_port_with_rows_and_a_rerun_is_idempotent(
    isolated: Path, repo_root: Path
) -> None:
    results = run_mesh()
    assert [r.status for r in results] == [RunStatus.OK] * len(results), [
        (r.product, r.error) for r in results
    ]
    assert {r.product for r in results} == set(load_registry(repo_root).products)
    assert all(r.blocking_failed == 0 and r.checks_passed >= 3 for r in results)
    tables = port_tables(repo_root)
    first = snapshot(isolated / "mesh.duckdb", tables)
    assert all(rows > 0 for rows, _ in first.values()), first

    rerun = run_mesh()
    assert all(r.status == RunStatus.OK for r in rerun)
    assert snapshot(isolated / "mesh.duckdb", tables) == first
    # The same data published again is normal: no learned monitor cries wolf at cold start (a day still
    # filling, an update-time day or a month just begun is never judged against settled ones).
    with dg.DagsterInstance.get() as instance:
        monitors = latest_monitors(instance, load_registry(repo_root))
        # Each publish carries its port's column lineage where Dagster's UI reads it: the materialization.
        event = instance.get_latest_materialization_event(
            dg.AssetKey(["commercial_analytics", "customer_360", "v1"])
        )
    assert monitors and not [(m.port, m.monitor, m.reason) for m in monitors if m.status == "anomaly"]
    assert event is not None and event.asset_materialization is not None
    lineage = event.asset_materialization.metadata["dagster/column_lineage"].value
    assert (
        dg.TableColumnDep(
            asset_key=dg.AssetKey(["customers", "customer_master", "v1"]), column_name="country_code"
        )
        in lineage.deps_by_column["country_code"]
    )

    with duckdb.connect(str(isolated / "mesh.duckdb"), read_only=True) as con:
        overview = con.execute("SELECT COUNT(*) FROM governance.product_overview WHERE rows > 0").fetchone()[
            0
        ]
        schemas = {
            row[0]
            for row in con.execute("SELECT DISTINCT table_schema FROM information_schema.tables").fetchall()
        }
    assert overview == len(tables)
    # Ports and internals live apart: a reader tells them by their schema.
    assert {"customers", "customers_internal", "sales", "sales_internal"} <= schemas
    # Every other build output went to the test's data folder (MESH_DATA_DIR), none into the repository.
    data = isolated / "data"
    assert (data / "catalog" / "index.html").exists() and (data / "scorecard.html").exists()
    assert list((data / "dbt" / "sales").glob("*/run_results.json"))


def test_plan_orders_producers_before_consumers_across_domains(repo_root: Path) -> None:
    from mesh_assets.product.registry import topological_order

    registry = load_registry(repo_root)
    order = [p.key for p in topological_order(registry)]
    for product in registry.products.values():
        for declared in product.spec.product_inputs:
            assert order.index(declared.product) < order.index(product.key)
    stages = plan(topological_order(registry))
    assert [s.domain for s in stages].count("sales") == 1


def test_consumers_are_skipped_when_their_producer_fails_its_blocking_checks(
    mesh_copy: Path, isolated: Path
) -> None:
    transform = mesh_copy / "domains/customers/products/customer_master/transform.py"
    transform.write_text(
        transform.read_text().replace(
            ').sort_values("customer_id", ignore_index=True)',
            ').sort_values("customer_id", ignore_index=True).pipe(lambda d: pd.concat([d, d.head(2)]))',
        )
    )
    results = {r.product: r for r in run_mesh(domains=["customers", "diagnostics"])}
    assert results["customers.customer_master"].status == RunStatus.FAILED
    assert "v1" in results["customers.customer_master"].error
    assert results["diagnostics.instrument_runs"].status == RunStatus.SKIPPED
    assert "customers.customer_master" in results["diagnostics.instrument_runs"].error


def test_two_domains_run_at_once_on_one_duckdb_file_without_lock_errors(
    isolated: Path, repo_root: Path
) -> None:
    env = {**os.environ}
    logs = {}
    procs = {}
    for domain in ["sales", "customers"]:
        logs[domain] = isolated / f"{domain}.log"
        procs[domain] = subprocess.Popen(
            [sys.executable, "-m", "mesh_assets.cli.app", "run", "--domain", domain],
            cwd=repo_root,
            env=env,
            stdout=logs[domain].open("w"),
            stderr=subprocess.STDOUT,
        )
    codes = {domain: proc.wait(timeout=HANG_S) for domain, proc in procs.items()}
    assert codes == {"sales": 0, "customers": 0}, {d: logs[d].read_text()[-3000:] for d in logs}
    for text in (log.read_text() for log in logs.values()):
        assert "Could not set lock" not in text
    tables = ["customers.customer_master_v1", "sales.orders_v1", "sales.sales_v1", "sales.sales_v2"]
    assert all(rows > 0 for rows, _ in snapshot(isolated / "mesh.duckdb", tables).values())


def test_several_processes_can_open_a_fresh_dagster_instance_at_once(tmp_path: Path, repo_root: Path) -> None:
    home = tmp_path / "fresh_home"
    probe = (
        "from mesh_assets.run.runner import ensure_instance; from mesh_assets.infra import environment; "
        "ensure_instance(environment.resolve())"
    )
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-W", "ignore", "-c", probe],
            cwd=repo_root,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    errors = [proc.communicate(timeout=HANG_S)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], errors
    assert (home / "dagster.yaml").exists()
