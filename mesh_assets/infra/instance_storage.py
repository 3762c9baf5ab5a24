"""The local instance's event log: Dagster's SQLite event log storage, without its per-event overhead.

Dagster's `SqliteEventLogStorage` keeps one SQLite file per run (`<base_dir>/<run_id>.db`) plus an index
shard (`index.db`) that mirrors asset, check and run-status events. For every event it builds a new
SQLAlchemy engine (twice for an asset or check event: run shard and index shard), opens a connection,
commits and closes. Its shards are created in WAL mode, so each close also checkpoints the WAL into the
database and unlinks `-wal` and `-shm`. In `mesh run` that is a large share of the platform's overhead
(`benchmarks/instance_storage.py`: the instance on tmpfs instead of disk saves 13% of a 10k-order run).

`MeshSqliteEventLogStorage` changes four things, measured with `store_event` calls (check evaluations
and log lines) on disk:

- one engine per shard, cached (a bounded LRU: a webserver reads many runs; evicted engines are
  disposed): 300 calls 2.95 s -> 2.06 s;
- `PRAGMA journal_mode=TRUNCATE` on each new connection: -> 1.61 s. A rollback journal, truncated
  after each commit instead of unlinked; with the default `synchronous=FULL` as durable as WAL or DELETE
  (`synchronous=OFF` was faster, 0.99 s, and loses durability on power loss: not taken). It converts a
  shard out of WAL (the mode is stored in the file; the stock class reads either). Leaving WAL needs the
  only open connection to the file: when another process has one open the pragma fails at once and that
  connection simply stays in WAL (and is closed after each use, see below). Unlike WAL, a rollback
  journal makes readers wait while a writer commits (up to the stock 30 s busy timeout; commits take
  milliseconds). WAL with pooled connections was slower (2.16 s) and would hide writes from the UI's
  live run-log watcher, which watches `<run_id>.db` itself for modifications (WAL writes reach it only
  at a checkpoint);
- one connection kept open per shard (a pool of one) instead of a new connection, journal pragma and
  close per use: an event is stored through two to five uses of a shard (run shard, index, check
  tables). 600 calls on a quiet machine, medians of 5: 1.79 s -> 1.24 s (3.0 -> 2.1 ms per event);
  in `benchmarks/per_product.py`, 99 events per product. An idle SQLite connection holds no lock, so
  other processes read and write the shard as before, and a commit still writes `<run_id>.db`. A kept
  connection is dropped when its shard's file was deleted or replaced since it was opened (`wipe`, or
  another process's), found by the file's inode on each use; a connection that stayed in WAL is closed
  after each use, as the stock class closes every one;
- an event's writes to the index in one transaction (`_one_transaction`), and a batch of events in one
  transaction per shard (`store_event_batch`; the stock SQLite class stores a batch event by event). The
  stock class commits each use of a shard: a planned or evaluated check is three synchronous commits (its
  row in the run's shard, its copy in the index, the check's execution row), now two, and a new run's
  planned events (one per asset and check, 32 per scaffolded product) two for the whole batch. The rows
  written are the stock class's, row for row (tested). Dagster hands the storage a batch only when the
  instance has a batch size: `MeshInstance` below, `event_batch_size` in `dagster.yaml`. In a domain of
  50 scaffolded products (`benchmarks/per_product.py`): ~250 commits per product -> ~105.

The first two together (`benchmarks/event_log.py`, `results/event_log.json`, medians of 3 on a loaded
2-core machine): 300 `store_event` calls 2.41 s -> 1.98 s, and a whole `mesh run` at 10k orders 31.8 s ->
26.9 s (-15%).

Everything else is the stock class: the same files and layout (so histories move freely between this
class and the stock one; a shard gains a zero-length `<shard>.db-journal` beside it), the same first-use
initialisation of a shard (a new run's shard after the first is a byte copy of one this process
initialised: Alembic's check and stamp cost 50-80 ms per run), the same watcher and `get_all_run_ids`; its
thread lock is made reentrant (a transaction held open across uses of two shards). Private surface: it
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
    instance_class:
      module: mesh_assets.infra.instance_storage
      class: MeshInstance
    event_batch_size: 1000  # 0: every event on its own, as stock Dagster

Without `base_dir` the storage lives where the stock default puts it, `<instance root>/history/runs/`
(`$DAGSTER_HOME/history/runs/` for `DagsterInstance.get()`, the given folder for
`DagsterInstance.from_config(folder)`), resolved when the instance registers itself with the storage.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as db
from dagster import DagsterInstance, Field, IntSource, StringSource
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

from mesh_assets.product import dagster_private

if TYPE_CHECKING:
    from dagster import EventLogEntry
    from dagster._config.config_schema import UserConfigSchema
    from dagster._serdes import ConfigurableClassData

JOURNAL_MODE = "TRUNCATE"
MAX_CACHED_ENGINES = 64


_IN_WAL = "mesh_in_wal"
"""Connection info key: the connection works in WAL mode (it could not leave it), so it is not kept open."""


def _set_journal_mode(dbapi_connection: sqlite3.Connection, record: Any) -> None:
    """SQLAlchemy "connect" hook: every new DBAPI connection journals in `JOURNAL_MODE`."""
    cursor = dbapi_connection.cursor()
    try:
        mode = cursor.execute(f"PRAGMA journal_mode={JOURNAL_MODE}").fetchone()
    except sqlite3.OperationalError:
        # A WAL shard another process has open ("database is locked", raised at once, without waiting),
        # or a read-only file: this connection works in the shard's current mode, as the stock one does.
        mode = cursor.execute("PRAGMA journal_mode").fetchone()
    finally:
        cursor.close()
    record.info[_IN_WAL] = bool(mode) and str(mode[0]).lower() == "wal"


@dataclass
class _Kept:
    """A shard's cached engine and the file (device, inode) its kept connection opened, once known."""

    engine: Engine
    file: tuple[int, int] | None = None


def _identity(path: str) -> tuple[int, int] | None:
    """The file's device and inode (None if it does not exist): which file a kept connection has open."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    return found.st_dev, found.st_ino


# Private names, through the one module that lists them (and whose test fails if Dagster changes them).
SqliteEventLogStorage = dagster_private.sqlite_event_log_storage()
SQLITE_BUSY_TIMEOUT_SECONDS = dagster_private.sqlite_busy_timeout_seconds()
INDEX_SHARD_NAME = dagster_private.sqlite_index_shard_name()
MIRRORED = dagster_private.event_types_mirrored_in_the_sqlite_index()


class MeshSqliteEventLogStorage(SqliteEventLogStorage):
    """The stock SQLite event log storage with one cached engine per shard and a truncated journal."""

    max_cached_engines: int = MAX_CACHED_ENGINES
    """How many shards keep an engine (least recently used evicted first): all of one run's shards and
    the index in a run worker, the runs on screen in a webserver."""

    def __init__(self, base_dir: str | None = None, inst_data: ConfigurableClassData | None = None) -> None:
        self._engines: OrderedDict[str, _Kept] = OrderedDict()
        self._tables: set[str] = set()
        self._joined = threading.local()
        self._run_shard_template: bytes | None = None
        if base_dir is not None:
            super().__init__(base_dir, inst_data)
        else:
            # Built in `register_instance`, once the instance's root is known (the stock default's base).
            self._inst_data = inst_data
            self._obs = None
        # Reentrant: a shard's transaction held open for several uses (`_one_transaction`) is inside the
        # lock while the uses of the other shard take it again, in the same thread.
        self._db_lock = threading.RLock()

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
            self._db_lock = threading.RLock()  # the stock `__init__` sets a plain lock
        super().register_instance(instance)

    def _open_transactions(self) -> dict[str, Connection]:
        """This thread's shards whose transaction `_one_transaction` holds open, by shard."""
        opened = getattr(self._joined, "shards", None)
        if opened is None:
            opened = self._joined.shards = {}
        return opened

    @contextmanager
    def _one_transaction(self, *shards: str) -> Iterator[None]:
        """Every use of these shards inside the block (in this thread) joins one transaction per shard.

        The stock class commits each use of a shard on its own: a check evaluation is three commits (its
        row in the run's shard, its copy in the index, the check's execution row in the index), each a
        synchronous write to disk. Joined, the index's two are one transaction, and a batch of planned
        events is one per shard. The transactions commit when the block ends, the last shard named first:
        name the index before the run's shard, so a run's rows are committed before their copies in the
        index (if the index then fails, the run's log has rows the index lacks, as when the stock class
        fails between its commits; never an index row for a log line that is not there).
        """
        opened = self._open_transactions()
        with ExitStack() as stack:
            for shard in shards:
                if shard in opened:
                    continue
                opened[shard] = stack.enter_context(self._connect(shard))
                stack.callback(opened.pop, shard)
            yield

    def store_event(self, event: EventLogEntry) -> None:
        """As the stock class, with the event's writes to the index shard in one transaction."""
        if event.is_dagster_event and event.dagster_event_type in MIRRORED:
            with self._one_transaction(INDEX_SHARD_NAME):
                super().store_event(event)
        else:
            super().store_event(event)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """A batch (the planned events of a new run, a step's materializations) in one transaction per shard.

        The stock SQLite class stores a batch event by event, three commits for each planned check. Each
        event is stored exactly as `store_event` stores it, so the files are the stock class's.
        """
        for run_id in dict.fromkeys(event.run_id for event in events):
            with self._one_transaction(INDEX_SHARD_NAME, run_id):
                for event in events:
                    if event.run_id == run_id:
                        super().store_event(event)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        joined = self._open_transactions().get(shard)
        if joined is not None:
            # Inside `_one_transaction`: this use's statements commit with the block's transaction.
            yield joined
            return
        with self._db_lock:
            kept = self._kept(shard)
            engine = kept.engine
            # Checked on every use, not only for a new engine: `wipe` and `upgrade` reset the set.
            if shard not in self._initialized_dbs:
                if not self._copy_new_run_shard(shard):
                    fresh = shard != INDEX_SHARD_NAME and not os.path.exists(self.path_for_shard(shard))
                    self._initdb(engine)
                    # The stock initialisation turns the shard to WAL on the connection it used: a new
                    # one (from the connect hook) turns it back.
                    engine.dispose()
                    if fresh:
                        self._keep_run_shard_template(shard)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn:
                with conn.begin():
                    yield conn
                if conn.info.get(_IN_WAL):
                    # A WAL shard keeps its commits in `-wal` until a checkpoint, which closing the last
                    # connection makes: not kept open, so the UI's watcher of `<run_id>.db` still sees them.
                    conn.invalidate()
            if kept.file is None:  # the file exists now: the one this engine's connection has open
                kept.file = _identity(self.path_for_shard(shard))

    def _keep_run_shard_template(self, shard: str) -> None:
        """Remember the bytes of a run shard this process just created and initialised, still empty.

        The stock initialisation of a shard (its tables, then Alembic's revision check and stamp) takes
        50-80 ms, paid by every run: a `mesh run` of the whole example makes five. Later new run shards
        of this process are copies of this one (`_copy_new_run_shard`): the same schema and revision, made
        by this same Dagster, so never a template from another version.
        """
        if self._run_shard_template is not None:
            return
        path = self.path_for_shard(shard)
        if os.path.exists(path + "-wal"):  # still open elsewhere in WAL: its file alone is not the shard
            return
        connection = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_SECONDS)
        try:
            empty = connection.execute("SELECT COUNT(*) FROM event_logs").fetchone() == (0,)
        finally:
            connection.close()
        if empty:
            with open(path, "rb") as template:
                self._run_shard_template = template.read()

    def _copy_new_run_shard(self, shard: str) -> bool:
        """Create a new run shard as a copy of this process's template; False if it exists or none is kept.

        The copy is linked into place, so a shard another process created meanwhile is never replaced.
        """
        template = self._run_shard_template
        path = self.path_for_shard(shard)
        if template is None or shard == INDEX_SHARD_NAME or os.path.exists(path):
            return False
        partial = f"{path}.{os.getpid()}.{threading.get_ident()}.mesh-new"
        try:
            with open(partial, "wb") as file:
                file.write(template)
                file.flush()
                os.fsync(file.fileno())  # as durable as the stock initialisation's own writes
            os.link(partial, path)
        except FileExistsError:
            return False
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
        return True

    def _kept(self, shard: str) -> _Kept:
        """The shard's engine, made (with the stock arguments) on first use; call with `_db_lock` held.

        Its one pooled connection is kept only while the file is the one it opened: a shard deleted or
        replaced since (`wipe`, another process's `dagster instance wipe`) gets a new engine, so nothing is
        read from or written to an unlinked file.
        """
        kept = self._engines.get(shard)
        if kept is not None:
            if kept.file is None or _identity(self.path_for_shard(shard)) == kept.file:
                self._engines.move_to_end(shard)
                return kept
            del self._engines[shard]
            kept.engine.dispose()
        engine = db.create_engine(
            self.conn_string_for_shard(shard),
            # One connection kept open per shard (uses are serialised by `_db_lock`); an idle SQLite
            # connection holds no lock, so other processes read and write the shard as before.
            poolclass=QueuePool,
            pool_size=1,
            max_overflow=2,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
        )
        db.event.listen(engine, "connect", _set_journal_mode)
        kept = self._engines[shard] = _Kept(engine)
        while len(self._engines) > self.max_cached_engines:
            _, evicted = self._engines.popitem(last=False)
            evicted.engine.dispose()
        return kept

    def has_table(self, table_name: str) -> bool:
        """Whether the index shard has the table: asked before every check event (`supports_asset_checks`).

        The stock answer builds an engine and opens a connection each time (3,100 times in a 50-product
        run, 9% of it under cProfile); this one remembers a table once found (Dagster adds tables in
        migrations and never drops one; `wipe` and `upgrade` forget). It is asked with `_db_lock` held
        (inside a shard's connection), so it opens its own plain connection, as the stock one does.
        """
        if table_name in self._tables:
            return True
        path = self.path_for_shard(INDEX_SHARD_NAME)
        if not os.path.exists(path):
            return False
        connection = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_SECONDS)
        try:
            found = bool(
                connection.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table_name,)
                ).fetchone()
            )
        finally:
            connection.close()
        if found:
            self._tables.add(table_name)
        return found

    def wipe(self) -> None:
        self._tables.clear()
        super().wipe()

    def upgrade(self) -> None:
        self._tables.clear()
        super().upgrade()

    @property
    def cached_shards(self) -> list[str]:
        """The shards holding an engine, least recently used first."""
        with self._db_lock:
            return list(self._engines)

    def dispose(self) -> None:
        super().dispose()
        with self._db_lock:
            for kept in self._engines.values():
                kept.engine.dispose()
            self._engines.clear()


EVENT_BATCH_SIZE = 1000
"""Events of one batch stored together at most (a new run's planned events come as one batch)."""


class MeshInstance(DagsterInstance):
    """The local Dagster instance: the stock one, handing its event log whole batches of events.

    Dagster emits a new run's planned events (one per asset and one per check: 32 per scaffolded product)
    as one batch, but stores a batch as a batch only when the environment variable
    `DAGSTER_EVENT_BATCH_SIZE` is set; otherwise each is stored on its own, with its own commits. The
    platform reads its settings once and writes no environment, so the batch size is the instance's own
    setting, `event_batch_size` in `dagster.yaml` (0 stores every event on its own, as stock Dagster).
    `MeshSqliteEventLogStorage.store_event_batch` then stores a batch in one transaction per shard.
    """

    def __init__(self, *args: Any, event_batch_size: int = EVENT_BATCH_SIZE, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._mesh_event_batch_size = event_batch_size

    @classmethod
    def config_schema(cls) -> dict[str, Field]:
        return {"event_batch_size": Field(IntSource, is_required=False, default_value=EVENT_BATCH_SIZE)}

    @classmethod
    def config_defaults(cls, base_dir: str) -> Mapping[str, Any]:
        return dagster_private.instance_config_defaults(base_dir)

    def _get_event_batch_size(self) -> int:
        return self._mesh_event_batch_size
