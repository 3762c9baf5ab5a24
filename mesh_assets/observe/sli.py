"""Service-level indicators of output ports: what each spec promises, and what was measured against it.

`PortSlo` is the promise, derived from the spec alone (targets, window, freshness policy, row bounds,
owner, support channel). `PortState` is the measurement: a port's SLI counters in time buckets over the
window plus the latest facts (last publish, last failure, latest result of each check, freshness state,
data time). It is built by applying events in the order the event log delivers them, and serializes to a
small JSON document, which is how it survives a daemon restart (it rides on the SLI observations the
monitor records on the port; see `sensors.py`).

Four SLOs per port, each with a target over the spec's `slos.window`:

| SLO | good / bad | target |
|---|---|---|
| freshness | seconds the port was fresh (PASS/WARN) / stale (FAIL) | `FRESHNESS_TARGET` (no spec field yet) |
| availability | publish attempts that published / whose step failed | `slos.availability` |
| quality | blocking check evaluations passed / failed | `slos.quality_pass_rate` |
| volume | publishes with a healthy row count / an anomalous one | `slos.quality_pass_rate` |
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from mesh_assets.observe import budget
from mesh_assets.product import addressing
from mesh_assets.product.freshness import freshness_state, stale_from
from mesh_assets.product.registry import Registry
from mesh_assets.product.spec import FreshnessSlo, Status, parse_duration

FRESHNESS_TARGET = 0.99
"""Share of the window a port must be fresh. The spec has no field for it (`slos.freshness` says *how*
fresh, not how often); 99% of the time is the platform default until it does."""
SLOS = ("freshness", "availability", "quality", "volume")
FRESH_STATES = {"PASS", "WARN"}
"""Freshness states that count as fresh time (WARN is still inside the promise)."""
JUDGED_STATES = {"PASS", "WARN", "FAIL"}
"""Daemon states that judge the port; with UNKNOWN or NOT_APPLICABLE the spec's policy is applied."""
RECENT_RUNS = 16
"""Run ids remembered per port so a run's outcome is never counted twice."""
TEXT_LIMIT = 300
"""Longest observed-value text kept (failure messages can be long)."""


@dataclass(frozen=True)
class PortSlo:
    """What a port promises, from its product's spec: the SLO targets and who to tell."""

    key: dg.AssetKey
    product: str
    """`<domain>.<product>`."""
    port: str
    """`v<major>`."""
    version: str
    title: str
    owner_team: str
    steward: str
    support_kind: str
    support_channel: str
    window: str
    window_s: float
    freshness: FreshnessSlo
    targets: dict[str, float]
    min_rows: int
    max_rows: int | None
    event_time: str | None
    relation: addressing.Relation

    @property
    def name(self) -> str:
        """The asset key as a path, `sales/orders/v1`: the port's id in cursors and outboxes."""
        return self.key.to_user_string()

    @property
    def width_s(self) -> int:
        """Bucket width of the port's window."""
        return budget.bucket_seconds(self.window_s)

    def target_text(self, slo: str) -> str:
        """The promise in words, e.g. `99% of publishes succeed over 30d`."""
        percent = f"{self.targets[slo] * 100:g}%"
        what = {
            "freshness": f"fresh {percent} of the time ({self.freshness_promise()})",
            "availability": f"{percent} of publishes succeed",
            "quality": f"{percent} of check evaluations pass",
            "volume": f"{percent} of publishes have a healthy row count",
        }[slo]
        return f"{what} over {self.window}"

    def freshness_promise(self) -> str:
        """`max age 24h` or `updated by cron 0 6 * * * (UTC)`."""
        if self.freshness.cron:
            return f"updated by cron {self.freshness.cron} ({self.freshness.cron_timezone})"
        return f"max age {self.freshness.max_age}"


def port_slos(registry: Registry) -> dict[str, PortSlo]:
    """Every served output port of the mesh, by asset key path. Retired ports are no longer promised."""
    found: dict[str, PortSlo] = {}
    for product in sorted(registry.products.values(), key=lambda p: p.key):
        spec = product.spec
        for port in spec.output_ports:
            if spec.port_status(port) == Status.RETIRED:
                continue
            slos = spec.slos
            slo = PortSlo(
                key=addressing.port_key(spec.domain, spec.name, port.major),
                product=spec.key,
                port=f"v{port.major}",
                version=port.version,
                title=spec.title,
                owner_team=spec.owner.team,
                steward=spec.owner.steward,
                support_kind=spec.support.kind,
                support_channel=spec.support.channel,
                window=slos.window,
                window_s=parse_duration(slos.window).total_seconds(),
                freshness=slos.freshness,
                targets={
                    "freshness": FRESHNESS_TARGET,
                    "availability": slos.availability,
                    "quality": slos.quality_pass_rate,
                    # Volume is a data-quality indicator: it shares the quality target.
                    "volume": slos.quality_pass_rate,
                },
                min_rows=port.quality.row_count.min,
                max_rows=port.quality.row_count.max,
                event_time=port.event_time,
                relation=addressing.published(spec, port),
            )
            found[slo.name] = slo
    return found


@dataclass
class CheckResult:
    """The latest evaluation of one check of a port."""

    passed: bool
    blocking: bool
    at: float
    text: str


@dataclass
class PortState:
    """What was measured on one port: window counters and latest facts. JSON-serializable."""

    width_s: int
    buckets: dict[int, list[float]] = field(default_factory=dict)
    accrued_to: float | None = None
    """Freshness time is counted up to here."""
    daemon: bool = False
    """The freshness daemon reports this port's state; otherwise it is derived from publishes."""
    fresh_state: str | None = None
    fresh_since: float | None = None
    last_publish: float | None = None
    rows: int | None = None
    volume_ok: bool | None = None
    volume_text: str = ""
    last_failure: float | None = None
    failure_text: str = ""
    checks: dict[str, CheckResult] = field(default_factory=dict)
    data_time: float | None = None
    last_breach: dict[str, float] = field(default_factory=dict)
    through: dict[str, int] = field(default_factory=dict)
    """Stream -> storage id of the last event applied (events at or below it are already counted)."""
    runs: list[str] = field(default_factory=list)
    """Recent runs whose outcome (failures, check results) is counted."""
    observed_at: float | None = None
    """When the monitor last recorded this state as an observation."""

    # --- applying events ---------------------------------------------------------------------------

    def seen(self, stream: str, storage_id: int | None) -> bool:
        """Whether an event of `stream` is already counted; marks it counted otherwise."""
        if storage_id is None:
            return False
        if storage_id <= self.through.get(stream, -1):
            return True
        self.through[stream] = storage_id
        return False

    def run_seen(self, run_id: str) -> bool:
        """Whether a run's outcome is already counted; marks it counted otherwise."""
        if run_id in self.runs:
            return True
        self.runs = [*self.runs[-(RECENT_RUNS - 1) :], run_id]
        return False

    def published(self, slo: PortSlo, at: float, rows: int | None) -> None:
        """A successful publish (a materialization of the port)."""
        if self.derived:
            # Derived freshness: the time up to this publish is judged against the previous one.
            self.accrue(slo, at)
        budget.add(self.buckets, at, budget.PUBLISH_OK, 1, self.width_s)
        if rows is not None:
            ok, text = budget.judge_volume(rows, self.rows, slo.min_rows, slo.max_rows)
            budget.add(self.buckets, at, budget.VOLUME_OK if ok else budget.VOLUME_BAD, 1, self.width_s)
            if not ok:
                self.breach("volume", at)
            self.rows, self.volume_ok, self.volume_text = rows, ok, text
        self.last_publish = max(at, self.last_publish or at)

    def publish_failed(self, at: float, reason: str) -> None:
        """A publish attempt whose step failed (e.g. a blocking check stopped it)."""
        budget.add(self.buckets, at, budget.PUBLISH_FAILED, 1, self.width_s)
        if self.last_failure is None or at >= self.last_failure:
            self.last_failure, self.failure_text = at, reason[:TEXT_LIMIT]
        self.breach("availability", at)

    def checked(self, name: str, at: float, passed: bool, blocking: bool, text: str) -> None:
        """One evaluation of one of the port's checks.

        Only blocking checks count towards the quality SLO: a warn-severity rule informs (it is shown
        with the port's checks) but must not spend the error budget or page the owner.
        """
        latest = self.checks.get(name)
        if latest is None or at >= latest.at:
            self.checks[name] = CheckResult(passed, blocking, at, text[:TEXT_LIMIT])
        if not blocking:
            return
        budget.add(self.buckets, at, budget.CHECK_PASSED if passed else budget.CHECK_FAILED, 1, self.width_s)
        if not passed:
            self.breach("quality", at)

    def freshness_changed(self, slo: PortSlo, at: float, previous: str, new: str) -> None:
        """The freshness daemon moved the port from `previous` to `new` at `at`."""
        if self.daemon and self.fresh_state is None:
            self.fresh_state = previous  # replaying a window: it held since before counting started
        self.accrue(slo, at)  # up to the change, by whatever judged the port until now
        self.daemon = True
        self.fresh_state, self.fresh_since = new, at
        if new == "FAIL":
            self.breach("freshness", at)

    def breach(self, slo: str, at: float) -> None:
        """Remember the latest time an SLO saw a bad event."""
        self.last_breach[slo] = max(at, self.last_breach.get(slo, at))

    # --- time --------------------------------------------------------------------------------------

    def accrue(self, slo: PortSlo, until: float) -> None:
        """Count freshness time from `accrued_to` up to `until` as fresh or stale."""
        start = self.accrued_to
        if start is None or until <= start:
            self.accrued_to = until if start is None else start
            return
        self.accrued_to = until
        if not self.derived:
            self._count(self.fresh_state, start, until)
        elif self.last_publish is not None:
            stale_at = stale_from(slo.freshness, self.last_publish)
            if stale_at is None:
                # Without the daemon a cron deadline is sampled at each evaluation.
                self._count(freshness_state(slo.freshness, self.last_publish, until), start, until)
            else:
                self._count("PASS", start, min(until, stale_at))
                if until > stale_at:
                    self._count("FAIL", max(start, stale_at), until)
                    if start <= stale_at:  # the port went stale in this interval
                        self.breach("freshness", stale_at)

    def _count(self, state: str | None, start: float, end: float) -> None:
        if end <= start or state is None:
            return
        if state in FRESH_STATES:
            budget.add_interval(self.buckets, start, end, budget.FRESH_S, self.width_s)
        elif state == "FAIL":
            budget.add_interval(self.buckets, start, end, budget.STALE_S, self.width_s)

    def advance(self, slo: PortSlo, now: float) -> None:
        """Bring time-based counters up to `now` and forget what left the window."""
        self.accrue(slo, now)
        budget.prune(self.buckets, now, slo.window_s, self.width_s)

    @property
    def derived(self) -> bool:
        """Freshness is derived from the publishes: the daemon has not judged the port (it is not
        running, has not evaluated it yet, or reports UNKNOWN / NOT_APPLICABLE)."""
        return not (self.daemon and self.fresh_state in JUDGED_STATES)

    def freshness_now(self, slo: PortSlo, now: float) -> str:
        """The port's freshness state now: the daemon's, else derived from the last publish."""
        if not self.derived:
            assert self.fresh_state is not None
            return self.fresh_state
        return freshness_state(slo.freshness, self.last_publish, now)

    # --- serialization -----------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """A compact JSON document (floats rounded: this is stored on every SLI observation)."""
        return {
            "w": self.width_s,
            "b": {str(i): [round(v, 1) for v in c] for i, c in sorted(self.buckets.items())},
            "a": self.accrued_to,
            "d": self.daemon,
            "fs": self.fresh_state,
            "ff": self.fresh_since,
            "p": self.last_publish,
            "r": self.rows,
            "vo": self.volume_ok,
            "vt": self.volume_text,
            "f": self.last_failure,
            "ft": self.failure_text,
            "c": {n: [c.passed, c.blocking, c.at, c.text] for n, c in sorted(self.checks.items())},
            "dt": self.data_time,
            "lb": self.last_breach,
            "th": self.through,
            "ru": self.runs,
            "o": self.observed_at,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], width_s: int) -> PortState:
        """The state a `to_json` document describes, re-bucketed if the window changed since."""
        state = cls(
            width_s=width_s,
            accrued_to=data.get("a"),
            daemon=bool(data.get("d")),
            fresh_state=data.get("fs"),
            fresh_since=data.get("ff"),
            last_publish=data.get("p"),
            rows=data.get("r"),
            volume_ok=data.get("vo"),
            volume_text=data.get("vt", ""),
            last_failure=data.get("f"),
            failure_text=data.get("ft", ""),
            checks={n: CheckResult(*v) for n, v in data.get("c", {}).items()},
            data_time=data.get("dt"),
            last_breach=dict(data.get("lb", {})),
            through={k: int(v) for k, v in data.get("th", {}).items()},
            runs=list(data.get("ru", [])),
            observed_at=data.get("o"),
        )
        stored_width = int(data.get("w", width_s))
        for index, counters in data.get("b", {}).items():
            # A changed `slos.window` changes the bucket width: move each count to the new bucket
            # holding its old bucket's start.
            start = int(index) * stored_width
            for slot, value in enumerate(counters):
                if value:
                    budget.add(state.buckets, start, slot, value, width_s)
        return state

    def dumps(self) -> str:
        """`to_json` as a string."""
        return json.dumps(self.to_json(), separators=(",", ":"))


@dataclass(frozen=True)
class Evaluation:
    """A port's SLOs judged at one moment, with what a person reads about each."""

    judgements: dict[str, budget.Judgement]
    observed: dict[str, str]
    freshness_state: str
    age_s: float | None
    """Seconds since the last publish."""
    data_lag_s: float | None
    """Seconds between now and the newest data (`event_time`), when measured."""


def evaluate(slo: PortSlo, state: PortState, now: float) -> Evaluation:
    """Judge every SLO of a port from its state (call `state.advance(slo, now)` first)."""
    counters = budget.totals(state.buckets, now, slo.window_s, state.width_s)
    fresh = state.freshness_now(slo, now)
    age = now - state.last_publish if state.last_publish is not None else None
    lag = now - state.data_time if state.data_time is not None else None
    failing_checks = sorted((name, c) for name, c in state.checks.items() if c.blocking and not c.passed)
    publish_failing = state.last_failure is not None and (
        state.last_publish is None or state.last_failure > state.last_publish
    )
    breached = {
        "freshness": fresh == "FAIL",
        "availability": publish_failing,
        "quality": bool(failing_checks),
        "volume": state.volume_ok is False,
    }
    observed = {
        "freshness": _freshness_text(slo, fresh, age, lag),
        "availability": (
            f"last publish failed: {state.failure_text}"
            if publish_failing
            else (
                f"last published {budget.format_duration(age)} ago" if age is not None else "never published"
            )
        ),
        "quality": (
            "blocking check failed: " + "; ".join(c.text or name for name, c in failing_checks)
            if failing_checks
            else (
                f"blocking checks passing ({len(state.checks)} checked)"
                if state.checks
                else "no check results"
            )
        ),
        "volume": state.volume_text or "no row count published",
    }
    recent = budget.totals(state.buckets, now, slo.window_s * budget.FAST_BURN_SPAN, state.width_s)
    judgements = {
        name: budget.judge(name, slo.targets[name], counters, breached[name], recent) for name in SLOS
    }
    return Evaluation(judgements, observed, fresh, age, lag)


def _freshness_text(slo: PortSlo, state: str, age: float | None, lag: float | None) -> str:
    text = state
    if age is not None:
        text += f": last published {budget.format_duration(age)} ago ({slo.freshness_promise()})"
    else:
        text += ": never published"
    if lag is not None and slo.event_time:
        text += f"; newest {slo.event_time} is {budget.format_duration(lag)} old"
    return text


def observation_metadata(slo: PortSlo, state: PortState, evaluation: Evaluation) -> dict[str, Any]:
    """Metadata of an SLI observation: floats the Dagster UI plots, a summary, and the state itself."""
    metadata: dict[str, Any] = {}
    for name, judgement in evaluation.judgements.items():
        if judgement.sli is not None:
            metadata[f"mesh/sli/{name}"] = dg.MetadataValue.float(round(judgement.sli, 6))
        if judgement.budget_left is not None:
            metadata[f"mesh/budget_left/{name}"] = dg.MetadataValue.float(round(judgement.budget_left, 6))
    if evaluation.age_s is not None:
        metadata["mesh/sli/hours_since_publish"] = dg.MetadataValue.float(round(evaluation.age_s / 3600, 3))
    if state.rows is not None:
        metadata["mesh/sli/rows"] = dg.MetadataValue.int(state.rows)
    metadata["mesh/slo_status"] = dg.MetadataValue.text(
        ", ".join(f"{n}: {j.status}" for n, j in evaluation.judgements.items())
    )
    metadata[STATE_KEY] = dg.MetadataValue.json(state.to_json())
    return metadata


STATE_KEY = "mesh/slo_state"
"""Metadata key of the monitor's state on its SLI observations (how the state survives a restart)."""
DATA_TIME_KEY = "mesh/data_time"
"""Metadata key (epoch seconds) of the data-time observations the data-time sensor records."""
