"""The SLO sensors against a real Dagster instance and a real HTTP receiver on loopback.

Every test gets its own DAGSTER_HOME (the repository's `dagster.yaml`, SQLite storage) and the example
mesh's specs; alerts are routed to a `ThreadingHTTPServer` on 127.0.0.1 through the platform-wide
override `MESH_ALERT_WEBHOOK_URL` (the shipped specs name Slack channels).

How port events are produced, from the most to the least end-to-end:

- publishes and blocking-check failures of `customers.customer_master` v1 by materializing the real
  customers code location on a private DuckDB file, with the shipped transform (good run) or wrapped to
  duplicate keys (the real audit fails `primary_key_unique_not_null` and the step fails, not publishing);
- failed and successful publishes of `sales.orders` v1 by `dg.materialize` of a stub asset with the
  port's key and a blocking check, failing the step the way `publish.py` does (a real run, its events
  written by Dagster);
- runless check evaluations and freshness state changes with `instance.report_runless_asset_event`,
  the very call Dagster's freshness daemon makes (`FreshnessStateChange`).

`Daemon` plays `dagster-daemon`: it evaluates a sensor with the persisted cursor, writes the asset events
the sensor returns (as the sensor daemon does after each tick) and keeps the new cursor. A restart is a
new `DagsterInstance` object on the same DAGSTER_HOME and the in-memory state forgotten, as in a new
process.
"""

from __future__ import annotations

import shutil
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest
from alert_harness import (
    ALERT_TIMEOUT_S,
    DAGSTER_URL,
    Daemon,
    Receiver,
    slo_definitions,
)
from stub_ports import stub_port

from mesh_assets.assets.location import build_domain
from mesh_assets.infra import environment

REPO = Path(__file__).resolve().parents[2]
CUSTOMERS = dg.AssetKey(["customers", "customer_master", "v1"])
ORDERS = dg.AssetKey(["sales", "orders", "v1"])
SALES_V2 = dg.AssetKey(["sales", "sales", "v2"])
TRANSFORM = Path("domains/customers/products/customer_master/transform.py")


@pytest.fixture
def monitor(home: Path) -> Iterator[Daemon]:
    daemon = Daemon(slo_definitions(), "mesh_slo_monitor")
    yield daemon
    daemon.instance.dispose()


# --- producing port events ----------------------------------------------------------------------------------


def materialize_customers() -> dg.ExecuteInProcessResult:
    """One run of the customers code location on the test's instance and DuckDB file."""
    with dg.DagsterInstance.get() as instance:
        return (
            build_domain("customers")
            .resolve_implicit_global_asset_job_def()
            .execute_in_process(instance=instance, raise_on_error=False)
        )


def break_transform(root: Path) -> None:
    """Make the copy's transform duplicate three keys (the audit blocks the publish)."""
    path = (root / TRANSFORM).resolve()
    shutil.copy(path, path.with_suffix(".shipped"))
    path.write_text(
        path.read_text()
        + textwrap.dedent(
            """

            _shipped_customer_master_v1 = customer_master_v1


            def customer_master_v1(inputs):
                df = _shipped_customer_master_v1(inputs)
                return pd.concat([df, df.head(3)], ignore_index=True)
            """
        )
    )
    _forget_module(path)


def restore_transform(root: Path) -> None:
    path = (root / TRANSFORM).resolve()
    shutil.copy(path.with_suffix(".shipped"), path)
    _forget_module(path)


def _forget_module(path: Path) -> None:
    # Runs execute in this process: a module imported by an earlier run must be re-read from disk.
    for name, module in list(sys.modules.items()):
        if getattr(module, "__file__", None) and Path(module.__file__).resolve() == path:
            del sys.modules[name]


def publish_stub(key: dg.AssetKey, fail: bool = False, rows: int = 1000) -> None:
    with dg.DagsterInstance.get() as instance:
        result = dg.materialize([stub_port(key, fail, rows)], instance=instance, raise_on_error=False)
    assert result.success is not fail


def report_freshness(daemon: Daemon, key: dg.AssetKey, previous: str, new: str) -> None:
    """Record a freshness state change exactly as Dagster's freshness daemon does."""
    from dagster._core.definitions.freshness import FreshnessState, FreshnessStateChange

    daemon.instance.report_runless_asset_event(
        FreshnessStateChange(
            key=key,
            previous_state=FreshnessState(previous),
            new_state=FreshnessState(new),
            state_change_timestamp=time.time(),
        )
    )


def fail_check(daemon: Daemon, key: dg.AssetKey, passed: bool = False) -> None:
    """A runless result of a port's blocking check (e.g. reported by an external auditor)."""
    daemon.instance.report_runless_asset_event(
        dg.AssetCheckEvaluation(
            asset_key=key,
            check_name="primary_key_unique_not_null",
            passed=passed,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"observed": "3 duplicate, 0 null" if not passed else "0 duplicate, 0 null"},
        )
    )


def changes(body: dict[str, Any]) -> dict[str, str]:
    """SLO condition -> breach/recovery of one alert."""
    return {c["slo"]: c["state"] for c in body["changes"]}


# --- tests --------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_blocked_publish_alerts_the_owners_once_and_its_recovery_once(
    mesh_copy: Path, monitor: Daemon, receiver: Receiver
) -> None:
    break_transform(mesh_copy)
    assert not materialize_customers().success
    monitor.tick()  # the first tick ever: it counts the window's history, this failure included

    [alert] = receiver.take()
    assert alert["kind"] == "breach"
    assert alert["port"] == "customers/customer_master/v1"
    breached = changes(alert)
    assert {"availability", "availability budget", "quality", "quality budget"} <= set(breached)
    assert set(breached.values()) == {"breach"}
    text = alert["text"]
    assert "customers.customer_master v1" in text
    assert "primary_key_unique_not_null" in text  # what failed, with the observed value
    assert "3 duplicate" in text
    assert "team customer_data" in text and alert["owner"]["steward"] in text
    assert f"{DAGSTER_URL}/assets/customers/customer_master/v1" in text
    assert alert["asset_url"] == f"{DAGSTER_URL}/assets/customers/customer_master/v1"
    # Consumers reading v1 are named so the owner knows who is affected.
    assert alert["consumers"] == ["commercial_analytics.customer_360", "diagnostics.instrument_runs"]
    assert "commercial_analytics.customer_360" in text

    monitor.tick()
    monitor.tick()
    assert receiver.take() == []  # same state: no repeat

    restore_transform(mesh_copy)
    assert materialize_customers().success
    monitor.tick()
    [recovery] = receiver.take()
    assert recovery["kind"] == "recovery"
    # The live conditions recovered; the budgets stay spent over the 30-day window.
    assert changes(recovery) == {"availability": "recovery", "quality": "recovery"}
    assert "recovered" in recovery["text"]
    monitor.tick()
    assert receiver.take() == []
    assert {"availability budget", "quality budget"} == set(
        monitor.state["open"]["customers/customer_master/v1"]
    )


def test_a_restart_neither_repeats_nor_loses_an_alert(monitor: Daemon, receiver: Receiver) -> None:
    publish_stub(ORDERS)
    monitor.tick()
    publish_stub(ORDERS, fail=True)
    monitor.tick()
    [breach] = receiver.take()
    assert changes(breach)["availability"] == "breach"

    monitor.restart()
    monitor.tick()
    assert receiver.take() == []  # the open breach is in the cursor: not told twice

    # The port recovers while the daemon is down; the restarted sensor reloads its state from the
    # recorded SLI observations and applies what happened since the cursor.
    monitor.restart()
    publish_stub(ORDERS, rows=1100)
    monitor.tick()
    [recovery] = receiver.take()
    assert changes(recovery) == {"availability": "recovery", "quality": "recovery"}
    monitor.restart()
    monitor.tick()
    assert receiver.take() == []

    # The SLIs survived the restarts: 2 good publishes out of 3, checks 2 of 3.
    observation = monitor.instance.fetch_observations(ORDERS, limit=1).records[0]
    metadata = observation.event_log_entry.asset_observation.metadata
    assert metadata["mesh/sli/availability"].value == pytest.approx(2 / 3)
    assert metadata["mesh/sli/quality"].value == pytest.approx(2 / 3)
    assert metadata["mesh/sli/rows"].value == 1100


def test_a_failing_receiver_is_retried_and_the_alert_delivered_once_it_recovers(
    monitor: Daemon, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monitor.tick()
    receiver.mode = "fail"
    fail_check(monitor, ORDERS)
    fail_check(monitor, SALES_V2)

    monitor.tick()  # does not raise
    assert receiver.attempts == 3  # one alert tried 3 times; the second waits behind it (same receiver)
    assert [n["port"] for n in monitor.state["out"]] == ["sales/orders/v1", "sales/sales/v2"]
    assert monitor.state["out"][0]["attempts"] == 1

    receiver.mode = "slow"  # holds every request unanswered until released
    monkeypatch.setenv("MESH_ALERT_TIMEOUT_S", "0.3")  # safe: nothing is answered before the release
    monitor.tick()
    # The tick came back while the receiver still held every request: the client gave up on its own
    # timeout instead of waiting for an answer, and kept both alerts.
    assert receiver.answered_late == 0
    assert receiver.attempts > 3
    assert receiver.bodies == []
    assert len(monitor.state["out"]) == 2
    receiver.release.set()
    monkeypatch.setenv("MESH_ALERT_TIMEOUT_S", ALERT_TIMEOUT_S)

    # A new process must not lose the outbox either.
    monitor.restart()
    receiver.mode = "ok"
    monitor.tick()
    delivered = receiver.take()
    assert [b["port"] for b in delivered] == ["sales/orders/v1", "sales/sales/v2"]
    assert all(changes(b)["quality"] == "breach" for b in delivered)
    assert monitor.state["out"] == []
    monitor.tick()
    assert receiver.take() == []  # delivered once


def test_a_freshness_fail_from_the_daemon_alerts_once_and_recovers(
    monitor: Daemon, receiver: Receiver
) -> None:
    publish_stub(ORDERS)
    report_freshness(monitor, ORDERS, "UNKNOWN", "PASS")
    monitor.tick()
    assert receiver.take() == []

    report_freshness(monitor, ORDERS, "PASS", "WARN")
    monitor.tick()
    assert receiver.take() == []  # WARN is still inside the promise

    report_freshness(monitor, ORDERS, "WARN", "FAIL")
    monitor.tick()
    [alert] = receiver.take()
    assert changes(alert)["freshness"] == "breach"
    assert "FAIL" in alert["text"] and "max age 24h" in alert["text"]
    monitor.tick()
    assert receiver.take() == []

    report_freshness(monitor, ORDERS, "FAIL", "PASS")
    monitor.tick()
    [recovery] = receiver.take()
    assert changes(recovery)["freshness"] == "recovery"


def test_the_data_time_sensor_records_the_newest_event_time_and_freshness_alerts_quote_it(
    home: Path, receiver: Receiver
) -> None:
    database = environment.resolve().duckdb_path
    with duckdb.connect(str(database)) as connection:
        connection.execute("CREATE SCHEMA customers")
        connection.execute(
            "CREATE TABLE customers.customer_master_v1 AS "
            "SELECT TIMESTAMP '2026-01-02 03:04:05' AS updated_at"
        )
    defs = slo_definitions()
    data_time = Daemon(defs, "mesh_slo_data_time")
    data_time.instance.report_runless_asset_event(
        dg.AssetMaterialization(asset_key=CUSTOMERS, metadata={"dagster/row_count": 100})
    )
    result = data_time.tick()
    [observation] = result.asset_events
    assert observation.asset_key == CUSTOMERS
    assert observation.metadata["mesh/data_time"].value == 1767323045.0  # 2026-01-02T03:04:05Z
    assert observation.metadata["mesh/data_lag_hours"].value > 0
    assert data_time.tick().asset_events == []  # nothing published since

    monitor = Daemon(defs, "mesh_slo_monitor")
    monitor.tick()
    assert receiver.take() == []
    report_freshness(monitor, CUSTOMERS, "PASS", "FAIL")
    monitor.tick()
    [alert] = receiver.take()
    assert changes(alert)["freshness"] == "breach"
    assert "newest updated_at is" in alert["text"]
    data_time.instance.dispose()
    monitor.instance.dispose()
