"""`mesh doctor`: each check on a real target (a DuckDB file, a Dagster instance under tmp_path, fakesnow).

What fakesnow (Snowflake emulated on DuckDB) can answer, the checks run for real: sign-in (the connection
opens), `CURRENT_ROLE()` (fakesnow answers with DuckDB's `duckdb`), the GENERATOR query, `CREATE DATABASE
… CLONE` (fakesnow creates the clone empty and does not even check the source exists) and `CREATE
SCHEMA`, `DROP SCHEMA … CASCADE`. Everything else fakesnow cannot parse or does not implement, so there
the checks must say cannot-tell (never pass) and the tests assert the exact statements they sent:
`CURRENT_WAREHOUSE()`, `DROP DATABASE`, `CREATE ROLE`, `GRANT`, `CREATE MASKING POLICY`, `CREATE ROW
ACCESS POLICY`, `SHOW PARAMETERS`, `CLONE … COPY GRANTS` and `SHOW GRANTS ON TABLE`. How a real account's
answers are read (a retention of 0 days, a grant lost by the replace, "Insufficient privileges",
"Unsupported feature") is tested on a scripted connection that answers as Snowflake documents.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mesh_assets.infra.doctor import duckdb as duck
from mesh_assets.infra.doctor import instance as inst
from mesh_assets.infra.doctor import snowflake as snow
from mesh_assets.infra.doctor.report import Status, exit_code
from mesh_assets.infra.doctor.versions import check_versions

REPO = Path(__file__).resolve().parents[2]


def _statuses(results: list) -> dict[str, str]:
    return {result.check: result.status.value for result in results}


# --- DuckDB ------------------------------------------------------------------------------------------------


def test_a_fresh_checkout_has_a_writable_folder_a_free_lock_and_no_file_yet(tmp_path: Path) -> None:
    results = duck.duckdb_checks(tmp_path / "data" / "mesh.duckdb")

    assert _statuses(results) == {duck.FOLDER: "pass", duck.LOCK: "pass", duck.FILE: "cannot-tell"}
    assert "the first run creates it" in results[0].detail
    assert "`mesh run`" in results[2].fix
    assert list(tmp_path.iterdir()) == [], "the folder probe leaves nothing behind"


def test_a_built_warehouse_file_opens_read_only(tmp_path: Path) -> None:
    import duckdb

    path = tmp_path / "mesh.duckdb"
    with duckdb.connect(str(path)) as connection:
        connection.execute("CREATE SCHEMA sales; CREATE TABLE sales.orders_v1 AS SELECT 1 AS id")

    result = duck.check_file(path)

    assert result.status is Status.PASS
    assert "read-only: 1 tables" in result.detail


def test_a_folder_that_is_a_file_fails_with_the_variables_to_change(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("not a folder")

    result = duck.check_folder(tmp_path / "data" / "mesh.duckdb")

    assert result.status is Status.FAIL
    assert "is not a folder" in result.detail and "MESH_DUCKDB_PATH" in result.fix


def test_a_file_that_is_not_a_duckdb_database_fails(tmp_path: Path) -> None:
    path = tmp_path / "mesh.duckdb"
    path.write_bytes(b"this is not a database file" * 200)

    result = duck.check_file(path)

    assert result.status is Status.FAIL
    assert "does not open" in result.detail and "rebuild it" in result.fix


@contextmanager
def _process(code: str) -> Iterator[subprocess.Popen]:
    """A Python process running `code`, once it has printed `ready`; killed afterwards."""
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        yield process
    finally:
        process.kill()
        process.wait()


def test_a_locked_warehouse_file_names_the_process_holding_it(tmp_path: Path) -> None:
    path = tmp_path / "mesh.duckdb"
    holder = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from mesh_assets.infra.warehouse.duckdb import FileLock\n"
        f"with FileLock(Path({str(path)!r}), 5, run_id='feedc0de-run').hold():\n"
        "    print('ready', flush=True)\n"
        "    time.sleep(60)\n"
    )
    with _process(holder) as process:
        result = duck.check_lock(path)

    assert result.status is Status.CANNOT_TELL, "a run writing is not a fault"
    assert f"pid {process.pid}" in result.detail
    assert "run feedc0de" in result.detail and "(alive)" in result.detail
    assert "command `" in result.detail and "FileLock" in result.detail
    assert duck.check_lock(path).status is Status.PASS, "the lock is free once its holder is gone"


def test_a_file_another_process_has_open_names_that_process(tmp_path: Path) -> None:
    path = tmp_path / "mesh.duckdb"
    holder = (
        "import time, duckdb\n"
        f"connection = duckdb.connect({str(path)!r})\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    with _process(holder) as process:
        result = duck.check_file(path)

    assert result.status is Status.CANNOT_TELL
    assert f"process {process.pid}" in result.detail and "open for writing" in result.detail
    assert f"stop pid {process.pid}" in result.fix


def test_versions_inside_pyprojects_ranges_pass_and_outside_fail(tmp_path: Path) -> None:
    assert check_versions("duckdb", REPO).status is Status.PASS
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "mesh"\ndependencies = ["duckdb<0.1", "dagster>=1.13", "dbt-core", "dbt-duckdb"]\n'
    )

    result = check_versions("duckdb", tmp_path)

    assert result.status is Status.FAIL
    assert "duckdb" in result.detail and "outside <0.1" in result.detail
    assert "make setup" in result.fix


# --- the Dagster instance ----------------------------------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A DAGSTER_HOME with the repository's dagster.yaml, as `make setup` makes it."""
    folder = tmp_path / "dagster_home"
    folder.mkdir()
    shutil.copy(REPO / "dagster.yaml", folder / "dagster.yaml")
    return folder


def test_the_pool_checked_is_the_one_warehouse_steps_are_in() -> None:
    from mesh_assets.assets.publish import WAREHOUSE_POOL

    assert inst.POOL_NAME == WAREHOUSE_POOL


def test_a_fresh_instance_loads_migrated_with_the_pool_limited_and_no_daemon_is_cannot_tell(
    home: Path,
) -> None:
    results = inst.instance_checks(home)

    assert _statuses(results) == {
        inst.LOADS: "pass",
        inst.STORAGE: "pass",
        inst.POOL: "pass",
        inst.DAEMON: "cannot-tell",
    }
    assert "limit 1 (the pool default_limit of dagster.yaml)" in results[2].detail
    assert "make dev" in results[3].fix
    assert exit_code(results) == 0, "a laptop after `make run` has no daemon, and that is not a failure"


def test_no_instance_yet_is_cannot_tell_and_the_doctor_creates_none(tmp_path: Path) -> None:
    results = inst.instance_checks(tmp_path / "nowhere")

    assert set(_statuses(results).values()) == {"cannot-tell"}
    assert "make setup" in results[0].fix
    assert not (tmp_path / "nowhere").exists()


def test_a_broken_dagster_yaml_fails_loading(home: Path) -> None:
    (home / "dagster.yaml").write_text("storage:\n  nonsense: {}\n")

    results = inst.instance_checks(home)

    assert results[0].status is Status.FAIL and "dagster.yaml" in results[0].fix
    assert [r.status for r in results[1:]] == [Status.CANNOT_TELL] * 3


def test_without_a_pool_limit_the_pool_check_fails_and_a_limit_set_on_the_instance_passes(home: Path) -> None:
    import dagster as dg

    config = (home / "dagster.yaml").read_text()
    (home / "dagster.yaml").write_text(config.split("concurrency:")[0])  # no `concurrency` block

    assert inst.instance_checks(home)[2].status is Status.FAIL
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.event_log_storage.set_concurrency_slots(inst.POOL_NAME, 2)
        result = inst.check_pool(instance, "snowflake")

    assert result.status is Status.PASS and result.detail == "limit 2 (set on the instance)"


def test_a_storage_behind_the_latest_schema_fails_with_dagster_instance_migrate(home: Path) -> None:
    assert inst.instance_checks(home)[1].status is Status.PASS  # creates the storage
    with sqlite3.connect(home / "history" / "runs.db") as db:
        db.execute("UPDATE alembic_version SET version_num = 'a00dfa5e2b8d'")  # an older revision's id

    result = inst.instance_checks(home)[1]

    assert result.status is Status.FAIL
    assert "run storage at a00dfa5e2b8d" in result.detail
    assert "dagster instance migrate" in result.fix


def _beat(home: Path, age_s: float) -> float:
    """Heartbeats of every required daemon, `age_s` seconds old; returns now."""
    import dagster as dg
    from dagster._daemon.types import DaemonHeartbeat

    now = time.time()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for daemon in instance.get_required_daemon_types():
            instance.add_daemon_heartbeat(DaemonHeartbeat(now - age_s, daemon, None, None))
    return now


def test_recent_daemon_heartbeats_pass(home: Path) -> None:
    now = _beat(home, age_s=20)

    result = inst.instance_checks(home, now=now)[3]

    assert result.status is Status.PASS and "oldest heartbeat 20s ago" in result.detail


def test_a_stale_daemon_heartbeat_fails_in_prod(home: Path) -> None:
    now = _beat(home, age_s=3 * 3600)

    result = inst.instance_checks(home, is_prod=True, now=now)[3]

    assert result.status is Status.FAIL and "3 h ago" in result.detail
    assert "dagster-daemon run" in result.fix


def test_a_stopped_make_dev_is_said_but_not_a_failure_outside_prod(home: Path) -> None:
    now = _beat(home, age_s=3 * 3600)

    result = inst.instance_checks(home, now=now)[3]

    assert result.status is Status.CANNOT_TELL
    assert "last heartbeat" in result.detail and "3 h ago" in result.detail


def test_no_daemon_heartbeat_in_prod_fails(home: Path) -> None:
    assert inst.instance_checks(home, is_prod=True)[3].status is Status.FAIL


# --- Snowflake: fakesnow, and a scripted account ----------------------------------------------------------


class Recording:
    """A DB-API connection that records every statement sent to the one it wraps."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.sent: list[str] = []

    def cursor(self) -> Any:
        recording = self

        class Cursor:
            def __init__(self) -> None:
                self.inner = recording.connection.cursor()

            def execute(self, sql: str) -> Any:
                recording.sent.append(sql)
                return self.inner.execute(sql)

            def __getattr__(self, name: str) -> Any:
                return getattr(self.inner, name)

        return Cursor()


SCRATCH = snow.Scratch("AB12CD34")
S = "MESH.MESH_DOCTOR_AB12CD34"
EVERY_STATEMENT = [
    "SELECT CURRENT_ROLE()",
    "SELECT CURRENT_WAREHOUSE()",
    snow.WAREHOUSE_QUERY,
    "CREATE DATABASE MESH_DOCTOR_AB12CD34 CLONE MESH",
    "DROP DATABASE IF EXISTS MESH_DOCTOR_AB12CD34",
    f"CREATE SCHEMA {S}",
    "CREATE ROLE MESH_DOCTOR_AB12CD34",
    "GRANT USAGE ON DATABASE MESH TO ROLE MESH_DOCTOR_AB12CD34",
    f"GRANT USAGE ON SCHEMA {S} TO ROLE MESH_DOCTOR_AB12CD34",
    f"CREATE MASKING POLICY {S}.MESH_DOCTOR_MASK AS (val STRING) RETURNS STRING -> val",
    f"CREATE ROW ACCESS POLICY {S}.MESH_DOCTOR_ROWS AS (val STRING) RETURNS BOOLEAN -> TRUE",
    "SHOW PARAMETERS LIKE 'DATA_RETENTION_TIME_IN_DAYS' IN DATABASE MESH",
    f"CREATE TABLE {S}.MESH_DOCTOR_PORT (id INTEGER)",
    f"CREATE TABLE {S}.MESH_DOCTOR_STAGING (id INTEGER)",
    f"GRANT SELECT ON TABLE {S}.MESH_DOCTOR_PORT TO ROLE MESH_DOCTOR_AB12CD34",
    f"CREATE OR REPLACE TABLE {S}.MESH_DOCTOR_PORT CLONE {S}.MESH_DOCTOR_STAGING COPY GRANTS",
    f"SHOW GRANTS ON TABLE {S}.MESH_DOCTOR_PORT",
    f"DROP SCHEMA IF EXISTS {S} CASCADE",
    "DROP ROLE IF EXISTS MESH_DOCTOR_AB12CD34",
]
"""What the doctor sends to an account that answers every statement, in order."""


def test_on_fakesnow_what_it_answers_passes_and_nothing_it_cannot_answer_passes() -> None:
    import fakesnow
    import snowflake.connector

    recordings: list[Recording] = []

    @contextmanager
    def connect() -> Iterator[Recording]:
        connection = snowflake.connector.connect(account="acct", user="mesh_svc", password="p")
        recordings.append(Recording(connection))
        try:
            yield recordings[-1]
        finally:
            connection.close()

    with fakesnow.patch():
        setup = snowflake.connector.connect(account="acct", user="mesh_svc", password="p")
        setup.cursor().execute("CREATE DATABASE MESH")
        setup.close()
        results = snow.snowflake_checks(connect, "MESH", "MESH", scratch=SCRATCH)

    assert [r.check for r in results] == list(snow.CHECKS)
    assert _statuses(results) == {
        snow.SIGN_IN: "pass",
        snow.ROLE: "pass",  # fakesnow's answer is DuckDB's role, `duckdb`
        snow.WAREHOUSE: "cannot-tell",  # the GENERATOR query ran; CURRENT_WAREHOUSE() is unknown to it
        snow.CLONE: "cannot-tell",  # the clone ran; DROP DATABASE does not parse
        snow.SCHEMA: "pass",
        snow.GRANTS: "cannot-tell",
        snow.MASKING: "cannot-tell",
        snow.ROW_ACCESS: "cannot-tell",
        snow.RETENTION: "cannot-tell",
        snow.COPY_GRANTS: "cannot-tell",
        snow.CLEANUP: "pass",
    }
    assert results[1].detail == "duckdb"
    for result in results:
        if result.status is Status.CANNOT_TELL:
            assert "did not answer" in result.detail and "real account" in result.fix
    assert exit_code(results) == 0
    # CREATE ROLE did not run, so no GRANT to it, no SHOW GRANTS and no DROP ROLE; the rest as written.
    assert recordings[0].sent == [
        statement
        for statement in EVERY_STATEMENT
        if not statement.startswith(("GRANT", "SHOW GRANTS", "DROP ROLE"))
    ]


def test_a_role_other_than_snowflake_role_fails() -> None:
    import fakesnow
    import snowflake.connector

    with fakesnow.patch():
        connection = snowflake.connector.connect(account="acct", user="u", password="p")
        result = snow.check_role(connection, expected="MESH_ADMIN")

    assert result.status is Status.FAIL
    assert result.detail == "duckdb, not SNOWFLAKE_ROLE=MESH_ADMIN"


def test_a_sign_in_that_fails_fails_first_naming_the_variables_and_the_rest_cannot_tell() -> None:
    from mesh_assets.infra.warehouse.snowflake_sign_in import SignInError

    def connect() -> Any:
        raise SignInError("Snowflake sign-in needs SNOWFLAKE_ACCOUNT: set it in the environment")

    results = snow.snowflake_checks(connect, "MESH", "MESH")

    assert results[0].status is Status.FAIL and "SNOWFLAKE_ACCOUNT" in results[0].detail
    for variable in ("SNOWFLAKE_PASSWORD", "SNOWFLAKE_PRIVATE_KEY_PATH", "SNOWFLAKE_AUTHENTICATOR"):
        assert variable in results[0].fix
    assert [r.status for r in results[1:]] == [Status.CANNOT_TELL] * (len(snow.CHECKS) - 1)
    assert exit_code(results) == 1


class Account:
    """A scripted connection answering as Snowflake documents; `errors` maps a statement prefix to a
    message raised instead, `answers` a statement prefix to (columns, rows)."""

    def __init__(self, errors: dict[str, str] | None = None, answers: dict[str, Any] | None = None) -> None:
        self.errors = errors or {}
        self.answers = {
            "SELECT CURRENT_ROLE()": (["current_role()"], [("MESH_ADMIN",)]),
            "SELECT CURRENT_WAREHOUSE()": (["current_warehouse()"], [("MESH_WH",)]),
            "SHOW PARAMETERS": (
                ["key", "value", "default", "level"],
                [("DATA_RETENTION_TIME_IN_DAYS", "1", "1", "")],
            ),
            "SHOW GRANTS": (
                ["created_on", "privilege", "granted_on", "name", "granted_to", "grantee_name"],
                [
                    (None, "OWNERSHIP", "TABLE", "MESH_DOCTOR_PORT", "ROLE", "MESH_ADMIN"),
                    (None, "SELECT", "TABLE", "MESH_DOCTOR_PORT", "ROLE", "MESH_DOCTOR_AB12CD34"),
                ],
            ),
            **(answers or {}),
        }
        self.sent: list[str] = []

    def cursor(self) -> Any:
        account = self

        class Cursor:
            def __init__(self) -> None:
                self.description: list | None = None
                self.rows: list = []

            def execute(self, sql: str) -> None:
                account.sent.append(sql)
                for prefix, message in account.errors.items():
                    if sql.startswith(prefix):
                        raise RuntimeError(message)
                answer = next((a for p, a in account.answers.items() if sql.startswith(p)), None)
                columns, self.rows = answer or (["status"], [("Statement executed successfully.",)])
                self.description = [(column,) for column in columns]

            def fetchall(self) -> list:
                return self.rows

            def close(self) -> None:
                pass

        return Cursor()


@contextmanager
def _signed_in(account: Account) -> Iterator[Account]:
    yield account


def test_an_account_that_answers_everything_passes_every_check_and_drops_what_it_made() -> None:
    account = Account()

    results = snow.snowflake_checks(
        lambda: _signed_in(account), "MESH", "MESH", "MESH_ADMIN", scratch=SCRATCH
    )

    assert set(_statuses(results).values()) == {"pass"}
    assert account.sent == EVERY_STATEMENT
    assert "SELECT to MESH_DOCTOR_AB12CD34 kept" in results[9].detail


def test_missing_privileges_and_standard_edition_fail_with_their_fixes() -> None:
    account = Account(
        errors={
            "CREATE DATABASE": "003001 (42501): SQL access control error: Insufficient privileges to "
            "operate on account 'XY12345'",
            "CREATE MASKING POLICY": "002000 (0A000): Unsupported feature 'Masking Policy'.",
            "SELECT COUNT(*)": "000606 (57P03): No active warehouse selected in the current session.",
        },
        answers={"SELECT CURRENT_WAREHOUSE()": (["current_warehouse()"], [("MESH_WH",)])},
    )

    results = {r.check: r for r in snow.snowflake_checks(lambda: _signed_in(account), "MESH", "MESH")}

    assert results[snow.CLONE].status is Status.FAIL
    assert "GRANT CREATE DATABASE ON ACCOUNT" in results[snow.CLONE].fix
    assert results[snow.MASKING].status is Status.FAIL and "Enterprise edition" in results[snow.MASKING].fix
    assert (
        results[snow.WAREHOUSE].status is Status.FAIL
        and "GRANT USAGE ON WAREHOUSE" in results[snow.WAREHOUSE].fix
    )
    assert results[snow.ROW_ACCESS].status is Status.PASS


def test_time_travel_off_and_grants_lost_by_the_replace_fail() -> None:
    account = Account(
        answers={
            "SHOW PARAMETERS": (["key", "value"], [("DATA_RETENTION_TIME_IN_DAYS", "0")]),
            "SHOW GRANTS": (["privilege", "grantee_name"], [("OWNERSHIP", "MESH_ADMIN")]),
        }
    )

    results = {r.check: r for r in snow.snowflake_checks(lambda: _signed_in(account), "MESH", "MESH")}

    assert results[snow.RETENTION].status is Status.FAIL
    assert "SET DATA_RETENTION_TIME_IN_DAYS = 1" in results[snow.RETENTION].fix
    assert results[snow.COPY_GRANTS].status is Status.FAIL and "lost" in results[snow.COPY_GRANTS].detail


def test_without_a_schema_of_its_own_the_checks_that_need_one_cannot_tell_and_nothing_is_dropped() -> None:
    account = Account(
        errors={"CREATE SCHEMA": "002003 (02000): Database 'MESH' does not exist or not authorized."}
    )

    results = {r.check: r for r in snow.snowflake_checks(lambda: _signed_in(account), "MESH", "MESH")}

    assert results[snow.SCHEMA].status is Status.FAIL
    for name in (snow.GRANTS, snow.MASKING, snow.ROW_ACCESS, snow.COPY_GRANTS):
        assert results[name].status is Status.CANNOT_TELL
    assert list(results) == list(snow.CHECKS)
    assert not [s for s in account.sent if s.startswith("DROP SCHEMA") or s.startswith("DROP ROLE")]


# --- the command -------------------------------------------------------------------------------------------


@pytest.fixture
def checkout(mesh_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the mesh after `make setup`: its own data folder and instance, nothing built yet."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("MESH_DATA_DIR", str(tmp_path / "data"))
    for name in ("MESH_ENV", "MESH_TARGET", "MESH_DUCKDB_PATH"):
        monkeypatch.delenv(name, raising=False)
    return mesh_copy


def test_mesh_doctor_on_a_fresh_checkout_exits_0_and_json_lists_every_check(checkout: Path) -> None:
    from mesh_assets.cli.app import app

    result = CliRunner().invoke(app, ["doctor", "--json"])

    assert result.exit_code == 0, result.output
    records = json.loads(result.output)
    assert [set(record) for record in records] == [{"check", "status", "detail", "fix"}] * len(records)
    assert [record["check"] for record in records] == [
        "environment resolves",
        duck.FOLDER,
        duck.LOCK,
        duck.FILE,
        "versions",
        inst.LOADS,
        inst.STORAGE,
        inst.POOL,
        inst.DAEMON,
    ]
    text = CliRunner().invoke(app, ["doctor"]).output
    assert "cannot-tell  daemon heartbeat:" in text and " — fix: start it: `make dev`" in text
    assert text.splitlines()[-1] == "mesh doctor: 7 pass, 0 fail, 2 cannot-tell"


def test_a_failing_check_makes_mesh_doctor_exit_1(
    checkout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mesh_assets.cli.app import app

    (tmp_path / "blocked").write_text("a file where the warehouse folder should be")
    monkeypatch.setenv("MESH_DUCKDB_PATH", str(tmp_path / "blocked" / "mesh.duckdb"))

    result = CliRunner().invoke(app, ["doctor"])

    assert result.exit_code == 1
    assert "fail         warehouse folder writable:" in result.output


def test_mesh_doctor_on_snowflake_signs_in_through_the_platforms_factory(
    checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On fakesnow, through dagster-snowflake as every Snowflake caller: sign-in passes, nothing fakesnow
    cannot answer passes; without a secret, sign-in fails naming the variables and the command exits 1."""
    import fakesnow

    from mesh_assets.cli.app import app

    monkeypatch.setenv("MESH_TARGET", "snowflake")
    monkeypatch.setenv("MESH_ENV", "prod")
    for name, value in {"ACCOUNT": "acct", "USER": "mesh_svc", "PASSWORD": "p", "DATABASE": "MESH"}.items():
        monkeypatch.setenv(f"SNOWFLAKE_{name}", value)
    with fakesnow.patch(create_database_on_connect=True):
        import snowflake.connector

        snowflake.connector.connect(database="MESH").close()  # prod exists, as after a first publish
        result = CliRunner().invoke(app, ["doctor", "--json"])

    records = {record["check"]: record for record in json.loads(result.output)}
    assert records[snow.SIGN_IN]["status"] == "pass"
    assert records[snow.SIGN_IN]["detail"] == "signed in as mesh_svc@acct by password"
    assert records[snow.SCHEMA]["status"] == "pass"
    assert records[snow.MASKING]["status"] == "cannot-tell"

    monkeypatch.delenv("SNOWFLAKE_PASSWORD")
    result = CliRunner().invoke(app, ["doctor"])

    assert result.exit_code == 1
    assert "fail         sign-in: Snowflake sign-in needs a secret" in result.output


# --- domain roles ------------------------------------------------------------------------------------------


class RoleAccount:
    """A scripted account that keeps the session's role: `granted` roles may be used, others are refused."""

    def __init__(self, granted: set[str], follows_use_role: bool = True) -> None:
        self.role = "MESH_ADMIN"
        self.granted = granted | {"MESH_ADMIN"}
        self.follows = follows_use_role
        self.sent: list[str] = []

    def cursor(self) -> Any:
        account = self

        class Cursor:
            def __init__(self) -> None:
                self.description: list | None = None
                self.rows: list = []

            def execute(self, sql: str) -> None:
                account.sent.append(sql)
                if sql.startswith("USE ROLE "):
                    role = sql.removeprefix("USE ROLE ")
                    if role not in account.granted:
                        raise RuntimeError(f"002003 (02000): Role '{role}' does not exist or not authorized.")
                    if account.follows:
                        account.role = role
                    self.description, self.rows = [("status",)], [("Statement executed successfully.",)]
                else:
                    self.description, self.rows = [("current_role()",)], [(account.role,)]

            def fetchall(self) -> list:
                return self.rows

            def close(self) -> None:
                pass

        return Cursor()


ROLES = ["MESH_DOMAIN_CUSTOMERS", "MESH_DOMAIN_SALES"]


def test_domain_roles_pass_when_the_platform_may_use_each_and_the_session_returns_to_its_role() -> None:
    account = RoleAccount(set(ROLES))

    result = snow.check_domain_roles(account, ROLES)

    assert result.status is Status.PASS and "MESH_DOMAIN_SALES" in result.detail
    assert account.sent[-1] == "USE ROLE MESH_ADMIN" and account.role == "MESH_ADMIN"


def test_a_domain_role_not_granted_fails_naming_it_and_mesh_grants() -> None:
    result = snow.check_domain_roles(RoleAccount({"MESH_DOMAIN_CUSTOMERS"}), ROLES)

    assert result.status is Status.FAIL and result.detail == "cannot USE ROLE MESH_DOMAIN_SALES"
    assert "mesh grants --target snowflake" in result.fix


def test_a_server_that_answers_use_role_without_switching_cannot_tell() -> None:
    result = snow.check_domain_roles(RoleAccount(set(ROLES), follows_use_role=False), ROLES)

    assert result.status is Status.CANNOT_TELL and "stayed MESH_ADMIN" in result.detail


def test_the_domain_roles_check_follows_the_others_only_when_domains_run_as_their_roles() -> None:
    with_roles = snow.snowflake_checks(
        lambda: _signed_in(RoleAccount(set(ROLES))), "MESH", "MESH", domain_roles=ROLES, scratch=SCRATCH
    )
    without = snow.snowflake_checks(
        lambda: _signed_in(RoleAccount(set(ROLES))), "MESH", "MESH", scratch=SCRATCH
    )

    assert [r.check for r in with_roles] == [*snow.CHECKS, snow.DOMAIN_ROLES]
    assert [r.check for r in without] == list(snow.CHECKS)
    assert with_roles[-1].status is Status.PASS
