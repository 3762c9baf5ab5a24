"""What the learned monitors last said about each port, read from the Dagster instance.

`latest_monitors` gives the latest result of every monitor of every port (one batched query for the
whole mesh): `ok`, `anomaly`, `learning`, `error` (the monitor could not run) or `not yet run`, with the
observed value, the learned bounds and the reason, as the publish step recorded them
(`mesh_assets.quality.monitors`). `recent_anomalies` lists one port's anomalies over its recent
evaluations, for the catalog. `mesh monitor` prints the former; `anomaly_alerts` alerts on it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import dagster as dg

from mesh_assets.product import addressing, dagster_private
from mesh_assets.product.registry import Product, Registry
from mesh_assets.product.spec import DataProductSpec, OutputPort
from mesh_assets.quality.monitors import monitor_checks

COMPLETED = {"SUCCEEDED", "FAILED"}
"""`AssetCheckExecutionRecordStatus` values of an evaluated check (the enum is not exported)."""


@dataclass(frozen=True)
class MonitorState:
    """One monitor's latest result on one port."""

    port: str
    """The port's asset key, `<domain>/<product>/v<major>`."""
    product: str
    monitor: str
    status: str
    value: float | None = None
    lower: float | None = None
    upper: float | None = None
    training: int | None = None
    reason: str = ""
    bucket: str | None = None
    """The day judged (ports with an event time)."""
    at: float | None = None
    """When it was evaluated (epoch seconds)."""
    run_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The state as `mesh monitor --json` prints it."""
        return asdict(self)


def monitored_ports(registry: Registry) -> list[tuple[Product, OutputPort, dg.AssetKey]]:
    """Every output port with monitors, and its asset key."""
    found = []
    for key in sorted(registry.products):
        product = registry.products[key]
        spec = product.spec
        for port in spec.output_ports:
            if monitor_checks(port):
                found.append((product, port, addressing.port_key(spec.domain, spec.name, port.major)))
    return found


def _value(metadata: dict[str, Any], key: str) -> Any:
    entry = metadata.get(key)
    return getattr(entry, "value", entry)


def state_of(port: dg.AssetKey, product: str, monitor: str, record: Any | None) -> MonitorState:
    """A monitor's state from its latest check execution record (or none yet)."""
    name = port.to_user_string()
    if record is None or record.status.value not in COMPLETED or record.evaluation is None:
        return MonitorState(name, product, monitor, "not yet run")
    metadata = dict(record.evaluation.metadata)
    status = _value(metadata, "status") or ("ok" if record.evaluation.passed else "anomaly")
    training = _value(metadata, "training_size")
    return MonitorState(
        port=name,
        product=product,
        monitor=monitor,
        status=str(status),
        value=_value(metadata, "value"),
        lower=_value(metadata, "lower"),
        upper=_value(metadata, "upper"),
        training=None if training is None else int(training),
        reason=str(_value(metadata, "reason") or ""),
        bucket=_value(metadata, "bucket"),
        at=record.create_timestamp,
        run_id=record.run_id,
    )


def latest_monitors(
    instance: dg.DagsterInstance, registry: Registry, domains: Iterable[str] | None = None
) -> list[MonitorState]:
    """The latest result of every monitor of every port (of `domains`, if given), in one query."""
    wanted = set(domains or [])
    ports = [p for p in monitored_ports(registry) if not wanted or p[0].spec.domain in wanted]
    keys = [dg.AssetCheckKey(key, name) for _, port, key in ports for name in monitor_checks(port)]
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(keys) if keys else {}
    return [
        state_of(key, product.key, name, latest.get(dg.AssetCheckKey(key, name)))
        for product, port, key in ports
        for name in monitor_checks(port)
    ]


def recent_anomalies(
    instance: dg.DagsterInstance, spec: DataProductSpec, port: OutputPort, limit: int = 10
) -> list[MonitorState]:
    """The port's monitor anomalies among each monitor's last `limit` evaluations, newest first.

    Every monitor's records are read in one query (check by check on a storage that is not Dagster's SQL
    event log).
    """
    key = addressing.port_key(spec.domain, spec.name, port.major)
    names = list(monitor_checks(port))
    histories = dagster_private.asset_check_histories(instance.event_log_storage, key, limit, names)
    found = []
    for name in names:
        if histories is not None:
            history = histories.get(name, [])
        else:
            history = instance.event_log_storage.get_asset_check_execution_history(
                dg.AssetCheckKey(key, name), limit=limit
            )
        for record in history:
            state = state_of(key, spec.key, name, record)
            if state.status == "anomaly":
                found.append(state)
    return sorted(found, key=lambda s: -(s.at or 0))
