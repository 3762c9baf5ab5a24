"""The tick shared by the alert sensors that send each alert once per step (sunsets, access agreements).

Each such sensor finds, for a day, the alerts due and the step now reached per key (`<port>|<consumer>`,
an agreement id); its cursor remembers the step last queued per key, so a restart never repeats a step,
and the outbox of alerts not delivered yet, so a receiver that is down loses nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from mesh_assets.infra.environment import env_name
from mesh_assets.observe import alerts
from mesh_assets.observe.cursor import VersionedCursor

Due = Callable[[Mapping[str, str]], tuple[list[dict[str, Any]], dict[str, str]]]
"""Given the steps already queued per key: the notes due now, and the steps queued per key after them."""


@dataclass
class StepCursor(VersionedCursor):
    """A step-alert sensor's cursor: the step last queued per key, and the undelivered outbox."""

    VERSION = 1
    sent: dict[str, str] = field(default_factory=dict)
    outbox: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> StepCursor:
        """The cursor stored as `{"v": 1, "sent": {...}, "out": [...]}`."""
        return cls(sent=dict(data.get("sent", {})), outbox=list(data.get("out", [])))

    def to_payload(self) -> dict[str, Any]:
        """`sent` and the outbox as `out`."""
        return {"sent": self.sent, "out": self.outbox}


def step_tick(
    context: dg.SensorEvaluationContext, what: str, day: str, due: Due, routing: alerts.AlertRouting
) -> dg.SensorResult:
    """One evaluation: queue the `what` alerts `due` on `day`, deliver the outbox, remember both."""
    cursor = StepCursor.load(context.cursor, context.log, f"{what} alert")
    notes, sent = due(cursor.sent)
    # A non-prod environment's alerts are labelled `[env]`, like SLO alerts (`alerts.render`).
    notes = [{**note, "environment": env_name()} for note in notes]
    delivery = alerts.deliver([*cursor.outbox, *notes], routing, context.log)
    summary = (
        f"{day}: {len(notes)} new {what} alert(s), {len(delivery.delivered)} delivered, "
        f"{len(delivery.pending)} pending"
    )
    return dg.SensorResult(cursor=StepCursor(sent, delivery.pending).dumps(), skip_reason=summary)
