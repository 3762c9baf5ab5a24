"""The local instance's event log storage (`mesh_assets.infra.instance_storage`) is Dagster's SQLite event
log with cached engines, a truncated journal and one kept connection per shard: instances built from the
repository's `dagster.yaml` run real materializations with it, its history and the stock storage's are
interchangeable, concurrent processes lose no events, a kept connection never outlives its file, and its
engine cache stays bounded.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as db
import yaml
from conftest import REPO
from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from mesh_assets.infra.instance_storage import MIRRORED, MeshInstance, MeshSqliteEventLogStorage

CHECK = dg.AssetCheckKey(dg.AssetKey("orders"), "has_rows")


@dg.asset(check_specs=[dg.AssetCheckSpec("has_rows", asset="orders")])
def orders() -> dg.MaterializeResult:
    return dg.MaterializeResult(
        metadata={"rows": 3}, check_results=[dg.AssetCheckResult(passed=True, metadata={"rows": 3})]
    )


def _home(folder: Path, *, stock: bool = False) -> Path:
    """A DAGSTER_HOME with the repository's `dagster.yaml`, or with it minus our instance and event log."""
    folder.mkdir(parents=True, exist_ok=True)
    config = yaml.safe_load((REPO / "dagster.yaml").read_text())
    if stock:
        for key in ("event_log_storage", "instance_class", "event_batch_size"):
            del config[key]
    (folder / "dagster.yaml").write_text(yaml.safe_dump(config))
    return folder


def _log_line(message: str) -> EventLogEntry:
    return EventLogEntry(error_info=None, level=20, user_message=message, run_id="run", timestamp=time.time())


def _materialize(instance: dg.DagsterInstance) -> str:
    result = dg.materialize([orders], instance=instance)
    assert result.success
    return result.run_id


def _check_runs(instance: dg.DagsterInstance) -> list[str]:
    history = instance.event_log_storage.get_asset_check_execution_history(CHECK, limit=100)
    return [record.run_id for record in history]


def _materialization_runs(instance: dg.DagsterInstance) -> list[str]:
    records = instance.fetch_materializations(dg.AssetKey("orders"), limit=100).records
    return [record.run_id for record in records]


def test_the_repository_instance_uses_the_mesh_storage_under_its_own_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DAGSTER_HOME names another folder: the default follows the instance built, as the stock default does.
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "elsewhere"))
    home = _home(tmp_path / "home")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        storage = instance.event_log_storage
        assert type(storage) is MeshSqliteEventLogStorage
        assert type(instance) is MeshInstance
        assert Path(storage._base_dir) == home / "history" / "runs"
        assert instance.info_dict()["event_log_storage"]["class"] == "MeshSqliteEventLogStorage"  # type: ignore[index]
    assert not (tmp_path / "elsewhere").exists()


def test_an_explicit_base_dir_holds_the_event_logs(tmp_path: Path) -> None:
    home = _home(tmp_path / "home")
    config = yaml.safe_load((home / "dagster.yaml").read_text())
    config["event_log_storage"]["config"] = {"base_dir": str(tmp_path / "logs")}
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        run_id = _materialize(instance)
    assert (tmp_path / "logs" / f"{run_id}.db").is_file()
    assert (tmp_path / "logs" / "index.db").is_file()


def test_a_materialization_its_check_and_its_run_are_read_back(tmp_path: Path) -> None:
    with dg.DagsterInstance.from_config(str(_home(tmp_path / "home"))) as instance:
        run_id = _materialize(instance)

        latest = instance.get_latest_materialization_event(dg.AssetKey("orders"))
        assert latest is not None and latest.run_id == run_id
        assert latest.asset_materialization.metadata["rows"].value == 3
        execution = instance.event_log_storage.get_latest_asset_check_execution_by_key([CHECK])[CHECK]
        assert (execution.run_id, execution.status.value) == (run_id, "SUCCEEDED")
        assert execution.event.dagster_event.asset_check_evaluation_data.passed
        [record] = instance.get_run_records()
        assert (record.dagster_run.run_id, record.dagster_run.status) == (run_id, dg.DagsterRunStatus.SUCCESS)
        types = {event.dagster_event_type for event in instance.all_logs(run_id) if event.dagster_event}
        assert {dg.DagsterEventType.RUN_SUCCESS, dg.DagsterEventType.ASSET_CHECK_EVALUATION} <= types


def test_each_connection_truncates_its_journal_instead_of_using_wal(tmp_path: Path) -> None:
    with dg.DagsterInstance.from_config(str(_home(tmp_path / "home"))) as instance:
        run_id = _materialize(instance)
        with instance.event_log_storage.run_connection(run_id) as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "truncate"
    runs = tmp_path / "home" / "history" / "runs"
    assert (runs / f"{run_id}.db-journal").stat().st_size == 0
    assert not (runs / f"{run_id}.db-wal").exists()


def test_a_wal_shard_another_process_holds_open_is_still_written(tmp_path: Path) -> None:
    stock = SqliteEventLogStorage(str(tmp_path))
    with stock.run_connection("r1"):
        pass  # the stock class creates the shard in WAL mode
    # Leaving WAL needs the only connection to the file: this one (it has read the shard) blocks it.
    other = sqlite3.connect(tmp_path / "r1.db")
    try:
        assert other.execute("SELECT count(*) FROM event_logs").fetchone() == (0,)
        mesh = MeshSqliteEventLogStorage(str(tmp_path))
        used = []
        for _ in range(2):
            with mesh.run_connection("r1") as conn:
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                conn.exec_driver_sql("INSERT INTO event_logs (run_id, event) VALUES ('r1', '{}')")
                used.append(conn.connection.dbapi_connection)
        assert other.execute("SELECT count(*) FROM event_logs").fetchone() == (2,)
        # Not kept open: its commits stay in `-wal` until the last connection closes and checkpoints.
        assert used[0] is not used[1]
    finally:
        other.close()


def test_the_live_run_log_watcher_sees_what_another_process_writes(tmp_path: Path) -> None:
    """The UI follows a run by watching its `<run_id>.db` for modifications; commits still modify it."""
    webserver, run_worker = MeshSqliteEventLogStorage(str(tmp_path)), MeshSqliteEventLogStorage(str(tmp_path))
    run_worker.store_event(_log_line("started"))  # the run's shard exists before anyone watches it
    seen: list[str] = []
    all_seen = threading.Event()

    def follow(event: EventLogEntry, _cursor: str) -> None:
        seen.append(event.user_message)
        if len(seen) == 3:
            all_seen.set()

    webserver.watch("run", None, follow)
    try:
        run_worker.store_event(_log_line("working"))
        run_worker.store_event(_log_line("done"))
        assert all_seen.wait(timeout=60), seen  # a bound for a hang, not a timing requirement
    finally:
        webserver.dispose()
    assert seen == ["started", "working", "done"]


@pytest.mark.parametrize("first", ["stock", "mesh"])
def test_a_history_moves_between_the_stock_storage_and_the_mesh_storage(tmp_path: Path, first: str) -> None:
    home = tmp_path / "home"
    order = [first == "stock", first != "stock", first == "stock"]
    runs: list[str] = []
    for stock in order:
        with dg.DagsterInstance.from_config(str(_home(home, stock=stock))) as instance:
            expected = SqliteEventLogStorage if stock else MeshSqliteEventLogStorage
            assert type(instance.event_log_storage) is expected
            # Everything written before, by either class, is read back; then this class writes a run.
            assert _materialization_runs(instance) == runs[::-1]
            assert _check_runs(instance) == runs[::-1]
            assert sorted(instance.event_log_storage.get_all_run_ids()) == sorted(runs)
            for run_id in runs:
                assert instance.all_logs(run_id)[-1].dagster_event_type == dg.DagsterEventType.RUN_SUCCESS
            runs.append(_materialize(instance))


WRITER = textwrap.dedent(
    """
    import sys
    import dagster as dg

    key = sys.argv[2]

    @dg.asset(name=key, check_specs=[dg.AssetCheckSpec("ok", asset=key)])
    def writer():
        for i in range(20):
            dg.get_dagster_logger().info("line %s", i)
        return dg.MaterializeResult(check_results=[dg.AssetCheckResult(passed=True)])

    with dg.DagsterInstance.from_config(sys.argv[1]) as instance:
        for _ in range(int(sys.argv[3])):
            assert dg.materialize([writer], instance=instance).success
    """
)


@pytest.mark.slow  # two processes writing hundreds of runs: `make test`, not `make check`
def test_two_processes_writing_runs_at_once_lose_no_events(tmp_path: Path) -> None:
    home = _home(tmp_path / "home")
    with dg.DagsterInstance.from_config(str(home)):
        pass  # the index shard exists before both writers start, as with a running webserver
    runs_each = 4
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(home), key, str(runs_each)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for key in ("left", "right")
    ]
    outputs = [writer.communicate(timeout=600)[0] for writer in writers]
    assert [writer.returncode for writer in writers] == [0, 0], "\n".join(o[-3000:] for o in outputs)

    with dg.DagsterInstance.from_config(str(home)) as instance:
        records = instance.get_run_records()
        assert len(records) == 2 * runs_each
        assert {r.dagster_run.status for r in records} == {dg.DagsterRunStatus.SUCCESS}
        for key in ("left", "right"):
            asset = dg.AssetKey(key)
            assert len(instance.fetch_materializations(asset, limit=100).records) == runs_each
            history = instance.event_log_storage.get_asset_check_execution_history(
                dg.AssetCheckKey(asset, "ok"), 100
            )
            assert [h.status.value for h in history] == ["SUCCEEDED"] * runs_each
        # Each run's own shard holds all of its events: its 20 log lines and its end.
        for record in records:
            logs = instance.all_logs(record.dagster_run.run_id)
            assert sum(1 for e in logs if e.user_message.startswith("line ")) == 20
            assert logs[-1].dagster_event_type == dg.DagsterEventType.RUN_SUCCESS


def test_the_engine_cache_evicts_the_least_recently_used_shard_and_reopens_it(tmp_path: Path) -> None:
    with dg.DagsterInstance.from_config(str(_home(tmp_path / "home"))) as instance:
        storage = instance.event_log_storage
        storage.max_cached_engines = 2
        runs = [_materialize(instance) for _ in range(3)]
        # Each run ends with its RUN_SUCCESS, mirrored in the index: the index's transaction opens first,
        # then the run's shard is written inside it.
        assert storage.cached_shards == ["index", runs[-1]]

        # Evicted shards are read (and written) again through new engines.
        for run_id in runs:
            assert instance.all_logs(run_id)[-1].dagster_event_type == dg.DagsterEventType.RUN_SUCCESS
        assert storage.cached_shards == [runs[-2], runs[-1]]
        assert _materialization_runs(instance) == runs[::-1]
        assert _check_runs(instance) == runs[::-1]
        assert storage.cached_shards == [runs[-1], "index"]


def test_a_wiped_instance_initialises_its_shards_again(tmp_path: Path) -> None:
    with dg.DagsterInstance.from_config(str(_home(tmp_path / "home"))) as instance:
        wiped = _materialize(instance)
        instance.wipe()  # deletes the run shards; their engines are still cached
        assert instance.all_logs(wiped) == []  # a new, empty shard under the cached engine: initialised again
        assert _materialization_runs(instance) == []
        run_id = _materialize(instance)
        assert _materialization_runs(instance) == [run_id]


def test_a_shard_keeps_one_connection_open_between_events(tmp_path: Path) -> None:
    storage = MeshSqliteEventLogStorage(str(tmp_path))
    opened: list[object] = []
    for message in ("one", "two", "three"):
        storage.store_event(_log_line(message))
        with storage.run_connection("run") as conn:
            opened.append(conn.connection.dbapi_connection)
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "truncate"
    assert opened[0] is opened[1] is opened[2]
    assert [e.user_message for e in storage.get_logs_for_run("run")] == ["one", "two", "three"]
    # Idle, it holds no lock: another process's connection writes the shard at once.
    other = sqlite3.connect(tmp_path / "run.db", timeout=0)
    try:
        other.execute("INSERT INTO event_logs (run_id, event) VALUES ('run', 'x')")
        other.commit()
    finally:
        other.close()


def test_a_shard_deleted_and_created_again_elsewhere_is_read_from_its_new_file(tmp_path: Path) -> None:
    """A kept connection to a deleted file would read and write the unlinked file: the inode tells."""
    storage = MeshSqliteEventLogStorage(str(tmp_path))
    storage.store_event(_log_line("before"))
    (tmp_path / "run.db").unlink()  # another process's `dagster instance wipe`, then a new run's events
    other = MeshSqliteEventLogStorage(str(tmp_path))
    other.store_event(_log_line("after"))
    assert [e.user_message for e in storage.get_logs_for_run("run")] == ["after"]
    storage.store_event(_log_line("again"))
    assert [e.user_message for e in other.get_logs_for_run("run")] == ["after", "again"]


def test_an_index_table_once_found_is_remembered_and_a_missing_one_is_asked_again(tmp_path: Path) -> None:
    storage = MeshSqliteEventLogStorage(str(tmp_path))
    assert storage.supports_asset_checks  # asked before every check event
    assert not storage.has_table("added_later")
    index = sqlite3.connect(tmp_path / "index.db")
    try:
        index.execute("CREATE TABLE added_later (x)")  # a migration run by another process
        index.commit()
    finally:
        index.close()
    assert storage.has_table("added_later")


CHECKS = [f"rule_{n}" for n in range(5)]


@dg.asset(check_specs=[dg.AssetCheckSpec(name, asset="port") for name in CHECKS])
def port() -> dg.MaterializeResult:
    """A port with five contract rules, each its own check (as every rule of a mesh contract is)."""
    return dg.MaterializeResult(
        check_results=[dg.AssetCheckResult(check_name=name, passed=True) for name in CHECKS]
    )


PLANNED = {DagsterEventType.ASSET_MATERIALIZATION_PLANNED, DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED}


@contextmanager
def _commits() -> Iterator[Counter[str]]:
    """Commits made through SQLAlchemy while the block runs, by file name (`index.db`, `<run_id>.db`)."""
    counted: Counter[str] = Counter()

    def count(conn: db.Connection) -> None:
        counted[Path(conn.engine.url.database or "").name] += 1

    db.event.listen(db.Engine, "commit", count)
    try:
        yield counted
    finally:
        db.event.remove(db.Engine, "commit", count)


def _rows(folder: Path, shard: str) -> dict[str, list[tuple[object, ...]]]:
    """Every table of a shard, row by row, less the columns SQLite fills with the time of writing."""
    connection = sqlite3.connect(folder / f"{shard}.db")
    try:
        tables = [
            name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        found = {}
        for table in sorted(tables):
            columns = [
                column
                for (_, column, *_rest) in connection.execute(f"PRAGMA table_info('{table}')")
                if column not in ("create_timestamp", "update_timestamp", "migration_completed")
            ]
            listed = ", ".join(f'"{column}"' for column in columns)
            found[table] = connection.execute(f"SELECT {listed} FROM '{table}' ORDER BY rowid").fetchall()
        return found
    finally:
        connection.close()


def test_every_event_is_stored_as_the_stock_class_stores_it_with_one_commit_per_shard(tmp_path: Path) -> None:
    with dg.DagsterInstance.from_config(str(_home(tmp_path / "source", stock=True))) as instance:
        run_id = dg.materialize([port], instance=instance).run_id
        events = instance.all_logs(run_id)
    planned = [event for event in events if event.dagster_event_type in PLANNED]
    rest = [event for event in events if event.dagster_event_type not in PLANNED]
    assert len(planned) == 1 + len(CHECKS)

    stock = SqliteEventLogStorage(str(tmp_path / "stock"))
    for event in events:
        stock.store_event(event)
    mesh = MeshSqliteEventLogStorage(str(tmp_path / "mesh"))
    with mesh.run_connection(run_id):
        pass  # the run's shard created (its tables, its migrations' commits) before commits are counted
    with _commits() as batch:
        mesh.store_event_batch(planned)
    with _commits() as one_by_one:
        for event in rest:
            mesh.store_event(event)

    for shard in (run_id, "index"):
        assert _rows(tmp_path / "mesh", shard) == _rows(tmp_path / "stock", shard), shard
    # The planned events: one transaction per shard, not 2-3 commits each.
    assert batch == Counter({f"{run_id}.db": 1, "index.db": 1})
    # The rest: a commit in the run's shard per event, and one in the index per event it mirrors there.
    mirrored = sum(1 for event in rest if event.dagster_event_type in MIRRORED)
    assert mirrored >= len(CHECKS) + 3  # the checks' evaluations, the materialization, the run's statuses
    assert one_by_one == Counter({f"{run_id}.db": len(rest), "index.db": mirrored})


def test_a_batch_that_fails_part_way_leaves_nothing_behind_and_the_instance_stores_it_event_by_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed batch rolls back both shards: Dagster then stores its events one by one, each once."""
    with dg.DagsterInstance.from_config(str(_home(tmp_path / "home"))) as instance:
        storage = instance.event_log_storage
        assert isinstance(storage, MeshSqliteEventLogStorage)
        stock_planned = type(storage)._store_asset_check_evaluation_planned
        calls: list[str] = []
        batches: list[int] = []

        def fail_third_in_a_batch(
            self: MeshSqliteEventLogStorage, event: EventLogEntry, event_id: int
        ) -> None:
            calls.append(event.run_id)
            if len(calls) == 3 and batches:
                raise sqlite3.OperationalError("disk I/O error")
            stock_planned(self, event, event_id)

        stock_batch = type(storage).store_event_batch

        def batch(self: MeshSqliteEventLogStorage, events: list[EventLogEntry]) -> None:
            batches.append(len(events))
            try:
                stock_batch(self, events)
            except sqlite3.OperationalError:
                run_id = events[0].run_id
                # Nothing of the failed batch was committed, in either shard.
                assert not [e for e in self.get_logs_for_run(run_id) if e.dagster_event_type in PLANNED]
                assert _rows(Path(self._base_dir), "index")["asset_check_executions"] == []
                raise

        monkeypatch.setattr(type(storage), "_store_asset_check_evaluation_planned", fail_third_in_a_batch)
        monkeypatch.setattr(type(storage), "store_event_batch", batch)
        run_id = dg.materialize([port], instance=instance).run_id

        assert batches == [1 + len(CHECKS)]
        logged = [e.dagster_event_type for e in instance.all_logs(run_id) if e.dagster_event_type in PLANNED]
        assert sorted(logged) == sorted(
            [DagsterEventType.ASSET_MATERIALIZATION_PLANNED]
            + [DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED] * len(CHECKS)
        )
        history = storage.get_asset_check_execution_history(
            dg.AssetCheckKey(dg.AssetKey("port"), "rule_0"), limit=5
        )
        assert [(record.run_id, record.status.value) for record in history] == [(run_id, "SUCCEEDED")]


def _run_counting_commits(home: Path, batch_size: int | None) -> tuple[Counter[str], list[EventLogEntry]]:
    """Commits by file while `port` materializes on an instance from the repository's `dagster.yaml`."""
    _home(home)
    if batch_size is not None:
        config = yaml.safe_load((home / "dagster.yaml").read_text())
        config["event_batch_size"] = batch_size
        (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        _materialize(instance)  # the shards created and initialised before commits are counted
        with _commits() as commits:
            run_id = dg.materialize([port], instance=instance).run_id
        counted = Counter({"index": commits["index.db"], "run": commits[f"{run_id}.db"]})
        return counted, instance.all_logs(run_id)


def test_a_new_runs_planned_events_share_one_commit_per_shard_unless_the_instance_batches_nothing(
    tmp_path: Path,
) -> None:
    batched, events = _run_counting_commits(tmp_path / "batched", None)  # the repository's setting
    one_by_one, _ = _run_counting_commits(tmp_path / "one_by_one", 0)  # as stock Dagster
    planned = sum(1 for event in events if event.dagster_event_type in PLANNED)
    assert planned == 1 + len(CHECKS)
    # Everything else is stored the same way: the difference is the planned events' commits, all but one.
    assert one_by_one - batched == Counter({"index": planned - 1, "run": planned - 1})


def _schema(path: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    connection = sqlite3.connect(path)
    try:
        tables = connection.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
        return tables, connection.execute("SELECT * FROM alembic_version").fetchall()
    finally:
        connection.close()


def test_new_run_shards_after_the_first_are_copies_of_a_fresh_one_without_initialising_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mesh = MeshSqliteEventLogStorage(str(tmp_path / "mesh"))
    mesh.store_event(_log_line("first run"))  # run shard "run": created and initialised, as stock
    initialised: list[str] = []
    stock_initdb = MeshSqliteEventLogStorage._initdb

    def counted(self: MeshSqliteEventLogStorage, engine: db.Engine, for_index_shard: bool = False) -> None:
        initialised.append(str(engine.url.database))
        stock_initdb(self, engine, for_index_shard)

    monkeypatch.setattr(MeshSqliteEventLogStorage, "_initdb", counted)
    second = EventLogEntry(
        error_info=None, level=20, user_message="second", run_id="two", timestamp=time.time()
    )
    mesh.store_event(second)
    assert initialised == []

    stock = SqliteEventLogStorage(str(tmp_path / "stock"))
    stock.store_event(second)
    assert _schema(tmp_path / "mesh" / "two.db") == _schema(tmp_path / "stock" / "two.db")
    # Only its own event, read back by the stock class too.
    assert [
        e.user_message for e in SqliteEventLogStorage(str(tmp_path / "mesh")).get_logs_for_run("two")
    ] == ["second"]
    assert sorted(path.name for path in (tmp_path / "mesh").iterdir() if "mesh-new" in path.name) == []


def test_a_run_shard_that_exists_is_never_replaced_by_a_copy(tmp_path: Path) -> None:
    mesh = MeshSqliteEventLogStorage(str(tmp_path))
    mesh.store_event(_log_line("first run"))  # the template is kept
    other = SqliteEventLogStorage(str(tmp_path))  # another process writes a run this one has not opened
    earlier = EventLogEntry(
        error_info=None, level=20, user_message="earlier", run_id="two", timestamp=time.time()
    )
    other.store_event(earlier)
    later = EventLogEntry(
        error_info=None, level=20, user_message="later", run_id="two", timestamp=time.time()
    )
    mesh.store_event(later)
    assert [e.user_message for e in mesh.get_logs_for_run("two")] == ["earlier", "later"]
