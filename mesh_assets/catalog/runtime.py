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

from mesh_assets import addressing
from mesh_assets.odcs import port_rules
from mesh_assets.registry import Registry
from mesh_assets.spec import DataProductSpec, OutputPort, parse_duration

HISTORY_LIMIT = 1000
"""Most records read per port and check when measuring SLIs over the window."""


@dataclass(frozen=True)
class CheckResult:
    """The latest evaluation of one contract check of a port."""

    name: str
    description: str
    severity: str
    status: str
    """`passed`, `failed`, `running` or `not yet run`."""
    observed: str = ""
    threshold: str = ""
    at: datetime | None = None


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

    @property
    def published(self) -> bool:
        """True once the port has been materialized."""
        return self.published_at is not None


def _text(value: Any) -> str:
    """A metadata value as text (MetadataValue wrappers expose `.value`)."""
    inner = getattr(value, "value", value)
    return "" if inner is None else str(inner)


def _check_results(
    instance: dg.DagsterInstance, key: dg.AssetKey, spec: DataProductSpec, port: OutputPort
) -> list[CheckResult]:
    rules = port_rules(spec, port)
    # One query for the latest evaluation of every check of the port.
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(key, rule.name) for rule in rules]
    )
    results = []
    for rule in rules:
        record = latest.get(dg.AssetCheckKey(key, rule.name))
        status, observed, threshold, at = "not yet run", "", "", None
        if record is not None:
            at = datetime.fromtimestamp(record.create_timestamp, tz=UTC)
            evaluation = record.evaluation
            if evaluation is not None:
                status = "passed" if evaluation.passed else "failed"
                observed = _text(evaluation.metadata.get("observed"))
                threshold = _text(evaluation.metadata.get("threshold"))
            else:
                status = "running" if record.status.value == "PLANNED" else record.status.value.lower()
        results.append(
            CheckResult(
                name=rule.name,
                description=rule.description,
                severity=rule.severity.value,
                status=status,
                observed=observed,
                threshold=threshold,
                at=at,
            )
        )
    return results


def _age(delta: timedelta) -> str:
    """`3h 20m`, `2d 4h` or `45m`."""
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes}m" if hours else f"{minutes}m"


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
    if slo.max_age is not None:
        if age > parse_duration(slo.max_age):
            return SloStatus("freshness", target, measured, "breached")
        if slo.warn_after and age > parse_duration(slo.warn_after):
            return SloStatus("freshness", target, measured, "warning")
        return SloStatus("freshness", target, measured, "met")
    try:
        # Dagster's own cron arithmetic (private, so guarded): the latest deadline that has passed.
        from dagster._utils.schedules import get_latest_completed_cron_tick

        assert slo.cron is not None and slo.lower_bound is not None
        deadline = get_latest_completed_cron_tick(slo.cron, now, slo.cron_timezone)
    except Exception:  # pragma: no cover - depends on Dagster internals
        return SloStatus("freshness", target, measured, "unknown")
    window_start = deadline - parse_duration(slo.lower_bound)
    return SloStatus("freshness", target, measured, "met" if published_at >= window_start else "breached")


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
    for check in checks:
        history = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(key, check.name), limit=HISTORY_LIMIT
        )
        for record in history:
            if record.create_timestamp < since or record.evaluation is None:
                continue
            evaluated += 1
            passed += bool(record.evaluation.passed)
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


def port_runtime(
    instance: dg.DagsterInstance, spec: DataProductSpec, port: OutputPort, now: datetime
) -> PortRuntime:
    """Everything the instance knows about one port."""
    key = addressing.port_key(spec.domain, spec.name, port.major)
    runtime = PortRuntime()
    event = instance.get_latest_materialization_event(key)
    if event is not None:
        runtime.published_at = datetime.fromtimestamp(event.timestamp, tz=UTC)
        runtime.run_id = event.run_id
        materialization = event.asset_materialization
        rows = materialization.metadata.get("dagster/row_count") if materialization else None
        if rows is not None and str(_text(rows)).isdigit():
            runtime.row_count = int(_text(rows))
    runtime.checks = _check_results(instance, key, spec, port)
    runtime.slos = [
        freshness_status(spec, runtime.published_at, now),
        *_measured_slos(instance, key, spec, runtime.checks, now),
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


@contextlib.contextmanager
def open_instance(root: Path) -> Iterator[dg.DagsterInstance | None]:
    """The mesh's Dagster instance: `DagsterInstance.get()` (DAGSTER_HOME), else `<root>/.dagster_home`
    if `mesh run` created one there, else None. Never creates an instance."""
    from dagster._core.errors import DagsterHomeNotSetError

    instance: dg.DagsterInstance | None = None
    try:
        instance = dg.DagsterInstance.get()
    except DagsterHomeNotSetError:
        # `mesh run` defaults DAGSTER_HOME to <root>/.dagster_home; read the same instance it wrote.
        home = root / ".dagster_home"
        if (home / "dagster.yaml").exists():
            instance = dg.DagsterInstance.from_config(str(home))
    try:
        yield instance
    finally:
        if instance is not None:
            instance.dispose()
