"""The SLO sensors of the `mesh` location: measure every port's SLIs and alert its owners.

`mesh_slo_monitor` (every 30 s, running by default), per tick:

1. reads what happened since its cursor with a fixed number of batched event-log queries (`feed.fetch`):
   publishes, freshness state changes from the freshness daemon, finished runs (failed publishes,
   check results), runless check results;
2. folds it into each port's `PortState` and judges the four SLOs (`sli.evaluate`);
3. compares the breached conditions with those open in the cursor: a newly breached one is one alert, a
   closed one is one recovery alert; an unchanged one is nothing (so no repeats on every tick);
4. delivers the outbox (`alerts.deliver`): undelivered alerts stay in the cursor for the next tick;
5. records an SLI observation on every port whose state changed (and once a day on the others), which
   the Dagster UI plots and which carries the state across restarts.

`mesh_slo_data_time` measures the newest `event_time` of each port after it is published (a
`MAX(<event_time>)` in the warehouse) and records it, with the data lag, as an observation on the port;
freshness alerts and `mesh slo` quote it.

State and restarts. The cursor is small JSON: high-water marks of the event streams, the open breaches
per port (only ports with one), and the outbox. The per-port SLI counters are kept in memory between
ticks (validated by a token the cursor carries) and persisted on the SLI observations; after a restart
(or any cursor/cache mismatch: `dagster-daemon` recycles managed code servers every minute or so) they
are reloaded from the latest observations and the events after the cursor's marks are applied again,
each event at most once per port (see `feed.apply`). Observations are returned in
`SensorResult.asset_events`, which the daemon writes before it saves the cursor.

Alerts are at-least-once: a crash between delivering and saving the cursor re-sends that tick's alerts
(each carries a stable `id` for receivers to deduplicate); nothing is lost.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import dagster as dg
from dagster import AssetRecordsFilter, DagsterEventType, EventRecordsFilter

from mesh_assets.infra.environment import env_name
from mesh_assets.infra.warehouse.base import Warehouse
from mesh_assets.observe import alerts, budget, feed
from mesh_assets.observe.cursor import VersionedCursor
from mesh_assets.observe.sli import (
    DATA_TIME_KEY,
    STATE_KEY,
    Evaluation,
    PortSlo,
    PortState,
    evaluate,
    observation_metadata,
)
from mesh_assets.product.registry import Registry
from mesh_assets.product.sql_text import quote_identifier

MONITOR = "mesh_slo_monitor"
DATA_TIME = "mesh_slo_data_time"
HEARTBEAT_S = 24 * 3600
"""Every port gets an SLI observation at least this often (plots stay current; restarts stay cheap)."""
REBUILD_SCAN_S = HEARTBEAT_S + 3600
"""After a restart, how far back the latest SLI observations are searched in one scan."""
SCAN_PAGE = 2000
DATA_TIME_LOCK_WAIT_S = 5.0
"""The data-time sensor waits at most this long for the DuckDB writer lock, then retries next tick."""


# --- cursor ----------------------------------------------------------------------------------------


@dataclass
class MonitorCursor(VersionedCursor):
    """The monitor's cursor: compact JSON, sparse in ports (only those with an open breach appear)."""

    VERSION = 1
    ON_RESET = "open breaches may alert again"
    SORT_KEYS = False  # written in field order since version 1
    token: str | None = None
    """Identifies the in-memory state this cursor was written with."""
    hwm: dict[str, int] = field(default_factory=dict)
    open: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    """Port -> breached condition -> [since, observed]: what owners were told is broken."""
    outbox: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> MonitorCursor:
        """The cursor stored as `{"v": 1, "t": token, "h": {...}, "open": {...}, "out": [...]}`."""
        return cls(
            token=data.get("t"),
            hwm={k: int(v) for k, v in data.get("h", {}).items()},
            open=data.get("open", {}),
            outbox=data.get("out", []),
        )

    def to_payload(self) -> dict[str, Any]:
        """The token as `t`, the high-water marks as `h`, the open breaches and the outbox as `out`."""
        return {"t": self.token, "h": self.hwm, "open": self.open, "out": self.outbox}


@dataclass
class _Cached:
    token: str
    states: dict[str, PortState]


_CACHE: dict[str, _Cached] = {}
"""Per-port states kept between ticks of one process, keyed by sensor and instance."""


def forget_cached_state() -> None:
    """Drop the in-memory states, as a new process would start (tests, benchmarks)."""
    _CACHE.clear()


def _cache_key(instance: dg.DagsterInstance, sensor_name: str) -> str:
    return f"{sensor_name}@{getattr(instance, 'root_directory', '')}"


# --- loading states ----------------------------------------------------------------------------------


def initial_states(
    instance: dg.DagsterInstance,
    ports: Mapping[str, PortSlo],
    now: float,
    from_window_start: bool,
) -> dict[str, PortState]:
    """States for ports with nothing recorded, from two batched reads (freshness, latest publish).

    `from_window_start`: the events of the whole window will be replayed, so counting starts at its
    start and only a publish older than the window is taken as a fact. Otherwise counting starts now.
    """
    if not ports:
        return {}
    keys = [slo.key for slo in ports.values()]
    freshness = instance.get_freshness_state_records(keys)
    latest = instance.get_latest_materialization_events(keys)
    states: dict[str, PortState] = {}
    for name, slo in ports.items():
        start = now - slo.window_s if from_window_start else now
        state = PortState(width_s=slo.width_s, accrued_to=start)
        record = freshness.get(slo.key)
        if record is not None:
            state.daemon = True
            changed = record.updated_at.timestamp()
            if changed <= start:
                # Otherwise the replayed state changes say what held before the latest one.
                state.fresh_state, state.fresh_since = record.freshness_state.value, changed
        entry = latest.get(slo.key)
        if entry is not None and (not from_window_start or entry.timestamp < start):
            state.last_publish = entry.timestamp
            rows = (
                entry.asset_materialization.metadata.get(feed.ROW_COUNT_KEY)
                if entry.asset_materialization
                else None
            )
            value = getattr(rows, "value", rows)
            state.rows = int(value) if value is not None else None
        states[name] = state
    return states


def recorded_states(
    instance: dg.DagsterInstance, ports: Mapping[str, PortSlo], now: float, log: Any = None
) -> dict[str, PortState]:
    """The states last recorded on the ports' SLI observations.

    One newest-first scan over the last heartbeat period finds nearly every port (each has an SLI
    observation at least daily); the rest (e.g. the sensor was stopped for days) are looked up per port.
    """
    found: dict[str, PortState] = {}
    storage = instance.event_log_storage
    before: int | None = None
    while len(found) < len(ports):
        page = storage.get_event_records(
            EventRecordsFilter(
                DagsterEventType.ASSET_OBSERVATION,
                after_timestamp=now - REBUILD_SCAN_S,
                before_cursor=before,
            ),
            limit=SCAN_PAGE,
            ascending=False,
        )
        for record in page:
            _take_state(record.event_log_entry, ports, found)
        if len(page) < SCAN_PAGE:
            break
        before = page[-1].storage_id
    missing = [name for name in ports if name not in found]
    if missing and log is not None:
        log.info(f"looking up the recorded SLI state of {len(missing)} port(s) one by one")
    for name in missing:
        slo = ports[name]
        result = instance.fetch_observations(
            AssetRecordsFilter(asset_key=slo.key, after_timestamp=now - slo.window_s), limit=50
        )
        for record in result.records:
            if _take_state(record.event_log_entry, ports, found):
                break
    return found


def latest_data_times(instance: dg.DagsterInstance, ports: Mapping[str, PortSlo]) -> dict[str, float]:
    """The newest data time the data-time sensor recorded for each port declaring `event_time`.

    One query per port: used only where a person reads it (a freshness alert, `mesh slo`), never on
    every tick.
    """
    found: dict[str, float] = {}
    for name, slo in ports.items():
        if not slo.event_time:
            continue
        for record in instance.fetch_observations(slo.key, limit=50).records:
            observation = record.event_log_entry.asset_observation
            value = observation.metadata.get(DATA_TIME_KEY) if observation else None
            if value is not None:
                found[name] = float(getattr(value, "value", value))
                break
    return found


def _take_state(entry: Any, ports: Mapping[str, PortSlo], found: dict[str, PortState]) -> bool:
    observation = entry.asset_observation
    if observation is None or STATE_KEY not in observation.metadata:
        return False
    name = observation.asset_key.to_user_string()
    if name not in ports or name in found:
        return False
    value = observation.metadata[STATE_KEY]
    found[name] = PortState.from_json(dict(getattr(value, "value", value)), ports[name].width_s)
    return True


def load_states(
    instance: dg.DagsterInstance,
    ports: Mapping[str, PortSlo],
    cursor: MonitorCursor,
    now: float,
    sensor_name: str,
    log: Any = None,
) -> dict[str, PortState]:
    """The ports' states for this tick: cached from the last tick if the cursor matches, else reloaded.

    The cache entry is taken out: a tick that fails part-way leaves nothing half-updated behind, and
    the next one reloads what the last successful tick recorded.
    """
    cached = _CACHE.pop(_cache_key(instance, sensor_name), None)
    if cached is not None and cursor.token is not None and cached.token == cursor.token:
        states = cached.states
    elif not cursor.hwm:
        # First tick ever: count each port's whole window from the event log.
        states = initial_states(instance, ports, now, from_window_start=True)
    else:
        if log is not None:
            # Expected every minute or so under `dagster-daemon`, which recycles managed code servers.
            log.debug("reloading SLI state from the recorded observations (new process or cursor)")
        states = recorded_states(instance, ports, now, log)
    missing = {name: slo for name, slo in ports.items() if name not in states}
    if missing:
        states.update(initial_states(instance, missing, now, from_window_start=False))
    for name in [n for n in states if n not in ports]:
        del states[name]  # the port was retired or removed from the mesh
    return states


# --- the monitor -------------------------------------------------------------------------------------


def breached_conditions(
    slo: PortSlo, state: PortState, evaluation: Evaluation, now: float
) -> dict[str, tuple[str, str, float]]:
    """Conditions breached now: condition (an SLO, or `<SLO> budget`) -> (observed, target, since)."""
    now_breached: dict[str, tuple[str, str, float]] = {}
    for name, judgement in evaluation.judgements.items():
        if judgement.breached_now:
            since = state.last_breach.get(name, now)
            now_breached[name] = (evaluation.observed[name], slo.target_text(name), since)
        if judgement.exhausted:
            now_breached[f"{name} budget"] = (
                f"error budget exhausted: SLI {budget.format_share(judgement.sli)} over {slo.window}, "
                f"budget left {budget.format_share(judgement.budget_left)}",
                slo.target_text(name),
                now,
            )
        elif judgement.burning_fast:
            span = budget.format_duration(slo.window_s * budget.FAST_BURN_SPAN)
            now_breached[f"{name} budget"] = (
                f"error budget burning fast: {budget.format_share(judgement.recent_burn)} of the "
                f"{slo.window} budget spent in the last {span}, "
                f"budget left {budget.format_share(judgement.budget_left)}",
                slo.target_text(name),
                now,
            )
    return now_breached


def _recovered_text(condition: str, evaluation: Evaluation) -> str:
    slo = condition.removesuffix(" budget")
    if condition.endswith(" budget"):
        judgement = evaluation.judgements[slo]
        left, sli = budget.format_share(judgement.budget_left), budget.format_share(judgement.sli)
        return f"budget left {left}, SLI {sli}"
    return evaluation.observed[slo]


def consumers(registry: Registry, slo: PortSlo) -> list[str]:
    """Products reading this port (their input resolves to this major version)."""
    return sorted(
        {c.consumer.key for c in registry.consumers_of(slo.product) if f"v{c.port.major}" == slo.port}
    )


def _heartbeat_due(name: str, state: PortState, now: float) -> bool:
    if state.observed_at is None:
        return True
    # Spread the daily heartbeats over ~2.4 h so a big mesh does not write them all in one tick.
    jitter = int(hashlib.sha1(name.encode()).hexdigest()[:4], 16) / 0xFFFF
    return now - state.observed_at >= HEARTBEAT_S * (0.9 + 0.1 * jitter)


def monitor_tick(
    context: dg.SensorEvaluationContext,
    registry: Registry,
    ports: Mapping[str, PortSlo],
    sensor_name: str = MONITOR,
    routing: alerts.AlertRouting | None = None,
    now: float | None = None,
) -> dg.SensorResult:
    """One evaluation of the monitor (see the module docstring)."""
    now = time.time() if now is None else now
    routing = routing or alerts.AlertRouting.from_env()
    instance = context.instance
    log = context.log
    cursor = MonitorCursor.load(context.cursor, log, "SLO monitor")

    states = load_states(instance, ports, cursor, now, sensor_name, log)
    since = now - max((slo.window_s for slo in ports.values()), default=0.0)
    batch = feed.fetch(instance, cursor.hwm, ports, since)
    touched = feed.apply(batch, states, ports)

    open_now: dict[str, dict[str, list[Any]]] = {}
    notes: list[dict[str, Any]] = []
    observe: set[str] = set(touched)
    evaluations: dict[str, Evaluation] = {}
    for name, slo in ports.items():
        state = states[name]
        state.advance(slo, now)
        if batch.more:
            continue  # still catching up on history: judge once the state is current
        evaluation = evaluations[name] = evaluate(slo, state, now)
        breached = breached_conditions(slo, state, evaluation, now)
        before = cursor.open.get(name, {})
        changing = set(breached) ^ set(before)
        if slo.event_time and any(condition.startswith("freshness") for condition in changing):
            # A freshness alert says how old the newest data is: read it now, for this port only.
            state.data_time = latest_data_times(instance, {name: slo}).get(name, state.data_time)
            evaluation = evaluations[name] = evaluate(slo, state, now)
            breached = breached_conditions(slo, state, evaluation, now)
        changes = [
            alerts.Change(condition, "breach", observed, target, since_at)
            for condition, (observed, target, since_at) in breached.items()
            if condition not in before
        ]
        changes += [
            alerts.Change(
                condition,
                "recovery",
                _recovered_text(condition, evaluation),
                slo.target_text(condition.split()[0]),
                float(opened[0]),
            )
            for condition, opened in before.items()
            if condition not in breached
        ]
        if breached:
            open_now[name] = {
                condition: before.get(condition, [since_at, observed])
                for condition, (observed, _, since_at) in breached.items()
            }
        if changes:
            notes.append(
                alerts.notification(slo, changes, consumers(registry, slo), now, environment=env_name())
            )
            observe.add(name)
    if batch.more:
        open_now = cursor.open
    observe |= {name for name, state in states.items() if _heartbeat_due(name, state, now)}

    delivery = alerts.deliver([*cursor.outbox, *notes], routing, log)

    observations = []
    for name in sorted(observe):
        slo, state = ports[name], states[name]
        state.observed_at = now
        evaluation = evaluations.get(name) or evaluate(slo, state, now)
        observations.append(
            dg.AssetObservation(asset_key=slo.key, metadata=observation_metadata(slo, state, evaluation))
        )

    token = secrets.token_hex(6)
    _CACHE[_cache_key(instance, sensor_name)] = _Cached(token, states)
    new_cursor = MonitorCursor(token=token, hwm=batch.hwm, open=open_now, outbox=delivery.pending)
    summary = (
        f"{len(ports)} ports, {len(touched)} with new events, {len(notes)} new alert(s), "
        f"{len(delivery.delivered)} delivered, {len(delivery.pending)} pending"
        + (", catching up on history" if batch.more else "")
    )
    return dg.SensorResult(asset_events=observations, cursor=new_cursor.dumps(), skip_reason=summary)


def monitor_sensor(registry: Registry, ports: Mapping[str, PortSlo]) -> dg.SensorDefinition:
    """The SLO monitor sensor over `ports`, running by default."""

    @dg.sensor(
        name=MONITOR,
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        description="Measures every output port's SLIs (freshness, availability, quality, volume) and alerts "
        "its owners once per breach and once on recovery. SLIs are recorded as observations on the ports.",
    )
    def mesh_slo_monitor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        return monitor_tick(context, registry, ports)

    return mesh_slo_monitor


# --- data time -----------------------------------------------------------------------------------------


def _epoch(value: Any) -> float | None:
    """A MAX(event_time) value as epoch seconds (naive timestamps are UTC, as the warehouse stores them)."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp()
    if isinstance(value, str):
        try:
            return _epoch(datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


def _short_wait(warehouse: Warehouse) -> Warehouse:
    """The warehouse with a short DuckDB lock wait: a sensor must not queue behind a long run."""
    if hasattr(warehouse, "lock_timeout_s") and hasattr(warehouse, "model_copy"):
        wait = min(DATA_TIME_LOCK_WAIT_S, float(warehouse.lock_timeout_s))
        return warehouse.model_copy(update={"lock_timeout_s": wait})
    return warehouse


def data_time_tick(
    context: dg.SensorEvaluationContext,
    ports: Mapping[str, PortSlo],
    warehouse: Warehouse,
    now: float | None = None,
) -> dg.SensorResult:
    """Measure the newest data time of every port published since the cursor."""
    now = time.time() if now is None else now
    watched = {name: slo for name, slo in ports.items() if slo.event_time}
    state = json.loads(context.cursor) if context.cursor else {}
    storage = context.instance.event_log_storage
    after = state.get("mat")
    due: set[str] = set()
    if after is None:
        # First tick: every port published so far, from the latest materialization of each.
        latest = context.instance.get_latest_materialization_events([s.key for s in watched.values()])
        due = {name for name, slo in watched.items() if latest.get(slo.key) is not None}
        newest = storage.get_event_records(
            EventRecordsFilter(DagsterEventType.ASSET_MATERIALIZATION), limit=1, ascending=False
        )
        hwm = newest[0].storage_id if newest else -1
    else:
        records = storage.get_event_records(
            EventRecordsFilter(DagsterEventType.ASSET_MATERIALIZATION, after_cursor=after),
            limit=5000,
            ascending=True,
        )
        hwm = records[-1].storage_id if records else after
        for record in records:
            key = (
                record.event_log_entry.dagster_event.asset_key
                if record.event_log_entry.dagster_event
                else None
            )
            if key is not None and key.to_user_string() in watched:
                due.add(key.to_user_string())
    if not due:
        return dg.SensorResult(cursor=json.dumps({"mat": hwm}), skip_reason="no port published since")
    observations = []
    try:
        with _short_wait(warehouse).session() as session:
            for name in sorted(due):
                slo = watched[name]
                if not session.exists(slo.relation):
                    continue
                value = session.query(
                    f"SELECT MAX({quote_identifier(slo.event_time)}) FROM {slo.relation.sql}"
                )[0][0]
                measured = _epoch(value)
                if measured is None:
                    continue
                observations.append(
                    dg.AssetObservation(
                        asset_key=slo.key,
                        metadata={
                            DATA_TIME_KEY: dg.MetadataValue.timestamp(measured),
                            "mesh/data_lag_hours": dg.MetadataValue.float(round((now - measured) / 3600, 3)),
                            "mesh/event_time_column": dg.MetadataValue.text(str(slo.event_time)),
                        },
                    )
                )
    except TimeoutError as exc:
        context.log.info(f"warehouse busy, measuring data time next tick: {exc}")
        return dg.SensorResult(cursor=context.cursor, skip_reason="warehouse busy")
    return dg.SensorResult(
        asset_events=observations,
        cursor=json.dumps({"mat": hwm}),
        skip_reason=f"measured the data time of {len(observations)} port(s)",
    )


def data_time_sensor(ports: Mapping[str, PortSlo]) -> dg.SensorDefinition:
    """The data-time sensor over `ports` (those declaring `event_time`), running by default."""

    @dg.sensor(
        name=DATA_TIME,
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=60,
        description="After a port is published, measures its newest `event_time` in the warehouse and "
        "records it (with the data lag) as an observation on the port.",
    )
    def mesh_slo_data_time(
        context: dg.SensorEvaluationContext, warehouse: dg.ResourceParam[Warehouse]
    ) -> dg.SensorResult:
        return data_time_tick(context, ports, warehouse)

    return mesh_slo_data_time
