"""`mesh access sync`: read what Snowflake grants, apply the smallest difference, audit every change.

Reading is its own step (`read_current`) over a `run(sql) -> rows` function, so tests feed it the rows
SHOW statements return (fakesnow has no roles or grants) and the rest is the same code that runs against
an account. Rows are read by position, in the column order Snowflake documents for each SHOW:

- `SHOW ROLES` / `SHOW DATABASE ROLES`: `created_on, name, …`;
- `SHOW GRANTS TO ROLE | TO DATABASE ROLE | ON <object>`: `created_on, privilege, granted_on, name,
  granted_to, grantee_name, …`;
- `SHOW GRANTS OF ROLE`: `created_on, role, granted_to, grantee_name, …`.

Applying runs the plan's statements one by one and appends each grant change to the environment's grant
log (`access_audit.GRANTS_LOG` under its data folder), with the agreements that needed it. A second sync
finds nothing to do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from mesh_assets.govern import access_audit
from mesh_assets.govern.access_grants import (
    ACCESS_ROLE_INFIX,
    CurrentState,
    DesiredState,
    Grant,
    Plan,
    canonical,
    plan,
)
from mesh_assets.govern.grants import identifier

Run = Callable[[str], Sequence[Sequence[Any]]]
"""Runs one statement, returns its rows."""
ACTOR = "mesh access sync"
"""Who grant-log entries name."""


def _to(kind: str) -> str:
    return "DATABASE_ROLE" if kind.upper().replace(" ", "_") == "DATABASE_ROLE" else kind.upper()


def grants_from_rows(rows: Sequence[Sequence[Any]], database: str) -> set[Grant]:
    """Grants from SHOW GRANTS TO … / ON … rows."""
    found = set()
    prefix = canonical(identifier(database)) + "."
    for row in rows:
        privilege, granted_on, name, granted_to, grantee = (str(v) for v in row[1:6])
        to = _to(granted_to)
        if to == "DATABASE_ROLE" and not canonical(grantee).startswith(prefix):
            grantee = prefix + grantee  # printed unqualified inside its database
        on = _to(granted_on)
        if on == "DATABASE_ROLE" and not canonical(name).startswith(prefix):
            name = prefix + name
        found.add(Grant(privilege.upper(), on, name, to, grantee))
    return found


def holders_from_rows(rows: Sequence[Sequence[Any]]) -> set[Grant]:
    """Role grants from SHOW GRANTS OF ROLE rows (who holds the role)."""
    return {Grant("USAGE", "ROLE", str(r[1]), _to(str(r[2])), str(r[3])) for r in rows}


def read_current(run: Run, desired_state: DesiredState) -> CurrentState:
    """What the account holds that the sync manages or must look at (see the module docstring)."""
    db = identifier(desired_state.database)
    prefix = desired_state.prefix + ACCESS_ROLE_INFIX
    roles = {canonical(str(r[1])) for r in run(f"SHOW ROLES LIKE '{prefix}%'")}
    db_prefix = canonical(db) + "."
    database_roles = {
        db_prefix + canonical(str(r[1]))
        for r in run(f"SHOW DATABASE ROLES IN DATABASE {db}")
        if "__" in str(r[1])
    }
    grants: set[Grant] = set()
    for role in sorted(roles):
        grants |= grants_from_rows(run(f"SHOW GRANTS TO ROLE {role}"), desired_state.database)
        grants |= holders_from_rows(run(f"SHOW GRANTS OF ROLE {role}"))
    for role in sorted(database_roles):
        grants |= grants_from_rows(run(f"SHOW GRANTS TO DATABASE ROLE {role}"), desired_state.database)
    for kind, name in desired_state.port_objects:
        try:
            rows = run(f"SHOW GRANTS ON {kind} {name}")
        except Exception:  # not published yet in this environment: nothing granted on it
            continue
        grants |= grants_from_rows(rows, desired_state.database)
    return CurrentState(frozenset(roles), frozenset(database_roles), frozenset(grants))


@dataclass(frozen=True)
class SyncResult:
    """What a sync found and did."""

    plan: Plan
    applied: list[str]
    """Statements run (none on a dry run)."""


def sync(
    run: Run,
    desired_state: DesiredState,
    *,
    dry_run: bool = False,
    prune: bool = False,
    log: Path | None = None,
    now: datetime | None = None,
) -> SyncResult:
    """Read the account, plan the difference, and (unless a dry run) apply it and log each change."""
    found = plan(desired_state, read_current(run, desired_state))
    statements = found.statements(prune)
    if dry_run:
        return SyncResult(found, [])
    for statement in statements:
        run(statement)
    if log is not None:
        for grant, why in found.grant:
            access_audit.append(
                log,
                by=ACTOR,
                action="grant",
                agreement=", ".join(why),
                what=grant.grant_sql(),
                why="agreement(s) in force",
                at=now,
            )
        for grant in found.revoke:
            access_audit.append(
                log,
                by=ACTOR,
                action="revoke",
                agreement="",
                what=grant.revoke_sql(),
                why="no agreement in force needs it (expired, revoked or gone)",
                at=now,
            )
        for grant in found.drift if prune else []:
            access_audit.append(
                log,
                by=ACTOR,
                action="prune",
                agreement="",
                what=grant.revoke_sql(),
                why="not granted by any agreement (drift, pruned)",
                at=now,
            )
    return SyncResult(found, statements)


def cursor_runner(cursor: Any) -> Run:
    """A `Run` over a DB-API cursor (a Snowflake connection's)."""

    def run(statement: str) -> Sequence[Sequence[Any]]:
        cursor.execute(statement)
        return list(cursor.fetchall()) if cursor.description else []

    return run
