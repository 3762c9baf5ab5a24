"""Every private Dagster and dagster-dbt name the platform relies on, in one place, each with why.

Private names (`dagster._…`, members starting with `_`) change without notice between releases. The
platform uses one only where Dagster has no public API for it; each such use goes through this module,
and `PRIVATE_NAMES` lists every one with the signature it was written against, so an upgrade that
removes or changes one fails `tests/product/test_dagster_private.py` loudly, naming it, instead of
breaking a run, a sensor or the UI at run time. Nothing is imported until a function is called (the
event-log stack alone costs ~0.4 s of code-location load).

This module sits in the lowest wing so that every wing can use it (freshness needs Dagster's cron
arithmetic, the instance's storage subclasses Dagster's SQLite event log, the dbt builder trims
dagster-dbt's per-invocation start-up).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class PrivateName:
    """One private name the platform relies on."""

    module: str
    """Where it lives, e.g. `dagster._utils.schedules`."""
    name: str
    """The name in that module; `Class.member` for a member of a public or private class."""
    signature: str | None
    """`str(inspect.signature(...))` it was written against; None for a constant or a class."""
    why: str
    """Why no public API does, and who uses it."""


PRIVATE_NAMES: tuple[PrivateName, ...] = (
    PrivateName(
        "dagster._utils.schedules",
        "get_latest_completed_cron_tick",
        "(cron_string: str, current_time: datetime.datetime, timezone: str | None) -> datetime.datetime",
        "Dagster has no public cron API; only its own arithmetic (DST folds, its cron dialect) keeps the "
        "freshness state the catalog derives equal to the daemon's (product/freshness.py).",
    ),
    PrivateName(
        "dagster._utils.schedules",
        "cron_string_iterator",
        "(start_timestamp: float, cron_string: str, execution_timezone: str | None, ascending: bool = True, "
        "start_offset: int = 0) -> collections.abc.Iterator[datetime.datetime]",
        "Ticks of a cron SLO in the dialect its FreshnessPolicy uses (contracts/diff_freshness.py).",
    ),
    PrivateName(
        "dagster._core.storage.event_log.base",
        "EventLogCursor.from_storage_id",
        "(storage_id: int) -> 'EventLogCursor'",
        "The cursor `get_records_for_run` takes for 'after this storage id' (observe/feed.py).",
    ),
    PrivateName(
        "dagster._core.storage.event_log.base",
        "EventLogCursor.to_string",
        "(self) -> str",
        "As above.",
    ),
    PrivateName(
        "dagster._core.storage.event_log.sqlite.sqlite_event_log",
        "SqliteEventLogStorage",
        None,
        "The local instance's event log (infra/instance_storage.py) is the stock one with cached engines; "
        "Dagster exports no base class for a custom SQLite event log.",
    ),
    PrivateName(
        "dagster._core.storage.event_log.sqlite.sqlite_event_log",
        "SqliteEventLogStorage.__init__",
        "(self, base_dir: str, inst_data: dagster._serdes.config_class.ConfigurableClassData | None = None)",
        "Called once the instance's root is known (infra/instance_storage.py).",
    ),
    PrivateName(
        "dagster._core.storage.event_log.sqlite.sqlite_event_log",
        "SqliteEventLogStorage._connect",
        "(self, shard: str) -> collections.abc.Iterator[sqlalchemy.engine.base.Connection]",
        "Overridden to reuse one engine per shard (infra/instance_storage.py).",
    ),
    PrivateName(
        "dagster._core.storage.event_log.sqlite.sqlite_event_log",
        "SqliteEventLogStorage._initdb",
        "(self, engine: sqlalchemy.engine.base.Engine, for_index_shard=False) -> None",
        "Creates a shard's tables on first use, as the stock `_connect` does (infra/instance_storage.py).",
    ),
    PrivateName(
        "dagster._core.storage.sqlite",
        "SQLITE_BUSY_TIMEOUT_SECONDS",
        None,
        "The stock engines' busy timeout, kept for the cached ones (infra/instance_storage.py).",
    ),
    PrivateName(
        "dagster._core.storage.event_log.sqlite.sqlite_event_log",
        "INDEX_SHARD_NAME",
        None,
        "The index shard's name, whose tables `has_table` looks up (infra/instance_storage.py).",
    ),
    *(
        PrivateName(
            "dagster._core.events",
            name,
            None,
            "The event types the stock SQLite `store_event` also writes to the index shard: the mesh storage "
            "stores those in one index transaction each (infra/instance_storage.py).",
        )
        for name in ("ASSET_EVENTS", "ASSET_CHECK_EVENTS", "EVENT_TYPE_TO_PIPELINE_RUN_STATUS")
    ),
    PrivateName(
        "dagster._core.instance.methods.event_methods",
        "EventMethods._get_event_batch_size",
        "(self) -> int",
        "Overridden by the local instance (infra/instance_storage.py, MeshInstance): Dagster reads the "
        "batch size only from the DAGSTER_EVENT_BATCH_SIZE environment variable, which the platform must "
        "not write.",
    ),
    PrivateName(
        "dagster._core.instance.ref",
        "InstanceRef.config_defaults",
        "(base_dir: str) -> "
        "collections.abc.Mapping[str, dagster._serdes.config_class.ConfigurableClassData | None]",
        "A custom instance class must give its storage defaults; the mesh instance's are the stock ones "
        "(infra/instance_storage.py, MeshInstance).",
    ),
    PrivateName(
        "dagster._core.storage.event_log.schema",
        "AssetCheckExecutionsTable",
        None,
        "Every check's execution history of a port in one query (catalog/runtime.py): Dagster's API asks "
        "one query per check, 177 for the example's ports, 0.5 s of a governance run.",
    ),
    PrivateName(
        "dagster._core.storage.event_log.sql_event_log",
        "SqlEventLogStorage",
        None,
        "As above: the query runs on Dagster's SQL event logs (SQLite, Postgres) only.",
    ),
    PrivateName(
        "dagster._core.storage.asset_check_execution_record",
        "AssetCheckExecutionRecord.from_db_row",
        "(cls, row, key: dagster._core.definitions.asset_key.AssetCheckKey) -> 'AssetCheckExecutionRecord'",
        "As above: a row read as Dagster's own query reads it.",
    ),
    PrivateName(
        "dagster._serdes",
        "ConfigurableClassData",
        None,
        "What an instance passes a configurable storage class (infra/instance_storage.py).",
    ),
    PrivateName(
        "dagster._config.config_schema",
        "UserConfigSchema",
        None,
        "The return type of a configurable class's `config_type` (infra/instance_storage.py).",
    ),
    PrivateName(
        "dagster_dbt",
        "DbtCliResource._cli_version",
        None,
        "Overridden: the stock property runs `dbt --version` in a subprocess on every invocation "
        "(assets/builders/dbt.py, MeshDbtCli).",
    ),
    PrivateName(
        "dagster_dbt",
        "DbtCliResource._initialize_dbt_core_adapter",
        "(self, args: collections.abc.Sequence[str]) -> dbt.adapters.base.impl.BaseAdapter",
        "Overridden to skip an in-process adapter the mesh never asks for (assets/builders/dbt.py).",
    ),
)
"""Every private name in use; the test checks each exists with this signature."""


def latest_completed_cron_tick(cron: str, at: datetime, timezone: str) -> datetime:
    """The latest tick of `cron` at or before `at`, in `timezone`, as Dagster's freshness evaluator has it."""
    from dagster._utils.schedules import get_latest_completed_cron_tick

    return get_latest_completed_cron_tick(cron, at, timezone)


def cron_ticks(start: float, cron: str, timezone: str, ascending: bool = True) -> Iterator[datetime]:
    """The ticks of `cron` from `start` (epoch seconds), forwards or backwards, in Dagster's cron dialect."""
    from dagster._utils.schedules import cron_string_iterator

    return cron_string_iterator(start, cron, timezone, ascending=ascending)


def event_log_cursor_after(storage_id: int) -> str:
    """The cursor string `get_records_for_run` takes for the events after `storage_id`."""
    from dagster._core.storage.event_log.base import EventLogCursor

    return EventLogCursor.from_storage_id(storage_id).to_string()


def sqlite_event_log_storage() -> Any:
    """Dagster's SQLite event log storage class (to subclass)."""
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

    return SqliteEventLogStorage


def sqlite_busy_timeout_seconds() -> int:
    """The busy timeout Dagster's SQLite engines use."""
    from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS

    return SQLITE_BUSY_TIMEOUT_SECONDS


def sqlite_index_shard_name() -> str:
    """The name of the SQLite event log's index shard (`<name>.db` beside the run shards)."""
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME

    return INDEX_SHARD_NAME


def event_types_mirrored_in_the_sqlite_index() -> frozenset[Any]:
    """The event types Dagster's SQLite event log copies into its index shard besides the run's own shard.

    Asset events, asset check events and run status changes (`SqliteEventLogStorage.store_event`).
    """
    from dagster._core.events import ASSET_CHECK_EVENTS, ASSET_EVENTS, EVENT_TYPE_TO_PIPELINE_RUN_STATUS

    return (
        frozenset(ASSET_EVENTS)
        | frozenset(ASSET_CHECK_EVENTS)
        | frozenset(EVENT_TYPE_TO_PIPELINE_RUN_STATUS.keys())
    )


def instance_config_defaults(base_dir: str) -> Mapping[str, Any]:
    """The storage classes a stock instance rooted at `base_dir` uses when `dagster.yaml` names none."""
    from dagster._core.instance.ref import InstanceRef

    return InstanceRef.config_defaults(base_dir)


def _newest_check_executions(
    storage: Any, asset_key: Any, limit: int, columns: list[str], names: list[str] | None = None
) -> list[Any] | None:
    """`columns` of each check of `asset_key`'s newest `limit` executions, newest first, in one query
    (`row_number` per check); None when the storage is not Dagster's SQL event log."""
    import sqlalchemy as db
    from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable as table
    from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage

    if not isinstance(storage, SqlEventLogStorage):
        return None
    rank = db.func.row_number().over(partition_by=table.c.check_name, order_by=table.c.id.desc())
    which = table.c.asset_key == asset_key.to_string()
    if names is not None:
        which = db.and_(which, table.c.check_name.in_(names))
    ranked = (
        db.select(*(table.c[name] for name in ["id", "check_name", *columns]), rank.label("newest"))
        .where(which)
        .subquery()
    )
    query = db.select(ranked).where(ranked.c.newest <= limit).order_by(ranked.c.id.desc())
    with storage.index_connection() as conn:
        return list(conn.execute(query).mappings().all())


def asset_check_histories(
    storage: Any, asset_key: Any, limit: int, names: list[str] | None = None
) -> dict[str, list[Any]] | None:
    """Every check of `asset_key` (or those `names`): its newest `limit` execution records, newest first,
    by check name.

    One query where `get_asset_check_execution_history` takes one per check, with the same columns,
    order and records (`AssetCheckExecutionRecord`s). None when the storage is not Dagster's SQL event
    log: the caller then asks per check.
    """
    from dagster import AssetCheckKey
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecord

    columns = ["run_id", "execution_status", "evaluation_event", "create_timestamp", "partition"]
    rows = _newest_check_executions(storage, asset_key, limit, columns, names)
    if rows is None:
        return None
    found: dict[str, list[Any]] = {}
    for row in rows:
        key = AssetCheckKey(asset_key, row["check_name"])
        found.setdefault(row["check_name"], []).append(AssetCheckExecutionRecord.from_db_row(row, key=key))
    return found


def asset_check_outcomes(
    storage: Any, asset_key: Any, limit: int
) -> dict[str, list[tuple[str, float]]] | None:
    """Every check of `asset_key`: (status, creation timestamp) of its newest `limit` executions, newest
    first, by check name; what `asset_check_histories` gives without reading the events (a status is
    `SUCCEEDED` exactly when the evaluation passed). None when the storage is not Dagster's SQL event log.
    """
    rows = _newest_check_executions(storage, asset_key, limit, ["execution_status", "create_timestamp"])
    if rows is None:
        return None
    found: dict[str, list[tuple[str, float]]] = {}
    for row in rows:
        # As `AssetCheckExecutionRecord.from_db_row`: the column holds a naive UTC datetime.
        created = row["create_timestamp"].replace(tzinfo=UTC).timestamp()
        found.setdefault(row["check_name"], []).append((row["execution_status"], created))
    return found
