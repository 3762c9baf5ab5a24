"""Sunset alerts: the owners of every product reading a deprecated port hear of its sunset in time.

`mesh_sunset_alerts` (hourly, running by default) looks at the calendar (`date.today()` when it ticks,
never when the location loaded) and, for each deprecated port and each consumer reading it, sends one
alert to the *consumer's* owners through the platform's alert routing (`alerts.route`: the consumer's
support channel, or `MESH_ALERT_WEBHOOK_URL`):

- 30, 7 and 1 days before the sunset, once each (`lifecycle.NOTICE_DAYS`); a sensor that was stopped
  sends the step reached, not every step it missed;
- after the sunset, while the port is overdue for retirement and still read, once a week
  (`lifecycle.OVERDUE_REPEAT_DAYS`).

Nothing else changes with the date: the port stays served and built (see `mesh_assets.product.lifecycle`).

State and restarts, as the SLO monitor: the cursor is small JSON holding, per port and consumer, the
last step queued (`<sunset>:<step>`, so a moved sunset starts over) and the outbox of undelivered
alerts. A step is recorded when its alert enters the outbox, and the outbox is retried on every tick
(`alerts.deliver`), so a restart neither repeats nor loses one; a crash between delivering and saving the
cursor re-sends that tick's alerts with the same stable `id`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import dagster as dg

from mesh_assets.observe import alerts
from mesh_assets.observe.step_alerts import step_tick
from mesh_assets.product import addressing, lifecycle
from mesh_assets.product.registry import Registry

SENSOR = "mesh_sunset_alerts"
KINDS = frozenset({"sunset", "overdue"})
"""Notification kinds this module renders (`alerts.render` hands them over)."""


@dataclass(frozen=True)
class SunsetTemplates:
    """Message templates of sunset alerts (`str.format` fields: see `render`). Configured once."""

    sunset_header: str = (
        "\u23f3 Sunset {when}: {producer} {port} ({version}), which {consumer} reads, is served until "
        "{sunset}"
    )
    overdue_header: str = (
        "\U0001f534 Overdue for retirement: {producer} {port} ({version}) passed its sunset {sunset} "
        "({when}) and {consumer} still reads it"
    )
    body: str = (
        "Move {consumer} to v{replacement}: in its dataproduct.yaml, input_ports: product: {producer}, "
        "version: '^{replacement}'. Why: {reason}"
    )
    overdue_note: str = (
        "The port is still served and built, but its owner may retire it in any release; this alert "
        "repeats weekly until {consumer} moves."
    )
    footer: str = (
        "Consumer owner: team {owner_team}, steward {steward}\n"
        "Producer owner: team {producer_team}, steward {producer_steward}\nAsset: {asset_url}"
    )


TEMPLATES = SunsetTemplates()


def due(
    registry: Registry, today: date, sent: Mapping[str, str]
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The alerts due on `today` that `sent` does not hold yet, and the steps to remember.

    Only pairs of a deprecated port and a consumer still reading it are remembered, so a consumer that
    moved, or a port retired or removed, drops out of the cursor.
    """
    notes: list[dict[str, Any]] = []
    remembered: dict[str, str] = {}
    now = time.time()
    for key in sorted(registry.products):
        producer = registry.products[key]
        spec = producer.spec
        readers = registry.consumers_of(key)
        for port in spec.output_ports:
            sunset = lifecycle.sunset_of(spec, port)
            stage = lifecycle.notice_stage(sunset, today) if sunset is not None else None
            if stage is None or port.deprecation is None:
                continue
            asset = addressing.port_key(spec.domain, spec.name, port.major).to_user_string()
            for reader in sorted(
                {r.consumer.key: r for r in readers if r.port.major == port.major}.values(),
                key=lambda r: r.consumer.key,
            ):
                pair, step = f"{asset}|{reader.consumer.key}", f"{sunset.isoformat()}:{stage}"
                remembered[pair] = step
                if sent.get(pair) == step:
                    continue
                consumer = reader.consumer.spec
                notes.append(
                    {
                        "id": f"sunset:{asset}:{reader.consumer.key}:{step}",
                        "kind": lifecycle.OVERDUE if stage.startswith(lifecycle.OVERDUE) else "sunset",
                        "stage": stage,
                        "port": asset,
                        "product": key,
                        "port_version": f"v{port.major}",
                        "version": port.version,
                        "title": spec.title,
                        "sunset": sunset.isoformat(),
                        "days": (sunset - today).days,
                        "replacement": port.deprecation.replacement,
                        "reason": port.deprecation.reason,
                        "consumer": reader.consumer.key,
                        # Routed to the consumer's owners: they are the ones who must move.
                        "owner": {"team": consumer.owner.team, "steward": consumer.owner.steward},
                        "support": {"kind": consumer.support.kind, "channel": consumer.support.channel},
                        "producer_owner": {"team": spec.owner.team, "steward": spec.owner.steward},
                        "consumers": [reader.consumer.key],
                        "at": now,
                        "attempts": 0,
                    }
                )
    return notes, remembered


def render(
    note: Mapping[str, Any], routing: alerts.AlertRouting, templates: SunsetTemplates = TEMPLATES
) -> str:
    """The text of a sunset or overdue alert."""
    fields = {
        "producer": note["product"],
        "port": note["port_version"],
        "version": note["version"],
        "consumer": note["consumer"],
        "sunset": note["sunset"],
        "when": lifecycle.in_days(int(note["days"])),
        "replacement": note["replacement"],
        "reason": note["reason"],
        "owner_team": note["owner"]["team"],
        "steward": note["owner"]["steward"],
        "producer_team": note["producer_owner"]["team"],
        "producer_steward": note["producer_owner"]["steward"],
        "asset_url": routing.asset_url(note["port"]),
    }
    overdue = note["kind"] == lifecycle.OVERDUE
    lines = [(templates.overdue_header if overdue else templates.sunset_header).format(**fields)]
    lines.append(templates.body.format(**fields))
    if overdue:
        lines.append(templates.overdue_note.format(**fields))
    lines.append(templates.footer.format(**fields))
    return "\n".join(lines)


def sunset_tick(
    context: dg.SensorEvaluationContext,
    registry: Registry,
    routing: alerts.AlertRouting | None = None,
    today: date | None = None,
) -> dg.SensorResult:
    """One evaluation: queue the alerts due today, deliver the outbox, remember both in the cursor."""
    today = today or date.today()
    return step_tick(
        context,
        "sunset",
        today.isoformat(),
        lambda sent: due(registry, today, sent),
        routing or alerts.AlertRouting.from_env(),
    )


def sunset_sensor(registry: Registry) -> dg.SensorDefinition:
    """The sunset alert sensor over every deprecated port of the mesh, running by default."""

    @dg.sensor(
        name=SENSOR,
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=3600,
        description="Alerts the owners of each product reading a deprecated port 30, 7 and 1 days before "
        "its sunset, then weekly while it is overdue for retirement (still served). The date alone never "
        "stops a port being served or built.",
    )
    def mesh_sunset_alerts(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        return sunset_tick(context, registry)

    return mesh_sunset_alerts


alerts.RENDERERS.update(dict.fromkeys(KINDS, render))
