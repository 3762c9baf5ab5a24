"""The SLO report of `mesh slo`: every port's SLOs measured from the Dagster event log, on demand.

The report replays each port's window from the event log with the same code the monitor sensor uses
(`feed.fetch` + `feed.apply`), so it needs no running daemon or sensor and always agrees with what the
monitor measures from the same events. It writes nothing and sends nothing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from mesh_assets.observe import budget, feed
from mesh_assets.observe.sensors import initial_states, latest_data_times
from mesh_assets.observe.sli import SLOS, Evaluation, PortSlo, PortState, evaluate


def measure(
    instance: dg.DagsterInstance, ports: Mapping[str, PortSlo], now: float | None = None
) -> dict[str, PortState]:
    """Every port's state at `now`, replayed from the event log over its window."""
    now = time.time() if now is None else now
    states = initial_states(instance, ports, now, from_window_start=True)
    since = now - max((slo.window_s for slo in ports.values()), default=0.0)
    hwm: dict[str, int] = {}
    while True:
        batch = feed.fetch(instance, hwm, ports, since)
        feed.apply(batch, states, ports)
        if not batch.more or batch.hwm == hwm:
            break
        hwm = batch.hwm
    for name, data_time in latest_data_times(instance, ports).items():
        states[name].data_time = data_time
    for name, state in states.items():
        state.advance(ports[name], now)
    return states


@dataclass(frozen=True)
class PortReport:
    """One port's SLOs, judged at one moment."""

    slo: PortSlo
    state: PortState
    evaluation: Evaluation
    now: float

    def to_json(self) -> dict[str, Any]:
        """The port's report as plain JSON (what `mesh slo --json` prints)."""
        slos = {}
        for name in SLOS:
            judgement = self.evaluation.judgements[name]
            last = self.state.last_breach.get(name)
            slos[name] = {
                "status": judgement.status,
                "target": judgement.target,
                "objective": self.slo.target_text(name),
                "sli": _rounded(judgement.sli),
                "budget_left": _rounded(judgement.budget_left),
                "good": _rounded(judgement.good),
                "bad": _rounded(judgement.bad),
                "breached_now": judgement.breached_now,
                "current": self.evaluation.observed[name],
                "last_breach": _iso(last),
            }
        return {
            "port": self.slo.name,
            "product": self.slo.product,
            "version": self.slo.version,
            "owner": {"team": self.slo.owner_team, "steward": self.slo.steward},
            "support": {"kind": self.slo.support_kind, "channel": self.slo.support_channel},
            "window": self.slo.window,
            "freshness_state": self.evaluation.freshness_state,
            "last_publish": _iso(self.state.last_publish),
            "rows": self.state.rows,
            "data_time": _iso(self.state.data_time),
            "slos": slos,
        }


def report(
    instance: dg.DagsterInstance, ports: Mapping[str, PortSlo], now: float | None = None
) -> list[PortReport]:
    """Every port's report, in port order."""
    now = time.time() if now is None else now
    states = measure(instance, ports, now)
    return [
        PortReport(ports[name], states[name], evaluate(ports[name], states[name], now), now) for name in ports
    ]


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _iso(timestamp: float | None) -> str | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def ago(timestamp: float | None, now: float) -> str:
    """`3h 12m ago`, or `never`."""
    return "never" if timestamp is None else f"{budget.format_duration(now - timestamp)} ago"
