"""SLO alerts: what a breach or recovery message says, where it goes, and delivering it reliably.

The platform configures alerting once, here: message templates (`AlertTemplates`) and routing
(`AlertRouting`, read from the environment when a tick runs, never at import). Each product only names
its support channel in its spec (`support.kind` + `support.channel`):

| `support.kind` | delivered by | when it cannot be |
|---|---|---|
| `slack` | dagster-slack's `SlackResource` (`chat.postMessage`) | no `MESH_SLACK_TOKEN`: logged, loudly |
| `webhook` | JSON `POST` to the URL in `support.channel` | not an http(s) URL: logged, loudly |
| `email` | not configured in the platform yet | logged, loudly |
| `log` | the sensor's log (warning level) | - |

`MESH_ALERT_WEBHOOK_URL` overrides all of them: every alert goes to that one webhook (a platform-wide
alert router, or a test receiver).

Delivery is at-least-once. A notification is retried with exponential backoff inside the tick (bounded
tries and a per-tick time budget); if it still fails it stays in the sensor cursor's outbox and is retried
on the next tick, in order. A destination that failed is not tried again in the same tick, so one dead
receiver costs one bounded retry sequence per tick and never delays alerts to other destinations. A
throttled destination (HTTP 429, from Slack or a webhook) is waited for as long as its `Retry-After` asks,
but never past the tick's budget: a longer wait leaves the alert for the next tick, saying so, so a huge
`Retry-After` never stalls the sensor. The webhook body carries a stable `id` so a receiver can drop the
rare duplicate (a daemon crash between delivering and saving the cursor).
"""

from __future__ import annotations

import email.utils
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from mesh_assets.observe.budget import format_duration
from mesh_assets.observe.sli import PortSlo

DEFAULT_DAGSTER_URL = "http://localhost:3000"


class Log(Protocol):
    """The part of a Dagster logger alerting uses."""

    def info(self, msg: str) -> None: ...
    def warning(self, msg: str) -> None: ...
    def error(self, msg: str) -> None: ...


@dataclass(frozen=True)
class AlertTemplates:
    """Message templates (`str.format` fields are listed in `render`). Configured once, for everyone."""

    breach_header: str = "\U0001f534 SLO breach: {product} {port} ({title})"
    recovery_header: str = "\u2705 SLO recovered: {product} {port} ({title})"
    breach_line: str = "\u2022 {slo}: {observed} (target: {target})"
    recovery_line: str = "\u2022 {slo} recovered after {duration}: {observed}"
    footer: str = (
        "Owner: team {owner_team}, steward {steward}\nAffected consumers: {consumers}\nAsset: {asset_url}"
    )


@dataclass(frozen=True)
class AlertRouting:
    """Where alerts go and how hard delivery tries. `from_env` reads it when a tick runs."""

    dagster_url: str = DEFAULT_DAGSTER_URL
    webhook_url: str | None = None
    """Overrides every product's channel when set (`MESH_ALERT_WEBHOOK_URL`)."""
    slack_token: str | None = None
    timeout_s: float = 5.0
    tries: int = 3
    backoff_s: float = 0.5
    """First retry delay; doubled for each further try."""
    delivery_budget_s: float = 20.0
    """Most time one tick spends delivering; the rest waits in the outbox (a tick must stay short)."""
    max_outbox: int = 500
    templates: AlertTemplates = field(default_factory=AlertTemplates)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AlertRouting:
        """Routing from `MESH_DAGSTER_URL`, `MESH_ALERT_WEBHOOK_URL`, `MESH_SLACK_TOKEN`,
        `MESH_ALERT_TIMEOUT_S`, `MESH_ALERT_TRIES`, `MESH_ALERT_BACKOFF_S`, `MESH_ALERT_BUDGET_S`."""
        env = os.environ if environ is None else environ
        return cls(
            dagster_url=(env.get("MESH_DAGSTER_URL") or DEFAULT_DAGSTER_URL).rstrip("/"),
            webhook_url=env.get("MESH_ALERT_WEBHOOK_URL") or None,
            slack_token=env.get("MESH_SLACK_TOKEN") or None,
            timeout_s=float(env.get("MESH_ALERT_TIMEOUT_S", cls.timeout_s)),
            tries=max(1, int(env.get("MESH_ALERT_TRIES", cls.tries))),
            backoff_s=float(env.get("MESH_ALERT_BACKOFF_S", cls.backoff_s)),
            delivery_budget_s=float(env.get("MESH_ALERT_BUDGET_S", cls.delivery_budget_s)),
        )

    def asset_url(self, port: str) -> str:
        """Link to the port in the Dagster UI: `<MESH_DAGSTER_URL>/assets/<key path>`."""
        path = "/".join(urllib.parse.quote(part, safe="") for part in port.split("/"))
        return f"{self.dagster_url}/assets/{path}"


@dataclass(frozen=True)
class Change:
    """One SLO condition of a port that started or stopped being breached."""

    slo: str
    """What broke, e.g. `freshness`, `availability`, `quality budget`."""
    state: str
    """`breach` or `recovery`."""
    observed: str
    target: str
    since: float
    """When the breach started (for a recovery: how long it lasted)."""


def notification(
    slo: PortSlo, changes: list[Change], consumers: list[str], now: float, environment: str | None = None
) -> dict[str, Any]:
    """The outbox entry for a port's changes in one tick (one message per port per tick, not per SLO).

    `environment` (`MESH_ENV` of the sensor's process): a non-prod one labels the message `[env]`.
    """
    kind = "breach" if any(c.state == "breach" for c in changes) else "recovery"
    extra = {"environment": environment} if environment else {}
    return {
        **extra,
        "id": f"{slo.name}@{now:.3f}",
        "kind": kind,
        "port": slo.name,
        "product": slo.product,
        "port_version": slo.port,
        "version": slo.version,
        "title": slo.title,
        "owner": {"team": slo.owner_team, "steward": slo.steward},
        "support": {"kind": slo.support_kind, "channel": slo.support_channel},
        "consumers": consumers,
        "changes": [asdict(c) for c in changes],
        "at": now,
        "attempts": 0,
    }


RENDERERS: dict[str, Callable[[Mapping[str, Any], AlertRouting], str]] = {}
"""Renderers of other notification kinds, registered by the module that raises them (`sunset`): those
alerts share the routing, not the wording."""


def render(note: Mapping[str, Any], routing: AlertRouting) -> str:
    """The message text of a notification; from a non-prod environment, labelled `[env] ` first.

    The label keeps a sandbox's alert from being taken for production's when both reach one channel.
    """
    other = RENDERERS.get(str(note.get("kind")))
    text = other(note, routing) if other is not None else _render_slo(note, routing)
    environment = note.get("environment")
    return f"[{environment}] {text}" if environment and environment != "prod" else text


def _render_slo(note: Mapping[str, Any], routing: AlertRouting) -> str:
    templates = routing.templates
    fields = {
        "product": note["product"],
        "port": note["port_version"],
        "title": note["title"],
        "owner_team": note["owner"]["team"],
        "steward": note["owner"]["steward"],
        "consumers": ", ".join(note["consumers"]) or "none",
        "asset_url": routing.asset_url(note["port"]),
    }
    header = templates.breach_header if note["kind"] == "breach" else templates.recovery_header
    lines = [header.format(**fields)]
    for change in note["changes"]:
        template = templates.breach_line if change["state"] == "breach" else templates.recovery_line
        lines.append(
            template.format(
                **fields,
                slo=change["slo"],
                observed=change["observed"],
                target=change["target"],
                duration=format_duration(note["at"] - change["since"]),
                since=datetime.fromtimestamp(change["since"], UTC).isoformat(timespec="seconds"),
            )
        )
    lines.append(templates.footer.format(**fields))
    return "\n".join(lines)


def payload(note: Mapping[str, Any], routing: AlertRouting) -> dict[str, Any]:
    """The JSON body a webhook receives: the notification, its text and the asset link."""
    body = {k: v for k, v in note.items() if k not in {"attempts", "last_error"}}
    body["asset_url"] = routing.asset_url(note["port"])
    body["text"] = render(note, routing)
    body["sent_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return body


class DeliveryError(Exception):
    """A notifier could not deliver; `retryable` says whether trying again can help, and `retry_after_s`
    how long the destination asked to be left alone first (its `Retry-After`), if it said."""

    def __init__(self, message: str, retryable: bool = True, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after_s = retry_after_s


def retry_after_seconds(headers: Mapping[str, Any] | None, now: datetime | None = None) -> float | None:
    """A response's `Retry-After` in seconds (delay-seconds or an HTTP-date), or None if absent or unreadable.

    `now` is for the HTTP-date form only (default: the current time); a date in the past is no wait.
    """
    if not headers:
        return None
    value = next((str(v) for k, v in headers.items() if str(k).lower() == "retry-after"), "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # an HTTP-date is GMT by definition
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class Notifier(Protocol):
    """Delivers one rendered notification to one destination."""

    destination: str

    def send(self, note: Mapping[str, Any], routing: AlertRouting, log: Log) -> None:
        """Deliver, or raise `DeliveryError`."""


@dataclass(frozen=True)
class WebhookNotifier:
    """POSTs the notification as JSON to a URL; any 2xx is delivered."""

    url: str

    @property
    def destination(self) -> str:
        return f"webhook {self.url}"

    def send(self, note: Mapping[str, Any], routing: AlertRouting, log: Log) -> None:
        request = urllib.request.Request(
            self.url,
            data=json.dumps(payload(note, routing)).encode(),
            headers={"Content-Type": "application/json", "User-Agent": "mesh-slo-alerts"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=routing.timeout_s) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            # Server errors, timeouts and throttling may pass; other client errors will not.
            raise DeliveryError(
                f"HTTP {exc.code}",
                retryable=exc.code >= 500 or exc.code in {408, 429},
                retry_after_s=retry_after_seconds(exc.headers) if exc.code in {429, 503} else None,
            ) from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}") from exc


@dataclass(frozen=True)
class SlackNotifier:
    """Posts the message to a Slack channel with dagster-slack's `SlackResource`."""

    token: str
    channel: str

    @property
    def destination(self) -> str:
        return f"slack {self.channel}"

    def send(self, note: Mapping[str, Any], routing: AlertRouting, log: Log) -> None:
        # Imported here: slack_sdk is only needed when a Slack alert is actually sent.
        from dagster_slack import SlackResource
        from slack_sdk.errors import SlackApiError

        client = SlackResource(token=self.token).get_client()
        client.timeout = int(max(1, routing.timeout_s))
        try:
            client.chat_postMessage(channel=self.channel, text=render(note, routing), unfurl_links=False)
        except SlackApiError as exc:
            status = getattr(exc.response, "status_code", 0) or 0
            raise DeliveryError(
                f"Slack API error {exc.response.get('error', status)}",
                retryable=status >= 500 or status == 429,
                # Slack rate limits per method and channel, and says for how long in Retry-After.
                retry_after_s=retry_after_seconds(getattr(exc.response, "headers", None))
                if status == 429
                else None,
            ) from exc
        except Exception as exc:  # network errors of every kind: retry
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc


@dataclass(frozen=True)
class LogNotifier:
    """Writes the message to the sensor's log; with a `reason`, as a loud warning that delivery is
    not configured (so a missing token is visible, not silent)."""

    reason: str | None = None

    @property
    def destination(self) -> str:
        return "log"

    def send(self, note: Mapping[str, Any], routing: AlertRouting, log: Log) -> None:
        text = render(note, routing)
        support = note["support"]
        if self.reason:
            log.warning(
                f"!!! SLO ALERT NOT DELIVERED to {support['kind']} {support['channel']}: {self.reason}. "
                f"Logged here instead !!!\n{text}"
            )
        else:
            log.warning(f"SLO alert for {support['channel']}:\n{text}")


def route(note: Mapping[str, Any], routing: AlertRouting) -> Notifier:
    """The notifier for a notification: the override webhook, else the product's support channel."""
    if routing.webhook_url:
        return WebhookNotifier(routing.webhook_url)
    kind, channel = note["support"]["kind"], note["support"]["channel"]
    if kind == "webhook":
        if urllib.parse.urlparse(channel).scheme in {"http", "https"}:
            return WebhookNotifier(channel)
        return LogNotifier(f"support.channel {channel!r} is not an http(s) URL")
    if kind == "slack":
        if routing.slack_token:
            return SlackNotifier(routing.slack_token, channel)
        return LogNotifier("no Slack token configured (set MESH_SLACK_TOKEN)")
    if kind == "email":
        return LogNotifier("e-mail delivery is not configured in the platform")
    return LogNotifier()


@dataclass
class Delivery:
    """Outcome of delivering an outbox in one tick."""

    delivered: list[dict[str, Any]] = field(default_factory=list)
    pending: list[dict[str, Any]] = field(default_factory=list)
    """Still undelivered, in order: the next outbox."""
    dropped: int = 0


def deliver(
    outbox: list[dict[str, Any]],
    routing: AlertRouting,
    log: Log,
    route_fn: Callable[[Mapping[str, Any], AlertRouting], Notifier] = route,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Delivery:
    """Deliver an outbox in order; never raises. What cannot be delivered now stays pending."""
    result = Delivery()
    deadline = clock() + routing.delivery_budget_s
    failed: set[str] = set()
    for note in outbox:
        try:
            notifier = route_fn(note, routing)
        except Exception as exc:  # a malformed entry must not block the outbox forever
            log.error(f"dropping an SLO alert that cannot be routed ({exc}): {note.get('id')}")
            result.dropped += 1
            continue
        if notifier.destination in failed or clock() >= deadline:
            result.pending.append(note)  # keep order: nothing overtakes an undelivered alert
            continue
        error = _send_with_retries(notifier, note, routing, log, sleep, clock, deadline)
        if error is None:
            result.delivered.append(note)
        else:
            failed.add(notifier.destination)
            note = {**note, "attempts": int(note.get("attempts", 0)) + 1, "last_error": error}
            log.warning(
                f"SLO alert {note['id']} to {notifier.destination} failed ({error}); "
                f"attempt {note['attempts']}, retrying on the next tick"
            )
            result.pending.append(note)
    if len(result.pending) > routing.max_outbox:
        result.dropped += len(result.pending) - routing.max_outbox
        log.error(
            f"!!! SLO alert outbox over {routing.max_outbox}: dropping the {result.dropped} oldest "
            "undelivered alerts. Fix the alert destination !!!"
        )
        result.pending = result.pending[-routing.max_outbox :]
    return result


def _send_with_retries(
    notifier: Notifier,
    note: Mapping[str, Any],
    routing: AlertRouting,
    log: Log,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    deadline: float,
) -> str | None:
    """Try up to `routing.tries` times with exponential backoff; the last error, or None if delivered.

    A destination's `Retry-After` lengthens the wait before the next try, within the tick's `deadline`:
    a longer one ends the tries, and the alert waits in the outbox for the next tick.
    """
    error = "not attempted"
    for attempt in range(routing.tries):
        retry_after: float | None = None
        try:
            notifier.send(note, routing, log)
            return None
        except DeliveryError as exc:
            error = str(exc)
            if not exc.retryable:
                return error
            retry_after = exc.retry_after_s
        except Exception as exc:  # a notifier bug must not crash the sensor
            error = f"{type(exc).__name__}: {exc}"
        delay = routing.backoff_s * (2**attempt)
        if attempt + 1 >= routing.tries:
            break
        if retry_after is not None:
            left = deadline - clock()
            if retry_after >= left:
                log.warning(
                    f"SLO alert {note.get('id')}: {notifier.destination} asked to wait {retry_after:g}s "
                    f"(Retry-After), longer than the {max(0.0, left):.0f}s left of this tick's delivery "
                    "budget: not waiting, it is retried on the next tick"
                )
                break
            log.info(
                f"SLO alert {note.get('id')}: {notifier.destination} asked to wait {retry_after:g}s "
                "(Retry-After); waiting before the next try"
            )
            delay = max(delay, retry_after)
        if clock() + delay >= deadline:
            break
        sleep(delay)
    return error
