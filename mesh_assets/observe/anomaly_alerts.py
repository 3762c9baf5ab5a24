"""Anomaly alerts: a port's owners hear once when one of its learned monitors finds an anomaly.

`mesh_monitor_alerts` (every minute, running by default) reads the latest result of every monitor of
every port (`anomalies.latest_monitors`, one query) and compares the anomalous ones with the episodes
open in its cursor. A monitor that turns anomalous opens an *episode* and queues one alert for its port
(all the port's newly anomalous monitors in one message), routed like SLO alerts (`alerts.route`: the
product's support channel, or `MESH_ALERT_WEBHOOK_URL`). While the monitor stays anomalous, publish after
publish, nothing more is sent; once its latest result is no longer an anomaly the episode closes, and a
later anomaly is a new episode with a new alert.

State and restarts, as the sunset alerts: the cursor is small JSON holding the open episodes and the
outbox of undelivered alerts, retried on every tick (`alerts.deliver`); a crash between delivering and
saving the cursor re-sends that tick's alerts with the same stable `id`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from mesh_assets.infra.environment import env_name
from mesh_assets.observe import alerts
from mesh_assets.observe.anomalies import MonitorState, latest_monitors
from mesh_assets.observe.cursor import VersionedCursor
from mesh_assets.product.registry import Registry

SENSOR = "mesh_monitor_alerts"
KIND = "anomaly"


@dataclass
class AnomalyCursor(VersionedCursor):
    """Open episodes (`<port>|<monitor>` to the run that opened it) and the undelivered outbox."""

    VERSION = 1
    open: dict[str, str] = field(default_factory=dict)
    outbox: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> AnomalyCursor:
        """The cursor stored as `{"v": 1, "open": {...}, "out": [...]}`."""
        return cls(open=dict(data.get("open", {})), outbox=list(data.get("out", [])))

    def to_payload(self) -> dict[str, Any]:
        """The open episodes and the outbox as `out`."""
        return {"open": self.open, "out": self.outbox}


def new_episodes(
    registry: Registry, states: list[MonitorState], open_episodes: Mapping[str, str], now: float
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """One alert per port for its monitors that turned anomalous, and the episodes open after this tick."""
    anomalous = {f"{s.port}|{s.monitor}": s for s in states if s.status == "anomaly"}
    still_open = {key: open_episodes.get(key) or (s.run_id or "") for key, s in anomalous.items()}
    by_port: dict[str, list[MonitorState]] = {}
    for key, state in anomalous.items():
        if key not in open_episodes:
            by_port.setdefault(state.port, []).append(state)
    notes = []
    for port, found in sorted(by_port.items()):
        spec = registry.products[found[0].product].spec
        notes.append(
            {
                "id": f"anomaly:{port}:{found[0].run_id}:{','.join(sorted(s.monitor for s in found))}",
                "kind": KIND,
                "port": port,
                "product": spec.key,
                "port_version": port.rsplit("/", 1)[-1],
                "title": spec.title,
                "owner": {"team": spec.owner.team, "steward": spec.owner.steward},
                "support": {"kind": spec.support.kind, "channel": spec.support.channel},
                "consumers": [],
                "anomalies": [
                    {"monitor": s.monitor, "reason": s.reason, "bucket": s.bucket, "value": s.value}
                    for s in sorted(found, key=lambda s: s.monitor)
                ],
                "at": now,
                "attempts": 0,
            }
        )
    return notes, still_open


def render(note: Mapping[str, Any], routing: alerts.AlertRouting) -> str:
    """The text of an anomaly alert."""
    lines = [
        f"\U0001f7e0 Anomaly: {note['product']} {note['port_version']} ({note['title']}): "
        f"{len(note['anomalies'])} monitor(s) outside their learned bounds"
    ]
    for anomaly in note["anomalies"]:
        day = f" on {anomaly['bucket']}" if anomaly.get("bucket") else ""
        lines.append(f"\u2022 {anomaly['monitor']}{day}: {anomaly['reason']}")
    lines.append(
        f"Owner: team {note['owner']['team']}, steward {note['owner']['steward']}\n"
        f"Asset: {routing.asset_url(note['port'])} (see `mesh monitor`; tune under `monitors:`)"
    )
    return "\n".join(lines)


def anomaly_tick(
    context: dg.SensorEvaluationContext, registry: Registry, routing: alerts.AlertRouting | None = None
) -> dg.SensorResult:
    """One evaluation: queue alerts for new episodes, deliver the outbox, remember both in the cursor."""
    routing = routing or alerts.AlertRouting.from_env()
    cursor = AnomalyCursor.load(context.cursor, context.log, "anomaly alert")
    states = latest_monitors(context.instance, registry)
    notes, still_open = new_episodes(registry, states, cursor.open, time.time())
    notes = [{**note, "environment": env_name()} for note in notes]
    delivery = alerts.deliver([*cursor.outbox, *notes], routing, context.log)
    summary = (
        f"{len(still_open)} open anomaly episode(s), {len(notes)} new alert(s), "
        f"{len(delivery.delivered)} delivered, {len(delivery.pending)} pending"
    )
    return dg.SensorResult(cursor=AnomalyCursor(still_open, delivery.pending).dumps(), skip_reason=summary)


def anomaly_sensor(registry: Registry) -> dg.SensorDefinition:
    """The anomaly alert sensor over every port with monitors, running by default."""

    @dg.sensor(
        name=SENSOR,
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=60,
        description="Alerts a port's owners once per anomaly episode of its learned monitors "
        "(monitor_* checks): when a monitor turns anomalous, not on every publish it stays so.",
    )
    def mesh_monitor_alerts(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        return anomaly_tick(context, registry)

    return mesh_monitor_alerts


alerts.RENDERERS[KIND] = render
