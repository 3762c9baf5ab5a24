"""A throwaway PostgreSQL server for tests: the system's own binaries, a temporary data folder, a free
loopback port, and gone when the test is.

Tests of the production instance (`deploy/dagster.yaml`) need a real server: Dagster's Postgres storage
relies on things no fake has (`NOTIFY` on every stored event, `ON CONFLICT` upserts for the concurrency
pool, `SELECT ... FOR UPDATE` when slots are claimed). The server runs from `initdb`/`postgres` found on
PATH or in Debian's `/usr/lib/postgresql/<version>/bin`; `.ci/run` installs them when they are missing.

- Postgres refuses to run as root. Under uid 0 (containers, this CI) every server command runs as the
  unprivileged `postgres` user the distribution package creates (`runuser`), in a folder under /tmp that
  user owns: pytest's own tmp folders sit below a root-only `pytest-of-root/` it cannot enter.
- Authentication as in production for the client under test: `scram-sha-256` over TCP for the role
  `dagster`, with a password; `trust` only on the private unix socket, which the harness uses to create
  the role and database.
- Durability is traded for speed (`fsync=off`, no WAL sync): the data is thrown away anyway.
- Without the binaries the tests skip, saying how to install them, unless `MESH_TEST_REQUIRE_POSTGRES=1`
  (set by `.ci/run`): there a missing server is a failure, never a silent skip.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

INSTALL = "apt-get install -y postgresql"
REQUIRE_ENV = "MESH_TEST_REQUIRE_POSTGRES"
SERVER_USER = "postgres"
"""The unprivileged user the server runs as when the tests run as root (Debian's package creates it)."""
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30


@dataclass(frozen=True)
class PostgresServer:
    """Where the throwaway server listens and how to log in to its database."""

    host: str
    port: int
    socket_dir: Path
    user: str
    password: str
    database: str

    def env(self) -> dict[str, str]:
        """The variables `deploy/dagster.yaml` reads (`{env: DAGSTER_PG_*}`)."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USER": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": self.database,
        }

    def connect(self):  # -> psycopg2 connection; psycopg2 is only imported where a test needs it
        """A psycopg2 connection to the database, as the `dagster` role over TCP (autocommit)."""
        import psycopg2

        connection = psycopg2.connect(
            host=self.host, port=self.port, user=self.user, password=self.password, dbname=self.database
        )
        connection.autocommit = True
        return connection


def find_bin_dir() -> Path | None:
    """The folder holding `initdb`, `postgres` and `psql`: PATH first, then Debian's versioned folders."""
    on_path = shutil.which("initdb")
    if on_path:
        folder = Path(on_path).resolve().parent
        if (folder / "postgres").exists():
            return folder
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    return versions[-1].parent if versions else None


def _unavailable(reason: str) -> NoReturn:
    """Skip, loudly and with the fix; or fail where the suite must not skip (CI)."""
    message = f"PostgreSQL tests cannot run: {reason}. Install the server: `{INSTALL}`"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{message} ({REQUIRE_ENV}=1: the CI must run them)")
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _as_server_user(args: list[str]) -> list[str]:
    """Run `args` as the unprivileged server user when we are root; as ourselves otherwise."""
    if os.geteuid() != 0:
        return args
    return ["runuser", "-u", SERVER_USER, "--", *args]


def _run(args: list[str], what: str) -> None:
    done = subprocess.run(
        _as_server_user(args), capture_output=True, text=True, timeout=START_TIMEOUT_S, env=_server_env()
    )
    assert done.returncode == 0, f"{what} failed ({' '.join(args)}):\n{done.stdout}\n{done.stderr}"


def _server_env() -> dict[str, str]:
    # No PG* variables of the caller leak into the server's tools; a C locale needs no generated locales.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(LC_ALL="C", LANG="C")
    return env


def _stop(process: subprocess.Popen) -> None:
    """Fast shutdown (SIGINT to the postmaster's group: clients are disconnected), then SIGKILL."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT_S)
    except ProcessLookupError:
        process.wait(timeout=STOP_TIMEOUT_S)


@contextmanager
def postgres_server(database: str = "dagster", user: str = "dagster") -> Iterator[PostgresServer]:
    """Start a private server with one database owned by `user`; stop it and delete its files on exit."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        _unavailable("no `initdb` on PATH nor in /usr/lib/postgresql/*/bin")
    if os.geteuid() == 0:
        try:
            server_user = pwd.getpwnam(SERVER_USER)
        except KeyError:
            _unavailable(f"running as root, and there is no `{SERVER_USER}` user to run the server as")
    root = Path(tempfile.mkdtemp(prefix="mesh-postgres-"))
    data, sockets, log = root / "data", root / "socket", root / "server.log"
    sockets.mkdir()
    if os.geteuid() == 0:
        for path in (root, sockets):
            os.chown(path, server_user.pw_uid, server_user.pw_gid)
    process: subprocess.Popen | None = None
    try:
        _run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--no-sync",
            ],
            "initdb",
        )
        port = _free_port()
        with log.open("ab") as log_file:
            process = subprocess.Popen(
                _as_server_user(
                    [
                        str(bin_dir / "postgres"),
                        "-D",
                        str(data),
                        "-p",
                        str(port),
                        "-k",
                        str(sockets),
                        "-c",
                        "listen_addresses=127.0.0.1",
                        "-c",
                        "fsync=off",
                        "-c",
                        "synchronous_commit=off",
                        "-c",
                        "full_page_writes=off",
                    ]
                ),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=_server_env(),
                start_new_session=True,
            )
        psql = [str(bin_dir / "psql"), "-h", str(sockets), "-p", str(port), "-U", "postgres", "-v"]
        deadline = time.monotonic() + START_TIMEOUT_S
        while subprocess.run(
            _as_server_user([str(bin_dir / "pg_isready"), "-h", str(sockets), "-p", str(port)]),
            capture_output=True,
            env=_server_env(),
        ).returncode:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"PostgreSQL did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        password = f"pw-{os.urandom(8).hex()}"
        _run(
            [*psql, "ON_ERROR_STOP=1", "-c", f"CREATE ROLE {user} LOGIN PASSWORD '{password}'"],
            "creating the role",
        )
        _run([*psql, "ON_ERROR_STOP=1", "-c", f"CREATE DATABASE {database} OWNER {user}"], "creating the db")
        yield PostgresServer("127.0.0.1", port, sockets, user, password, database)
    finally:
        if process is not None:
            _stop(process)
            # `runuser` may exit before the postmaster it started: its pid file goes last.
            deadline = time.monotonic() + STOP_TIMEOUT_S
            while (data / "postmaster.pid").exists() and time.monotonic() < deadline:
                time.sleep(0.1)
        shutil.rmtree(root, ignore_errors=True)
