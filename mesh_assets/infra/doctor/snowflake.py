"""`mesh doctor` on the Snowflake target: sign-in, role, warehouse and every privilege the platform uses.

Each check takes a DB-API connection (however it was opened) and returns a `CheckResult`. Privileges are
proved by doing, on scratch objects named `MESH_DOCTOR_<hex>` that are dropped at the end, exactly what
the platform does, rather than read from `SHOW GRANTS TO ROLE`: that lists only the role's direct grants,
so a privilege inherited through the role hierarchy, or held by owning the object, would look missing,
and walking the hierarchy would still not prove the edition allows the feature. Doing it proves privilege,
edition and syntax at once:

- branch environments: `CREATE DATABASE <scratch> CLONE <prod>` and `DROP DATABASE` (`mesh env create` and
  `mesh env drop`); a clone is metadata only, so nothing is copied or billed for storage;
- a schema in the environment's database (publish creates port schemas), and in it:
- `CREATE ROLE` and `GRANT ... TO ROLE` on the database and the schema (`mesh grants`);
- `CREATE MASKING POLICY` and `CREATE ROW ACCESS POLICY`: Standard edition refuses both as "Unsupported
  feature", so their creation is what proves Enterprise edition (`SHOW MASKING POLICIES` answers on
  Standard edition too, so it proves nothing);
- publish's `CREATE OR REPLACE TABLE <port> CLONE <staging> COPY GRANTS`, then `SHOW GRANTS ON TABLE`
  that the SELECT granted on the port before is still there.

An error fails a check only when it says what is wrong (privileges, authorisation, an unsupported
feature, no warehouse). Any other error, e.g. an emulator that does not know the statement (fakesnow), is
`cannot-tell` with the message: an answer not given is never a pass.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from typing import Any

from mesh_assets.infra.doctor.report import CheckResult, Status, cannot_tell, failed, passed

SIGN_IN = "sign-in"
ROLE = "role in use"
WAREHOUSE = "warehouse usable"
CLONE = "branch environments (CREATE DATABASE … CLONE, DROP)"
SCHEMA = "create schemas in the environment's database"
GRANTS = "roles and grants (CREATE ROLE, GRANT)"
MASKING = "masking policies (Enterprise edition)"
ROW_ACCESS = "row access policies (Enterprise edition)"
RETENTION = "time travel retention"
COPY_GRANTS = "publish keeps grants (CLONE … COPY GRANTS)"
CLEANUP = "scratch objects dropped"
DOMAIN_ROLES = "domain roles (each domain's steps run as MESH_DOMAIN_<DOMAIN>)"
CHECKS = (
    SIGN_IN,
    ROLE,
    WAREHOUSE,
    CLONE,
    SCHEMA,
    GRANTS,
    MASKING,
    ROW_ACCESS,
    RETENTION,
    COPY_GRANTS,
    CLEANUP,
)
"""Every Snowflake check, in the order it runs and is reported (then `DOMAIN_ROLES`, when there are any)."""

SIGN_IN_VARIABLES = (
    "SNOWFLAKE_ACCOUNT and SNOWFLAKE_USER, and one of SNOWFLAKE_PASSWORD, a key pair "
    "(SNOWFLAKE_PRIVATE_KEY or SNOWFLAKE_PRIVATE_KEY_PATH, with SNOWFLAKE_PRIVATE_KEY_PASSPHRASE if "
    "encrypted) or SNOWFLAKE_AUTHENTICATOR"
)
"""What the sign-in check's fix names."""

# What an error says when the answer is "no": privileges (003001), objects hidden from the role (002003
# "does not exist or not authorized", 002043), an edition without the feature, no warehouse (000606).
_DENIED = (
    "insufficient privileges",
    "not authorized",
    "operation cannot be performed",
    "access control",
)
_UNSUPPORTED = ("unsupported feature",)
_NO_WAREHOUSE = ("no active warehouse",)
_EMULATOR = "the server did not answer this (e.g. an emulator such as fakesnow that lacks the statement)"
_ON_REAL_ACCOUNT = "run `mesh doctor` on the real account; "
_EDITION = "the account's edition lacks this: Enterprise edition or higher"


@dataclass(frozen=True)
class Scratch:
    """Names of the scratch objects one doctor run creates and drops (one random suffix per run)."""

    suffix: str

    @classmethod
    def new(cls) -> Scratch:
        """Fresh names: two doctors at once never touch each other's objects."""
        return cls(secrets.token_hex(4).upper())

    @property
    def name(self) -> str:
        """The scratch database, schema and role name: `MESH_DOCTOR_<HEX>`."""
        return f"MESH_DOCTOR_{self.suffix}"


def run(connection: Any, sql: str) -> tuple[list[str], list[tuple]]:
    """Execute `sql`; its column names (lowercase) and rows."""
    cursor = connection.cursor()
    try:
        cursor.execute(sql)
        rows = cursor.fetchall() if cursor.description else []
        columns = [str(column[0]).lower() for column in cursor.description or []]
        return columns, [tuple(row) for row in rows]
    finally:
        cursor.close()


def explain(check: str, exc: BaseException, fix: str, done: str = "") -> CheckResult:
    """The verdict an error gives: `fail` if it says what is wrong, else `cannot-tell` with the message."""
    message = (str(exc).strip() or type(exc).__name__).splitlines()[0][:300]
    lowered = message.lower()
    prefix = f"{done}; " if done else ""
    if any(marker in lowered for marker in _UNSUPPORTED):
        return failed(check, prefix + message, _EDITION)
    if any(marker in lowered for marker in (*_DENIED, *_NO_WAREHOUSE)):
        return failed(check, prefix + message, fix)
    return cannot_tell(check, f"{prefix}{_EMULATOR}: {message}", _ON_REAL_ACCOUNT + fix)


def snowflake_checks(
    connect: Callable[[], AbstractContextManager[Any]],
    database: str,
    prod_database: str,
    expected_role: str | None = None,
    who: str = "",
    scratch: Scratch | None = None,
    domain_roles: Sequence[str] = (),
) -> list[CheckResult]:
    """Every Snowflake check, in `CHECKS` order, on a connection from `connect()` (closed afterwards).

    `database` is the environment's database, `prod_database` the one branch environments clone. A
    sign-in failure fails the first check and leaves the others `cannot-tell`.
    """
    with ExitStack() as stack:
        try:
            connection = stack.enter_context(connect())
        except Exception as exc:
            message = (str(exc).strip() or type(exc).__name__).splitlines()[0][:300]
            first = failed(SIGN_IN, message, f"set {SIGN_IN_VARIABLES}")
            names = [*CHECKS[1:], *([DOMAIN_ROLES] if domain_roles else [])]
            rest = [cannot_tell(name, "not signed in", "fix the sign-in first") for name in names]
            results = [first, *rest]
        else:
            results = [
                passed(SIGN_IN, f"signed in{' as ' + who if who else ''}"),
                *checks_on(connection, database, prod_database, expected_role, scratch or Scratch.new()),
            ]
            if domain_roles:
                results.append(check_domain_roles(connection, domain_roles))
    return results


def checks_on(
    connection: Any, database: str, prod_database: str, expected_role: str | None, scratch: Scratch
) -> list[CheckResult]:
    """The checks after sign-in, scratch objects created and dropped in between."""
    results = [
        check_role(connection, expected_role),
        check_warehouse(connection),
        check_branch_clone(connection, prod_database, scratch),
    ]
    schema = f"{database}.{scratch.name}"
    made_schema = check_schema(connection, database, schema)
    results.append(made_schema)
    if made_schema.status is not Status.PASS:
        why = f"no scratch schema to try it in ({SCHEMA} did not pass)"
        later = (GRANTS, MASKING, ROW_ACCESS, COPY_GRANTS)
        skipped = {name: cannot_tell(name, why, f"fix `{SCHEMA}` first") for name in later}
        results += [*skipped.values(), check_retention(connection, database)]
        results.append(cleanup(connection, None, scratch, role_made=False))
        return sorted(results, key=lambda result: CHECKS.index(result.check))
    grants, role_made = check_roles_and_grants(connection, database, schema, scratch.name)
    return [
        *results,
        grants,
        check_masking_policy(connection, schema),
        check_row_access_policy(connection, schema),
        check_retention(connection, database),
        check_copy_grants(connection, schema, scratch.name if role_made else None),
        cleanup(connection, schema, scratch, role_made),
    ]


def check_role(connection: Any, expected: str | None = None) -> CheckResult:
    """`CURRENT_ROLE()` is set and, if `SNOWFLAKE_ROLE` asks for one, is that role."""
    fix = "set SNOWFLAKE_ROLE to a role granted to the user (or give the user a DEFAULT_ROLE)"
    try:
        _, rows = run(connection, "SELECT CURRENT_ROLE()")
    except Exception as exc:
        return explain(ROLE, exc, fix)
    role = rows[0][0] if rows else None
    if not role:
        return failed(ROLE, "no role in use", fix)
    if expected and str(role).upper() != expected.upper():
        return failed(ROLE, f"{role}, not SNOWFLAKE_ROLE={expected}", f"GRANT ROLE {expected} TO USER <user>")
    return passed(ROLE, str(role))


WAREHOUSE_QUERY = "SELECT COUNT(*) FROM TABLE(GENERATOR(ROWCOUNT => 10))"
"""A query that needs compute (a constant `SELECT 1` is answered without a warehouse)."""


def check_warehouse(connection: Any) -> CheckResult:
    """`CURRENT_WAREHOUSE()` is set and a query that needs compute runs on it."""
    fix = "set SNOWFLAKE_WAREHOUSE, and GRANT USAGE ON WAREHOUSE <warehouse> TO ROLE <role>"
    try:
        _, rows = run(connection, "SELECT CURRENT_WAREHOUSE()")
    except Exception as exc:
        named: str | None = None
        unanswered: CheckResult | None = explain(WAREHOUSE, exc, fix)
        if unanswered.status is Status.FAIL:
            return unanswered
    else:
        named, unanswered = (rows[0][0] if rows else None), None
        if not named:
            return failed(WAREHOUSE, "no warehouse in use (CURRENT_WAREHOUSE() is NULL)", fix)
    try:
        run(connection, WAREHOUSE_QUERY)
    except Exception as exc:
        return explain(WAREHOUSE, exc, fix, done=f"warehouse {named}" if named else "")
    if unanswered is not None:
        # The query ran, but on which warehouse the server did not say.
        return cannot_tell(WAREHOUSE, f"a query ran, but {unanswered.detail}", unanswered.fix)
    return passed(WAREHOUSE, f"{named} (a query ran on it)")


def check_branch_clone(connection: Any, prod_database: str, scratch: Scratch) -> CheckResult:
    """`mesh env create`'s zero-copy clone of prod and `mesh env drop`'s drop, on a scratch database."""
    fix = (
        f"GRANT CREATE DATABASE ON ACCOUNT TO ROLE <role>, and USAGE on {prod_database} and its schemas "
        f"({prod_database} must exist: the first `MESH_ENV=prod mesh run` creates it)"
    )
    try:
        run(connection, f"CREATE DATABASE {scratch.name} CLONE {prod_database}")
    except Exception as exc:
        return explain(CLONE, exc, fix)
    try:
        run(connection, f"DROP DATABASE IF EXISTS {scratch.name}")
    except Exception as exc:
        done = f"cloned {prod_database} as {scratch.name}, which may be left"
        return explain(CLONE, exc, f"DROP DATABASE {scratch.name} as its owner", done=done)
    return passed(CLONE, f"cloned {prod_database} as {scratch.name} and dropped it")


def check_schema(connection: Any, database: str, schema: str) -> CheckResult:
    """A schema can be created in the environment's database (publish creates each port's schema)."""
    try:
        run(connection, f"CREATE SCHEMA {schema}")
    except Exception as exc:
        return explain(
            SCHEMA,
            exc,
            f"GRANT CREATE SCHEMA ON DATABASE {database} TO ROLE <role> (or create {database}: `mesh env "
            "create` for a branch, the first `mesh run` for prod)",
        )
    return passed(SCHEMA, f"created {schema}")


def check_roles_and_grants(
    connection: Any, database: str, schema: str, role: str
) -> tuple[CheckResult, bool]:
    """`CREATE ROLE`, then `GRANT USAGE` on the database and on a schema the platform owns; whether the
    scratch role now exists (to drop it, and to test that publish keeps grants)."""
    fix = (
        "GRANT CREATE ROLE ON ACCOUNT TO ROLE <role>, and run `mesh grants` as a role that owns the port "
        f"schemas and {database} (or has MANAGE GRANTS)"
    )
    try:
        run(connection, f"CREATE ROLE {role}")
    except Exception as exc:
        return explain(GRANTS, exc, fix), False
    try:
        run(connection, f"GRANT USAGE ON DATABASE {database} TO ROLE {role}")
        run(connection, f"GRANT USAGE ON SCHEMA {schema} TO ROLE {role}")
    except Exception as exc:
        return explain(GRANTS, exc, fix, done=f"created role {role}"), True
    return passed(GRANTS, f"created role {role}, granted USAGE on {database} and {schema}"), True


def check_masking_policy(connection: Any, schema: str) -> CheckResult:
    """A masking policy can be created (Enterprise edition and CREATE MASKING POLICY on the schema)."""
    policy = f"{schema}.MESH_DOCTOR_MASK"
    try:
        run(connection, f"CREATE MASKING POLICY {policy} AS (val STRING) RETURNS STRING -> val")
    except Exception as exc:
        return explain(MASKING, exc, "GRANT CREATE MASKING POLICY ON SCHEMA <schema> TO ROLE <role>")
    return passed(MASKING, f"created {policy}")


def check_row_access_policy(connection: Any, schema: str) -> CheckResult:
    """A row access policy can be created (Enterprise edition and CREATE ROW ACCESS POLICY on the schema)."""
    policy = f"{schema}.MESH_DOCTOR_ROWS"
    try:
        run(connection, f"CREATE ROW ACCESS POLICY {policy} AS (val STRING) RETURNS BOOLEAN -> TRUE")
    except Exception as exc:
        return explain(ROW_ACCESS, exc, "GRANT CREATE ROW ACCESS POLICY ON SCHEMA <schema> TO ROLE <role>")
    return passed(ROW_ACCESS, f"created {policy}")


def check_retention(connection: Any, database: str) -> CheckResult:
    """Time travel is on for the environment's database: `DATA_RETENTION_TIME_IN_DAYS` of at least 1.

    With 0, a bad publish cannot be looked at or undone (`AT`/`BEFORE`, `UNDROP`), nor the port's
    previous batch cloned back.
    """
    fix = f"ALTER DATABASE {database} SET DATA_RETENTION_TIME_IN_DAYS = 1 (up to 90 on Enterprise edition)"
    try:
        columns, rows = run(
            connection, f"SHOW PARAMETERS LIKE 'DATA_RETENTION_TIME_IN_DAYS' IN DATABASE {database}"
        )
    except Exception as exc:
        return explain(RETENTION, exc, fix)
    value = _value(columns, rows, "value")
    if value is None:
        return cannot_tell(RETENTION, "SHOW PARAMETERS returned no DATA_RETENTION_TIME_IN_DAYS", fix)
    try:
        days = int(str(value))
    except ValueError:
        return cannot_tell(RETENTION, f"DATA_RETENTION_TIME_IN_DAYS is {value!r}, not a number of days", fix)
    if days < 1:
        return failed(RETENTION, f"{database}: {days} days (time travel off)", fix)
    return passed(RETENTION, f"{database}: {days} day{'s' if days != 1 else ''}")


def check_copy_grants(connection: Any, schema: str, role: str | None) -> CheckResult:
    """Publish's statement runs and keeps the SELECT granted on the port before it (read by SHOW GRANTS)."""
    port, staging = f"{schema}.MESH_DOCTOR_PORT", f"{schema}.MESH_DOCTOR_STAGING"
    fix = "GRANT CREATE TABLE ON SCHEMA <port schema> TO ROLE <role>; publish runs as the port's owner"
    try:
        run(connection, f"CREATE TABLE {port} (id INTEGER)")
        run(connection, f"CREATE TABLE {staging} (id INTEGER)")
        if role:
            run(connection, f"GRANT SELECT ON TABLE {port} TO ROLE {role}")
        run(connection, f"CREATE OR REPLACE TABLE {port} CLONE {staging} COPY GRANTS")
    except Exception as exc:
        return explain(COPY_GRANTS, exc, fix)
    if role is None:
        return cannot_tell(
            COPY_GRANTS,
            "the statement ran, but with no scratch role to grant to, whether grants survive is untested",
            f"fix `{GRANTS}` first",
        )
    try:
        columns, rows = run(connection, f"SHOW GRANTS ON TABLE {port}")
    except Exception as exc:
        return explain(COPY_GRANTS, exc, fix, done="the statement ran")
    kept = any(
        str(_field(columns, row, "privilege")).upper() == "SELECT"
        and str(_field(columns, row, "grantee_name")).upper() == role.upper()
        for row in rows
    )
    if not kept:
        return failed(
            COPY_GRANTS,
            f"SELECT to {role} was lost by the replace",
            "report it: consumers would lose access at every publish",
        )
    return passed(COPY_GRANTS, f"replaced {port} by a clone; SELECT to {role} kept")


def cleanup(connection: Any, schema: str | None, scratch: Scratch, role_made: bool) -> CheckResult:
    """Drop what the checks created (the schema takes its tables and policies with it)."""
    statements = ([f"DROP SCHEMA IF EXISTS {schema} CASCADE"] if schema else []) + (
        [f"DROP ROLE IF EXISTS {scratch.name}"] if role_made else []
    )
    if not statements:
        return passed(CLEANUP, "nothing was created")
    left: list[CheckResult] = []
    for statement in statements:
        try:
            run(connection, statement)
        except Exception as exc:
            left.append(explain(CLEANUP, exc, statement))
    if not left:
        return passed(CLEANUP, "; ".join(statements))
    worst = next((r for r in left if r.status is Status.FAIL), left[0])
    detail = "; ".join(r.detail for r in left)
    fix = "as the owner: " + "; ".join(r.fix.removeprefix(_ON_REAL_ACCOUNT) for r in left)
    return worst.model_copy(update={"detail": detail, "fix": fix})


def check_domain_roles(connection: Any, roles: Sequence[str]) -> CheckResult:
    """The platform's user may `USE ROLE` each domain's role (what every step of that domain runs as).

    Proved by switching to each and reading `CURRENT_ROLE()` back, then returning to the sign-in role; a
    server that answers `USE ROLE` without changing the role (fakesnow) is `cannot-tell`.
    """
    fix = (
        "run the SQL of `mesh grants --target snowflake` as an admin (it creates the domain roles and "
        "grants them to the platform role), or run every domain as the platform role: "
        "MESH_SNOWFLAKE_DOMAIN_ROLES=off"
    )
    try:
        _, rows = run(connection, "SELECT CURRENT_ROLE()")
    except Exception as exc:
        return explain(DOMAIN_ROLES, exc, fix)
    original = str(rows[0][0]) if rows and rows[0][0] else None
    missing: list[str] = []
    unchanged: list[str] = []
    try:
        for role in roles:
            try:
                run(connection, f"USE ROLE {role}")
            except Exception as exc:
                verdict = explain(DOMAIN_ROLES, exc, fix)
                if verdict.status is not Status.FAIL:
                    return verdict
                missing.append(role)
                continue
            _, now = run(connection, "SELECT CURRENT_ROLE()")
            if not now or str(now[0][0]).upper() != role.upper():
                unchanged.append(role)
    finally:
        if original:
            # Best effort: no check after this one uses the session.
            with contextlib.suppress(Exception):
                run(connection, f"USE ROLE {original}")
    if missing:
        return failed(DOMAIN_ROLES, f"cannot USE ROLE {', '.join(missing)}", fix)
    if unchanged:
        return cannot_tell(
            DOMAIN_ROLES,
            f"{_EMULATOR}: USE ROLE answered but the session's role stayed {original}",
            _ON_REAL_ACCOUNT + fix,
        )
    return passed(DOMAIN_ROLES, f"{len(roles)} usable: {', '.join(roles)}")


def _field(columns: Sequence[str], row: tuple, name: str) -> Any:
    return row[columns.index(name)] if name in columns else None


def _value(columns: Sequence[str], rows: Sequence[tuple], name: str) -> Any:
    return _field(columns, rows[0], name) if rows else None
