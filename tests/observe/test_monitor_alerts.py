"""Anomalies reach the owners once per episode, `mesh monitor` lists every monitor's latest result, and
the catalog's reader lists a port's recent anomalies: a real port published on a private DuckDB file and
Dagster instance, the alert sensor ticked as the daemon would, alerts received by a real HTTP receiver.
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest
from monitor_data import FIRST, null_spike, orders, product, publish
from typer.testing import CliRunner

from mesh_assets.observe.anomalies import latest_monitors, recent_anomalies
from mesh_assets.observe.anomaly_alerts import anomaly_tick
from mesh_assets.product.registry import Product, Registry


class Sensor:
    """The anomaly alert sensor, ticked with its cursor carried over as the daemon does."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.cursor: str | None = None

    def tick(self) -> dg.SensorResult:
        with dg.DagsterInstance.get() as instance:
            result = anomaly_tick(
                dg.build_sensor_context(instance=instance, cursor=self.cursor), self.registry
            )
        self.cursor = result.cursor
        return result


@pytest.fixture
def orders_product(isolated: Path, home: Path) -> Product:
    return product(isolated)


@pytest.fixture
def registry(orders_product: Product, isolated: Path) -> Registry:
    return Registry(root=isolated, products={orders_product.key: orders_product}, domains=["sales"])


def test_an_anomaly_alerts_the_owners_once_per_episode(
    orders_product: Product, registry: Registry, receiver
) -> None:
    sensor = Sensor(registry)
    assert publish(orders_product, orders(FIRST, 60, newest=null_spike)).success

    sensor.tick()
    alerts = receiver.take()
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert["kind"] == "anomaly" and alert["port"] == "sales/orders/v1"
    assert [a["monitor"] for a in alert["anomalies"]] == ["monitor_null_rate__channel"]
    assert "monitor_null_rate__channel on 2026-10-30: " in alert["text"]
    assert "above the learned bound" in alert["text"]
    assert "steward ana.lopez@example.com" in alert["text"]

    # Still anomalous on the next publish: the same episode, no new alert.
    assert publish(orders_product, orders(FIRST, 61, newest=null_spike)).success
    sensor.tick()
    assert receiver.take() == []

    # Back to normal closes the episode; the next anomaly is a new one.
    assert publish(orders_product, orders(FIRST, 62)).success
    sensor.tick()
    assert receiver.take() == []
    assert json.loads(sensor.cursor or "{}")["open"] == {}
    assert publish(orders_product, orders(FIRST, 63, newest=null_spike)).success
    sensor.tick()
    assert [a["anomalies"][0]["bucket"] for a in receiver.take()] == ["2026-11-02"]

    # The catalog's reader: the port's recent anomalies, newest first.
    with dg.DagsterInstance.get() as instance:
        recent = recent_anomalies(instance, orders_product.spec, orders_product.spec.output_ports[0])
    assert [(s.monitor, s.bucket) for s in recent] == [
        ("monitor_null_rate__channel", "2026-11-02"),
        ("monitor_null_rate__channel", "2026-10-31"),
        ("monitor_null_rate__channel", "2026-10-30"),
    ]


def test_mesh_monitor_lists_every_monitor_with_status_value_and_bounds(
    orders_product: Product, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mesh_assets.cli.app import app

    monkeypatch.setattr("mesh_assets.product.registry.load_registry", lambda root: registry)
    with dg.DagsterInstance.get() as instance:
        assert {s.status for s in latest_monitors(instance, registry)} == {"not yet run"}
    assert publish(orders_product, orders(FIRST, 60, newest=null_spike)).success

    listed = CliRunner().invoke(app, ["monitor", "--json"])

    assert listed.exit_code == 0, listed.output
    states = {s["monitor"]: s for s in json.loads(listed.output)["monitors"]}
    assert len(states) == 16
    spike = states["monitor_null_rate__channel"]
    assert spike["status"] == "anomaly" and spike["port"] == "sales/orders/v1"
    assert spike["value"] > spike["upper"] > spike["lower"] >= 0
    assert spike["training"] >= 14 and spike["bucket"] == "2026-10-30"
    assert states["monitor_freshness"]["status"] == "learning"
    assert {s["status"] for s in states.values()} <= {"ok", "anomaly", "learning"}

    strict = CliRunner().invoke(app, ["monitor", "--strict", "--anomalies"])
    assert strict.exit_code == 1
    assert "null_rate__channel" in strict.output and "1 anomaly(ies) in 16 monitor(s)" in strict.output
