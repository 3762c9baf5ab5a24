"""`mesh doctor` on the environment's Dagster instance: it loads, its storage is migrated, the `warehouse`
pool is limited, and its daemon beats.

Public Dagster APIs only, except one: whether a storage is migrated is asked of each storage's
`alembic_version()` (what `dagster instance info` prints as current vs. latest schema), the one place
Dagster tells; a storage that does not answer it (not SQL-backed) is `cannot-tell`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mesh_assets.infra.doctor.report import CheckResult, cannot_tell, failed, passed
from mesh_assets.infra.reclaim import POOL as POOL_NAME

if TYPE_CHECKING:
    import dagster as dg

LOADS = "Dagster instance loads"
STORAGE = "instance storage migrated"
POOL = "`warehouse` pool limited"
DAEMON = "daemon heartbeat"


def instance_checks(
    home: Path, target: str = "duckdb", is_prod: bool = False, now: float | None = None
) -> list[CheckResult]:
    """Every check of the Dagster instance at `home` (the environment's DAGSTER_HOME), in order."""
    names = (STORAGE, POOL, DAEMON)
    if not (home / "dagster.yaml").is_file():
        # Loading would create a bare instance without the mesh's dagster.yaml: leave it to `make`.
        why = f"no instance at {home} yet (no dagster.yaml)"
        fix = "`make setup` (or the first `mesh run`) creates it from the repository's dagster.yaml"
        return [cannot_tell(LOADS, why, fix), *(cannot_tell(name, why, fix) for name in names)]
    with _loaded(home) as (instance, error):
        if instance is None:
            fix = f"fix {home / 'dagster.yaml'} (compare with the repository's dagster.yaml), then rerun"
            why = "the instance did not load"
            return [failed(LOADS, f"{home}: {error}", fix), *(cannot_tell(n, why, fix) for n in names)]
        return [
            passed(LOADS, f"{home} ({type(instance.run_storage).__name__})"),
            check_storage(instance),
            check_pool(instance, target),
            check_daemon(instance, is_prod, now),
        ]


@contextmanager
def _loaded(home: Path) -> Iterator[tuple[dg.DagsterInstance | None, str]]:
    import dagster as dg

    try:
        instance = dg.DagsterInstance.from_config(str(home))
    except Exception as exc:  # any load error is the check's answer, reported whole
        yield None, _first_line(exc)
        return
    with instance:
        yield instance, ""


def check_storage(instance: dg.DagsterInstance) -> CheckResult:
    """Run, event log and schedule storage answer a read, and each schema is at the latest revision."""
    storages = {
        "run": instance.run_storage,
        "event log": instance.event_log_storage,
        "schedule": instance.schedule_storage,
    }
    try:
        instance.get_runs(limit=1)
    except Exception as exc:
        return failed(
            STORAGE,
            f"the run storage does not answer: {_first_line(exc)}",
            "check the `storage` block of dagster.yaml (host, credentials, network)",
        )
    behind: list[str] = []
    current: list[tuple[str, str]] = []
    unknown: list[str] = []
    for name, storage in storages.items():
        try:
            version = storage.alembic_version() if storage is not None else None
        except Exception as exc:
            return failed(STORAGE, f"{name} storage does not answer: {_first_line(exc)}", _MIGRATE)
        if not version:
            unknown.append(name)
            continue
        db_revision, head = version
        heads = set(head) if isinstance(head, tuple) else {head}
        if db_revision in heads:
            current.append((name, str(db_revision)))
        else:
            behind.append(f"{name} storage at {db_revision}, latest {head}")
    if behind:
        return failed(STORAGE, "behind: " + "; ".join(behind), _MIGRATE)
    if unknown:
        return cannot_tell(
            STORAGE,
            f"{', '.join(unknown)} storage reports no schema revision (not SQL-backed?)",
            "check it with `dagster instance info`",
        )
    revisions = sorted({revision for _, revision in current})
    names = ", ".join(name for name, _ in current)
    return passed(STORAGE, f"{names} storage answer, at the latest schema revision ({', '.join(revisions)})")


_MIGRATE = "`dagster instance migrate` (with this DAGSTER_HOME), after a backup of the storage"


def check_pool(instance: dg.DagsterInstance, target: str) -> CheckResult:
    """The `warehouse` pool has a limit: set on the instance, or the pool default from dagster.yaml."""
    try:
        limits = {pool.name: pool for pool in instance.event_log_storage.get_pool_limits()}
        default = instance.get_concurrency_config().pool_config.default_pool_limit
    except Exception as exc:
        return cannot_tell(
            POOL,
            f"the storage does not report pools: {_first_line(exc)}",
            "`dagster instance concurrency get warehouse`",
        )
    pool = limits.get(POOL_NAME)
    if pool is not None and not pool.from_default:
        limit, source = pool.limit, "set on the instance"
    elif default is not None:
        limit, source = default, "the pool default_limit of dagster.yaml"
    else:
        return failed(
            POOL,
            "no limit: every warehouse-writing step would start at once",
            f"`dagster instance concurrency set {POOL_NAME} {1 if target == 'duckdb' else 8}`, or keep the "
            "`concurrency: pools: default_limit` block of the repository's dagster.yaml",
        )
    # DuckDB has one writer per file: a higher limit only moves the queue from the pool to the file lock.
    note = "; DuckDB still writes one step at a time (file lock)" if target == "duckdb" and limit > 1 else ""
    return passed(POOL, f"limit {limit} ({source}){note}")


STALE_AFTER_S = 30 + 1800
"""Dagster's own verdict: a daemon is unhealthy once its heartbeat (every 30 s) is 30 min overdue."""


def check_daemon(instance: dg.DagsterInstance, is_prod: bool, now: float | None = None) -> CheckResult:
    """Every daemon this instance needs has beaten recently.

    Outside prod, no heartbeat or a stale one is `cannot-tell`: `make run` builds without a daemon, and a
    laptop runs one only while `make dev` does (a stopped `make dev` is not a fault). In prod, a daemon that
    beat and stopped, or none at all, fails.
    """
    now = time.time() if now is None else now
    required = list(instance.get_required_daemon_types())
    beats = instance.get_daemon_heartbeats()
    missing = [daemon for daemon in required if daemon not in beats]
    stale = {
        daemon: now - beats[daemon].timestamp
        for daemon in required
        if daemon in beats and now - beats[daemon].timestamp > STALE_AFTER_S
    }
    start = "start it: `make dev` locally, `dagster-daemon run` as a service in production"
    if not beats:
        if is_prod:
            return failed(DAEMON, "no daemon has ever beaten on this instance", start)
        return cannot_tell(
            DAEMON,
            "no daemon runs on this instance (none needed by `make run`; schedules, sensors and "
            "automation need one)",
            start,
        )
    if stale:
        ages = ", ".join(f"{daemon} {_age(age)} ago" for daemon, age in sorted(stale.items()))
        if not is_prod:
            return cannot_tell(DAEMON, f"no daemon running now: last heartbeat {ages}", start)
        return failed(DAEMON, f"stale: last heartbeat {ages}", start)
    if missing:
        return failed(DAEMON, f"no heartbeat from {', '.join(missing)}", start)
    newest = max(now - beats[daemon].timestamp for daemon in required) if required else 0.0
    return passed(DAEMON, f"{len(required)} daemons, oldest heartbeat {_age(newest)} ago")


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


def _first_line(exc: Any) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
