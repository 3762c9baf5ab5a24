"""Access alerts: owners hear of requests waiting for them and of access about to end or due for review.

`mesh_access_alerts` (hourly, running by default) reads the agreements and the calendar (`date.today()`
when it ticks, never when the location loaded) and sends, through the platform's alert routing
(`alerts.route`: the *provider's* support channel, or `MESH_ALERT_WEBHOOK_URL`), because its owners are
the ones who decide:

- **waiting**: a request nobody decided, once it has waited `WAIT_DAYS`, then weekly;
- **expiring**: a person's or service principal's access in force whose `end` is 14, 7 or 1 day(s) away
  (once each), so it can be renewed with a new request before it lapses;
- **reassess**: a product's or team's agreement whose `reassess_by` is 14, 7 or 1 day(s) away, then weekly
  once past it (it stays in force: time alone never breaks a consumer; `mesh access approve` confirms it).

State and restarts as the sunset alerts (`sunset.py`): the cursor holds, per agreement, the last step
queued and the outbox of undelivered alerts, so a restart neither repeats nor loses one.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import date
from typing import Any

import dagster as dg

from mesh_assets.observe import alerts
from mesh_assets.observe.step_alerts import step_tick
from mesh_assets.product import addressing
from mesh_assets.product.agreement import State
from mesh_assets.product.registry import Registry

SENSOR = "mesh_access_alerts"
KINDS = frozenset({"access_waiting", "access_expiring", "access_reassess"})
"""Notification kinds this module renders (`alerts.render` hands them over)."""
WAIT_DAYS = 2
"""A request unanswered this long is brought to its deciders."""
NOTICE_DAYS = (14, 7, 1)
"""Days before an end or reassessment date when the owners are told, once each."""
REPEAT_DAYS = 7


def _stage(days_left: int) -> str | None:
    """The notice step for a date `days_left` away (negative: past it), or None when none is due."""
    if days_left < 0:
        return f"past:{(-days_left - 1) // REPEAT_DAYS}"
    due = [n for n in NOTICE_DAYS if days_left <= n]
    return f"{min(due)}d" if due else None


def due(
    registry: Registry, today: date, sent: Mapping[str, str]
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The access alerts due on `today` that `sent` does not hold yet, and the steps to remember.

    Only agreements with a step due are remembered, so a decided, renewed or revoked one drops out.
    """
    notes: list[dict[str, Any]] = []
    remembered: dict[str, str] = {}
    now = time.time()
    for loaded in sorted(registry.agreements, key=lambda a: a.id):
        agreement, state = loaded.agreement, loaded.state(today)
        producer = registry.products[loaded.producer].spec
        kind, stage, when = None, None, None
        if state == State.REQUESTED:
            waited = (today - agreement.requested_at.date()).days
            if waited >= WAIT_DAYS:
                kind, when = "access_waiting", agreement.requested_at.date()
                stage = f"wait:{(waited - WAIT_DAYS) // REPEAT_DAYS}"
        elif state == State.ACTIVE and agreement.consumer.expires and agreement.end is not None:
            stage = _stage((agreement.end - today).days)
            kind, when = (
                ("access_expiring", agreement.end) if stage and not stage.startswith("past") else (None, None)
            )
        elif state == State.ACTIVE and agreement.reassess_by is not None:
            stage = _stage((agreement.reassess_by - today).days)
            kind, when = ("access_reassess", agreement.reassess_by) if stage else (None, None)
        if kind is None or stage is None or when is None:
            continue
        step = f"{when.isoformat()}:{stage}"
        remembered[loaded.id] = step
        if sent.get(loaded.id) == step:
            continue
        notes.append(
            {
                "id": f"access:{loaded.id}:{step}",
                "kind": kind,
                "agreement": loaded.id,
                "product": loaded.producer,
                "port": addressing.port_key(producer.domain, producer.name, agreement.major).to_user_string(),
                "consumer": str(agreement.consumer),
                "major": agreement.major,
                "purpose": agreement.purpose,
                "date": when.isoformat(),
                "days": (when - today).days,
                "owner": {"team": producer.owner.team, "steward": producer.owner.steward},
                "support": {"kind": producer.support.kind, "channel": producer.support.channel},
                "at": now,
                "attempts": 0,
            }
        )
    return notes, remembered


def render(note: Mapping[str, Any], routing: alerts.AlertRouting) -> str:
    """The text of an access alert: what, since or until when, and the command that settles it."""
    del routing  # the wording needs no link: the command is the action
    days, agreement = int(note["days"]), note["agreement"]
    subject = f"{note['consumer']} on {note['product']} v{note['major']}"
    if note["kind"] == "access_waiting":
        head = f"\u23f3 Access request waiting {-days} day(s): {subject} ({note['purpose']})"
        action = f'Decide: mesh access approve|reject {agreement} --by <you> --reason "..."'
    elif note["kind"] == "access_expiring":
        head = f"\u231b Access ends {note['date']} (in {days} day(s)): {subject}"
        action = "To keep it, the consumer asks again: mesh access request (a new agreement, reviewed)"
    else:
        verb = f"was due {note['date']}" if days < 0 else f"is due {note['date']} (in {days} day(s))"
        head = f"\U0001f50e Reassessment {verb}: {subject}; it stays in force until revoked"
        action = f'Confirm it: mesh access approve {agreement} --by <you> --reason "...", or revoke it'
    owner = note["owner"]
    return f"{head}\n{action}\nOwner: team {owner['team']}, steward {owner['steward']}"


def access_tick(
    context: dg.SensorEvaluationContext,
    registry: Registry,
    routing: alerts.AlertRouting | None = None,
    today: date | None = None,
) -> dg.SensorResult:
    """One evaluation: queue the alerts due today, deliver the outbox, remember both in the cursor."""
    today = today or date.today()
    return step_tick(
        context,
        "access",
        today.isoformat(),
        lambda sent: due(registry, today, sent),
        routing or alerts.AlertRouting.from_env(),
    )


def access_sensor(registry: Registry) -> dg.SensorDefinition:
    """The access alert sensor over every agreement of the mesh, running by default."""

    @dg.sensor(
        name=SENSOR,
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=3600,
        description="Alerts a product's owners of access requests waiting for their decision, of people's "
        "and tools' access ending soon, and of agreements due for reassessment (which stay in force).",
    )
    def mesh_access_alerts(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        return access_tick(context, registry)

    return mesh_access_alerts


alerts.RENDERERS.update(dict.fromkeys(KINDS, render))
