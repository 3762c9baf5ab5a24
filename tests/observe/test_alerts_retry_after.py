"""A throttled alert destination's `Retry-After` is honoured, within the tick's delivery budget.

Slack (through slack_sdk's real client) and webhooks are throttled by the harness's real HTTP receiver on
loopback, answering 429 with `Retry-After`. Time is the injected sleep and clock `deliver` already takes:
nothing really sleeps, and no assertion depends on how fast the machine is.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from alert_harness import Receiver
from dagster_slack import SlackResource
from slack_sdk import WebClient

from mesh_assets.observe import alerts
from mesh_assets.observe.sli import PortSlo, port_slos
from mesh_assets.product.registry import load_registry

REPO = Path(__file__).resolve().parents[2]
T0 = 1_800_000_000.0


class ThrottlingReceiver(Receiver):
    """The harness's loopback receiver, answering its first `throttled` requests HTTP 429 with
    `Retry-After: <retry_after>` (and Slack's `ratelimited` body), then 200 with `{"ok": true}`, which
    both a webhook client and Slack's accept."""

    def __init__(self, throttled: int, retry_after: str) -> None:
        super().__init__()
        self.throttled = throttled
        self.retry_after = retry_after
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver._count:  # handlers run on concurrent threads
                    receiver.attempts += 1
                    throttle = receiver.throttled > 0
                    receiver.throttled -= throttle
                if throttle:
                    answer, status = b'{"ok": false, "error": "ratelimited"}', 429
                else:
                    receiver.bodies.append(body)
                    answer, status = b'{"ok": true, "channel": "C1", "ts": "1.0"}', 200
                self.send_response(status)
                if throttle:
                    self.send_header("Retry-After", receiver.retry_after)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:  # keep the test output clean
                pass

        self.server.RequestHandlerClass = Handler


class Clock:
    """The injected time: `sleep` moves `now` on and records what was asked."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


class RecordingLog:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def info(self, msg: str) -> None:
        self.lines.append(("info", msg))

    def warning(self, msg: str) -> None:
        self.lines.append(("warning", msg))

    def error(self, msg: str) -> None:
        self.lines.append(("error", msg))


@pytest.fixture(scope="module")
def orders() -> PortSlo:
    return port_slos(load_registry(REPO))["sales/orders/v1"]


def note(orders: PortSlo, support_kind: str, channel: str) -> dict[str, Any]:
    change = alerts.Change("availability", "breach", "last publish failed", "99%", T0)
    entry = alerts.notification(orders, [change], ["sales.sales"], T0)
    entry["support"] = {"kind": support_kind, "channel": channel}
    return entry


@contextmanager
def throttling(throttled: int, retry_after: str) -> Iterator[ThrottlingReceiver]:
    server = ThrottlingReceiver(throttled, retry_after)
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()


@pytest.fixture(params=["slack", "webhook"])
def via(request: pytest.FixtureRequest) -> str:
    """Deliver through Slack's client (pointed at the receiver) or as a plain webhook."""
    return str(request.param)


def send(
    via: str, receiver: ThrottlingReceiver, orders: PortSlo, monkeypatch: pytest.MonkeyPatch, budget_s: float
) -> tuple[alerts.Delivery, Clock, RecordingLog]:
    """One tick's delivery of one breach alert to the receiver, on the injected clock."""
    if via == "slack":
        # slack_sdk's own client and error handling, its API base moved from slack.com to the receiver.
        base = receiver.url.rsplit("/", 1)[0] + "/"
        monkeypatch.setattr(
            SlackResource, "get_client", lambda self: WebClient(token=self.token, base_url=base)
        )
        routing = alerts.AlertRouting(
            slack_token="xoxb-test", tries=3, backoff_s=0.5, delivery_budget_s=budget_s
        )
        entry = note(orders, "slack", "#sales-data")
    else:
        routing = alerts.AlertRouting(tries=3, backoff_s=0.5, delivery_budget_s=budget_s)
        entry = note(orders, "webhook", receiver.url)
    clock, log = Clock(), RecordingLog()
    delivery = alerts.deliver([entry], routing, log, sleep=clock.sleep, clock=clock)
    return delivery, clock, log


def test_a_throttled_destination_is_retried_after_the_wait_it_asked_for(
    via: str, orders: PortSlo, monkeypatch: pytest.MonkeyPatch
) -> None:
    with throttling(throttled=1, retry_after="7") as receiver:
        delivery, clock, log = send(via, receiver, orders, monkeypatch, budget_s=20)

        assert len(delivery.delivered) == 1 and delivery.pending == []
        assert receiver.attempts == 2 and len(receiver.bodies) == 1
        if via == "slack":  # it went through Slack's client: chat.postMessage's body
            assert receiver.bodies[0]["channel"] == "#sales-data"
    # Seven seconds, as asked, not the 0.5 s backoff of a first retry.
    assert clock.slept == [7.0]
    assert any(level == "info" and "asked to wait 7s (Retry-After)" in msg for level, msg in log.lines)


def test_a_retry_after_longer_than_the_ticks_budget_is_left_for_the_next_tick_saying_so(
    via: str, orders: PortSlo, monkeypatch: pytest.MonkeyPatch
) -> None:
    with throttling(throttled=99, retry_after="3600") as receiver:
        delivery, clock, log = send(via, receiver, orders, monkeypatch, budget_s=20)

        assert receiver.attempts == 1, "tried again before the destination's Retry-After"
    assert clock.slept == [], "the tick waited on a Retry-After it could not honour"
    assert delivery.delivered == [] and len(delivery.pending) == 1
    assert delivery.pending[0]["attempts"] == 1
    warnings = [msg for level, msg in log.lines if level == "warning"]
    assert any(
        "asked to wait 3600s (Retry-After), longer than the 20s left" in msg and "next tick" in msg
        for msg in warnings
    ), warnings


def test_a_retry_after_shorter_than_the_backoff_keeps_the_backoff(
    via: str, orders: PortSlo, monkeypatch: pytest.MonkeyPatch
) -> None:
    with throttling(throttled=1, retry_after="0") as receiver:
        delivery, clock, _ = send(via, receiver, orders, monkeypatch, budget_s=20)

        assert len(delivery.delivered) == 1
    assert clock.slept == [0.5]


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        ("1.5", 1.5),
        ("Thu, 15 Jan 2027 08:02:00 GMT", 120.0),  # an HTTP-date: until then
        ("Thu, 15 Jan 2027 07:00:00 GMT", 0.0),  # a date already past: no wait
        ("soon", None),
        ("", None),
    ],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(header: str, seconds: float | None) -> None:
    now = datetime(2027, 1, 15, 8, 0, tzinfo=UTC)
    assert alerts.retry_after_seconds({"retry-after": header}, now=now) == seconds
    assert alerts.retry_after_seconds({}, now=now) is None
