"""What happened to the ports since the last tick, read with a fixed number of event-log queries.

A tick never queries per port. It asks the instance for every new event of a few types after a
high-water mark (storage ids, kept in the sensor cursor), whichever assets they belong to, and keeps the
ones on ports:

| stream | Dagster events | gives |
|---|---|---|
| `mat` | `ASSET_MATERIALIZATION` | successful publishes and their row counts |
| `fresh` | `FRESHNESS_STATE_CHANGE` (written by the freshness daemon) | freshness state changes |
| `ok`, `fail`, `cancel` | `RUN_SUCCESS` / `RUN_FAILURE` / `RUN_CANCELED` | runs that finished |
| `rl` | runless `ASSET_CHECK_EVALUATION` | check results reported outside runs |

Each finished run is then read once (`get_records_for_run`, only the four event types needed): a port
planned in the run and not materialized is a failed publish when its step failed, or when the run
failed before the step could run for a reason of its own product (an internal step failed, the run
worker died; behind a failed *port* step, that port's availability counts it), or when its product's
dbt step recorded that dbt did not build its model (the run itself succeeds then); every check
evaluation of the run is a quality event. Dagster OSS 1.13 does not write `ASSET_FAILED_TO_MATERIALIZE`,
so "planned, not materialized, in a failed run" is how a failed publish is recognized. A canceled run
is someone's decision, not the port failing: its unpublished ports are not counted. Runs still in
progress are not read until they finish (they are not in the run-status streams yet), and a check only
planned in a run that ended without evaluating it has no verdict: it counts towards nothing.

On SQLite the asset streams and run-status events are mirrored into the index shard, so all of these are
cheap indexed reads; on Postgres they are one table.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
from dagster import DagsterEventType, EventLogRecord, EventRecordsFilter, RunStatusChangeRecordsFilter

from mesh_assets.assets.dbt_outcomes import DBT_FAILURE
from mesh_assets.observe.sli import PortSlo, PortState

RUNLESS_RUN_ID = ""
"""Run id of events reported outside runs (`report_runless_asset_event`)."""

ASSET_STREAMS = {
    "mat": DagsterEventType.ASSET_MATERIALIZATION,
    "fresh": DagsterEventType.FRESHNESS_STATE_CHANGE,
}
RUN_STREAMS = {
    "ok": DagsterEventType.RUN_SUCCESS,
    "fail": DagsterEventType.RUN_FAILURE,
    "cancel": DagsterEventType.RUN_CANCELED,
}
RUN_EVENT_TYPES = {
    DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
    DagsterEventType.ASSET_MATERIALIZATION,
    DagsterEventType.STEP_FAILURE,
    DagsterEventType.ASSET_CHECK_EVALUATION,
    # A dbt step records each model dbt did not build (`assets/builders/dbt.py`): that product's ports
    # are skipped in a run that succeeds, and are failed publishes all the same.
    DagsterEventType.ASSET_OBSERVATION,
}
ROW_COUNT_KEY = "dagster/row_count"


@dataclass(frozen=True)
class Published:
    """A port was materialized (published)."""

    port: str
    at: float
    storage_id: int
    rows: int | None


@dataclass(frozen=True)
class PublishFailed:
    """A port was planned in a run whose step for it failed before publishing."""

    port: str
    at: float
    reason: str


@dataclass(frozen=True)
class CheckEvaluated:
    """One evaluation of one check of a port."""

    port: str
    at: float
    name: str
    passed: bool
    blocking: bool
    text: str
    storage_id: int | None = None
    """Set for runless evaluations (run ones are deduplicated by run id)."""


@dataclass(frozen=True)
class FreshnessChanged:
    """The freshness daemon changed a port's state."""

    port: str
    at: float
    storage_id: int
    previous: str
    new: str


@dataclass(frozen=True)
class RunOutcome:
    """What one finished run did to the ports: failed publishes and check evaluations."""

    run_id: str
    failures: list[PublishFailed]
    checks: list[CheckEvaluated]


@dataclass
class Batch:
    """Everything new since the high-water marks, and the marks to resume from."""

    published: list[Published] = field(default_factory=list)
    freshness: list[FreshnessChanged] = field(default_factory=list)
    runs: list[RunOutcome] = field(default_factory=list)
    runless_checks: list[CheckEvaluated] = field(default_factory=list)
    hwm: dict[str, int] = field(default_factory=dict)
    more: bool = False
    """A stream hit its page limit: more events wait for the next tick."""
    queries: int = 0


def fetch(
    instance: dg.DagsterInstance,
    hwm: Mapping[str, int],
    ports: Mapping[str, PortSlo],
    since: float,
    limit: int = 5000,
    max_runs: int = 100,
) -> Batch:
    """Every event on `ports` after the marks in `hwm` (or, for a stream without one, after `since`)."""
    batch = Batch(hwm=dict(hwm))
    storage = instance.event_log_storage
    for stream, event_type in ASSET_STREAMS.items():
        after = hwm.get(stream)
        records_filter = (
            EventRecordsFilter(event_type, after_cursor=after)
            if after is not None
            else EventRecordsFilter(event_type, after_timestamp=since)
        )
        records = storage.get_event_records(records_filter, limit=limit, ascending=True)
        batch.queries += 1
        batch.more |= len(records) >= limit
        if records:
            batch.hwm[stream] = records[-1].storage_id
        for record in records:
            _asset_event(stream, record, ports, batch)

    for stream, event_type in RUN_STREAMS.items():
        after = hwm.get(stream)
        run_filter = (
            RunStatusChangeRecordsFilter(event_type, after_storage_id=after)
            if after is not None
            else RunStatusChangeRecordsFilter(event_type, after_timestamp=since)
        )
        finished = instance.fetch_run_status_changes(run_filter, limit=max_runs, ascending=True).records
        batch.queries += 1
        batch.more |= len(finished) >= max_runs
        for record in finished:
            batch.runs.append(
                run_outcome(instance, record.event_log_entry.run_id, ports, run_failed=stream == "fail")
            )
            batch.queries += 1
        if finished:
            batch.hwm[stream] = finished[-1].storage_id

    # A private name (the cursor format `get_records_for_run` takes for "after this storage id"): through
    # the one module that holds them, imported here because it loads the event-log storage stack.
    from mesh_assets.product.dagster_private import event_log_cursor_after

    after = hwm.get("rl")
    connection = instance.get_records_for_run(
        RUNLESS_RUN_ID,
        cursor=event_log_cursor_after(after) if after is not None else None,
        of_type=DagsterEventType.ASSET_CHECK_EVALUATION,
        limit=limit,
    )
    batch.queries += 1
    batch.more |= len(connection.records) >= limit
    for record in connection.records:
        batch.hwm["rl"] = record.storage_id
        if record.event_log_entry.timestamp >= since:
            check = _check(record.event_log_entry, ports, storage_id=record.storage_id)
            if check is not None:
                batch.runless_checks.append(check)
    return batch


def _asset_event(stream: str, record: EventLogRecord, ports: Mapping[str, PortSlo], batch: Batch) -> None:
    entry = record.event_log_entry
    event = entry.dagster_event
    if event is None or event.asset_key is None:
        return
    port = event.asset_key.to_user_string()
    if port not in ports:
        return
    if stream == "mat":
        materialization = entry.asset_materialization
        rows = materialization.metadata.get(ROW_COUNT_KEY) if materialization else None
        value = getattr(rows, "value", rows)
        batch.published.append(
            Published(port, entry.timestamp, record.storage_id, int(value) if value is not None else None)
        )
    else:
        change = event.asset_freshness_state_change_data
        batch.freshness.append(
            FreshnessChanged(
                port,
                change.state_change_timestamp,
                record.storage_id,
                change.previous_state.value,
                change.new_state.value,
            )
        )


def run_outcome(
    instance: dg.DagsterInstance, run_id: str, ports: Mapping[str, PortSlo], run_failed: bool = False
) -> RunOutcome:
    """Read a finished run once: its failed publishes and check evaluations on ports.

    `run_failed`: the run ended in failure, so a planned port it did not materialize failed to publish
    even if its own step never ran (skipped behind a failed step, or the worker died).
    """
    records = instance.get_records_for_run(run_id, of_type=RUN_EVENT_TYPES).records
    planned: dict[str, str | None] = {}
    materialized: set[str] = set()
    failed_steps: dict[str, tuple[float, str]] = {}
    checks: list[CheckEvaluated] = []
    not_built: dict[str, tuple[float, str]] = {}
    for record in records:
        entry = record.event_log_entry
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type == DagsterEventType.STEP_FAILURE and event.step_key:
            failed_steps[event.step_key] = (entry.timestamp, _failure_reason(event))
            continue
        if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            check = _check(entry, ports)
            if check is not None:
                checks.append(check)
            continue
        if event.event_type == DagsterEventType.ASSET_OBSERVATION:
            reason = event.asset_observation_data.asset_observation.metadata.get(DBT_FAILURE)
            if reason is not None and event.asset_key is not None:
                product = "/".join(event.asset_key.path[:2])
                not_built.setdefault(product, (entry.timestamp, f"dbt did not build it: {reason.value}"))
            continue
        key = event.asset_key
        if key is None or key.to_user_string() not in ports:
            continue
        if event.event_type == DagsterEventType.ASSET_MATERIALIZATION_PLANNED:
            planned[key.to_user_string()] = event.step_key
        else:
            materialized.add(key.to_user_string())
    # Behind a failed *port* step, a skipped port is not an attempt of its own: the upstream port's
    # availability counts it. Behind anything else (its product's internal steps, a dead worker) it is.
    port_failed = any(step in failed_steps for step in planned.values())
    failures = []
    for port, step in planned.items():
        if port in materialized:
            continue
        if step in failed_steps:
            failures.append(PublishFailed(port, *failed_steps[step]))
        elif "/".join(port.split("/")[:2]) in not_built:
            failures.append(PublishFailed(port, *not_built["/".join(port.split("/")[:2])]))
        elif run_failed and not port_failed:
            failures.append(PublishFailed(port, *_run_failure(instance, run_id, failed_steps)))
    return RunOutcome(run_id, failures, checks)


def _run_failure(
    instance: dg.DagsterInstance, run_id: str, failed_steps: Mapping[str, tuple[float, str]]
) -> tuple[float, str]:
    """When and why a failed run stopped before a port's step ran: the first failed step, else the run."""
    if failed_steps:
        step, (at, reason) = min(failed_steps.items(), key=lambda item: item[1][0])
        return at, f"not published: upstream step {step} failed: {reason}"
    record = instance.get_run_record_by_id(run_id)
    if record is None:  # deleted since it finished: it failed about now
        return time.time(), "not published: the run failed"
    at = record.end_time or record.update_timestamp.timestamp()
    return at, "not published: the run failed before the port's step ran"


def _failure_reason(event: Any) -> str:
    data = event.step_failure_data
    if data is None:
        return "the step failed"
    if data.user_failure_data is not None and data.user_failure_data.description:
        return data.user_failure_data.description.strip()
    if data.error is not None:
        # The innermost error says what went wrong; the outer ones are Dagster's wrappers around it.
        error = data.error
        while error.cause is not None:
            error = error.cause
        message = error.message.strip()
        return message.splitlines()[0] if message else "the step failed"
    return "the step failed"


def _check(entry: Any, ports: Mapping[str, PortSlo], storage_id: int | None = None) -> CheckEvaluated | None:
    event = entry.dagster_event
    if event is None or event.event_type != DagsterEventType.ASSET_CHECK_EVALUATION:
        return None
    evaluation = event.asset_check_evaluation_data
    port = evaluation.asset_key.to_user_string()
    if port not in ports:
        return None
    observed = evaluation.metadata.get("observed")
    threshold = evaluation.metadata.get("threshold")
    text = evaluation.check_name
    if observed is not None and threshold is not None:
        seen, expected = getattr(observed, "value", observed), getattr(threshold, "value", threshold)
        text += f" (observed {seen}, expected {expected})"
    elif evaluation.description:
        text += f" ({evaluation.description})"
    blocking = bool(evaluation.blocking) or evaluation.severity == dg.AssetCheckSeverity.ERROR
    return CheckEvaluated(
        port, entry.timestamp, evaluation.check_name, evaluation.passed, blocking, text, storage_id
    )


def apply(batch: Batch, states: Mapping[str, PortState], ports: Mapping[str, PortSlo]) -> set[str]:
    """Fold a batch into the ports' states; returns the ports whose state changed.

    Every event is applied at most once per port, whatever the marks the batch was fetched from: asset
    events by storage id, run outcomes by run id (see `PortState.seen` / `run_seen`). So re-reading
    events after a restart from an older cursor never counts anything twice.
    """
    touched: set[str] = set()
    for published in batch.published:
        state = states[published.port]
        if not state.seen("mat", published.storage_id):
            state.published(ports[published.port], published.at, published.rows)
            touched.add(published.port)
    for change in batch.freshness:
        state = states[change.port]
        if not state.seen("fresh", change.storage_id):
            state.freshness_changed(ports[change.port], change.at, change.previous, change.new)
            touched.add(change.port)
    for run in batch.runs:
        by_port: dict[str, list[PublishFailed | CheckEvaluated]] = {}
        for event in [*run.failures, *run.checks]:
            by_port.setdefault(event.port, []).append(event)
        for port, events in by_port.items():
            state = states[port]
            if state.run_seen(run.run_id):
                continue
            for event in events:
                _apply_run_event(state, event)
            touched.add(port)
    for check in batch.runless_checks:
        state = states[check.port]
        if not state.seen("rl", check.storage_id):
            _apply_run_event(state, check)
            touched.add(check.port)
    return touched


def _apply_run_event(state: PortState, event: PublishFailed | CheckEvaluated) -> None:
    if isinstance(event, PublishFailed):
        state.publish_failed(event.at, event.reason)
    else:
        state.checked(event.name, event.at, event.passed, event.blocking, event.text)
