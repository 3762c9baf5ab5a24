"""Profiles: what a batch of a port looks like, computed in the warehouse in one scan, stored with each
publish so monitors can learn what normal looks like.

A profile holds the batch's schema (names, types, order, and a fingerprint of them), its row count, the
newest event time, and figures for each monitored column: null rate, distinct count, mean (numbers; the
mean length for text) and, for low-cardinality columns, the share of each value. When the port declares
an `event_time` (or `monitors.time_column`) the figures are also computed per day of it (a *bucket*),
so a first publish of two years of orders already carries the history its newest day is judged
against. One grouping-sets query computes the per-day and whole-batch figures together, and it is the
audit's own scan: the contract rules' aggregates ride in it (`scan_profile`), read from the
whole-batch row. The value shares of the values seen in the last publishes are counted in that scan
too; only a first publish, or a value never seen before, takes one narrow query over just the
low-cardinality columns concerned, to name their values.

Profiles are stored as JSON in the port's materialization metadata (`mesh/profile`) beside flat numbers
(`mesh/profile/<metric>`) that the Dagster UI plots over time, and read back from the instance
(`past_profiles`) to train the monitors.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from mesh_assets.infra.warehouse.base import WarehouseSession
from mesh_assets.product.addressing import Relation
from mesh_assets.product.spec import LogicalType, OutputPort
from mesh_assets.product.sql_text import quote_identifier, quote_literal

if TYPE_CHECKING:  # dagster is only needed to read and write profiles, never to compute them
    import dagster as dg

PROFILE_KEY = "mesh/profile"
"""Materialization metadata key holding a publish's profile (JSON)."""
MAX_CATEGORIES = 30
"""A column with at most this many distinct values is low-cardinality: its value shares are profiled."""
BUCKET = "__mesh_bucket"
NUMERIC = {LogicalType.INTEGER, LogicalType.BIGINT, LogicalType.DOUBLE, LogicalType.DECIMAL}


@dataclass(frozen=True)
class ColumnMetrics:
    """Which figures of one column are profiled and monitored."""

    column: str
    metrics: tuple[str, ...]
    """A subset of `null_rate`, `distinct`, `mean`, `shares`."""
    text: bool = False
    """Whether `mean` is the mean length of text values."""


def bucket_column(port: OutputPort) -> str | None:
    """The column whose days the profile's buckets are: `monitors.time_column`, else the `event_time`."""
    return port.monitors.time_column or port.event_time


def monitored_columns(port: OutputPort) -> list[ColumnMetrics]:
    """The columns a port's field-health monitors watch, and which figures of each.

    Only figures that can move are watched: no null rate for a non-nullable or key column (the contract
    already forbids nulls), no distinct count for a key or unique column (it is the row count), value
    shares only for text and booleans that are neither keys, unique nor personal data.
    """
    config = port.monitors
    if not config.enabled:
        return []
    names = config.columns
    chosen = [c for c in port.columns if (names is None or c.name in names) and c.name not in config.exclude]
    if names is None:
        chosen = chosen[: config.max_columns]
    watched = []
    for column in chosen:
        keyish = column.name in port.primary_key or column.unique
        text = column.type == LogicalType.STRING
        categorical = (text or column.type == LogicalType.BOOLEAN) and not keyish and not column.pii
        metrics = []
        if column.nullable and column.name not in port.primary_key:
            metrics.append("null_rate")
        timeish = column.name in (port.event_time, port.monitors.time_column)
        if not keyish and not timeish and column.type != LogicalType.BOOLEAN:
            metrics.append("distinct")
        if column.name not in port.primary_key and (column.type in NUMERIC or (text and not categorical)):
            metrics.append("mean")
        if categorical:
            metrics.append("shares")
        if metrics:
            watched.append(ColumnMetrics(column.name, tuple(metrics), text=text))
    return watched


@dataclass
class Profile:
    """One batch's profile. `buckets` maps each day (ISO date) to its figures; `totals` is the batch's."""

    rows: int
    schema: list[tuple[str, str]]
    profiled_at: str
    """When the batch was profiled (UTC, naive ISO)."""
    max_event_time: str | None = None
    totals: dict[str, float | None] = field(default_factory=dict)
    buckets: dict[str, dict[str, float | None]] = field(default_factory=dict)
    shares: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per low-cardinality column: value -> share of the newest bucket (of the batch without event time)."""
    bucket_shares: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    """Per low-cardinality column, per day: value -> share (the days kept in `buckets`)."""

    @property
    def fingerprint(self) -> str:
        """A short hash of the schema: names, types and order."""
        text = "|".join(f"{name}:{kind}" for name, kind in self.schema)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def newest_bucket(self) -> str | None:
        """The newest day of data, if the port has an event time."""
        return max(self.buckets) if self.buckets else None

    @property
    def bucket_days(self) -> int:
        """How many days a bucket spans: 1 for daily data, ~30 for a month column (the median gap
        between the batch's days), so a bucket still filling can be told from a settled one."""
        days = sorted(date.fromisoformat(d) for d in self.buckets)
        gaps = sorted((b - a).days for a, b in itertools.pairwise(days))
        return max(1, gaps[len(gaps) // 2]) if gaps else 1

    def to_json(self) -> dict[str, Any]:
        """The profile as stored in metadata: the newest day only (older days are the next batches'
        history, or were the newest day of an earlier publish), so a publish stores a few hundred numbers."""
        data = asdict(self)
        data["schema"] = [list(pair) for pair in self.schema]
        newest = self.newest_bucket
        data["buckets"] = {newest: self.buckets[newest]} if newest else {}
        del data["bucket_shares"]
        data["fingerprint"] = self.fingerprint
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Profile:
        """A profile read back from metadata."""
        return cls(
            rows=int(data["rows"]),
            schema=[(str(n), str(t)) for n, t in data["schema"]],
            profiled_at=str(data["profiled_at"]),
            max_event_time=data.get("max_event_time"),
            totals=dict(data.get("totals") or {}),
            buckets={str(k): dict(v) for k, v in (data.get("buckets") or {}).items()},
            shares={str(k): dict(v) for k, v in (data.get("shares") or {}).items()},
            bucket_shares={
                str(c): {str(d): dict(s) for d, s in days.items()}
                for c, days in (data.get("bucket_shares") or {}).items()
            },
        )

    def plots(self) -> dict[str, float | int]:
        """Flat figures for the UI's plots: the newest day's (else the batch's) value of each metric."""
        newest = self.newest_bucket
        figures = self.buckets[newest] if newest else self.totals
        flat: dict[str, float | int] = {"mesh/profile/rows_total": self.rows}
        for metric, value in sorted(figures.items()):
            if value is not None:
                # Rounded: a mean of decimals differs in its 15th digit between runs, which the UI's
                # plots would draw as a jump.
                flat[f"mesh/profile/{metric}"] = round(float(value), 6)
        return flat


def _figures(watched: list[ColumnMetrics], present: set[str]) -> dict[str, str]:
    """SQL aggregate of every figure, by name (`rows`, `<metric>__<column>`)."""
    sql = {"rows": "COUNT(*)"}
    for item in watched:
        if item.column not in present:
            continue
        col = f'"{item.column}"'
        if "null_rate" in item.metrics:
            sql[f"null_rate__{item.column}"] = f"CAST(COUNT(*) - COUNT({col}) AS DOUBLE) / COUNT(*)"
        if "distinct" in item.metrics or "shares" in item.metrics:
            # HyperLogLog (DuckDB and Snowflake alike): ~2% off, 4x cheaper than exact distinct counts per
            # day (0.07 s vs 0.29 s for 7 columns x 180 days of 500k rows), and a monitor's bounds are
            # never tighter than 10% of its baseline. Contract rules (unique, keys) count exactly.
            sql[f"distinct__{item.column}"] = f"APPROX_COUNT_DISTINCT({col})"
        if "mean" in item.metrics:
            value = f"LENGTH({col})" if item.text else col
            sql[f"mean__{item.column}"] = f"AVG(CAST({value} AS DOUBLE))"
    return sql


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def compute_profile(
    session: WarehouseSession,
    batch: Relation,
    port: OutputPort,
    now: datetime,
    keep_days: int | None = None,
) -> Profile:
    """Profile `batch` on its own (when no audit scan can carry it, e.g. its schema failed)."""
    return scan_profile(session, batch, port, now, keep_days=keep_days)[0]


def scan_profile(
    session: WarehouseSession,
    batch: Relation,
    port: OutputPort,
    now: datetime,
    aggregates: dict[str, str] | None = None,
    known: dict[str, list[str]] | None = None,
    keep_days: int | None = None,
) -> tuple[Profile, dict[str, Any]]:
    """Profile `batch` in one grouping-sets scan that also answers `aggregates` (the contract rules',
    alias -> SQL, read from the whole batch's row and returned by alias).

    The value shares of low-cardinality columns are counted in the same scan for the values `known`
    from the last profile (column -> values); a column without known values, or with a value not seen
    before, takes one narrow query over just the columns concerned, to name its values.
    `keep_days` bounds the days kept (default: the window).
    """
    aggregates = aggregates or {}
    schema = [(name, kind.upper()) for name, kind in session.columns(batch)]
    present = {name for name, _ in schema}
    types = dict(schema)
    watched = monitored_columns(port)
    figures = _figures(watched, present)
    shareable = {i.column for i in watched if "shares" in i.metrics and i.column in present}
    counted = {column: values for column, values in (known or {}).items() if column in shareable and values}
    for column, values in counted.items():
        for index, value in enumerate(values):
            condition = _equals(column, value, types[column])
            figures[f"__count{index}__{column}"] = f"COUNT(CASE WHEN {condition} THEN 1 END)"
    rules = {f"__rule__{alias}": sql for alias, sql in aggregates.items()}
    every = {**figures, **rules}
    event_time = bucket_column(port)
    event_time = event_time if event_time in present else None
    # Freshness is the data lag of the port's event time, even when buckets are days of another column.
    newest_sql = f'MAX("{port.event_time}")' if port.event_time in present else "NULL"
    select = ", ".join(f'{sql} AS "{alias}"' for alias, sql in every.items())
    profile = Profile(rows=0, schema=schema, profiled_at=now.isoformat(timespec="seconds"))
    answers: dict[str, Any] = {}
    if event_time is None:
        row = session.query(f"SELECT {select} FROM {batch.sql}")[0]
        answers = dict(zip(every, row, strict=True))
        profile.totals = {a: _number(answers[a]) for a in figures}
    else:
        keep = keep_days or port.monitors.window
        # Days are figured only for the kept ones (the newest keep + 1 days with rows): the rest fall in one
        # NULL group, ignored like rows without an event time. A batch spans months to years of days, and
        # each day's group holds a HyperLogLog state per watched column: 3.6x less scan time at 10k rows
        # over 726 days (54 -> 15 ms). The whole batch's row (the empty grouping set) reads every row.
        day_of = f'CAST("{event_time}" AS DATE)'
        rows = session.query(
            f"WITH days AS (SELECT MIN(d) AS first FROM (SELECT DISTINCT {day_of} AS d FROM {batch.sql} "
            f"WHERE {day_of} IS NOT NULL ORDER BY d DESC LIMIT {keep + 1}) AS newest) "
            f'SELECT GROUPING({BUCKET}) AS "__total", {BUCKET}, {newest_sql} AS "__max", {select} '
            f"FROM (SELECT *, CASE WHEN {day_of} >= (SELECT first FROM days) THEN {day_of} END AS {BUCKET} "
            f"FROM {batch.sql}) AS b GROUP BY GROUPING SETS (({BUCKET}), ())"
        )
        for total, day, newest, *values in rows:
            named = dict(zip(every, values, strict=True))
            if total:
                answers = named
                profile.totals = {a: _number(named[a]) for a in figures}
                profile.max_event_time = None if newest is None else str(newest)
            elif day is not None:
                profile.buckets[str(day)[:10]] = {a: _number(named[a]) for a in figures}
        profile.buckets = dict(sorted(profile.buckets.items())[-(keep + 1) :])
    profile.rows = int(profile.totals.get("rows") or 0)
    categorical = [
        c for c in sorted(shareable) if (profile.totals.get(f"distinct__{c}") or 0) <= MAX_CATEGORIES
    ]
    unnamed = [c for c in categorical if c not in counted or _has_unknown(profile.totals, c, counted[c])]
    for column in categorical:
        if column in counted and column not in unnamed:
            _counted_shares(profile, column, counted[column], event_time is not None)
    if unnamed and profile.rows:
        _value_shares(session, batch, profile, unnamed, event_time)
    for bucket in [profile.totals, *profile.buckets.values()]:
        for alias in [a for a in bucket if a.startswith("__count")]:
            del bucket[alias]
    return profile, {alias[len("__rule__") :]: answers.get(alias) for alias in rules}


def _equals(column: str, value: str, kind: str) -> str:
    """SQL condition `column = value` for a value as profiles name it (`str()` of the warehouse's)."""
    if kind.startswith("BOOL"):
        return f'"{column}" = {"TRUE" if value == "True" else "FALSE"}'
    return f"CAST({quote_identifier(column)} AS VARCHAR) = {quote_literal(value)}"


def _has_unknown(totals: dict[str, float | None], column: str, values: list[str]) -> bool:
    """Whether the batch holds a value of `column` the counted ones miss (it must be named)."""
    nonnull = (totals.get("rows") or 0) * (1 - (totals.get(f"null_rate__{column}") or 0))
    counted = sum(totals.get(f"__count{i}__{column}") or 0 for i in range(len(values)))
    return counted < round(nonnull)


def _counted_shares(profile: Profile, column: str, values: list[str], per_bucket: bool) -> None:
    """Shares of a column's known values from the scan's counts (per kept day and for the newest)."""

    def shares(figures: dict[str, float | None]) -> dict[str, float]:
        counts = {v: figures.get(f"__count{i}__{column}") or 0 for i, v in enumerate(values)}
        total = sum(counts.values())
        return {v: c / total for v, c in counts.items() if c} if total else {}

    if not per_bucket:
        profile.shares[column] = shares(profile.totals)
        return
    profile.bucket_shares[column] = {d: shares(f) for d, f in profile.buckets.items()}
    newest = profile.newest_bucket
    profile.shares[column] = profile.bucket_shares[column].get(newest, {}) if newest else {}


def _value_shares(
    session: WarehouseSession, batch: Relation, profile: Profile, columns: list[str], event_time: str | None
) -> None:
    """Fill the value shares of low-cardinality columns (nulls aside), per kept day and for the newest."""
    cols = ", ".join(f'"{c}"' for c in columns)
    flags = ", ".join(f'GROUPING("{c}")' for c in columns)
    # The bucket is in every grouping set; without an event time it is one constant (NULL) bucket.
    sets = ", ".join(f'({BUCKET}, "{c}")' for c in columns)
    if event_time is None:
        source = f"(SELECT {cols}, NULL AS {BUCKET} FROM {batch.sql}) AS b"
    else:
        first = min(profile.buckets) if profile.buckets else None
        where = f" WHERE CAST(\"{event_time}\" AS DATE) >= DATE '{first}'" if first else ""
        source = f'(SELECT {cols}, CAST("{event_time}" AS DATE) AS {BUCKET} FROM {batch.sql}{where}) AS b'
    counts: dict[str, dict[str, dict[str, int]]] = {c: {} for c in columns}
    rows = session.query(
        f"SELECT {BUCKET}, {flags}, {cols}, COUNT(*) FROM {source} GROUP BY GROUPING SETS ({sets})"
    )
    n = len(columns)
    for row in rows:
        day, grouped, values, count = row[0], row[1 : 1 + n], row[1 + n : 1 + 2 * n], row[-1]
        index = list(grouped).index(0)  # the one column this grouping set is about
        if values[index] is None:
            continue
        key = "all" if event_time is None else str(day)[:10]
        counts[columns[index]].setdefault(key, {})[str(values[index])] = int(count)
    newest = profile.newest_bucket or "all"
    for column, days in counts.items():
        shares = {
            day: {value: count / sum(by_value.values()) for value, count in by_value.items()}
            for day, by_value in days.items()
        }
        profile.shares[column] = shares.get(newest, {})
        if event_time is not None:
            profile.bucket_shares[column] = shares


def past_profiles(instance: dg.DagsterInstance, key: dg.AssetKey, limit: int) -> list[Profile]:
    """The profiles of a port's last `limit` publishes, oldest first (read from the Dagster instance)."""
    records = instance.fetch_materializations(key, limit=limit).records  # newest first
    profiles = []
    for record in reversed(records):
        materialization = record.asset_materialization
        value = materialization.metadata.get(PROFILE_KEY) if materialization else None
        data = getattr(value, "data", None) or getattr(value, "value", None)
        if isinstance(data, str):
            data = json.loads(data)
        if isinstance(data, dict) and "schema" in data:
            profiles.append(Profile.from_json(data))
    # The event log's order, not `profiled_at`: two publishes can share a second.
    return profiles
