"""The embedded DuckDB backend, for real: a DuckDB file per test, and real second processes for the lock."""

from __future__ import annotations

import fcntl
import os
import queue
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from mesh_assets.infra import environment
from mesh_assets.infra.warehouse.duckdb import DuckDBSession, DuckDBWarehouse, FileLock
from mesh_assets.product.addressing import Relation
from mesh_assets.product.spec import Column, LogicalType

PORT = Relation("sales", "orders_v1")
STAGING = Relation("sales_internal", "orders_v1__staging")
RAW = Relation("sales_internal", "raw_orders")

CONTRACT = [
    Column(name="order_id", type=LogicalType.INTEGER, description="Order number.", nullable=False),
    Column(name="customer_id", type=LogicalType.STRING, description="Ordering customer."),
    Column(name="amount", type=LogicalType.DECIMAL, precision=12, scale=2, description="Order amount."),
    Column(name="ordered_at", type=LogicalType.TIMESTAMP, description="When it was ordered."),
    Column(name="paid", type=LogicalType.BOOLEAN, description="Whether it was paid."),
]


def column(logical: LogicalType) -> Column:
    extra = {"precision": 18, "scale": 2} if logical == LogicalType.DECIMAL else {}
    return Column(name="c", type=logical, description="A column.", **extra)


@pytest.fixture
def warehouse(tmp_path: Path) -> DuckDBWarehouse:
    return DuckDBWarehouse(path=str(tmp_path / "wh.duckdb"), lock_timeout_s=5)


@pytest.fixture
def session(warehouse: DuckDBWarehouse) -> Iterator[DuckDBSession]:
    with warehouse.session() as session:
        yield session


def orders_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "order_id": pd.array([3, 1, 2], dtype="int64"),
            "customer_id": ["C3", "C1", None],
            "amount": [30.5, 10.25, 20.0],
            "ordered_at": pd.to_datetime(["2026-01-03 10:00", "2026-01-01 09:30", "2026-01-02 08:15"]),
            "paid": [True, False, True],
        }
    )


# --- sessions: reading and writing -----------------------------------------------------------------------


def test_a_written_dataframe_reads_back_with_its_columns_rows_and_existence(session: DuckDBSession) -> None:
    assert not session.exists(RAW)
    assert session.columns(RAW) == []

    session.write_dataframe(RAW, orders_frame())

    assert session.exists(RAW)
    assert session.row_count(RAW) == 3
    assert session.columns(RAW) == [
        ("order_id", "BIGINT"),
        ("customer_id", "VARCHAR"),
        ("amount", "DOUBLE"),
        ("ordered_at", "TIMESTAMP_NS"),
        ("paid", "BOOLEAN"),
    ]
    back = session.query_df(f"SELECT * FROM {RAW.sql} ORDER BY order_id")
    assert back["order_id"].tolist() == [1, 2, 3]
    assert back["customer_id"].tolist()[0] == "C1"
    assert pd.isna(back["customer_id"].tolist()[1])


def test_writing_a_dataframe_again_replaces_the_table(session: DuckDBSession) -> None:
    session.write_dataframe(RAW, orders_frame())
    session.write_dataframe(RAW, pd.DataFrame({"only": [1]}))

    assert session.columns(RAW) == [("only", "BIGINT")]
    assert session.query(f"SELECT * FROM {RAW.sql}") == [(1,)]


def test_a_csv_extract_lands_with_every_column_as_varchar(session: DuckDBSession, tmp_path: Path) -> None:
    extract = tmp_path / "orders.csv"
    extract.write_text(
        "order_id,amount,ordered_at,paid,zip\n"
        "1,10.25,2026-01-01 09:30:00,true,0042\n"
        "2,not-a-number,yesterday,maybe,8001\n"
    )

    session.load_extract(RAW, extract, "csv")

    assert session.columns(RAW) == [
        ("order_id", "VARCHAR"),
        ("amount", "VARCHAR"),
        ("ordered_at", "VARCHAR"),
        ("paid", "VARCHAR"),
        ("zip", "VARCHAR"),
    ]
    # Text as written: leading zeros and dirty values survive the landing.
    assert session.query(f"SELECT zip, amount FROM {RAW.sql} ORDER BY order_id") == [
        ("0042", "10.25"),
        ("8001", "not-a-number"),
    ]


def test_create_table_as_with_cast_to_contract_projects_and_casts_onto_the_contract(
    session: DuckDBSession,
) -> None:
    frame = orders_frame().assign(undeclared="dropped")
    session.write_dataframe(RAW, frame[["paid", "undeclared", *frame.columns[:4]]])

    session.create_table_as(STAGING, session.cast_to_contract(RAW, CONTRACT))

    assert session.columns(STAGING) == [
        ("order_id", "INTEGER"),
        ("customer_id", "VARCHAR"),
        ("amount", "DECIMAL(12,2)"),
        ("ordered_at", "TIMESTAMP"),
        ("paid", "BOOLEAN"),
    ]
    assert session.query(f"SELECT * FROM {STAGING.sql} WHERE order_id = 1") == [
        (1, "C1", Decimal("10.25"), pd.Timestamp("2026-01-01 09:30").to_pydatetime(), False)
    ]


def test_publish_replaces_the_port_with_the_staged_batch(session: DuckDBSession) -> None:
    session.create_table_as(PORT, "SELECT 1 AS order_id, 'old' AS note")
    session.create_table_as(STAGING, "SELECT * FROM (VALUES (2, 'new'), (3, 'new')) AS t(order_id, note)")

    session.publish(STAGING, PORT)

    assert session.query(f"SELECT * FROM {PORT.sql} ORDER BY 1") == [(2, "new"), (3, "new")]
    assert session.query(f"SELECT * FROM {PORT.sql} EXCEPT SELECT * FROM {STAGING.sql}") == []
    assert session.columns(PORT) == session.columns(STAGING)


def test_a_staged_batch_is_a_view_so_the_publish_writes_the_ports_rows_once(session: DuckDBSession) -> None:
    session.write_dataframe(RAW, orders_frame())
    session.create_table_as(STAGING, "SELECT 'left by an earlier version' AS note")  # a staging table

    session.stage(STAGING, session.cast_to_contract(RAW, CONTRACT))
    kind = "SELECT table_type FROM information_schema.tables WHERE table_name = ?"
    assert session.query(kind, [STAGING.name]) == [("VIEW",)]
    session.publish(STAGING, PORT)
    session.unstage(STAGING)
    session.drop_table(RAW)  # the candidate goes after the publish: the port is a table of its own

    assert session.columns(PORT)[2] == ("amount", "DECIMAL(12,2)")
    assert session.row_count(PORT) == 3
    assert session.query(kind, [PORT.name]) == [("BASE TABLE",)]
    assert not session.exists(STAGING)


def test_publish_creates_the_port_schema_on_first_publish(session: DuckDBSession) -> None:
    session.create_table_as(STAGING, "SELECT 1 AS order_id")

    session.publish(STAGING, PORT)

    assert session.query(f"SELECT * FROM {PORT.sql}") == [(1,)]


def test_a_failed_publish_leaves_the_previous_port_intact(session: DuckDBSession) -> None:
    session.create_table_as(PORT, "SELECT * FROM (VALUES (1, 'last good')) AS t(order_id, note)")
    missing = Relation("sales_internal", "never_staged")

    with pytest.raises(duckdb.CatalogException, match="never_staged"):
        session.publish(missing, PORT)

    assert session.query(f"SELECT * FROM {PORT.sql}") == [(1, "last good")]
    # The transaction was rolled back: the session is usable and the next publish works.
    session.create_table_as(STAGING, "SELECT 2 AS order_id, 'next' AS note")
    session.publish(STAGING, PORT)
    assert session.query(f"SELECT * FROM {PORT.sql}") == [(2, "next")]


# --- contract types --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("logical", "physical", "accepted"),
    [
        (LogicalType.INTEGER, "INTEGER", True),
        (LogicalType.INTEGER, "BIGINT", True),
        (LogicalType.INTEGER, "SMALLINT", True),
        (LogicalType.INTEGER, "TINYINT", True),
        (LogicalType.INTEGER, "HUGEINT", True),
        (LogicalType.INTEGER, "UBIGINT", True),
        (LogicalType.BIGINT, "INTEGER", True),
        (LogicalType.INTEGER, "DOUBLE", False),
        (LogicalType.INTEGER, "FLOAT", False),
        (LogicalType.INTEGER, "DECIMAL(18,0)", False),
        (LogicalType.INTEGER, "VARCHAR", False),
        (LogicalType.BIGINT, "VARCHAR", False),
        (LogicalType.DOUBLE, "VARCHAR", False),
        (LogicalType.DECIMAL, "VARCHAR", False),
        (LogicalType.DOUBLE, "DOUBLE", True),
        (LogicalType.DOUBLE, "BIGINT", True),
        (LogicalType.DECIMAL, "DECIMAL(18,2)", True),
        (LogicalType.DECIMAL, "DECIMAL(12,4)", True),
        (LogicalType.DECIMAL, "INTEGER", True),
        (LogicalType.DECIMAL, "DOUBLE", False),
        (LogicalType.STRING, "VARCHAR", True),
        (LogicalType.STRING, "INTEGER", False),
        (LogicalType.TIMESTAMP, "TIMESTAMP_NS", True),
        (LogicalType.TIMESTAMP, "TIMESTAMP WITH TIME ZONE", True),
        (LogicalType.TIMESTAMP, "DATE", False),
        (LogicalType.DATE, "DATE", True),
        (LogicalType.DATE, "VARCHAR", False),
        (LogicalType.BOOLEAN, "BOOLEAN", True),
        (LogicalType.BOOLEAN, "INTEGER", False),
    ],
)
def test_type_matches_accepts_the_contract_type_family_and_refuses_the_rest(
    logical: LogicalType, physical: str, accepted: bool
) -> None:
    session = DuckDBSession(connection=None)  # type: ignore[arg-type]  # type_matches needs no connection

    assert session.type_matches(column(logical), physical) is accepted
    assert session.type_matches(column(logical), physical.lower()) is accepted


def test_physical_types_map_each_logical_type_and_carry_decimal_precision() -> None:
    session = DuckDBSession(connection=None)  # type: ignore[arg-type]

    assert session.physical_type(column(LogicalType.DECIMAL)) == "DECIMAL(18,2)"
    assert session.physical_type(column(LogicalType.INTEGER)) == "INTEGER"
    assert session.physical_type(column(LogicalType.STRING)) == "VARCHAR"
    for logical in LogicalType:
        assert session.type_matches(column(logical), session.physical_type(column(logical)))


def test_the_types_columns_reports_are_the_ones_type_matches_understands(session: DuckDBSession) -> None:
    session.create_table_as(
        RAW,
        "SELECT 1::INTEGER AS i, 1::BIGINT AS b, 1.5::DOUBLE AS d, 1.5::DECIMAL(18,2) AS m, 'x' AS s, "
        "DATE '2026-01-01' AS dt, TIMESTAMP '2026-01-01 00:00' AS ts, true AS f",
    )
    logical = {
        "i": LogicalType.INTEGER,
        "b": LogicalType.BIGINT,
        "d": LogicalType.DOUBLE,
        "m": LogicalType.DECIMAL,
        "s": LogicalType.STRING,
        "dt": LogicalType.DATE,
        "ts": LogicalType.TIMESTAMP,
        "f": LogicalType.BOOLEAN,
    }

    for name, physical in session.columns(RAW):
        assert session.type_matches(column(logical[name]), physical), (name, physical)


# --- the cross-process writer lock -----------------------------------------------------------------------


def lock_is_free(database: Path) -> bool:
    """Whether an independent open of the lock file can take it (flock conflicts across open files)."""
    fd = os.open(f"{database}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


def test_nested_sessions_in_one_process_reenter_the_lock_instead_of_deadlocking(tmp_path: Path) -> None:
    warehouse = DuckDBWarehouse(path=str(tmp_path / "wh.duckdb"), lock_timeout_s=0.5)

    with warehouse.session() as outer:
        outer.create_table_as(RAW, "SELECT 1 AS x")
        with warehouse.session() as inner:
            assert inner.query(f"SELECT * FROM {RAW.sql}") == [(1,)]
        # Leaving the inner session does not release the lock the outer one still holds.
        assert not lock_is_free(tmp_path / "wh.duckdb")
        assert outer.row_count(RAW) == 1
    assert lock_is_free(tmp_path / "wh.duckdb")


def test_a_session_opens_inside_exclusive_as_an_asset_does_around_dbt(tmp_path: Path) -> None:
    warehouse = DuckDBWarehouse(path=str(tmp_path / "wh.duckdb"), lock_timeout_s=0.5)

    with warehouse.exclusive():
        assert not lock_is_free(tmp_path / "wh.duckdb")
        with warehouse.session() as session:
            assert session.query("SELECT 42") == [(42,)]
        assert not lock_is_free(tmp_path / "wh.duckdb")
    assert lock_is_free(tmp_path / "wh.duckdb")


def test_the_lock_is_released_when_the_block_raises(tmp_path: Path) -> None:
    lock = FileLock(tmp_path / "wh.duckdb", timeout_s=0.5)

    with pytest.raises(RuntimeError, match="boom"), lock.hold(), lock.hold():
        raise RuntimeError("boom")

    assert lock_is_free(tmp_path / "wh.duckdb")


HANG_S = 600
"""How long a test waits for a child process's next step before calling it a hang (never a timing window)."""

WAITER = textwrap.dedent(
    """
    import logging, sys, time
    import dagster as dg
    from mesh_assets.infra.warehouse.duckdb import DuckDBWarehouse


    class Said(logging.Handler):
        # The warehouse says when it has to wait for the lock: pass that on, with when it was said.
        def emit(self, record):
            print(f"log {time.monotonic_ns()} {record.getMessage()}", flush=True)


    dg.get_dagster_logger().addHandler(Said())
    warehouse = DuckDBWarehouse(path=sys.argv[1], lock_timeout_s=600)
    print(f"requesting {time.monotonic_ns()}", flush=True)
    with warehouse.session() as session:
        acquired = time.monotonic_ns()
        session.execute("CREATE OR REPLACE TABLE main.written_by_child AS SELECT 7 AS x")
    print(f"acquired {acquired}", flush=True)
    """
)

HOLDER = textwrap.dedent(
    """
    import select, sys
    from mesh_assets.infra.warehouse.duckdb import DuckDBWarehouse

    with DuckDBWarehouse(path=sys.argv[1]).exclusive():
        print("held", flush=True)
        # Hold until the test closes our stdin; the bound only ends a hung test.
        select.select([sys.stdin], [], [], 600)
    """
)


def spawn(script: str, database: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, str(database)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class Said:
    """What a child process prints, line by line, read in the background so that waiting for the next
    line ends on a hang instead of blocking the test forever."""

    def __init__(self, child: subprocess.Popen[str]) -> None:
        self.child = child
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.child.stdout is not None
        for line in self.child.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def next(self) -> tuple[str, int, str]:
        """The next line as (what, monotonic ns, rest); fails the test if the child exits or hangs."""
        try:
            line = self.lines.get(timeout=HANG_S)
        except queue.Empty:
            pytest.fail(f"the child process said nothing for {HANG_S}s")
        if line is None:
            self.child.wait(timeout=HANG_S)
            errors = self.child.stderr.read() if self.child.stderr else ""
            pytest.fail(f"the child process exited early: {errors}")
        what, at, *rest = line.split(maxsplit=2)
        return what, int(at), " ".join(rest)


def test_a_second_process_waits_for_the_lock_and_proceeds_once_it_is_released(tmp_path: Path) -> None:
    database = tmp_path / "wh.duckdb"
    warehouse = DuckDBWarehouse(path=str(database), lock_timeout_s=5)

    with warehouse.exclusive():  # held before the second process even starts
        child = spawn(WAITER, database)
        try:
            said = Said(child)
            what, requested, _ = said.next()
            assert what == "requesting"
            what, waiting, message = said.next()
            # The second process found the lock held and said so instead of failing or waiting silently.
            assert what == "log"
            assert "for the DuckDB writer lock" in message
            # ... and named who holds it: this process, alive.
            assert f"held by pid {os.getpid()} on " in message and "(alive)" in message
            assert child.poll() is None, "the second process gave up instead of waiting"
            with warehouse.session() as session:  # reentrant: still ours, so nothing was written yet
                assert not session.exists(Relation("main", "written_by_child"))
            released = time.monotonic_ns()
        except BaseException:
            child.kill()
            child.wait()
            raise
    try:
        what, acquired, _ = said.next()
        assert what == "acquired"
        assert child.wait(timeout=HANG_S) == 0, child.stderr.read() if child.stderr else ""
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    # The order the processes recorded on the machine's one monotonic clock: asked, waited, got the
    # lock only after this process let go of it.
    assert requested <= waiting < released < acquired
    with warehouse.session() as session:
        assert session.query("SELECT x FROM main.written_by_child") == [(7,)]


def test_waiting_past_the_timeout_fails_with_a_message_naming_mesh_duckdb_lock_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "wh.duckdb"
    monkeypatch.setenv("MESH_DUCKDB_PATH", str(database))
    monkeypatch.setenv("MESH_DUCKDB_LOCK_TIMEOUT", "0.2")
    monkeypatch.delenv("MESH_TARGET", raising=False)
    warehouse = environment.resolve().warehouse()
    assert isinstance(warehouse, DuckDBWarehouse)
    assert warehouse.lock_timeout_s == 0.2

    holder = spawn(HOLDER, database)
    try:
        first = holder.stdout.readline() if holder.stdout else ""
        assert first.strip() == "held", holder.stderr.read() if holder.stderr else ""
        started = time.monotonic()
        with pytest.raises(TimeoutError) as raised, warehouse.session():
            pytest.fail("the session opened although another process holds the lock")
        waited = time.monotonic() - started
        # It gave up while the other process still held the lock: the timeout, not the holder, ended it.
        assert holder.poll() is None
    finally:
        if holder.stdin:
            holder.stdin.close()
        holder.wait(timeout=HANG_S)

    message = str(raised.value)
    assert "MESH_DUCKDB_LOCK_TIMEOUT" in message
    assert f"{database}.lock" in message
    assert f"held by pid {holder.pid} on " in message  # names the holder, which was alive then
    assert waited >= 0.2  # it waited the configured time first (a lower bound: load cannot break it)
    # The holder exited: its lock went with it.
    with warehouse.session() as session:
        assert session.query("SELECT 1") == [(1,)]


def test_importing_the_backend_does_not_import_duckdb() -> None:
    probe = (
        "import sys\n"
        "import mesh_assets.infra.warehouse.duckdb\n"
        "import mesh_assets.infra.environment\n"
        "print('duckdb' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_an_all_null_nullable_column_of_a_dataframe_satisfies_its_contract_type(
    session: DuckDBSession,
) -> None:
    session.write_dataframe(RAW, pd.DataFrame({"c": [None, None]}))
    [(_, physical)] = session.columns(RAW)

    assert session.type_matches(column(LogicalType.STRING), physical)
