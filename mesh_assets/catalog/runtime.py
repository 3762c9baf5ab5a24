"""What the Dagster instance knows about each port: last publish, contract check results and SLO status.

The catalog reads the instance the mesh runs on (the asset gets it from its context; the command opens
`DagsterInstance.get()`); without one every port is "not yet published". SLO status is measured here from
the instance's records, against the spec's promises: freshness of the last publish, availability (share
of publish attempts that succeeded) and quality pass rate (share of check evaluations that passed), both
over the SLO window.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg

from mesh_assets.contracts.odcs import port_rules
from mesh_assets.observe.anomalies import MonitorState, recent_anomalies
from mesh_assets.product import addressing, dagster_private
from mesh_assets.product.freshness import freshness_state
from mesh_assets.product.registry import Registry
from mesh_assets.product.spec import DataProductSpec, OutputPort, parse_duration

HISTORY_LIMIT = 1000
"""Most records read per port and check when measuring SLIs over the window."""
# `AssetCheckExecutionRecordStatus` values (the enum is not exported by `dagster`).
PLANNED, SUCCEEDED, FAILED = "PLANNED", "SUCCEEDED", "FAILED"
COMPLETED = {SUCCEEDED, FAILED}


@dataclass(frozen=True)
class CheckResult:
    """The latest execution of one contract check of a port."""

    name: str
    description: str
    severity: str
    status: str
    """`passed`, `failed`, `running` (its run is in progress), `execution failed` (its run failed before
    the check completed), `skipped` (its run ended without running it) or `not yet run`."""
    observed: str = ""
    threshold: str = ""
    at: datetime | None = None
    on_published_data: bool | None = None
    """Whether the result is about the data the port serves now. False when the check judged a candidate
    that was not published (a blocking rule stopped it, or its run failed); None when never run."""


@dataclass(frozen=True)
class SloStatus:
    """One SLO of a port: what is promised, what was measured and whether the promise holds."""

    name: str
    target: str
    measured: str
    status: str
    """`met`, `warning`, `breached` or `unknown`."""


@dataclass
class PortRuntime:
    """A port as the Dagster instance sees it."""

    published_at: datetime | None = None
    run_id: str | None = None
    row_count: int | None = None
    checks: list[CheckResult] = field(default_factory=list)
    slos: list[SloStatus] = field(default_factory=list)
    anomalies: list[MonitorState] = field(default_factory=list)
    """The learned monitors' recent anomalies, newest first."""

    @property
    def published(self) -> bool:
        """True once the port has been materialized."""
        return self.published_at is not None


def _text(value: Any) -> str:
    """A metadata value as text (MetadataValue wrappers expose `.value`)."""
    inner = getattr(value, "value", value)
    return "" if inner is None else str(inner)


def _check_results(
    instance: dg.DagsterInstance,
    key: dg.AssetKey,
    spec: DataProductSpec,
    port: OutputPort,
    published: dg.EventLogRecord | None,
) -> list[CheckResult]:
    rules = port_rules(spec, port)
    # One query for the latest execution of every check of the port. While a producer's run is in
    # flight the latest record of a check is only PLANNED: its `evaluation` is then the planned event,
    # which has no result, so the status decides what the record holds.
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(key, rule.name) for rule in rules]
    )
    planned = {r.run_id for r in latest.values() if r.status.value == PLANNED}
    runs = _run_statuses(instance, planned)
    results = []
    for rule in rules:
        record = latest.get(dg.AssetCheckKey(key, rule.name))
        status, observed, threshold, at, current = "not yet run", "", "", None, None
        if record is not None:
            at = datetime.fromtimestamp(record.create_timestamp, tz=UTC)
            status = _resolved_status(record, runs)
            evaluation = record.evaluation if status in {"passed", "failed"} else None
            if evaluation is not None:
                observed = _text(evaluation.metadata.get("observed"))
                threshold = _text(evaluation.metadata.get("threshold"))
            current = _on_published_data(record, published, status)
        results.append(
            CheckResult(
                name=rule.name,
                description=rule.description,
                severity=rule.severity.value,
                status=status,
                observed=observed,
                threshold=threshold,
                at=at,
                on_published_data=current,
            )
        )
    return results


def _run_statuses(instance: dg.DagsterInstance, run_ids: set[str]) -> dict[str, dg.DagsterRun]:
    """The runs of these ids, in one query (a deleted run is absent)."""
    if not run_ids:
        return {}
    records = instance.get_run_records(dg.RunsFilter(run_ids=sorted(run_ids)))
    return {r.dagster_run.run_id: r.dagster_run for r in records}


def _resolved_status(record: Any, runs: dict[str, dg.DagsterRun]) -> str:
    """A check execution's status, resolved as Dagster's `AssetCheckExecutionRecord.resolve_status`
    does: a PLANNED record is running while its run is; once the run ended without a result, the
    check's execution failed (the run failed) or was skipped (the run succeeded, was canceled or
    deleted)."""
    if record.status.value == SUCCEEDED:
        return "passed"
    if record.status.value == FAILED:
        return "failed"
    run = runs.get(record.run_id)
    if run is None:
        return "skipped"
    if not run.is_finished:
        return "running"
    return "execution failed" if run.status == dg.DagsterRunStatus.FAILURE else "skipped"


def _on_published_data(record: Any, published: dg.EventLogRecord | None, status: str) -> bool:
    """Whether a check execution judged the data the port serves now.

    Not Dagster's rule (`AssetCheckExecutionRecord.targets_latest_materialization`, which trusts the
    evaluation's target materialization): with write-audit-publish a port's checks judge the candidate
    *before* the step publishes it, so Dagster records the previous publish as their target even when the
    candidate was rejected. A check judged the served data if its run published the port; a running one
    judges what its run is about to publish. Checks reported outside runs keep Dagster's rule.
    """
    if status == "running":
        return True
    if published is None:
        return False
    if record.run_id:
        return record.run_id == published.run_id
    evaluation = record.evaluation if status in {"passed", "failed"} else None
    target = getattr(evaluation, "target_materialization_data", None)
    if target is not None:
        return target.storage_id == published.storage_id
    return published.timestamp < record.create_timestamp


def _age(delta: timedelta) -> str:
    """`3h 20m`, `2d 4h` or `45m`."""
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes}m" if hours else f"{minutes}m"


_STATUS_OF_STATE = {"PASS": "met", "WARN": "warning", "FAIL": "breached", "UNKNOWN": "unknown"}
"""Dagster's freshness states in the catalog's words."""


def freshness_status(spec: DataProductSpec, published_at: datetime | None, now: datetime) -> SloStatus:
    """The freshness SLO against the last publish."""
    slo = spec.slos.freshness
    if slo.max_age is not None:
        target = f"updated within {slo.max_age}" + (
            f" (warn after {slo.warn_after})" if slo.warn_after else ""
        )
    else:
        target = f"updated within {slo.lower_bound} before each `{slo.cron}` ({slo.cron_timezone})"
    if published_at is None:
        return SloStatus("freshness", target, "not yet published", "unknown")
    age = now - published_at
    measured = f"last publish {_age(age)} ago"
    try:
        state = freshness_state(slo, published_at.timestamp(), now.timestamp())
    except (ValueError, LookupError) as exc:
        # A cron deadline goes through Dagster's cron arithmetic, which refuses a cron it cannot read
        # (croniter's errors are ValueErrors) or an unknown timezone (ZoneInfoNotFoundError, a KeyError).
        # The spec does not check either, so the catalog says `unknown` rather than fail, and logs why.
        rule = f"deadline cron {slo.cron!r} ({slo.cron_timezone})" if slo.cron else f"max_age {slo.max_age!r}"
        dg.get_dagster_logger().warning(
            f"freshness of {spec.domain}.{spec.name} is unknown: its {rule} cannot be evaluated "
            f"({type(exc).__name__}: {exc}); fix slos.freshness in its dataproduct.yaml"
        )
        state = "UNKNOWN"
    return SloStatus("freshness", target, measured, _STATUS_OF_STATE[state])


def availability_target(spec: DataProductSpec) -> str:
    """The availability SLO in words."""
    return f"≥ {spec.slos.availability:.1%} of publishes succeed over {spec.slos.window}"


def quality_target(spec: DataProductSpec) -> str:
    """The quality SLO in words."""
    return f"≥ {spec.slos.quality_pass_rate:.1%} of checks pass over {spec.slos.window}"


def unpublished_slos(spec: DataProductSpec, now: datetime) -> list[SloStatus]:
    """The SLOs of a port the instance has no record of."""
    return [
        freshness_status(spec, None, now),
        SloStatus("availability", availability_target(spec), "not yet published", "unknown"),
        SloStatus("quality", quality_target(spec), "not yet published", "unknown"),
    ]


def _share(good: int, total: int) -> float | None:
    return good / total if total else None


def _measured_slos(
    instance: dg.DagsterInstance,
    key: dg.AssetKey,
    spec: DataProductSpec,
    checks: list[CheckResult],
    now: datetime,
    outcomes: dict[str, list[tuple[str, float]]] | None = None,
) -> list[SloStatus]:
    window = parse_duration(spec.slos.window)
    since = (now - window).timestamp()
    found = []
    published = len(
        instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, after_timestamp=since), limit=HISTORY_LIMIT
        ).records
    )
    failed = len(
        instance.fetch_failed_materializations(
            dg.AssetRecordsFilter(asset_key=key, after_timestamp=since), limit=HISTORY_LIMIT
        ).records
    )
    availability = _share(published, published + failed)
    target = availability_target(spec)
    if availability is None:
        found.append(
            SloStatus("availability", target, f"no publish attempt in the last {spec.slos.window}", "unknown")
        )
    else:
        found.append(
            SloStatus(
                "availability",
                target,
                f"{availability:.1%} ({published} of {published + failed})",
                "met" if availability >= spec.slos.availability else "breached",
            )
        )
    passed = evaluated = 0
    for status, created in _outcomes(instance, key, [check.name for check in checks], outcomes):
        # Only completed evaluations count: a PLANNED record (in flight, or from a run that ended without
        # a result) has no verdict. A completed one SUCCEEDED exactly when its evaluation passed.
        if created < since or status not in COMPLETED:
            continue
        evaluated += 1
        passed += status == SUCCEEDED
    rate = _share(passed, evaluated)
    target = quality_target(spec)
    if rate is None:
        found.append(
            SloStatus("quality", target, f"no check evaluated in the last {spec.slos.window}", "unknown")
        )
    else:
        found.append(
            SloStatus(
                "quality",
                target,
                f"{rate:.1%} ({passed} of {evaluated})",
                "met" if rate >= spec.slos.quality_pass_rate else "breached",
            )
        )
    return found


def _outcomes(
    instance: dg.DagsterInstance,
    key: dg.AssetKey,
    names: list[str],
    outcomes: dict[str, list[tuple[str, float]]] | None,
) -> list[tuple[str, float]]:
    """(status, creation timestamp) of the named checks' last `HISTORY_LIMIT` executions each."""
    if outcomes is not None:
        return [outcome for name in names for outcome in outcomes.get(name, [])]
    found = []
    for name in names:
        history = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(key, name), limit=HISTORY_LIMIT
        )
        found += [(record.status.value, record.create_timestamp) for record in history]
    return found


def port_runtime(
    instance: dg.DagsterInstance, spec: DataProductSpec, port: OutputPort, now: datetime
) -> PortRuntime:
    """Everything the instance knows about one port."""
    key = addressing.port_key(spec.domain, spec.name, port.major)
    runtime = PortRuntime()
    latest = instance.fetch_materializations(key, limit=1).records
    published = latest[0] if latest else None
    if published is not None:
        runtime.published_at = datetime.fromtimestamp(published.timestamp, tz=UTC)
        runtime.run_id = published.run_id
        materialization = published.event_log_entry.asset_materialization
        rows = materialization.metadata.get("dagster/row_count") if materialization else None
        if rows is not None and str(_text(rows)).isdigit():
            runtime.row_count = int(_text(rows))
    runtime.checks = _check_results(instance, key, spec, port, published)
    runtime.anomalies = recent_anomalies(instance, spec, port)
    # Every check's outcomes over the SLO's history in one query (None on a storage that is not Dagster's
    # SQL event log: asked check by check).
    outcomes = dagster_private.asset_check_outcomes(instance.event_log_storage, key, HISTORY_LIMIT)
    runtime.slos = [
        freshness_status(spec, runtime.published_at, now),
        *_measured_slos(instance, key, spec, runtime.checks, now, outcomes),
    ]
    return runtime


def read_runtime(
    instance: dg.DagsterInstance | None, registry: Registry, now: datetime | None = None
) -> dict[dg.AssetKey, PortRuntime]:
    """The runtime state of every port of the mesh (empty without an instance)."""
    if instance is None:
        return {}
    now = now or datetime.now(UTC)
    found = {}
    for product in registry.products.values():
        spec = product.spec
        for port in spec.output_ports:
            found[addressing.port_key(spec.domain, spec.name, port.major)] = port_runtime(
                instance, spec, port, now
            )
    return found


_LAST_RUN: list[tuple[str, Registry, dict[dg.AssetKey, PortRuntime]]] = []


def runtime_of_run(
    run_id: str, instance: dg.DagsterInstance, registry: Registry
) -> dict[dg.AssetKey, PortRuntime]:
    """The ports' runtime as one governance run sees it: read once, shared by the run's assets.

    The catalog and the scorecard each need every port's runtime (several instance queries per port:
    0.18 s for the example's 7 ports, read twice per `mesh run`). A governance run publishes no port, so
    what they read does not change between its steps. The last run's is kept, for the same registry
    object (`load_registry` returns a new one when a spec or agreement file changed: read again).
    """
    if _LAST_RUN and _LAST_RUN[0][0] == run_id and _LAST_RUN[0][1] is registry:
        return _LAST_RUN[0][2]
    runtime = read_runtime(instance, registry)
    _LAST_RUN[:] = [(run_id, registry, runtime)]
    return runtime


@contextlib.contextmanager
def open_instance(root: Path) -> Iterator[dg.DagsterInstance | None]:
    """The environment's Dagster instance: `DAGSTER_HOME`, else `<root>/.dagster_home/<env>` if one was
    set up there (`make`, `mesh run`); else None."""
    from mesh_assets.infra import environment

    env = environment.resolve(root)
    home = env.dagster_home
    chosen = env.dagster_home_override is not None or (home / "dagster.yaml").exists()
    instance = dg.DagsterInstance.from_config(str(home)) if chosen else None
    try:
        yield instance
    finally:
        if instance is not None:
            instance.dispose()
