"""`mesh doctor` on the DuckDB target: the warehouse file's folder, the file itself and its writer lock.

The platform writes one DuckDB file per environment (`Environment.duckdb_path`) under two locks: its own
advisory lock `<file>.lock` (`FileLock` in `infra/warehouse/duckdb.py`, whose holder writes its run, pid
and host into it) and DuckDB's lock on the file itself, which a process outside the platform (a DuckDB
shell, a dbt left running) can hold too. These checks only read: the folder probe creates and removes a
scratch file, the lock probe takes and releases the lock without writing its record, and the file is
opened read-only.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import tempfile
from pathlib import Path

from mesh_assets.infra.doctor.report import CheckResult, cannot_tell, failed, passed

FOLDER = "warehouse folder writable"
FILE = "warehouse file opens"
LOCK = "warehouse lock"

# DuckDB's own message when another process has the file open (the same pattern the backend waits on).
_LOCKED_BY = re.compile(r"Conflicting lock is held in (?P<program>.*?) \(PID (?P<pid>\d+)\)")


def duckdb_checks(path: Path) -> list[CheckResult]:
    """Every DuckDB check on the warehouse file `path`, in order: folder, lock, file."""
    return [check_folder(path), check_lock(path), check_file(path)]


def check_folder(path: Path) -> CheckResult:
    """The file's folder (or, if it does not exist yet, the nearest folder above it) accepts a new file.

    Proved by creating and removing a scratch file there, not by permission bits, which ACLs, read-only
    mounts and full disks make lie.
    """
    folder = path.parent
    existing = next((f for f in [folder, *folder.parents] if f.exists()), None)
    if existing is None or not existing.is_dir():
        return failed(
            FOLDER,
            f"{existing or folder} is not a folder, so {folder} cannot be created",
            "point MESH_DATA_DIR or MESH_DUCKDB_PATH at a folder (or move that file away)",
        )
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".mesh-doctor-"):
            pass
    except OSError as exc:
        return failed(
            FOLDER,
            f"cannot create a file in {existing}: {exc.strerror or exc}",
            f"make {existing} writable by this user, or point MESH_DATA_DIR / MESH_DUCKDB_PATH elsewhere",
        )
    if existing == folder:
        return passed(FOLDER, f"{folder} (created and removed a scratch file)")
    return passed(FOLDER, f"{folder} does not exist yet; {existing} is writable, so the first run creates it")


def check_lock(path: Path) -> CheckResult:
    """Whether the platform's writer lock `<file>.lock` is free, and if not who recorded holding it.

    A held lock is not a fault (a run is writing), so it is `cannot-tell`: the platform waits for the
    holder up to `MESH_DUCKDB_LOCK_TIMEOUT`, and the detail names it so a stuck holder can be stopped.
    """
    lock_path = Path(f"{path}.lock")
    if not lock_path.exists():
        return passed(LOCK, f"free ({lock_path.name} not created yet)")
    try:
        # Read-only: flock works on any descriptor, and the holder's record in the file is left intact.
        fd = os.open(lock_path, os.O_RDONLY)
    except OSError as exc:
        return failed(LOCK, f"cannot open {lock_path}: {exc.strerror or exc}", f"make {lock_path} readable")
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = lock_holder(lock_path)
            return cannot_tell(
                LOCK,
                f"held by {holder}: the platform's writers wait for it (up to MESH_DUCKDB_LOCK_TIMEOUT)",
                "wait for that run to finish; if it is stuck, stop that process (the kernel frees its lock)",
            )
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
    return passed(LOCK, f"free ({lock_path.name})")


def lock_holder(lock_path: Path) -> str:
    """Who recorded holding the lock file: run, pid, command (when this host can read it), host, since."""
    from mesh_assets.infra.warehouse.duckdb import FileLock

    described = FileLock(lock_path.with_suffix(""), timeout_s=0).holder()
    try:
        pid = int(json.loads(lock_path.read_text() or "{}")["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return described
    command = process_command(pid)
    return f"{described}, command `{command}`" if command else described


def process_command(pid: int) -> str | None:
    """Process `pid`'s command line (this host only), or None where the system does not show it."""
    import psutil  # imported here: the doctor is not loaded by code locations, but keep it off import paths

    try:
        parts = psutil.Process(pid).cmdline()
    except (psutil.Error, OSError):  # gone, a zombie, or another user's process the OS hides
        return None
    return " ".join(parts)[:200] or None


def check_file(path: Path) -> CheckResult:
    """The warehouse file, if it exists, opens (read-only) and answers a catalog query."""
    if not path.exists():
        return cannot_tell(
            FILE, f"{path} does not exist yet", "`mesh run` (or `make run`) creates and builds it"
        )
    import duckdb

    try:
        connection = duckdb.connect(str(path), read_only=True)
    except duckdb.IOException as exc:
        match = _LOCKED_BY.search(str(exc))
        if match is None:
            return _unreadable(path, exc)
        pid = int(match["pid"])
        command = process_command(pid) or match["program"]
        return cannot_tell(
            FILE,
            f"process {pid} (`{command}`) has {path.name} open for writing, so it cannot be opened now",
            f"wait for it; if it is not a platform run (a DuckDB shell, a dbt left running), stop pid {pid}",
        )
    except duckdb.Error as exc:
        return _unreadable(path, exc)
    try:
        (tables,) = connection.execute("SELECT count(*) FROM information_schema.tables").fetchone()
    except duckdb.Error as exc:
        return _unreadable(path, exc)
    finally:
        connection.close()
    return passed(FILE, f"{path} (read-only: {tables} tables and views)")


def _unreadable(path: Path, exc: Exception) -> CheckResult:
    return failed(
        FILE,
        f"{path} does not open: {str(exc).splitlines()[0]}",
        "if it was written by another DuckDB version, rebuild it: move it aside and `mesh run`",
    )
