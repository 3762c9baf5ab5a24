"""SLOs of output ports: measured indicators, error budgets, and alerts to the owners on breach.

`definitions(registry, env)` is the governance feature: the `mesh_slo_monitor` and `mesh_slo_data_time`
sensors over every served port of every domain, and `mesh_sunset_alerts` (deprecated ports' consumers
alerted before and after the sunset, `sunset`) and `mesh_monitor_alerts` (once per anomaly episode of
a port's learned monitors, `anomaly_alerts`; `anomalies` reads the monitors' latest results), and
`mesh_access_alerts` (requests waiting, access ending, agreements due for reassessment, `access_alerts`);
the last two share one tick and cursor, `step_alerts`. See `docs/slos.md`, `docs/monitors.md` and
`docs/access.md`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import dagster as dg

    from mesh_assets.infra.environment import Environment
    from mesh_assets.product.registry import Registry


def definitions(registry: Registry, env: Environment) -> dg.Definitions:
    """The SLO sensors of the `mesh` location, watching every port of every domain.

    The data-time sensor uses the location's `warehouse` resource, which the governance location
    provides; nothing here depends on `env` beyond that.
    """
    import dagster as dg

    from mesh_assets.observe.access_alerts import access_sensor
    from mesh_assets.observe.anomaly_alerts import anomaly_sensor
    from mesh_assets.observe.sensors import data_time_sensor, monitor_sensor
    from mesh_assets.observe.sli import port_slos
    from mesh_assets.observe.sunset import sunset_sensor

    ports = port_slos(registry)
    return dg.Definitions(
        sensors=[
            monitor_sensor(registry, ports),
            data_time_sensor(ports),
            sunset_sensor(registry),
            anomaly_sensor(registry),
            access_sensor(registry),
        ]
    )
