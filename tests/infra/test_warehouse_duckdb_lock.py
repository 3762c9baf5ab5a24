"""The DuckDB writer lock on the `filelock` library: reentrant within a process, and it says who holds it.

The cross-process waits (a second process waiting, then proceeding; the timeout naming
MESH_DUCKDB_LOCK_TIMEOUT) are in `test_warehouse_duckdb.py`; these cover what the library swap could break:
reentrancy across threads and instances, the holder record, and a waiter leaving that record intact.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from mesh_assets.infra.warehouse.duckdb import FileLock

HANG_S = 600
"""How long a test waits for a child process before calling it a hang (never a timing window)."""


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


def test_a_second_lock_object_on_the_same_file_reenters_and_leaving_it_keeps_the_lock(tmp_path: Path) -> None:
    database = tmp_path / "wh.duckdb"
    outer, inner = FileLock(database, timeout_s=0), FileLock(tmp_path / "." / "wh.duckdb", timeout_s=0)

    with outer.hold():
        assert inner.held_here()
        with inner.hold():  # timeout 0: it would fail at once if it had to wait
            assert not lock_is_free(database)
        assert not lock_is_free(database), "leaving the inner block released the outer one's lock"
    assert lock_is_free(database)
    assert not outer.held_here()


def test_another_thread_of_the_process_reenters_as_before(tmp_path: Path) -> None:
    database = tmp_path / "wh.duckdb"
    entered = threading.Event()
    failed: list[BaseException] = []

    def worker() -> None:
        try:
            with FileLock(database, timeout_s=0).hold():
                entered.set()
        except BaseException as exc:  # handed to the test thread
            failed.append(exc)

    with FileLock(database, timeout_s=0).hold():
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join(timeout=HANG_S)
        assert not failed, failed
        assert entered.is_set()
        assert not lock_is_free(database)
    assert lock_is_free(database)


def test_the_holder_records_its_run_and_a_reentrant_hold_does_not_overwrite_it(tmp_path: Path) -> None:
    database = tmp_path / "wh.duckdb"

    with FileLock(database, timeout_s=0, run_id="feedc0de-first").hold():
        with FileLock(database, timeout_s=0, run_id="0badcafe-second").hold():
            recorded = json.loads(Path(f"{database}.lock").read_text())
        described = FileLock(database, timeout_s=0).holder()

    assert recorded["run_id"] == "feedc0de-first" and recorded["pid"] == os.getpid()
    assert described.startswith(f"run feedc0de, pid {os.getpid()} on ") and "(alive)" in described


WAITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from mesh_assets.infra.warehouse.duckdb import FileLock

    try:
        with FileLock(Path(sys.argv[1]), timeout_s=0.2).hold():
            print("acquired although another process holds the lock", flush=True)
    except TimeoutError as exc:
        print(exc, flush=True)
    """
)


def test_a_waiter_that_gives_up_names_the_holder_and_leaves_its_record_intact(tmp_path: Path) -> None:
    database = tmp_path / "wh.duckdb"

    with FileLock(database, timeout_s=0, run_id="feedc0de-run").hold():
        waiter = subprocess.run(
            [sys.executable, "-c", WAITER, str(database)], capture_output=True, text=True, timeout=HANG_S
        )
        # The waiter opened the lock file many times while it polled: the record must survive that.
        recorded = json.loads(Path(f"{database}.lock").read_text())

    assert waiter.returncode == 0, waiter.stderr
    message = waiter.stdout.strip()
    assert message.startswith("waited 0.2s for the DuckDB writer lock"), message
    assert f"held by run feedc0de, pid {os.getpid()} on " in message and "(alive)" in message
    assert "MESH_DUCKDB_LOCK_TIMEOUT" in message
    assert recorded["run_id"] == "feedc0de-run" and recorded["pid"] == os.getpid()


def test_a_waiter_reports_who_holds_the_lock_while_it_waits(tmp_path: Path) -> None:
    database = tmp_path / "wh.duckdb"
    said: list[str] = []
    # A holder outside this process's filelock instance: a raw flock on its own open file, as another
    # process's would be, with the record a holder writes.
    fd = os.open(f"{database}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.write(fd, json.dumps({"host": "elsewhere.example", "pid": 4711, "run_id": "abcdef12-x"}).encode())
    waiter = FileLock(database, timeout_s=1.5, log=said.append)
    waiter.report_every_s = 0.2
    try:
        held_by = r"held by run abcdef12, pid 4711 on elsewhere\.example"
        with pytest.raises(TimeoutError, match=held_by), waiter.hold():
            pytest.fail("acquired a held lock")
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    # However slow the machine, the wait lasts past the first report (after one second of 1.5).
    assert said, "the waiter waited silently"
    assert all("held by run abcdef12, pid 4711 on elsewhere.example (unknown)" in line for line in said)
