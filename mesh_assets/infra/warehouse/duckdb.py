"""The embedded DuckDB backend: one local file, no credentials, the default for laptops and CI.

DuckDB allows one process to open a file for writing at a time; a second process fails at once with a
lock error. Every session (and every dbt invocation) therefore holds an advisory file lock beside the
database for its whole length, so runs of different domains queue up instead of failing, whichever way
they were launched (UI, daemon, `mesh run`, tests). Dagster's `warehouse` pool additionally serialises
steps so the UI shows who is waiting.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import dagster as dg
import filelock
from pydantic import Field, PrivateAttr

from mesh_assets.infra.reclaim import Owner, pid_alive, record_owner
from mesh_assets.infra.warehouse.base import NotAQueryError, Warehouse, WarehouseSession
from mesh_assets.product.addressing import Relation
from mesh_assets.product.spec import Column, LogicalType, portable_sql_type
from mesh_assets.product.sql_text import quote_identifier, quote_literal

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

_INTEGERS = {
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
}
# What a transformation may hand over for a contract type: the same family, which the publish casts to
# the contract's exact type. A string where a number is promised, or a float where an integer is
# promised, is a contract violation, not something to cast away.
_COMPATIBLE = {
    LogicalType.STRING: {"VARCHAR"},
    LogicalType.INTEGER: _INTEGERS,
    LogicalType.BIGINT: _INTEGERS,
    LogicalType.DOUBLE: {"DOUBLE", "FLOAT", "REAL", "DECIMAL", *_INTEGERS},
    LogicalType.DECIMAL: {"DECIMAL", *_INTEGERS},
    LogicalType.BOOLEAN: {"BOOLEAN"},
    LogicalType.DATE: {"DATE"},
    LogicalType.TIMESTAMP: {
        "TIMESTAMP",
        "TIMESTAMP_NS",
        "TIMESTAMP_MS",
        "TIMESTAMP_S",
        "TIMESTAMP WITH TIME ZONE",
    },
}


_ACQUIRING_RUN: ContextVar[str | None] = ContextVar("_ACQUIRING_RUN", default=None)
"""The run on whose behalf this thread acquires a `FileLock`: the holder record `_record_holder` writes."""


def _record_holder(fd: int) -> None:
    """Write who holds the lock into the lock file (filelock's `on_acquired` hook: first acquisition only).

    One module-level function, not a closure per `FileLock`: filelock's singleton (the per-process
    reentrancy) refuses a second instance for the path with a different hook. The run comes from
    `_ACQUIRING_RUN`, set by the acquiring thread around `acquire`, which runs this hook synchronously.
    """
    me = Owner.current()
    record = {"host": me.host, "pid": me.pid, "pid_started": me.started}
    record.update(run_id=_ACQUIRING_RUN.get(), since=time.time())
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(record).encode(), 0)


class FileLock:
    """A cross-process lock on a file, reentrant within a process, that says who holds it.

    The lock itself is the `filelock` library's (`flock` on Unix, `msvcrt.locking` on Windows): the kernel
    releases the lock of a killed process, so a dead holder never blocks. One filelock instance per path
    and process (`is_singleton`), its count shared by every thread (`thread_local=False`), makes it
    reentrant within the process. Reentrancy matters because an asset holds the lock while it runs the
    dbt CLI, and must still be able to open its own session inside that block. The holder writes its run,
    pid, host and start time into the lock file (`_record_holder`), so a waiter can say on what and for whom
    it waits, and whether that process still lives.
    """

    report_every_s: ClassVar[float] = 10.0
    """How often a waiter repeats who holds the lock (the first report comes after one second)."""

    def __init__(
        self,
        path: Path,
        timeout_s: float,
        log: Callable[[str], None] | None = None,
        run_id: str | None = None,
    ) -> None:
        self.path = Path(f"{path}.lock")
        self.timeout_s = timeout_s
        self.log = log
        self.run_id = run_id

    def _lock(self) -> filelock.BaseFileLock:
        # The path resolved: the singleton is keyed on it, and `data/x` and `./data/x` are one lock.
        return filelock.FileLock(
            self.path.resolve(),
            thread_local=False,
            is_singleton=True,
            # No soft-lock fallback where flock is missing: its lock file outlives a killed holder.
            fallback_to_soft=False,
            on_acquired=_record_holder,
        )

    def held_here(self) -> bool:
        """Whether this process already holds the lock."""
        return self._lock().is_locked

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Acquire the lock (waiting up to `timeout_s`) for the length of the block."""
        lock = self._lock()  # held by this frame: the singleton lives as long as the lock is held
        token = _ACQUIRING_RUN.set(self.run_id)
        try:
            self._acquire(lock)
        finally:
            _ACQUIRING_RUN.reset(token)
        try:
            yield
        finally:
            lock.release()

    def holder(self) -> str:
        """Who holds the lock, as its holder recorded it (run, pid, host, alive or dead, since when)."""
        try:
            recorded = json.loads(self.path.read_text() or "{}")
            owner = Owner(recorded["host"], int(recorded["pid"]), recorded.get("pid_started"))
        except (OSError, ValueError, KeyError, TypeError):
            return "a process that did not say who it is"
        run = f"run {recorded['run_id'][:8]}, " if recorded.get("run_id") else ""
        since = datetime.fromtimestamp(recorded.get("since", 0)).strftime("%H:%M:%S")
        return f"{run}pid {owner.pid} on {owner.host} ({owner.liveness()}), since {since}"

    def _acquire(self, lock: filelock.BaseFileLock) -> None:
        """Wait for the lock in slices, saying who holds it after a second, then every `report_every_s`."""
        started = time.monotonic()
        deadline = started + self.timeout_s
        next_report = started + 1.0
        while True:
            now = time.monotonic()
            # Reentrant acquisitions return at once, whatever the slice.
            slice_s = max(0.0, min(deadline, next_report if self.log else deadline) - now)
            try:
                lock.acquire(timeout=slice_s, poll_interval=0.05)
                return
            except filelock.Timeout:
                now = time.monotonic()
            if now >= deadline:
                raise TimeoutError(
                    f"waited {self.timeout_s:g}s for the DuckDB writer lock {self.path}, held by "
                    f"{self.holder()}. Wait for its run to finish, or raise MESH_DUCKDB_LOCK_TIMEOUT."
                ) from None
            if self.log and now >= next_report:
                self.log(
                    f"waiting {now - started:.0f}s for the DuckDB writer lock {self.path}: "
                    f"held by {self.holder()}"
                )
                next_report = now + self.report_every_s


class DuckDBSession(WarehouseSession):
    """A session on the local DuckDB file."""

    dialect = "duckdb"

    def __init__(self, connection: duckdb.DuckDBPyConnection) -> None:
        self.connection = connection

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self.connection.execute(sql, params)

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        return self.connection.execute(sql, params).fetchall()

    def query_df(self, sql: str) -> pd.DataFrame:
        return self.connection.execute(sql).df()

    def write_dataframe(self, relation: Relation, df: pd.DataFrame) -> None:
        self.ensure_schema(relation.schema)
        self.connection.register("_mesh_frame", df)
        try:
            self.execute(f"CREATE OR REPLACE TABLE {relation.sql} AS SELECT * FROM _mesh_frame")
        finally:
            self.connection.unregister("_mesh_frame")

    def load_extract(self, relation: Relation, path: Path, file_format: str) -> None:
        # Extracts land as text: typing and cleaning is the product's job, in its own transformation,
        # so a dirty value never fails the landing step.
        quoted = quote_literal(path)
        reader = (
            f"read_csv({quoted}, header = true, all_varchar = true)"
            if file_format == "csv"
            else f"read_parquet({quoted})"
        )
        self.create_table_as(relation, f"SELECT * FROM {reader}")

    def relations_read(self, sql: str) -> set[tuple[str, str]] | None:
        # DuckDB binds the query (views, `query_table('...')` and `query('...')` resolved) without running
        # it. The bound plan, before the optimizer: an optimized one (EXPLAIN) drops a scan it can prove
        # empty from the table's statistics, e.g. `x IN (SELECT ... FROM query_table('...'))`.
        import duckdb

        statements = self.connection.extract_statements(sql)
        kinds = [s.type for s in statements]
        if kinds != [duckdb.StatementType.SELECT]:
            shown = ", ".join(k.name for k in kinds) or "nothing"
            hint = (
                " (a PIVOT without an IN list runs several statements: list the values, ON col IN (...))"
                if kinds == [duckdb.StatementType.MULTI]
                else ""
            )
            raise NotAQueryError(
                f"expected one query (a SELECT), got {len(kinds)} statement(s): {shown}{hint}"
            )
        plan = json.loads(self.connection.execute("SELECT json_serialize_plan(?)", [sql]).fetchall()[0][0])
        found: set[tuple[str, str]] = set()
        if plan.get("error"):
            # Not serializable (a PIVOT plans as several statements): the optimized plan, which EXPLAIN
            # gives for any query that binds (and for one that does not, raises the binder's error).
            explained = self.connection.execute(f"EXPLAIN (FORMAT JSON) {sql}").fetchall()[0][1]
            nodes: list[Any] = json.loads(explained)
            while nodes:
                node = nodes.pop()
                nodes += node.get("children", [])
                info = node.get("extra_info")
                table = info.get("Table") if isinstance(info, dict) else None
                if isinstance(table, str) and "." in table:
                    found.add(tuple(table.split(".")[-2:]))  # type: ignore[arg-type]
            return found
        nodes = [plan]
        while nodes:
            node = nodes.pop()
            if isinstance(node, list):
                nodes += node
            elif isinstance(node, dict):
                data = node.get("function_data")
                path = data.get("qualified_name", {}).get("path") if isinstance(data, dict) else None
                if isinstance(path, list) and len(path) >= 2:
                    found.add((str(path[-2]), str(path[-1])))
                nodes += node.values()
        return found

    def columns(self, relation: Relation) -> list[tuple[str, str]]:
        rows = self.query(
            # This database's only: a deferring session also has prod attached, with the same names.
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_catalog = "
            "current_database() AND table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [relation.schema, relation.name],
        )
        return [(name, dtype) for name, dtype in rows]

    def stage(self, staging: Relation, select_sql: str) -> None:
        # A view, not a copy: the publish's transaction writes the cast batch into the port once (a second
        # full copy of every port's rows was most of a 1M-row publish). Readers of the port, and a run
        # killed mid-publish, see what they saw with a staging table: the old batch until COMMIT.
        self.ensure_schema(staging.schema)
        self._drop_any(staging)
        self.execute(f"CREATE VIEW {staging.sql} AS {select_sql}")

    def unstage(self, staging: Relation) -> None:
        self._drop_any(staging)

    def _drop_any(self, relation: Relation) -> None:
        """Drop `relation`, a view or a table (a staging table an earlier version left behind)."""
        rows = self.query(
            "SELECT table_type FROM information_schema.tables WHERE table_catalog = current_database() "
            "AND table_schema = ? AND table_name = ?",
            [relation.schema, relation.name],
        )
        if rows:
            kind = "VIEW" if rows[0][0] == "VIEW" else "TABLE"
            self.execute(f"DROP {kind} IF EXISTS {relation.sql}")

    def publish(self, staging: Relation, port: Relation) -> None:
        # One transaction: readers see either the previous batch or the new one, never a half state.
        self.ensure_schema(port.schema)
        self.execute("BEGIN TRANSACTION")
        try:
            self.execute(f"CREATE OR REPLACE TABLE {port.sql} AS SELECT * FROM {staging.sql}")
            self.execute("COMMIT")
        except Exception:
            self.execute("ROLLBACK")
            raise

    def regex_sql(self, column: str, regex: str) -> str:
        return f"regexp_matches({quote_identifier(column)}, {quote_literal(regex)})"

    def distinct_keys_sql(self, keys: Sequence[str]) -> str:
        # DuckDB has no multi-column COUNT(DISTINCT a, b); count row values, skipping any-null keys
        # as Snowflake's form does.
        cols = ", ".join(f'"{k}"' for k in keys)
        any_null = " OR ".join(f'"{k}" IS NULL' for k in keys)
        return f"COUNT(DISTINCT CASE WHEN {any_null} THEN NULL ELSE ({cols},) END)"

    def physical_type(self, column: Column) -> str:
        return portable_sql_type(column)

    def type_matches(self, column: Column, physical: str) -> bool:
        family = physical.upper().split("(")[0].strip().strip('"')
        if family == "NULL":  # an all-null frame column has no type of its own; the publish casts it
            return True
        return family in _COMPATIBLE[column.type]


class DuckDBWarehouse(dg.ConfigurableResource, Warehouse):
    """The embedded warehouse: a DuckDB file (default `data/mesh.duckdb`)."""

    target: ClassVar[str] = "duckdb"

    path: str = Field(description="Path of the DuckDB database file.")
    lock_timeout_s: float = Field(default=900.0, description="How long to wait for another writer.")
    prod_path: str | None = Field(
        default=None,
        description="Prod's DuckDB file, attached read-only as `mesh_prod` to read the ports this "
        "environment does not build (deferral); unset in prod and in environments that build everything.",
    )

    _run_id: str | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # Runs launched by the daemon or the UI record their owner here, so a killed one is reclaimed.
        if context.instance is not None:
            record_owner(context.instance, context.run)
        self._run_id = context.run.run_id if context.run is not None else None

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the writer lock, e.g. around a dbt invocation that opens the file itself."""
        with self._writer() as connect:
            if connect is not None:
                # A process outside the platform's lock (dbt left running by a run that was killed)
                # may still have the file open: wait for it, saying so, rather than let dbt fail.
                # Prod's file too, when dbt will attach it: a prod writer holds it until its run ends.
                probe = connect()
                try:
                    self._attach_prod(probe)
                finally:
                    probe.close()
            yield

    @contextmanager
    def session(self) -> Iterator[DuckDBSession]:
        """Open the database file (creating it) under the writer lock."""
        with self._open(isolated=False) as session:
            yield session

    @contextmanager
    def isolated_session(self) -> Iterator[DuckDBSession]:
        """A session that cannot reach files, URLs, other databases or extensions (see `ISOLATION`).

        Prod's file is attached read-only first when deferring; then external access is switched off and
        the configuration locked, so nothing run in the session can switch it back on. Opening one costs
        what an ordinary session costs (measured on the example's built file, 40 alternating opens: median
        18.3 ms isolated vs 17.5 ms ordinary, minimum 16.5 vs 16.4; the open and checkpoint of the file,
        not the settings).
        """
        with self._open(isolated=True) as session:
            yield session

    @contextmanager
    def _open(self, isolated: bool) -> Iterator[DuckDBSession]:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        config = ISOLATION_CONFIG if isolated else None
        with self._writer() as connect:
            # Already ours (inside `exclusive`): nothing outside the lock can hold the file.
            connection = connect(config) if connect is not None else duckdb_connect(self.path, config)
            try:
                self._attach_prod(connection)
                if isolated:
                    isolate(connection)
                yield DuckDBSession(connection)
            finally:
                connection.close()

    @contextmanager
    def _writer(self) -> Iterator[Callable[..., duckdb.DuckDBPyConnection] | None]:
        """The writer lock; on first acquisition, how to open the file once no other process has it."""
        log = dg.get_dagster_logger().warning
        lock = FileLock(Path(self.path), self.lock_timeout_s, log, self._run_id)
        fresh = not lock.held_here()
        with lock.hold():
            yield (
                (lambda config=None: connect_when_free(self.path, self.lock_timeout_s, log, config))
                if fresh
                else None
            )

    def _attach_prod(self, connection: duckdb.DuckDBPyConnection) -> None:
        """Attach prod's file read-only as `mesh_prod` when deferring and prod has been built."""
        if self.prod_path and Path(self.prod_path).exists():
            log = dg.get_dagster_logger().warning
            attach_when_free(connection, self.prod_path, PROD_ALIAS, self.lock_timeout_s, log)

    def prod_sql(self, relation: Relation) -> str | None:
        """`"mesh_prod"."schema"."name"` when deferring: prod's file, attached read-only."""
        return f'"{PROD_ALIAS}".{relation.sql}' if self.prod_path else None

    def dbt_output_overrides(self) -> dict[str, Any]:
        """The warehouse file; when deferring, prod attached read-only (views of deferred ports name
        `mesh_prod`, so dbt's connection must have it)."""
        overrides: dict[str, Any] = {"path": str(Path(self.path).resolve())}
        if self.prod_path and Path(self.prod_path).exists():
            attach = {"path": str(Path(self.prod_path).resolve()), "alias": PROD_ALIAS, "read_only": True}
            overrides["attach"] = [attach]
        return overrides

    def dbt_profiles_dir(self, project_dir: Path, scratch: Path) -> Path:
        """The environment's profile (see `Warehouse.dbt_profiles_dir`); for a project without seeds, dbt's
        DuckDB connection also reaches no file, URL or other database, like a product's isolated session.

        dbt-duckdb applies `settings` to each cursor after attaching prod, and DuckDB cannot switch external
        access back on once off, so no model can. A project with seeds keeps access: dbt-duckdb loads a seed
        with `COPY … FROM '<file>'`, and DuckDB's `allowed_paths` cannot be set through the profile (it must
        precede switching access off, on every cursor). The lint still reads such a project's models.
        """
        folder = super().dbt_profiles_dir(project_dir, scratch)
        if folder == project_dir or has_seeds(project_dir):
            return folder
        import yaml

        path = folder / "profiles.yml"
        profiles = yaml.safe_load(path.read_text()) or {}
        for profile in profiles.values():
            for output in (profile.get("outputs") or {}).values() if isinstance(profile, dict) else ():
                if output.get("type") == self.target:
                    output["settings"] = {**(output.get("settings") or {}), "enable_external_access": False}
        path.write_text(yaml.safe_dump(profiles, sort_keys=False))
        return folder


def has_seeds(project_dir: Path) -> bool:
    """Whether a dbt project has seed files (under its `seed-paths`, default `seeds`)."""
    import yaml

    project_file = project_dir / "dbt_project.yml"
    config = (yaml.safe_load(project_file.read_text()) or {}) if project_file.exists() else {}
    return any(
        file.is_file()
        for folder in config.get("seed-paths") or ["seeds"]
        for file in (project_dir / folder).rglob("*")
    )


def duckdb_connect(path: str, config: dict[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
    """Open the DuckDB file (duckdb imported here, never at module import)."""
    import duckdb

    return _connect(duckdb, path, config)


ISOLATION_CONFIG: dict[str, Any] = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
"""How an isolated session's database is opened: no extension installed or loaded on demand (the
`sqlite_scan`, `postgres_scan`, `iceberg_scan`, `delta_scan` and httpfs readers are not even in its catalog).

It also makes the database instance differ from an ordinary connection's: DuckDB shares one instance per
file and process, so product code calling `duckdb.connect(<the warehouse file>)` while an isolated session
is open would otherwise share it and see every table; with another configuration DuckDB refuses it."""


def isolate(connection: duckdb.DuckDBPyConnection) -> None:
    """Switch off file, URL and database access for the connection's database, and lock its settings.

    The settings are the database instance's, not the connection's (DuckDB shares them), so this is done
    once per instance: a nested isolated session finds them locked already.
    """
    locked = connection.execute("SELECT current_setting('lock_configuration')").fetchone()
    if locked and locked[0]:
        return
    connection.execute("SET enable_external_access = false")
    # Last: after it no statement (`SET enable_external_access = true`, `RESET`, `LOAD`) can undo the above.
    connection.execute("SET lock_configuration = true")


def _connect(duckdb_module: Any, path: str, config: dict[str, Any] | None) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb_module.connect(path, config=config or {})
    except duckdb_module.ConnectionException as exc:
        if "different configuration" not in str(exc):
            raise
        raise duckdb_module.ConnectionException(
            f"{exc}. The warehouse file is already open in this process with "
            + (
                "ordinary settings; an isolated session cannot open inside an ordinary one"
                if config
                else "an isolated session's settings (product code runs in it): a second "
                "connection from the same process is refused"
            )
            + " (DuckDB shares one database instance per file and process)"
        ) from exc


PROD_ALIAS = "mesh_prod"
"""The catalog name under which a deferring environment's sessions attach prod's file."""


def attach_when_free(
    connection: duckdb.DuckDBPyConnection, path: str, alias: str, timeout_s: float, log
) -> None:
    """`ATTACH path AS alias (READ_ONLY)`, waiting (and saying for whom) while a writer has the file open."""
    statement = f"ATTACH IF NOT EXISTS {quote_literal(path)} AS {quote_identifier(alias)} (READ_ONLY)"
    _retry_while_locked(
        lambda: connection.execute(statement),
        path,
        timeout_s,
        log,
        why="prod's warehouse file, read by this environment for the ports it does not build",
    )


_LOCKED_BY = re.compile(r"Conflicting lock is held in (?P<program>.*?) \(PID (?P<pid>\d+)\)")


def connect_when_free(
    path: str, timeout_s: float, log, config: dict[str, Any] | None = None
) -> duckdb.DuckDBPyConnection:
    """Open the DuckDB file, waiting (and saying for whom) while another process has it open."""
    import duckdb

    return _retry_while_locked(
        lambda: _connect(duckdb, path, config),
        path,
        timeout_s,
        log,
        why="e.g. dbt left running by a run that was killed",
    )


def _retry_while_locked(open_it: Callable[[], Any], path: str, timeout_s: float, log, why: str) -> Any:
    import duckdb

    started = time.monotonic()
    next_report = started + 1.0
    while True:
        try:
            return open_it()
        except duckdb.IOException as exc:
            match = _LOCKED_BY.search(str(exc))
            if match is None:
                raise
            now = time.monotonic()
            pid = int(match["pid"])
            holder = f"process {pid} ({match['program']}, {'alive' if pid_alive(pid) else 'dead'})"
            if now - started > timeout_s:
                raise TimeoutError(
                    f"waited {timeout_s:g}s for the DuckDB file {path}, which {holder} has open; stop that "
                    "process or raise MESH_DUCKDB_LOCK_TIMEOUT"
                ) from exc
            if now >= next_report:
                log(f"waiting {now - started:.0f}s for the DuckDB file {path}: {holder} has it open ({why})")
                next_report = now + FileLock.report_every_s
            time.sleep(0.1)
