"""Monitors: learned anomaly checks on every output port, run on the staged batch before it is published.

Each port gets `monitor_freshness`, `monitor_volume` and `monitor_schema`, and for each monitored column
(`profile.monitored_columns`) `monitor_null_rate__<col>`, `monitor_distinct__<col>`, `monitor_mean__<col>`
and `monitor_shares__<col>` where they apply. A monitor compares the batch's profile with what the port's
history says is normal (`baseline.judge`):

* with an `event_time` (or `monitors.time_column`), the newest day of the batch is judged. Its training
  points are the same figure on the newest day of past publishes (like with like: a newest day is often
  still filling) once there are `min_training` of them, else the settled past days of the batch itself,
  so a first publish of two years of orders already judges its last day. A newest bucket still filling
  is never compared with settled ones: until past publishes can train it, and always for buckets
  coarser than a day (a month column), the newest complete bucket is judged instead (`target`);
* without one, the whole batch is judged against past publishes' figures.

`monitor_schema` is never learned: any change of names, types or order against the last publish is
reported with the diff. Monitors warn by default; `monitors.severity: error` makes an anomaly block the
publish like a failed contract rule (the published port keeps its last good data). Results carry the
observed value, learned bounds, training size and the reason as check metadata.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import dagster as dg

from mesh_assets.infra.warehouse.base import WarehouseSession
from mesh_assets.product.addressing import Relation
from mesh_assets.product.spec import Direction, Monitors, OutputPort, Severity
from mesh_assets.quality.baseline import COUNT, LEVEL, RATE, SHARE, Scale, Verdict, judge
from mesh_assets.quality.profile import (
    Profile,
    bucket_column,
    compute_profile,
    monitored_columns,
    past_profiles,
    scan_profile,
)
from mesh_assets.quality.rules import Outcome

PREFIX = "monitor_"
SCALES = {"null_rate": RATE, "distinct": COUNT, "mean": LEVEL}
MIN_ROWS = 30
"""Fewest rows behind a rate, mean or share for it to be judged (or to train): a day of 3 orders says
little about the share of each status."""
WHAT = {
    "null_rate": "share of nulls",
    "distinct": "number of distinct values (approximate: HyperLogLog)",
    "mean": "mean",
    "shares": "share of each value",
}


def monitor_checks(port: OutputPort) -> dict[str, str]:
    """Every monitor of a port: check name to description (empty when monitors are off)."""
    if not port.monitors.enabled:
        return {}
    unit = f"per day of {bucket_column(port)}" if bucket_column(port) else "per publish"
    checks = {
        "monitor_freshness": (
            f"Data lag (time since the newest {port.event_time}) within what past publishes learned."
            if port.event_time
            else "Time since the previous publish within what past publishes learned."
        ),
        "monitor_volume": f"Row count {unit} within learned bounds.",
        "monitor_schema": "Columns, types and order as at the last publish (any change is reported).",
    }
    for item in monitored_columns(port):
        for metric in item.metrics:
            what = "mean length" if metric == "mean" and item.text else WHAT[metric]
            checks[f"{PREFIX}{metric}__{item.column}"] = (
                f"The {what} of {item.column} {unit} within learned bounds."
            )
    return checks


def monitor_specs(port: OutputPort, key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    """The monitors' Dagster asset checks; blocking when the port's monitors have severity `error`."""
    severity = port.monitors.severity
    return [
        dg.AssetCheckSpec(
            name=name,
            asset=key,
            description=f"{description} Learned monitor; severity: {severity.value}.",
            blocking=severity == Severity.ERROR,
        )
        for name, description in monitor_checks(port).items()
    ]


@dataclass(frozen=True)
class MonitorResult:
    """One monitor's verdict on a batch, with what was compared."""

    name: str
    verdict: Verdict
    description: str
    details: dict[str, Any]

    def outcome(self, severity: Severity) -> Outcome:
        """The verdict as a check `Outcome` (an anomaly fails; learning and ok pass)."""
        v = self.verdict
        bounds = (
            "learning"
            if v.status == "learning"
            else f"[{_fmt(v.lower)}, {_fmt(v.upper)}]"
            if v.lower is not None or v.upper is not None
            else "no change"
        )
        details = {
            "status": v.status,
            "reason": v.reason,
            "value": v.value,
            "lower": v.lower,
            "upper": v.upper,
            "baseline": v.baseline,
            "training_size": v.training,
            "min_training": v.needed,
            "seasonal": v.seasonal,
            **self.details,
        }
        return Outcome(
            self.name,
            not v.anomaly,
            severity,
            self.description,
            _fmt(v.value) if v.status != "learning" or v.value is None else f"{_fmt(v.value)} ({v.reason})",
            bounds,
            int(v.anomaly),
            {k: value for k, value in details.items() if value is not None},
        )


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:,.4g}"


def _day(text: str | None) -> date | None:
    return None if text is None else date.fromisoformat(text[:10])


def _hours(later: str, earlier: str | None) -> float | None:
    if earlier is None:
        return None
    delta = datetime.fromisoformat(later) - datetime.fromisoformat(earlier).replace(tzinfo=None)
    return delta.total_seconds() / 3600


Points = list[tuple[date | None, float | None]]


@dataclass(frozen=True)
class Target:
    """Which bucket of a batch the monitors judge, and whether past publishes may train it."""

    day: str | None
    """The judged bucket (ISO date); None: the whole batch (no event time)."""
    from_publishes: bool
    """Whether the same figure on past publishes' newest day may train it (like with like)."""
    note: str = ""
    """Why a bucket other than the newest is judged."""
    from_batch: bool = True
    """Whether the batch's own past days may train it until past publishes can (`learn_from_batch`)."""


def target(profile: Profile, history: list[Profile], now: datetime, config: Monitors) -> Target:
    """The bucket to judge: the newest, unless it is still filling and would be compared with settled ones.

    A newest bucket whose span has not ended at `now` (today's day, this month's month) holds part of
    its rows. Past publishes' newest days were partial in the same way, so once there are `min_training`
    of them the newest day is judged like with like. Until then, and always for buckets coarser than a
    day (past publishes keep only their newest bucket, which was filling too), the newest *settled*
    bucket is judged against the settled ones before it. With `learn_from_batch: false` a daily
    newest day is only ever judged like with like (until then its monitors are learning).
    """
    needed = config.min_training
    newest = profile.newest_bucket
    if newest is None:
        return Target(None, True)
    span = profile.bucket_days
    filling = date.fromisoformat(newest) + timedelta(days=span) > now.date()
    settled = [d for d in profile.buckets if d < newest]
    publishes = sum(1 for p in history if p.newest_bucket is not None and p.newest_bucket < newest)
    if span == 1 and publishes >= needed:
        return Target(newest, True)
    if span == 1 and not config.learn_from_batch:
        return Target(newest, True, from_batch=False)
    if filling and settled:
        unit = "day" if span == 1 else f"{span}-day bucket"
        note = f"{newest} is still filling: judging {max(settled)}, the newest complete {unit}"
        return Target(max(settled), False, note)
    return Target(newest, span == 1)


def _training(
    metric: str,
    profile: Profile,
    history: list[Profile],
    needed: int,
    column: str | None = None,
    judged: Target | None = None,
) -> tuple[Points, list[float | None], str]:
    """Training points of a figure (with the rows behind each): past publishes' newest days once there
    are enough of them, else the batch's own settled days; past publishes' totals without event time."""
    judged = judged or Target(profile.newest_bucket, True)
    newest = judged.day
    if newest is None:
        kept = [p for p in history if p.totals.get(metric) is not None]
        return (
            [(_day(p.profiled_at), p.totals[metric]) for p in kept],
            [_values(p.totals, column) for p in kept],
            "past publishes",
        )
    at_publish: dict[str, dict[str, float | None]] = {}
    for past in history:
        day = past.newest_bucket
        if day is not None and day < newest and past.buckets[day].get(metric) is not None:
            at_publish[day] = past.buckets[day]
    days, source = at_publish, "newest day of past publishes"
    if (len(at_publish) < needed or not judged.from_publishes) and judged.from_batch:
        days = {d: f for d, f in profile.buckets.items() if d < newest and f.get(metric) is not None}
        source = "past days of this batch"
        if judged.note:
            source = f"{source} ({judged.note})"
    ordered = sorted(days.items())
    return [(_day(d), f[metric]) for d, f in ordered], [_values(f, column) for _, f in ordered], source


def evaluate(
    profile: Profile, history: list[Profile], port: OutputPort, now: datetime
) -> list[MonitorResult]:
    """Every monitor of `port` on a batch's `profile`, trained on `history` (past profiles, oldest first).

    Pure: no warehouse and no Dagster, so benchmarks and tests can replay days quickly."""
    config = port.monitors
    checks = monitor_checks(port)
    if not checks:
        return []
    judged = target(profile, history, now, config)
    newest = judged.day
    figures = _figures(profile, newest)
    at = _day(newest)
    where = {"bucket": newest} if newest else {}
    results = [_freshness(profile, history, port, now, checks["monitor_freshness"])]
    points, sizes, source = _training("rows", profile, history, config.min_training, judged=judged)
    volume = judge(figures.get("rows"), at, points, config, COUNT, unit=" rows", sizes=sizes, source=source)
    results.append(
        MonitorResult("monitor_volume", volume, checks["monitor_volume"], {**where, "training": source})
    )
    results.append(_schema(profile, history, checks["monitor_schema"]))
    present = {name for name, _ in profile.schema}
    for item in monitored_columns(port):
        for metric in item.metrics:
            name = f"{PREFIX}{metric}__{item.column}"
            if item.column not in present:
                verdict = Verdict(
                    "anomaly", None, reason=f"column {item.column} is missing (see monitor_schema)"
                )
                results.append(MonitorResult(name, verdict, checks[name], where))
                continue
            if metric == "shares":
                results.append(
                    _shares(item.column, profile, history, port, name, checks[name], where, judged)
                )
                continue
            key = f"{metric}__{item.column}"
            value = figures.get(key)
            scale = SCALES[metric]
            # A null rate rests on every row; a mean on the non-null values.
            over = item.column if metric == "mean" else None
            measured = _values(figures, over) or 0
            if value is None:
                verdict = Verdict("ok", None, reason="no values to judge")
            elif scale is not COUNT and measured < MIN_ROWS:
                verdict = Verdict(
                    "ok", value, reason=f"too few values to judge ({measured:.0f} < {MIN_ROWS})"
                )
            else:
                points, sizes, source = _training(key, profile, history, config.min_training, over, judged)
                if scale is COUNT:
                    # A count's own noise grows with the count (a distinct count of 30 quantities moves by
                    # a few values a day, whatever the rows): judged at its expected size.
                    sizes, size = [v for _, v in points], None
                else:
                    kept = [(p, n) for p, n in zip(points, sizes, strict=True) if n is None or n >= MIN_ROWS]
                    points, sizes = [p for p, _ in kept], [n for _, n in kept]
                    size = measured
                verdict = judge(value, at, points, config, scale, sizes=sizes, size=size, source=source)
                where = {**where, "training": source}
            results.append(MonitorResult(name, verdict, checks[name], where))
    return results


def _freshness(
    profile: Profile, history: list[Profile], port: OutputPort, now: datetime, description: str
) -> MonitorResult:
    """Data lag at publish (with an event time) or time since the previous publish, against past ones."""
    config = port.monitors
    stamp = now.replace(tzinfo=None).isoformat(timespec="seconds")
    since_last = _hours(stamp, history[-1].profiled_at) if history else None
    details: dict[str, Any] = {
        "hours_since_last_publish": None if since_last is None else round(since_last, 2)
    }
    if port.event_time:
        value = _hours(stamp, profile.max_event_time)
        points = [(_day(p.profiled_at), _hours(p.profiled_at, p.max_event_time)) for p in history]
        details["newest_event_time"] = profile.max_event_time
    else:
        value = since_last
        points = [
            (_day(b.profiled_at), _hours(b.profiled_at, a.profiled_at))
            for a, b in itertools.pairwise(history)
        ]
    clean = [(d, v) for d, v in points if v is not None]
    if value is None:
        verdict = Verdict(
            "learning", None, training=len(clean), needed=config.min_training, reason="first publish"
        )
    else:
        verdict = judge(value, _day(stamp), clean, config, Scale(floor=1.0), Direction.SPIKE, unit="h")
    return MonitorResult("monitor_freshness", verdict, description, details)


def _schema(profile: Profile, history: list[Profile], description: str) -> MonitorResult:
    """Any change of columns, types or order against the last publish."""
    if not history:
        verdict = Verdict(
            "ok", len(profile.schema), reason=f"first profile: schema {profile.fingerprint} recorded"
        )
        return MonitorResult("monitor_schema", verdict, description, {"fingerprint": profile.fingerprint})
    before, now = dict(history[-1].schema), dict(profile.schema)
    added = [c for c in now if c not in before]
    removed = [c for c in before if c not in now]
    retyped = [f"{c}: {before[c]} -> {now[c]}" for c in now if c in before and before[c] != now[c]]
    common_before = [c for c in before if c in now]
    common_now = [c for c in now if c in before]
    reordered = common_before != common_now
    changes = []
    if added:
        changes.append(f"added {', '.join(added)}")
    if removed:
        changes.append(f"removed {', '.join(removed)}")
    if retyped:
        changes.append(f"retyped {'; '.join(retyped)}")
    if reordered:
        changes.append("reordered")
    details = {
        "fingerprint": profile.fingerprint,
        "previous_fingerprint": history[-1].fingerprint,
        "added": added,
        "removed": removed,
        "retyped": retyped,
        "reordered": reordered,
    }
    status = "anomaly" if changes else "ok"
    reason = "; ".join(changes) if changes else "same columns, types and order as the last publish"
    return MonitorResult(
        "monitor_schema", Verdict(status, len(profile.schema), reason=reason), description, details
    )


def _shares(
    column: str,
    profile: Profile,
    history: list[Profile],
    port: OutputPort,
    name: str,
    description: str,
    where: dict[str, Any],
    judged: Target,
) -> MonitorResult:
    """The share of each value of a low-cardinality column; the worst value is reported."""
    config = port.monitors
    current = profile.shares.get(column)
    if current is None:
        verdict = Verdict("ok", None, reason="not a low-cardinality column: value shares are not judged")
        return MonitorResult(name, verdict, description, where)
    newest = judged.day
    if newest is not None and newest != profile.newest_bucket:
        current = profile.bucket_shares.get(column, {}).get(newest, {})
    at_publish = {
        p.newest_bucket or p.profiled_at[:10]: (
            p.shares[column],
            _values(_figures(p, p.newest_bucket), column),
        )
        for p in history
        if column in p.shares and (newest is None or (p.newest_bucket or "") < newest)
    }
    enough = len(at_publish) >= config.min_training or not judged.from_batch
    if newest is None or (judged.from_publishes and enough):
        days, source = at_publish, "past publishes"
    else:
        days = {
            d: (s, _values(profile.buckets.get(d, {}), column))
            for d, s in profile.bucket_shares.get(column, {}).items()
            if d < newest
        }
        source = f"past days of this batch ({judged.note})" if judged.note else "past days of this batch"
    measured = _values(_figures(profile, newest), column) or 0
    if measured < MIN_ROWS:
        verdict = Verdict("ok", None, reason=f"too few values to judge ({measured:.0f} < {MIN_ROWS})")
        return MonitorResult(name, verdict, description, where)
    days = {d: (s, n) for d, (s, n) in days.items() if n is None or n >= MIN_ROWS}
    values = sorted(set(current) | {v for shares, _ in days.values() for v in shares})
    ordered = sorted(days.items())
    sizes = [n for _, (_, n) in ordered]
    worst: tuple[float, str, Verdict] | None = None
    for value in values:
        points = [(_day(d), shares.get(value, 0.0)) for d, (shares, _) in ordered]
        verdict = judge(
            current.get(value, 0.0),
            _day(newest),
            points,
            config,
            SHARE,
            sizes=sizes,
            size=measured,
            source=source,
        )
        if verdict.status == "learning":
            return MonitorResult(name, verdict, description, {**where, "training": source})
        excess = _excess(verdict)
        if worst is None or excess > worst[0]:
            worst = (excess, value, verdict)
    if worst is None:
        return MonitorResult(name, Verdict("ok", None, reason="no values"), description, where)
    _, value, verdict = worst
    if verdict.anomaly:
        verdict = Verdict(**{**verdict.__dict__, "reason": f"value '{value}': {verdict.reason}"})
    shares = {k: round(v, 4) for k, v in sorted(current.items(), key=lambda kv: -kv[1])[:10]}
    return MonitorResult(
        name, verdict, description, {**where, "training": source, "value_of": value, "shares": shares}
    )


def _figures(profile: Profile, day: str | None) -> dict[str, float | None]:
    """A profile's figures of `day`, else (no event time) the whole batch's."""
    return profile.buckets[day] if day else profile.totals


def _values(figures: dict[str, float | None], column: str | None) -> float | None:
    """How many values a column's rate, mean or shares were measured on: its non-null rows (a share of
    error codes on 4 failed runs out of 300 rests on 4 values, not 300)."""
    rows = figures.get("rows")
    null_rate = figures.get(f"null_rate__{column}") if column else None
    if rows is None or null_rate is None:
        return rows
    return rows * (1 - null_rate)


def _excess(verdict: Verdict) -> float:
    """How far past its nearer bound a value is, as a share of the band (negative inside it)."""
    if verdict.value is None or verdict.lower is None or verdict.upper is None:
        return float("-inf")
    band = max(verdict.upper - verdict.lower, 1e-9)
    return max(verdict.lower - verdict.value, verdict.value - verdict.upper) / band


def known_values(history: list[Profile]) -> dict[str, list[str]]:
    """The values of each low-cardinality column seen in the last publishes, which the next audit scan
    counts directly (a value new to them makes the profile name it with one narrow query)."""
    known: dict[str, set[str]] = {}
    for past in history[-3:]:
        for column, shares in past.shares.items():
            known.setdefault(column, set()).update(shares)
    return {column: sorted(values) for column, values in known.items()}


class PortMonitors:
    """A port's learned monitors on one staged batch.

    Its past profiles are read once. `scan`, handed to `checks.audit`, computes the batch's profile in the
    audit's own scan of the batch; `run` judges every monitor, profiling the batch itself when the scan
    did not (the schema rule stopped the data rules, or the profile's part of the scan failed). A monitor
    that cannot run never stops a publish: each says so, as a warning.
    """

    def __init__(
        self,
        session: WarehouseSession,
        batch: Relation,
        port: OutputPort,
        instance: dg.DagsterInstance,
        key: dg.AssetKey,
        now: datetime,
    ) -> None:
        self.session, self.batch, self.port, self.now = session, batch, port, now
        self.profile: Profile | None = None
        self.history: list[Profile] | None = None
        self.error: Exception | None = None
        if port.monitors.enabled:
            try:
                self.history = past_profiles(instance, key, port.monitors.window)
            except Exception as exc:  # reported by `run`, with every monitor
                self.error = exc

    @property
    def scan(self) -> Callable[[dict[str, str]], dict[str, Any]] | None:
        """What the audit answers its aggregates with; None when there is no profile to compute."""
        return self._scan if self.history is not None else None

    def _scan(self, aggregates: dict[str, str]) -> dict[str, Any]:
        self.profile, values = scan_profile(
            self.session, self.batch, self.port, self.now, aggregates, known_values(self.history or [])
        )
        return values

    def run(self) -> tuple[list[Outcome], Profile | None]:
        """Every monitor's outcome on the batch, and the profile the next publishes learn from."""
        port = self.port
        if not port.monitors.enabled:
            return [], None
        try:
            if self.error is not None:
                raise self.error
            profile = self.profile or compute_profile(self.session, self.batch, port, self.now)
            results = evaluate(profile, self.history or [], port, self.now)
        except Exception as exc:
            reason = f"monitor could not run: {type(exc).__name__}: {exc}"
            return [
                Outcome(
                    name,
                    False,
                    Severity.WARN,
                    text,
                    "not evaluated",
                    "-",
                    1,
                    {"status": "error", "reason": reason},
                )
                for name, text in monitor_checks(port).items()
            ], None
        return [r.outcome(port.monitors.severity) for r in results], profile


def run_monitors(
    session: WarehouseSession,
    batch: Relation,
    port: OutputPort,
    instance: dg.DagsterInstance,
    key: dg.AssetKey,
    now: datetime,
) -> tuple[list[Outcome], Profile | None]:
    """Profile the staged batch on its own and run every monitor of the port on it (`PortMonitors`
    without an audit scan)."""
    return PortMonitors(session, batch, port, instance, key, now).run()
