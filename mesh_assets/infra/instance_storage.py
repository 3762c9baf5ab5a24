"""The local instance's event log: Dagster's SQLite event log storage, without its per-event overhead.

Dagster's `SqliteEventLogStorage` keeps one SQLite file per run (`<base_dir>/<run_id>.db`) plus an index
shard (`index.db`) that mirrors asset, check and run-status events. For every event it builds a new
SQLAlchemy engine (twice for an asset or check event: run shard and index shard), opens a connection,
commits and closes. Its shards are created in WAL mode, so each close also checkpoints the WAL into the
database and unlinks `-wal` and `-shm`. In `mesh run` that is a large share of the platform's overhead
(`benchmarks/instance_storage.py`: the instance on tmpfs instead of disk saves 13% of a 10k-order run).

`MeshSqliteEventLogStorage` changes two things, both measured with 300 `store_event` calls (check
evaluations and log lines) on disk:

- one engine per shard, cached (a bounded LRU: a webserver reads many runs; evicted engines are
  disposed): 2.95 s -> 2.06 s. Engines keep `NullPool` and the stock connect arguments, so every use
  is still its own connection, opened and closed;
- `PRAGMA journal_mode=TRUNCATE` on each new connection: -> 1.61 s. A rollback journal, truncated
  after each commit instead of unlinked; with the default `synchronous=FULL` as durable as WAL or DELETE
  (`synchronous=OFF` was faster, 0.99 s, and loses durability: not taken). It converts a shard out of
  WAL (the mode is stored in the file; the stock class reads either). Leaving WAL needs the only open
  connection to the file: when another process has one open the pragma fails at once and that
  connection simply stays in WAL. Unlike WAL, a rollback journal makes readers wait while a writer
  commits (up to the stock 30 s busy timeout; commits take milliseconds). Keeping WAL with pooled
  connections was slower (2.16 s) and would hide writes from the UI's live run-log watcher, which
  watches `<run_id>.db` itself for modifications (WAL writes reach it only at a checkpoint).

Together (`benchmarks/event_log.py`, `results/event_log.json`, medians of 3 on a loaded 2-core machine):
300 `store_event` calls 2.41 s -> 1.98 s, and a whole `mesh run` at 10k orders 31.8 s -> 26.9 s (-15%).

Everything else is the stock class: the same files and layout (so histories move freely between this
class and the stock one; a shard gains a zero-length `<shard>.db-journal` beside it), the same first-use
initialisation of a shard, the same thread lock, watcher and `get_all_run_ids`. Private surface: it
overrides `_connect` (the stock one builds an engine per call) and relies on `_db_lock`, `_initdb` and
`_initialized_dbs` (checked on every use: `wipe` and `upgrade` reset it), on `_base_dir`, `_inst_data`
and `_obs` (set before the stock `__init__` runs when the base folder comes from the instance), and on
`SQLITE_BUSY_TIMEOUT_SECONDS`. Re-check them when upgrading Dagster; the tests exercise each.

Configured in `dagster.yaml` (production uses Postgres instead, see that file):

    event_log_storage:
      module: mesh_assets.infra.instance_storage
      class: MeshSqliteEventLogStorage
      config:
        base_dir: ...   # optional

Without `base_dir` the storage lives where the stock default puts it, `<instance root>/history/runs/`
(`$DAGSTER_HOME/history/runs/` for `DagsterInstance.get()`, the given folder for
`DagsterInstance.from_config(folder)`), resolved when the instance registers itself with the storage.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import sqlalchemy as db
from dagster import Field, StringSource
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from mesh_assets.product import dagster_private

if TYPE_CHECKING:
    from dagster import DagsterInstance
    from dagster._config.config_schema import UserConfigSchema
    from dagster._serdes import ConfigurableClassData

JOURNAL_MODE = "TRUNCATE"
MAX_CACHED_ENGINES = 64


def _set_journal_mode(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    """SQLAlchemy "connect" hook: every new DBAPI connection journals in `JOURNAL_MODE`."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA journal_mode={JOURNAL_MODE}")
    except sqlite3.OperationalError:
        # A WAL shard another process has open ("database is locked", raised at once, without waiting),
        # or a read-only file: this connection works in the shard's current mode, as the stock one does.
        pass
    finally:
        cursor.close()


# Private names, through the one module that lists them (and whose test fails if Dagster changes them).
SqliteEventLogStorage = dagster_private.sqlite_event_log_storage()
SQLITE_BUSY_TIMEOUT_SECONDS = dagster_private.sqlite_busy_timeout_seconds()


class MeshSqliteEventLogStorage(SqliteEventLogStorage):
    """The stock SQLite event log storage with one cached engine per shard and a truncated journal."""

    max_cached_engines: int = MAX_CACHED_ENGINES
    """How many shards keep an engine (least recently used evicted first): all of one run's shards and
    the index in a run worker, the runs on screen in a webserver."""

    def __init__(self, base_dir: str | None = None, inst_data: ConfigurableClassData | None = None) -> None:
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        if base_dir is not None:
            super().__init__(base_dir, inst_data)
        else:
            # Built in `register_instance`, once the instance's root is known (the stock default's base).
            self._inst_data = inst_data
            self._obs = None
            self._db_lock = threading.Lock()

    @classmethod
    def config_type(cls) -> UserConfigSchema:
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(  # ty: ignore[invalid-method-override]
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> MeshSqliteEventLogStorage:
        # The stock `from_config_value` builds a `SqliteEventLogStorage` whatever the class.
        return cls(base_dir=config_value.get("base_dir"), inst_data=inst_data)

    def register_instance(self, instance: DagsterInstance) -> None:
        if not hasattr(self, "_base_dir"):
            # As `InstanceRef.config_defaults`: the instance rooted at R keeps event logs in R/history/runs/.
            runs_dir = os.path.join(instance.root_directory, "history", "runs", "")
            SqliteEventLogStorage.__init__(self, runs_dir, self._inst_data)
        super().register_instance(instance)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._engine(shard)
            # Checked on every use, not only for a new engine: `wipe` and `upgrade` reset the set.
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def _engine(self, shard: str) -> Engine:
        """The shard's engine, made (with the stock arguments) on first use; call with `_db_lock` held."""
        engine = self._engines.get(shard)
        if engine is not None:
            self._engines.move_to_end(shard)
            return engine
        engine = db.create_engine(
            self.conn_string_for_shard(shard),
            poolclass=NullPool,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
        )
        db.event.listen(engine, "connect", _set_journal_mode)
        self._engines[shard] = engine
        while len(self._engines) > self.max_cached_engines:
            _, evicted = self._engines.popitem(last=False)
            evicted.dispose()
        return engine

    @property
    def cached_shards(self) -> list[str]:
        """The shards holding an engine, least recently used first."""
        with self._db_lock:
            return list(self._engines)

    def dispose(self) -> None:
        super().dispose()
        with self._db_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()
