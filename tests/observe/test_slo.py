"""SLIs, error budgets and alert plumbing as pure functions, and `mesh slo` on a real instance.

The sensors themselves run against a real instance and HTTP receiver in `test_alert_sensors.py`.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import typer
from stub_ports import stub_port
from typer.testing import CliRunner

from mesh_assets.cli.slo import register
from mesh_assets.observe import alerts, budget
from mesh_assets.observe.sensors import breached_conditions
from mesh_assets.observe.sli import PortSlo, PortState, evaluate, port_slos
from mesh_assets.product.freshness import freshness_state
from mesh_assets.product.registry import load_registry
from mesh_assets.product.spec import FreshnessSlo

REPO = Path(__file__).resolve().parents[2]
HOUR = 3600.0
DAY = 24 * HOUR
T0 = 1_800_000_000.0  # a fixed "now" far from bucket edges' surprises (2027-01-15)


@pytest.fixture(scope="module")
def ports() -> dict[str, PortSlo]:
    return port_slos(load_registry(REPO))


@pytest.fixture
def orders(ports: dict[str, PortSlo]) -> PortSlo:
    """sales.orders v1: max_age 24h, warn 12h, availability 99%, quality 100%, at least 100 rows."""
    return ports["sales/orders/v1"]


# --- budget arithmetic --------------------------------------------------------------------------------------


def test_a_30_day_window_is_counted_in_daily_buckets() -> None:
    assert budget.bucket_seconds(30 * DAY) == DAY
    assert budget.bucket_seconds(DAY) == 48 * 60
    assert budget.bucket_seconds(10 * 60) == 60  # never below a minute
    assert budget.buckets_in_window(30 * DAY, int(DAY)) == 30


def test_time_intervals_are_split_at_bucket_boundaries_and_old_buckets_leave_the_window() -> None:
    buckets: budget.Buckets = {}
    width = int(DAY)
    start = (T0 // DAY) * DAY - 2 * HOUR  # two hours before midnight
    budget.add_interval(buckets, start, start + 5 * HOUR, budget.STALE_S, width)
    assert sorted(c[budget.STALE_S] for c in buckets.values()) == [2 * HOUR, 3 * HOUR]

    budget.add(buckets, T0 - 40 * DAY, budget.PUBLISH_FAILED, 1, width)
    assert budget.totals(buckets, T0, 30 * DAY, width)[budget.PUBLISH_FAILED] == 0  # outside the window
    budget.prune(buckets, T0, 30 * DAY, width)
    assert len(buckets) == 2


@pytest.mark.parametrize(
    ("good", "bad", "target", "left"),
    [
        (99, 1, 0.99, 0.0),  # exactly the allowance spent
        (199, 1, 0.99, 0.5),
        (100, 0, 0.99, 1.0),
        (97, 3, 0.99, -1.0),  # 3x the allowance: clamped at -100%
        (98, 2, 0.99, -1.0),
        (10, 0, 1.0, 1.0),  # a 100% target untouched
        (9, 1, 1.0, -1.0),  # a 100% target has no allowance
        (0, 0, 0.99, None),  # nothing measured
    ],
)
def test_budget_left_is_the_unspent_share_of_the_allowance(
    good: float, bad: float, target: float, left: float | None
) -> None:
    assert budget.budget_left(good, bad, target) == (pytest.approx(left) if left is not None else None)


def test_the_sli_is_the_share_of_good_events() -> None:
    assert budget.ratio(3, 1) == 0.75
    assert budget.ratio(0, 0) is None


def test_an_slo_status_says_exhausted_breached_at_risk_ok_or_no_data() -> None:
    counters = [0.0] * budget.SLOTS
    assert budget.judge("availability", 0.99, counters, False).status == "no data"
    counters[budget.PUBLISH_OK] = 1000
    assert budget.judge("availability", 0.99, counters, False).status == "ok"
    assert budget.judge("availability", 0.99, counters, True).status == "breached"
    counters[budget.PUBLISH_FAILED] = 8  # 80% of a 10-event allowance spent
    assert budget.judge("availability", 0.99, counters, False).status == "at risk"
    counters[budget.PUBLISH_FAILED] = 11
    judgement = budget.judge("availability", 0.99, counters, False)
    assert judgement.status == "exhausted" and judgement.exhausted
    assert judgement.sli == pytest.approx(1000 / 1011)


def test_a_budget_burning_fast_is_at_risk_and_alerted_before_it_is_spent(orders: PortSlo) -> None:
    window = [0.0] * budget.SLOTS
    window[budget.PUBLISH_OK], window[budget.PUBLISH_FAILED] = 9000, 20  # 90.2 failures allowed
    recent = [0.0] * budget.SLOTS
    recent[budget.PUBLISH_FAILED] = 10  # 11% of the budget in the last 3 days of 30
    judgement = budget.judge("availability", 0.99, window, False, recent)
    assert judgement.recent_burn == pytest.approx(10 / 90.2)
    assert judgement.burning_fast and not judgement.exhausted
    assert judgement.status == "at risk"
    recent[budget.PUBLISH_FAILED] = 5
    assert budget.judge("availability", 0.99, window, False, recent).status == "ok"

    # The monitor alerts on it as the SLO's budget condition.
    state = PortState(width_s=orders.width_s, accrued_to=T0 - 29 * DAY)
    for hour in range(29 * 24):
        state.published(orders, T0 - 29 * DAY + hour * HOUR, rows=500)
    for minute in range(2):
        state.publish_failed(T0 - 60 * (minute + 1), "boom")
    state.published(orders, T0, rows=500)
    state.advance(orders, T0)
    evaluation = evaluate(orders, state, T0)
    assert evaluation.judgements["availability"].burning_fast
    [(condition, (observed, _, _))] = breached_conditions(orders, state, evaluation, T0).items()
    assert condition == "availability budget"
    assert "burning fast" in observed and "in the last 3d," in observed


@pytest.mark.parametrize(
    ("rows", "previous", "ok", "says"),
    [
        (500, 480, True, "500 rows"),
        (50, 480, False, "fewer than the minimum 100"),
        (2_000, None, False, "more than the maximum 1,000"),
        (200, 480, False, "58% fewer than the previous publish"),
        (1_000, 300, False, "233% more than the previous publish"),
        (150, None, True, "150 rows"),
    ],
)
def test_the_volume_of_a_publish_is_judged_against_bounds_and_the_previous_publish(
    rows: int, previous: int | None, ok: bool, says: str
) -> None:
    healthy, text = budget.judge_volume(rows, previous, min_rows=100, max_rows=1_000)
    assert healthy is ok
    assert says in text


def test_durations_and_shares_read_well() -> None:
    assert budget.format_duration(3 * DAY + 4 * HOUR + 5) == "3d 4h"
    assert budget.format_duration(2 * HOUR + 300) == "2h 5m"
    assert budget.format_duration(42) == "42s"
    assert budget.format_duration(3 * DAY) == "3d"
    assert budget.format_share(0.99312) == "99.3%"
    assert budget.format_share(None) == "-"


# --- freshness policy, as Dagster's evaluators compute it ---------------------------------------------------


def test_the_time_window_policy_passes_warns_and_fails_like_dagsters_evaluator() -> None:
    slo = FreshnessSlo(max_age="24h", warn_after="12h")
    assert freshness_state(slo, None, T0) == "UNKNOWN"
    assert freshness_state(slo, T0 - HOUR, T0) == "PASS"
    assert freshness_state(slo, T0 - 13 * HOUR, T0) == "WARN"
    assert freshness_state(slo, T0 - 24 * HOUR, T0) == "FAIL"


def test_the_cron_policy_fails_when_the_last_publish_misses_the_latest_deadline_window() -> None:
    slo = FreshnessSlo(cron="0 6 * * *", lower_bound="2h")
    deadline = (T0 // DAY) * DAY + 6 * HOUR  # 06:00 UTC of T0's day
    now = deadline + HOUR
    assert freshness_state(slo, deadline - HOUR, now) == "PASS"
    assert freshness_state(slo, deadline - 3 * HOUR, now) == "FAIL"


# --- measuring a port ---------------------------------------------------------------------------------------


def test_availability_counts_publishes_against_failed_publish_steps(orders: PortSlo) -> None:
    state = PortState(width_s=orders.width_s, accrued_to=T0)
    for hour in range(99):
        state.published(orders, T0 + hour * HOUR, rows=500)
    state.publish_failed(T0 + 99 * HOUR, "blocking contract check(s) failed: row_count_within_bounds")
    now = T0 + 99.5 * HOUR
    state.advance(orders, now)
    judgement = evaluate(orders, state, now).judgements["availability"]
    assert judgement.sli == pytest.approx(0.99)
    assert judgement.budget_left == pytest.approx(0.0)
    assert judgement.breached_now  # the latest attempt failed
    assert judgement.status == "breached"
    state.published(orders, now + 60, rows=510)
    assert not evaluate(orders, state, now + 60).judgements["availability"].breached_now


def test_freshness_without_the_daemon_is_derived_from_the_publishes(orders: PortSlo) -> None:
    state = PortState(width_s=orders.width_s, accrued_to=T0)
    state.published(orders, T0, rows=500)
    state.advance(orders, T0 + 30 * HOUR)  # 24h fresh, then 6h stale (max_age 24h)
    evaluation = evaluate(orders, state, T0 + 30 * HOUR)
    assert evaluation.freshness_state == "FAIL"
    assert evaluation.judgements["freshness"].sli == pytest.approx(24 / 30)
    assert evaluation.judgements["freshness"].exhausted
    assert state.last_breach["freshness"] == T0 + 24 * HOUR
    assert "last published 1d 6h ago (max age 24h)" in evaluation.observed["freshness"]


def test_freshness_follows_the_daemons_state_changes(orders: PortSlo) -> None:
    state = PortState(width_s=orders.width_s, accrued_to=T0)
    state.freshness_changed(orders, T0, "UNKNOWN", "PASS")
    state.freshness_changed(orders, T0 + 10 * HOUR, "PASS", "WARN")
    state.freshness_changed(orders, T0 + 20 * HOUR, "WARN", "FAIL")
    state.advance(orders, T0 + 25 * HOUR)
    evaluation = evaluate(orders, state, T0 + 25 * HOUR)
    assert evaluation.freshness_state == "FAIL"
    assert evaluation.judgements["freshness"].sli == pytest.approx(20 / 25)  # WARN is still fresh
    assert evaluation.judgements["freshness"].breached_now


def test_a_port_the_daemon_cannot_judge_falls_back_to_the_specs_policy(orders: PortSlo) -> None:
    state = PortState(width_s=orders.width_s, accrued_to=T0)
    state.published(orders, T0, rows=500)
    # E.g. a location that only references the port: the daemon sees no policy.
    state.freshness_changed(orders, T0 + HOUR, "UNKNOWN", "NOT_APPLICABLE")
    state.advance(orders, T0 + 30 * HOUR)
    evaluation = evaluate(orders, state, T0 + 30 * HOUR)
    assert evaluation.freshness_state == "FAIL"
    assert evaluation.judgements["freshness"].sli == pytest.approx(24 / 30)


def test_quality_counts_blocking_checks_only_and_breaches_on_a_failing_one(orders: PortSlo) -> None:
    state = PortState(width_s=orders.width_s, accrued_to=T0)
    state.checked("email_pattern", T0, passed=False, blocking=False, text="email_pattern (observed 3)")
    evaluation = evaluate(orders, state, T0)
    assert not evaluation.judgements["quality"].breached_now  # a warn-only rule informs
    assert not evaluation.judgements["quality"].exhausted  # ... and spends no error budget
    assert state.checks["email_pattern"].passed is False  # but it is still shown with the port's checks
    state.checked("primary_key_unique_not_null", T0 + 1, False, True, "primary_key (observed 3 duplicate)")
    evaluation = evaluate(orders, state, T0 + 1)
    assert evaluation.judgements["quality"].breached_now
    assert "primary_key (observed 3 duplicate)" in evaluation.observed["quality"]
    state.checked("primary_key_unique_not_null", T0 + 2, True, True, "primary_key")
    assert not evaluate(orders, state, T0 + 2).judgements["quality"].breached_now


def test_a_volume_drop_is_a_breach_until_a_healthy_publish(orders: PortSlo) -> None:
    state = PortState(width_s=orders.width_s, accrued_to=T0)
    state.published(orders, T0, rows=10_000)
    state.published(orders, T0 + HOUR, rows=3_000)
    evaluation = evaluate(orders, state, T0 + HOUR)
    assert evaluation.judgements["volume"].breached_now
    assert "70% fewer than the previous publish (10,000)" in evaluation.observed["volume"]
    state.published(orders, T0 + 2 * HOUR, rows=3_100)
    assert not evaluate(orders, state, T0 + 2 * HOUR).judgements["volume"].breached_now
    assert evaluate(orders, state, T0 + 2 * HOUR).judgements["volume"].sli == pytest.approx(2 / 3)


def test_events_are_counted_once_whatever_the_cursor_they_are_read_from() -> None:
    state = PortState(width_s=int(DAY))
    assert not state.seen("mat", 10)
    assert state.seen("mat", 10) and state.seen("mat", 9)
    assert not state.seen("mat", 11)
    assert not state.run_seen("run-a")
    assert state.run_seen("run-a")


def test_the_state_survives_json_and_is_rebucketed_when_the_window_changes(orders: PortSlo) -> None:
    state = PortState(width_s=orders.width_s, accrued_to=T0)
    state.published(orders, T0, rows=500)
    state.publish_failed(T0 + HOUR, "boom")
    state.checked("c", T0, True, True, "c")
    again = PortState.from_json(json.loads(state.dumps()), orders.width_s)
    assert again.to_json() == state.to_json()
    hourly = PortState.from_json(json.loads(state.dumps()), int(HOUR))
    counted = budget.totals(hourly.buckets, T0 + HOUR, DAY, int(HOUR))
    assert counted[budget.PUBLISH_OK] == 1 and counted[budget.PUBLISH_FAILED] == 1


# --- alert messages and delivery ----------------------------------------------------------------------------


def note(orders: PortSlo, kind: str = "breach") -> dict[str, Any]:
    change = alerts.Change(
        "availability", kind, "last publish failed: blocking check", orders.target_text("availability"), T0
    )
    return alerts.notification(orders, [change], ["sales.sales"], T0 + HOUR)


def test_a_message_names_product_port_slo_value_owner_link_and_consumers(orders: PortSlo) -> None:
    routing = alerts.AlertRouting(dagster_url="https://dagster.example.com")
    text = alerts.render(note(orders), routing)
    assert text.splitlines()[0] == "\U0001f534 SLO breach: sales.orders v1 (Orders)"
    assert "availability: last publish failed: blocking check" in text
    assert "target: 99% of publishes succeed over 30d" in text
    assert "team sales_data, steward ana.lopez@example.com" in text
    assert "https://dagster.example.com/assets/sales/orders/v1" in text
    assert "Affected consumers: sales.sales" in text
    recovery = alerts.render(note(orders, "recovery"), routing)
    assert recovery.startswith("\u2705 SLO recovered") and "recovered after 1h:" in recovery


def test_routing_is_read_from_the_environment_when_asked_not_at_import() -> None:
    routing = alerts.AlertRouting.from_env(
        {"MESH_ALERT_WEBHOOK_URL": "http://hook", "MESH_DAGSTER_URL": "http://d/", "MESH_ALERT_TRIES": "5"}
    )
    assert (routing.webhook_url, routing.dagster_url, routing.tries) == ("http://hook", "http://d", 5)
    assert alerts.AlertRouting.from_env({}).dagster_url == "http://localhost:3000"


@pytest.mark.parametrize(
    ("kind", "channel", "env", "expected"),
    [
        ("slack", "#sales-data", {}, alerts.LogNotifier("no Slack token configured (set MESH_SLACK_TOKEN)")),
        (
            "slack",
            "#sales-data",
            {"MESH_SLACK_TOKEN": "xoxb-1"},
            alerts.SlackNotifier("xoxb-1", "#sales-data"),
        ),
        ("webhook", "https://hooks.example.com/x", {}, alerts.WebhookNotifier("https://hooks.example.com/x")),
        (
            "webhook",
            "#not-a-url",
            {},
            alerts.LogNotifier("support.channel '#not-a-url' is not an http(s) URL"),
        ),
        ("log", "#x", {}, alerts.LogNotifier()),
        ("slack", "#x", {"MESH_ALERT_WEBHOOK_URL": "http://all"}, alerts.WebhookNotifier("http://all")),
    ],
)
def test_alerts_go_to_the_products_support_channel_unless_the_platform_overrides(
    orders: PortSlo, kind: str, channel: str, env: dict[str, str], expected: alerts.Notifier
) -> None:
    entry = note(orders)
    entry["support"] = {"kind": kind, "channel": channel}
    assert alerts.route(entry, alerts.AlertRouting.from_env(env)) == expected


class RecordingLog:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def info(self, msg: str) -> None:
        self.lines.append(("info", msg))

    def warning(self, msg: str) -> None:
        self.lines.append(("warning", msg))

    def error(self, msg: str) -> None:
        self.lines.append(("error", msg))


class FlakyNotifier:
    """Fails `failures` times (per destination), then delivers."""

    def __init__(self, destination: str, failures: int, retryable: bool = True) -> None:
        self.destination = destination
        self.failures = failures
        self.retryable = retryable
        self.sent: list[str] = []
        self.calls = 0

    def send(self, entry: Mapping[str, Any], routing: alerts.AlertRouting, log: Any) -> None:
        self.calls += 1
        if self.failures > 0:
            self.failures -= 1
            raise alerts.DeliveryError("HTTP 500", retryable=self.retryable)
        self.sent.append(entry["id"])


def test_delivery_retries_with_backoff_and_keeps_what_failed_in_order(orders: PortSlo) -> None:
    routing = alerts.AlertRouting(tries=3, backoff_s=0.5)
    sleeps: list[float] = []
    hook = FlakyNotifier("hook", failures=2)
    first, second = note(orders), {**note(orders), "id": "second"}
    delivery = alerts.deliver([first, second], routing, RecordingLog(), lambda *_: hook, sleeps.append)
    assert hook.sent == [first["id"], "second"]
    assert sleeps == [0.5, 1.0]  # exponential backoff before the 2nd and 3rd tries
    assert delivery.pending == []

    dead = FlakyNotifier("dead", failures=99)
    log = RecordingLog()
    delivery = alerts.deliver([first, second], routing, log, lambda *_: dead, lambda _: None)
    assert dead.calls == 3  # the second alert is not tried against a destination that just failed
    assert [n["id"] for n in delivery.pending] == [first["id"], "second"]
    assert delivery.pending[0]["attempts"] == 1 and delivery.pending[0]["last_error"] == "HTTP 500"
    assert any("retrying on the next tick" in msg for _, msg in log.lines)


def test_one_dead_destination_does_not_hold_back_alerts_to_others(orders: PortSlo) -> None:
    dead, alive = FlakyNotifier("dead", failures=99), FlakyNotifier("alive", failures=0)
    entries = [{**note(orders), "id": f"n{i}", "to": "dead" if i % 2 else "alive"} for i in range(4)]
    delivery = alerts.deliver(
        entries,
        alerts.AlertRouting(tries=2, backoff_s=0),
        RecordingLog(),
        lambda entry, _: dead if entry["to"] == "dead" else alive,
        lambda _: None,
    )
    assert alive.sent == ["n0", "n2"]
    assert [n["id"] for n in delivery.pending] == ["n1", "n3"]


def test_a_client_error_is_not_retried_in_the_tick_but_kept(orders: PortSlo) -> None:
    refusing = FlakyNotifier("hook", failures=1, retryable=False)
    delivery = alerts.deliver(
        [note(orders)], alerts.AlertRouting(tries=3), RecordingLog(), lambda *_: refusing, lambda _: None
    )
    assert refusing.calls == 1
    assert len(delivery.pending) == 1


def test_the_outbox_is_bounded_and_says_so_loudly(orders: PortSlo) -> None:
    dead = FlakyNotifier("dead", failures=999)
    log = RecordingLog()
    entries = [{**note(orders), "id": f"n{i}"} for i in range(5)]
    delivery = alerts.deliver(
        entries, alerts.AlertRouting(tries=1, max_outbox=3), log, lambda *_: dead, lambda _: None
    )
    assert [n["id"] for n in delivery.pending] == ["n2", "n3", "n4"]
    assert delivery.dropped == 2
    assert any(level == "error" and "dropping" in msg for level, msg in log.lines)


def test_an_unconfigured_channel_is_logged_with_a_loud_warning(orders: PortSlo) -> None:
    log = RecordingLog()
    delivery = alerts.deliver([note(orders)], alerts.AlertRouting(), log)  # slack, no token
    assert len(delivery.delivered) == 1
    [(level, message)] = log.lines
    assert level == "warning"
    assert "SLO ALERT NOT DELIVERED to slack #sales-data" in message and "MESH_SLACK_TOKEN" in message
    assert "sales.orders v1" in message


# --- `mesh slo` ---------------------------------------------------------------------------------------------


@pytest.fixture
def published_orders(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A private Dagster instance where sales.orders v1 published twice and failed once."""
    shm = Path("/dev/shm")
    home = Path(tempfile.mkdtemp(prefix="mesh-slo-", dir=shm if shm.is_dir() else tmp_path))
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("MESH_ROOT", str(REPO))
    key = dg.AssetKey(["sales", "orders", "v1"])
    with dg.DagsterInstance.get() as instance:
        for fail, rows in [(False, 1000), (True, 0), (False, 1050)]:
            dg.materialize([stub_port(key, fail, rows)], instance=instance, raise_on_error=False)
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """A group, as in `mesh`, so the verb is called by name."""

    register(app)
    return app


def test_mesh_slo_json_reports_every_port_with_status_sli_budget_and_last_breach(
    published_orders: Path, cli: typer.Typer
) -> None:
    result = CliRunner().invoke(cli, ["slo", "--json"])
    assert result.exit_code == 0, result.output
    report = {p["port"]: p for p in json.loads(result.output)["ports"]}
    assert set(report) == set(port_slos(load_registry(REPO)))

    orders = report["sales/orders/v1"]
    assert orders["rows"] == 1050 and orders["window"] == "30d"
    availability = orders["slos"]["availability"]
    assert availability["sli"] == pytest.approx(2 / 3)
    assert availability["budget_left"] == -1.0
    assert availability["status"] == "exhausted"
    assert availability["last_breach"] is not None
    assert orders["slos"]["quality"]["sli"] == pytest.approx(2 / 3)
    assert orders["slos"]["volume"] == {**orders["slos"]["volume"], "sli": 1.0, "status": "ok"}
    assert orders["freshness_state"] == "PASS"
    assert orders["slos"]["freshness"]["status"] == "ok"

    never = report["commercial_analytics/sales_forecast/v0"]
    assert {s["status"] for s in never["slos"].values()} == {"no data"}
    assert never["slos"]["freshness"]["current"] == "UNKNOWN: never published"


def test_mesh_slo_prints_a_table_and_strict_fails_on_an_exhausted_budget(
    published_orders: Path, cli: typer.Typer
) -> None:
    result = CliRunner().invoke(cli, ["slo", "--domain", "sales"])
    assert result.exit_code == 0, result.output
    assert "sales/orders/v1" in result.output and "customers/" not in result.output
    assert "exhausted" in result.output and "66.7%" in result.output
    assert CliRunner().invoke(cli, ["slo", "--strict", "--domain", "sales"]).exit_code == 1
