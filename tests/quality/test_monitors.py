"""Learned monitors, on real DuckDB: each kind fires on an injected anomaly of the newest day and stays
quiet on normal days; weekends are judged against weekends; a cold start says "learning"; the schema
monitor reports any change with its diff; freshness learns the usual lag from past publishes.

The batches are synthetic orders with a weekly rhythm (`monitor_data`); the profile is computed by the
platform's own SQL on a DuckDB file and judged by `monitors.evaluate` (pure), so no Dagster run is needed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from monitor_data import (
    PORT,
    PORT_DATA,
    null_spike,
    one_customer,
    orders,
    partial_load,
    shifted_mean,
    takeover,
)

from mesh_assets.infra.warehouse.duckdb import DuckDBSession
from mesh_assets.product.addressing import Relation
from mesh_assets.product.spec import OutputPort, Severity
from mesh_assets.quality.checks import answer, contract_rules
from mesh_assets.quality.monitors import MonitorResult, evaluate, known_values, monitor_checks
from mesh_assets.quality.profile import Profile, compute_profile, scan_profile

BATCH = Relation("sales_internal", "orders_v1__candidate")
FIRST = date(2026, 9, 1)  # a Tuesday


class CountingSession(DuckDBSession):
    """A DuckDB session that records the scans of the batch it answers (to prove the profile's cost)."""

    scans: list[str]

    def query(self, sql, params=None):  # type: ignore[no-untyped-def]
        if BATCH.sql in sql and "information_schema" not in sql.lower():
            self.scans = [*getattr(self, "scans", []), sql]
        return super().query(sql, params)


@pytest.fixture
def session(tmp_path: Path) -> Iterator[CountingSession]:
    with duckdb.connect(str(tmp_path / "monitors.duckdb")) as connection:
        connection.execute(f"CREATE SCHEMA {BATCH.schema}")
        yield CountingSession(connection)


def stage(session: DuckDBSession, frame: pd.DataFrame) -> None:
    """Write `frame` as the staged batch."""
    session.connection.register("frame", frame)  # type: ignore[attr-defined]
    session.execute(f"CREATE OR REPLACE TABLE {BATCH.sql} AS SELECT * FROM frame")
    session.connection.unregister("frame")  # type: ignore[attr-defined]


def profile_of(session: DuckDBSession, frame: pd.DataFrame, port: OutputPort = PORT, now=None) -> Profile:
    stage(session, frame)
    # Published at 03:00 after the newest day, as a daily load is: that day has ended.
    newest = pd.Timestamp(frame["ordered_at"].max()).to_pydatetime()
    after = datetime.combine(newest.date() + timedelta(days=1), datetime.min.time()) + timedelta(hours=3)
    return compute_profile(session, BATCH, port, now or after)


def monitors_on(
    session: DuckDBSession,
    frame: pd.DataFrame,
    history: list[Profile] | None = None,
    port: OutputPort = PORT,
    now: datetime | None = None,
) -> dict[str, MonitorResult]:
    profile = profile_of(session, frame, port, now)
    now = now or datetime.fromisoformat(profile.profiled_at)
    return {r.name: r for r in evaluate(profile, history or [], port, now)}


def anomalies(results: dict[str, MonitorResult]) -> dict[str, str]:
    return {name: r.verdict.reason for name, r in results.items() if r.verdict.anomaly}


def port_with(**monitors: object) -> OutputPort:
    return OutputPort.model_validate({**PORT_DATA, "monitors": monitors})


# --- which monitors a port gets ---------------------------------------------------------------------------


def test_every_port_gets_freshness_volume_schema_and_field_health_monitors_without_config() -> None:
    assert list(monitor_checks(PORT)) == [
        "monitor_freshness",
        "monitor_volume",
        "monitor_schema",
        "monitor_null_rate__ordered_at",
        "monitor_null_rate__status",
        "monitor_distinct__status",
        "monitor_shares__status",
        "monitor_null_rate__amount",
        "monitor_distinct__amount",
        "monitor_mean__amount",
        "monitor_null_rate__channel",
        "monitor_distinct__channel",
        "monitor_shares__channel",
        "monitor_null_rate__customer",
        "monitor_distinct__customer",
        "monitor_shares__customer",
    ]


def test_monitor_config_chooses_the_columns_and_can_turn_monitors_off() -> None:
    only_amount = port_with(columns=["amount"])
    assert [n for n in monitor_checks(only_amount) if "__" in n] == [
        "monitor_null_rate__amount",
        "monitor_distinct__amount",
        "monitor_mean__amount",
    ]
    assert not any("channel" in n for n in monitor_checks(port_with(exclude=["channel"])))
    assert monitor_checks(port_with(enabled=False)) == {}


# --- quiet on normal data ------------------------------------------------------------------------------


def test_normal_days_raise_no_anomaly_whatever_the_weekday(session: CountingSession) -> None:
    judged = 0
    for seed in (1, 2, 3):
        for days in range(60, 67):  # the newest day takes every weekday once
            results = monitors_on(session, orders(FIRST, days, seed=seed))
            assert anomalies(results) == {}, (seed, days)
            judged += sum(r.verdict.status == "ok" for r in results.values())
    assert judged > 21 * 13  # the field monitors did judge (not learning)


def test_a_quiet_sunday_is_judged_against_sundays_not_against_weekdays(session: CountingSession) -> None:
    days = 62  # 2026-09-01 + 61 days = Sunday 2026-11-01
    assert (FIRST + timedelta(days=days - 1)).weekday() == 6

    volume = monitors_on(session, orders(FIRST, days))["monitor_volume"].verdict

    assert volume.status == "ok" and volume.seasonal
    assert volume.baseline is not None and volume.baseline < 60
    without = monitors_on(session, orders(FIRST, days), port=port_with(seasonality="none"))
    assert without["monitor_volume"].verdict.anomaly


# --- each kind fires on its anomaly --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inject", "monitor", "said"),
    [
        (partial_load, "monitor_volume", "below the learned bound"),
        (null_spike, "monitor_null_rate__channel", "above the learned bound"),
        (shifted_mean, "monitor_mean__amount", "above the learned bound"),
        (takeover, "monitor_shares__status", "value 'cancelled'"),
        (one_customer, "monitor_distinct__customer", "below the learned bound"),
    ],
    ids=["partial_load", "null_spike", "shifted_mean", "category_takeover", "distinct_collapse"],
)
def test_an_injected_anomaly_on_the_newest_day_fires_its_monitor(
    session: CountingSession, inject: Callable, monitor: str, said: str
) -> None:
    results = monitors_on(session, orders(FIRST, 60, newest=inject))

    found = anomalies(results)
    assert monitor in found, found
    assert said in found[monitor]
    verdict = results[monitor].verdict
    assert verdict.training >= 14 and verdict.lower is not None and verdict.upper is not None
    outcome = results[monitor].outcome(Severity.WARN)
    assert not outcome.passed and not outcome.blocks
    assert outcome.details["status"] == "anomaly"
    assert outcome.details["bucket"] == str(FIRST + timedelta(days=59))
    assert {"value", "lower", "upper", "baseline", "training_size", "reason"} <= set(outcome.details)


def test_an_error_severity_anomaly_blocks_and_a_drop_only_monitor_ignores_a_spike(
    session: CountingSession,
) -> None:
    doubled = orders(FIRST, 60, newest=lambda f: pd.concat([f, f.assign(order_id=f.order_id + "b")]))
    blocking = monitors_on(session, doubled, port=port_with(severity="error"))["monitor_volume"]
    assert blocking.verdict.anomaly and blocking.outcome(Severity.ERROR).blocks

    drop_only = monitors_on(session, doubled, port=port_with(direction="drop"))["monitor_volume"]
    assert drop_only.verdict.status == "ok" and drop_only.verdict.upper is not None


def test_a_stale_batch_is_a_freshness_anomaly_once_the_usual_lag_is_learned(session: CountingSession) -> None:
    # Past publishes at 03:00 each day, their newest order from the evening before: a lag of a few hours.
    history = [
        Profile(
            rows=1000,
            schema=[],
            profiled_at=f"{FIRST + timedelta(days=i):%Y-%m-%d}T03:00:00",
            max_event_time=f"{FIRST + timedelta(days=i - 1):%Y-%m-%d} 2{i % 4}:30:00",
        )
        for i in range(1, 30)
    ]
    publish = datetime.combine(FIRST + timedelta(days=60), datetime.min.time()) + timedelta(hours=3)

    fresh = monitors_on(session, orders(FIRST, 60), history, now=publish)["monitor_freshness"]
    stale = monitors_on(session, orders(FIRST, 59), history, now=publish)["monitor_freshness"]

    assert fresh.verdict.status == "ok"
    assert stale.verdict.anomaly
    assert stale.verdict.value is not None and stale.verdict.value > 24
    assert "h is above the learned bound" in stale.verdict.reason
    assert stale.details["hours_since_last_publish"] == pytest.approx(24 * 31)


# --- cold start, schema, training sources --------------------------------------------------------------


def test_a_first_publish_with_too_little_history_says_learning(session: CountingSession) -> None:
    results = monitors_on(session, orders(FIRST, 6))

    assert anomalies(results) == {}
    volume = results["monitor_volume"]
    assert volume.verdict.status == "learning"
    assert volume.verdict.reason == "learning, 5 of 14"
    outcome = volume.outcome(Severity.ERROR)
    assert outcome.passed and "learning, 5 of 14" in str(outcome.observed)
    assert results["monitor_freshness"].verdict.status == "learning"
    assert results["monitor_schema"].verdict.status == "ok"  # never learned: recorded on the first publish


def test_a_dropped_retyped_or_reordered_column_is_a_schema_anomaly_with_the_diff(
    session: CountingSession,
) -> None:
    frame = orders(FIRST, 60)
    history = [profile_of(session, frame)]

    dropped = monitors_on(session, frame.drop(columns=["channel"]), history)
    assert dropped["monitor_schema"].verdict.anomaly
    assert dropped["monitor_schema"].verdict.reason == "removed channel"
    assert dropped["monitor_schema"].details["removed"] == ["channel"]
    assert "missing" in dropped["monitor_null_rate__channel"].verdict.reason

    changed = frame[["ordered_at", "order_id", "status", "amount", "channel", "customer"]].astype(
        {"amount": "int64"}
    )
    reason = monitors_on(session, changed, history)["monitor_schema"].verdict.reason
    assert reason == "retyped amount: DOUBLE -> BIGINT; reordered"

    same = monitors_on(session, frame, history)["monitor_schema"].verdict
    assert same.status == "ok" and "same columns" in same.reason


def test_past_publishes_newest_days_train_the_monitors_once_there_are_enough(
    session: CountingSession,
) -> None:
    # 20 past publishes, each profiled when its day was the newest.
    history = [profile_of(session, orders(FIRST, days)) for days in range(40, 60)]

    results = monitors_on(session, orders(FIRST, 60, newest=null_spike), history)

    assert results["monitor_volume"].details["training"] == "newest day of past publishes"
    assert results["monitor_volume"].verdict.training == 20
    assert set(anomalies(results)) == {"monitor_null_rate__channel"}


def test_the_profile_takes_one_scan_plus_one_for_value_shares_and_keeps_only_the_newest_day(
    session: CountingSession,
) -> None:
    stage(session, orders(FIRST, 60))
    session.scans = []

    profile = compute_profile(session, BATCH, PORT, datetime(2026, 11, 1))

    assert len(session.scans) == 2
    assert all("GROUPING SETS" in sql for sql in session.scans)
    assert profile.newest_bucket == "2026-10-30" and len(profile.buckets) == 57  # the window, and the day
    assert sorted(profile.shares) == ["channel", "status"]  # customer has too many values
    stored = Profile.from_json(profile.to_json())
    assert list(stored.buckets) == ["2026-10-30"] and stored.rows == profile.rows
    assert stored.fingerprint == profile.fingerprint
    assert replace(stored, bucket_shares={}).shares == profile.shares
    plots = profile.plots()
    assert plots["mesh/profile/rows"] == profile.buckets["2026-10-30"]["rows"]
    assert all(isinstance(v, float | int) for v in plots.values())


def test_only_the_newest_days_with_rows_are_figured_and_the_batchs_totals_still_read_every_row(
    session: CountingSession,
) -> None:
    frame = orders(FIRST, 200)
    days = frame["ordered_at"].dt.date
    # Gaps inside the window: the kept days are the newest days *with rows*, not calendar days.
    gaps = {date(2027, 3, 1), date(2027, 3, 5), date(2027, 2, 14)}
    frame = frame[~days.isin(gaps)].reset_index(drop=True)
    days = frame["ordered_at"].dt.date
    stage(session, frame)
    window = PORT.monitors.window

    profile = compute_profile(session, BATCH, PORT, datetime(2027, 3, 21))

    newest_days = sorted(set(days))[-(window + 1) :]
    assert list(profile.buckets) == [str(day) for day in newest_days]
    rows_per_day = days.value_counts()
    assert {day: figures["rows"] for day, figures in profile.buckets.items()} == {
        str(day): float(rows_per_day[day]) for day in newest_days
    }
    assert profile.rows == len(frame)  # every day of the batch, not only the kept ones
    assert profile.totals["null_rate__channel"] == pytest.approx(frame["channel"].isna().mean())


def test_the_audit_rules_and_the_profile_share_one_scan_once_the_values_are_known(
    session: CountingSession,
) -> None:
    stage(session, orders(FIRST, 60))
    first = compute_profile(session, BATCH, PORT, datetime(2026, 11, 1))
    session.scans = []
    rules = contract_rules(PORT)
    aggregates = {alias: sql for rule in rules[1:] for alias, sql in rule.aggregates(session).items()}

    scanned, values = scan_profile(
        session, BATCH, PORT, datetime(2026, 11, 1), aggregates, known_values([first])
    )

    assert len(session.scans) == 1, session.scans  # rules, figures and value shares: one pass
    assert values == answer(session, BATCH, aggregates)  # the rules read what their own scan says
    assert scanned.shares == first.shares and scanned.buckets == first.buckets
    assert scanned.bucket_shares == first.bucket_shares


def test_a_value_never_seen_before_is_named_by_a_narrow_query(session: CountingSession) -> None:
    stage(session, orders(FIRST, 60, newest=takeover))
    known = {"status": ["delivered", "placed", "shipped"], "channel": ["phone", "shop", "web"]}
    session.scans = []

    profile, _ = scan_profile(session, BATCH, PORT, datetime(2026, 11, 1), {}, known)

    assert len(session.scans) == 2 and '"status"' in session.scans[1] and '"channel"' not in session.scans[1]
    assert profile.shares["status"] == {"cancelled": 1.0}


# --- ports without an event time ------------------------------------------------------------------------


def test_a_port_without_event_time_is_judged_whole_against_past_publishes(session: CountingSession) -> None:
    port = OutputPort.model_validate({k: v for k, v in PORT_DATA.items() if k != "event_time"})
    start = datetime(2026, 9, 1, 6)
    history = []
    for i in range(20):  # a daily publish of the latest 30 days of orders
        frame = orders(FIRST + timedelta(days=i), 30, seed=i)
        history.append(profile_of(session, frame, port, now=start + timedelta(days=i)))
    assert history[0].buckets == {} and history[0].totals["rows"] == history[0].rows
    now = start + timedelta(days=20)

    normal = monitors_on(session, orders(FIRST + timedelta(days=20), 30, seed=20), history, port, now)
    assert anomalies(normal) == {}
    assert normal["monitor_volume"].details["training"] == "past publishes"
    assert normal["monitor_freshness"].verdict.value == pytest.approx(24)  # hours since the last publish

    halved = orders(FIRST + timedelta(days=20), 15, seed=20)
    taken_over = takeover(orders(FIRST + timedelta(days=20), 30, seed=20))
    assert monitors_on(session, halved, history, port, now)["monitor_volume"].verdict.anomaly
    assert (
        "value 'cancelled'"
        in anomalies(monitors_on(session, taken_over, history, port, now))["monitor_shares__status"]
    )
    late = monitors_on(session, orders(FIRST, 30, seed=20), history, port, now + timedelta(days=3))
    assert late["monitor_freshness"].verdict.anomaly


def test_a_monitor_that_cannot_run_warns_and_never_blocks_the_publish(session: CountingSession) -> None:
    from mesh_assets.quality.monitors import run_monitors

    port = port_with(severity="error")
    missing = Relation(BATCH.schema, "no_such_table")

    outcomes, profile = run_monitors(session, missing, port, None, None, datetime(2026, 11, 1))  # type: ignore[arg-type]

    assert profile is None and len(outcomes) == len(monitor_checks(port))
    assert all(not o.passed and not o.blocks for o in outcomes)
    assert "monitor could not run" in outcomes[0].details["reason"]


def test_rates_means_and_shares_of_a_day_with_too_few_rows_are_not_judged(session: CountingSession) -> None:
    results = monitors_on(session, orders(FIRST, 60, newest=lambda f: takeover(f.head(10))))

    assert results["monitor_volume"].verdict.anomaly  # the day itself is the anomaly
    for name in ("monitor_shares__status", "monitor_mean__amount", "monitor_null_rate__channel"):
        verdict = results[name].verdict
        assert verdict.status == "ok" and verdict.reason == "too few values to judge (10 < 30)", name


def test_the_shares_of_a_mostly_null_column_rest_on_its_values_not_its_rows(session: CountingSession) -> None:
    def few_channels(frame: pd.DataFrame) -> pd.DataFrame:
        frame["channel"] = None
        frame.loc[frame.index[:5], "channel"] = "phone"
        return frame

    results = monitors_on(session, orders(FIRST, 60, newest=few_channels))

    assert results["monitor_null_rate__channel"].verdict.anomaly
    shares = results["monitor_shares__channel"].verdict
    assert shares.status == "ok" and shares.reason == "too few values to judge (5 < 30)"


# --- a newest bucket still filling ---------------------------------------------------------------------


def test_at_cold_start_a_day_still_filling_is_not_judged_against_full_days(session: CountingSession) -> None:
    frame = orders(FIRST, 40)
    newest = pd.Timestamp(frame["ordered_at"].max()).to_pydatetime()
    noon = datetime.combine(newest.date(), datetime.min.time()) + timedelta(hours=12)
    morning = frame[frame["ordered_at"] < noon]  # published at noon: half the newest day is there

    results = monitors_on(session, morning, now=noon)

    assert not anomalies(results)
    volume = results["monitor_volume"]
    yesterday = (newest.date() - timedelta(days=1)).isoformat()
    assert volume.details["bucket"] == yesterday
    assert f"{newest.date()} is still filling: judging {yesterday}" in volume.verdict.reason


def test_a_month_column_judges_the_newest_complete_month(session: CountingSession) -> None:
    frame = orders(FIRST, 80)
    frame["month"] = frame["ordered_at"].dt.to_period("M").dt.to_timestamp()
    # Three settled months of history before it, so the judged month has training points.
    earlier = orders(FIRST - timedelta(days=430), 400, seed=3)
    earlier["month"] = earlier["ordered_at"].dt.to_period("M").dt.to_timestamp()
    frame = pd.concat([earlier, frame], ignore_index=True)
    port = OutputPort.model_validate(
        {
            **PORT_DATA,
            "columns": [*PORT_DATA["columns"], {"name": "month", "type": "date", "description": "Month."}],
            "monitors": {"time_column": "month", "min_training": 7},
        }
    )
    now = datetime.combine(FIRST + timedelta(days=80), datetime.min.time())  # a few days into November

    results = monitors_on(session, frame, port=port, now=now)

    volume = results["monitor_volume"]
    assert volume.details["bucket"] == "2026-10-01", volume.details
    assert "2026-11-01 is still filling" in volume.verdict.reason
    assert volume.verdict.status == "ok", volume.verdict.reason


def test_time_column_buckets_by_it_while_freshness_keeps_the_event_time(session: CountingSession) -> None:
    frame = orders(FIRST, 30)
    frame["updated_at"] = frame["ordered_at"] + timedelta(days=2)
    port = OutputPort.model_validate(
        {
            **PORT_DATA,
            "event_time": "updated_at",
            "columns": [
                *PORT_DATA["columns"],
                {"name": "updated_at", "type": "timestamp", "description": "Last update."},
            ],
            "monitors": {"time_column": "ordered_at"},
        }
    )
    profile = profile_of(session, frame, port)

    assert profile.newest_bucket == str(frame["ordered_at"].max().date())
    assert profile.max_event_time is not None
    assert profile.max_event_time.startswith(str(frame["updated_at"].max().date()))
    assert "monitor_distinct__updated_at" not in monitor_checks(port)


def test_learn_from_batch_off_waits_for_past_publishes_instead_of_judging_the_batchs_own_days(
    session: CountingSession,
) -> None:
    # An update-time port: its newest day holds every row updated that day, unlike any settled day.
    pile_up = lambda frame: pd.concat([frame] * 5, ignore_index=True).assign(  # noqa: E731
        order_id=lambda f: [f"{i}-{o}" for i, o in enumerate(f["order_id"])]
    )
    batch = orders(FIRST, 60, newest=pile_up)
    assert "monitor_volume" in anomalies(monitors_on(session, batch))  # judged against settled days

    results = monitors_on(session, batch, port=port_with(learn_from_batch=False))

    assert not anomalies(results)
    assert results["monitor_volume"].verdict.status == "learning"
    assert results["monitor_volume"].verdict.reason == "learning, 0 of 14"


def test_the_profile_scan_runs_in_snowflakes_dialect_on_fakesnow(session: CountingSession) -> None:
    import fakesnow

    from mesh_assets.infra.warehouse.snowflake import SnowflakeWarehouse

    frame = orders(FIRST, 30)
    stage(session, frame)
    on_duckdb = compute_profile(session, BATCH, PORT, datetime(2026, 10, 2))
    rules = contract_rules(PORT)
    with fakesnow.patch():
        warehouse = SnowflakeWarehouse(
            account="acct", user="u", password="p", warehouse="wh", database="MESH"
        )
        with warehouse.session() as snow:
            snow.ensure_schema(BATCH.schema)
            snow.write_dataframe(BATCH, frame)
            aggregates = {a: sql for rule in rules[1:] for a, sql in rule.aggregates(snow).items()}
            profile, values = scan_profile(
                snow, BATCH, PORT, datetime(2026, 10, 2), aggregates, known_values([on_duckdb])
            )
            expected = answer(snow, BATCH, aggregates)

    assert values == expected
    assert profile.rows == on_duckdb.rows and profile.buckets.keys() == on_duckdb.buckets.keys()
    assert profile.shares == on_duckdb.shares


def test_a_failing_profile_in_the_scan_leaves_the_audit_to_its_own_scan(session: CountingSession) -> None:
    from mesh_assets.quality.checks import audit

    stage(session, orders(FIRST, 30))

    def broken(aggregates: dict[str, str]) -> dict:
        raise RuntimeError("profile SQL failed")

    assert audit(session, BATCH, PORT, scan=broken) == audit(session, BATCH, PORT)
