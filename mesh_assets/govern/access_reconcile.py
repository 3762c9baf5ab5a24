"""`mesh_access_sync`: the governance location keeps the warehouse's grants in step with the agreements.

A sensor of the `mesh` location, hourly, running by default. On Snowflake it does what `mesh access sync`
does (`access_sync.sync`): in `prod` it applies the difference, so an expiry or a merged revocation takes
effect within the hour without anyone running a command; in any other environment it only reads and
plans (a branch's clone of prod is not where people read). Drift, grants no agreement made, is reported
on every tick and never pruned here: pruning a hand-made grant is a person's call (`mesh access sync
--prune`). On DuckDB there is nothing to grant: the tick says so and the platform's reads enforce.

The connection is opened only when a tick runs (never at load), through the one Snowflake factory.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import date

import dagster as dg

from mesh_assets.govern import access_audit, access_grants, access_sync
from mesh_assets.infra.environment import PROD, Environment
from mesh_assets.product.registry import Registry

SENSOR = "mesh_access_sync"
Connect = Callable[[], AbstractContextManager[access_sync.Run]]
"""Opens the account for one tick and yields a `Run` (tests hand in a fake account)."""


def snowflake_runner(env: Environment) -> Connect:
    """A connector to the environment's Snowflake database, signed in by the `SNOWFLAKE_*` variables."""

    @contextmanager
    def connect() -> Iterator[access_sync.Run]:
        from mesh_assets.infra.warehouse.snowflake_sign_in import SnowflakeSignIn, snowflake_connection

        sign_in = SnowflakeSignIn.from_environ(os.environ)
        with (
            snowflake_connection(sign_in, database=env.database) as connection,
            connection.cursor() as cursor,
        ):
            yield access_sync.cursor_runner(cursor)

    return connect


def reconcile_tick(
    context: dg.SensorEvaluationContext,
    registry: Registry,
    env: Environment,
    connect: Connect | None = None,
    today: date | None = None,
) -> dg.SensorResult:
    """One evaluation: read the grants, apply the difference in prod (plan elsewhere), report drift."""
    if env.target != "snowflake":
        return dg.SensorResult(
            skip_reason="DuckDB has no grants: the platform's own reads enforce agreements"
        )
    today = today or date.today()
    wanted = access_grants.desired(registry, today, env.database)
    apply = env.name == PROD
    with (connect or snowflake_runner(env))() as run:
        result = access_sync.sync(
            run, wanted, dry_run=not apply, log=env.data_dir / access_audit.GRANTS_LOG if apply else None
        )
    plan = result.plan
    for grant in plan.drift:
        context.log.warning(f"access drift (no agreement made it; left alone): {grant.grant_sql()}")
    verb = "applied" if apply else f"would apply (not prod: {env.name})"
    summary = (
        f"{today.isoformat()}: {verb} {len(plan.statements())} statement(s) ({len(plan.grant)} grant(s), "
        f"{len(plan.revoke)} revocation(s)); {len(plan.drift)} drift"
    )
    return dg.SensorResult(skip_reason=summary)


def access_sync_sensor(registry: Registry, env: Environment) -> dg.SensorDefinition:
    """The reconciling sensor, running by default."""

    @dg.sensor(
        name=SENSOR,
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=3600,
        description="Keeps Snowflake's grants in step with the access agreements in force (applies in prod, "
        "plans elsewhere) and reports grants no agreement made as drift. Nothing to do on DuckDB.",
    )
    def mesh_access_sync(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        return reconcile_tick(context, registry, env)

    return mesh_access_sync


def definitions(registry: Registry, env: Environment) -> dg.Definitions:
    """The governance location's share: the reconciling sensor."""
    return dg.Definitions(sensors=[access_sync_sensor(registry, env)])
