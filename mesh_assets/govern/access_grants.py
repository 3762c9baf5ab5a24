"""Grants as desired state: the specs and the agreements in force compile to the grants Snowflake must hold,
and the difference with what it holds is the smallest set of statements that closes it.

What is compiled (per environment's database), only for people, teams and service principals: consumer
*products* are built by their domain's role, which `mesh grants` already grants exactly its declared
ports (see `domain_roles`), and on DuckDB the platform's own reads enforce product agreements.

- a **database role per port version** that someone holds an agreement on, `<DB>.<DOMAIN>__<PRODUCT>_V<n>`:
  USAGE on the port's schema and SELECT on what readers read, the secure `__protected` view when the port
  has PII columns (its masking policies, from `mesh grants`, hide them), else the table;
- a second one, `…_V<n>_PII`, when an agreement grants PII in clear: SELECT on the base table. This is how
  an agreement binds to the masking: the masking policies are shared per handling and type and attached
  to the view, so clear text is the table itself, granted only to agreements that say so (publishing
  replaces the table with `CLONE … COPY GRANTS`, which keeps the grant);
- an **access role per consumer**, `MESH_AGR_<KIND>_<ID>`, holding USAGE on the database and the database
  roles of its agreements in force, granted to the person's or service principal's user, or to the team's
  role `MESH_TEAM_<ID>` (which people hold through the identity system).

Not compiled: an agreement's `columns` (Snowflake grants a port version whole; a column subset would need
a view per agreement) — recorded and shown, enforced by review only, and said so in docs/access.md.

Names are compared the way SHOW GRANTS prints them, without quotes and in upper case (`canonical`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from mesh_assets.govern.grants import PROTECTED_SUFFIX, ROLE_PREFIX, identifier
from mesh_assets.infra.warehouse.snowflake_names import DEFAULT_DATABASE
from mesh_assets.product import access
from mesh_assets.product.agreement import ConsumerKind, State
from mesh_assets.product.registry import Registry, effective_status
from mesh_assets.product.spec import Status
from mesh_assets.product.sql_text import quote_identifier

ACCESS_ROLE_INFIX = "AGR_"
"""Access roles are `<prefix>AGR_<KIND>_<ID>`: the prefix keeps them apart from the account's roles."""
_KIND_TAG = {
    ConsumerKind.PERSON: "PERSON",
    ConsumerKind.SERVICE_PRINCIPAL: "SP",
    ConsumerKind.TEAM: "TEAM",
}


def canonical(name: str) -> str:
    """A Snowflake name as SHOW prints it, for comparison: quotes dropped, upper case."""
    return name.replace('"', "").upper()


@dataclass(frozen=True, order=True)
class Grant:
    """One privilege on one object to one grantee, in SHOW GRANTS' terms.

    `on` is TABLE, VIEW, SCHEMA, DATABASE, DATABASE_ROLE or ROLE (a role granted to the grantee); `to` is
    ROLE, DATABASE_ROLE or USER. `name` and `grantee` are written as SQL (quoted where needed).
    """

    privilege: str
    on: str
    name: str
    to: str
    grantee: str

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        """What identifies the grant whatever the quoting: compared with what SHOW GRANTS printed."""
        return (self.privilege, self.on, canonical(self.name), self.to, canonical(self.grantee))

    def _target(self) -> str:
        return {"ROLE": "ROLE", "DATABASE_ROLE": "DATABASE ROLE", "USER": "USER"}[
            self.to
        ] + f" {self.grantee}"

    def grant_sql(self) -> str:
        """The statement that gives it."""
        if self.on in ("DATABASE_ROLE", "ROLE"):
            what = "DATABASE ROLE" if self.on == "DATABASE_ROLE" else "ROLE"
            return f"GRANT {what} {self.name} TO {self._target()}"
        return f"GRANT {self.privilege} ON {self.on} {self.name} TO {self._target()}"

    def revoke_sql(self) -> str:
        """The statement that takes it back."""
        if self.on in ("DATABASE_ROLE", "ROLE"):
            what = "DATABASE ROLE" if self.on == "DATABASE_ROLE" else "ROLE"
            return f"REVOKE {what} {self.name} FROM {self._target()}"
        return f"REVOKE {self.privilege} ON {self.on} {self.name} FROM {self._target()}"


@dataclass
class DesiredState:
    """The roles and grants the agreements in force need, and which agreements need each grant."""

    database: str
    prefix: str
    roles: set[str] = field(default_factory=set)
    database_roles: set[str] = field(default_factory=set)
    grants: dict[Grant, list[str]] = field(default_factory=dict)
    port_objects: list[tuple[str, str]] = field(default_factory=list)
    """`(TABLE|VIEW, name)` of every served port, whose grants are read to find drift."""
    names: dict[str, str] = field(default_factory=dict)
    """Canonical name → the name as SQL, for every schema, table and view of a served port: SHOW prints
    names without the quotes a lower-case schema or table needs, so a revocation is written from here."""

    def need(self, grant: Grant, why: str) -> None:
        """Add a grant, remembering the agreement that needs it."""
        reasons = self.grants.setdefault(grant, [])
        if why not in reasons:
            reasons.append(why)


def port_role(database: str, domain: str, product: str, major: int, pii: bool = False) -> str:
    """The database role of one port version (`…_PII`: its clear-text twin)."""
    name = f"{domain}__{product}_V{major}" + ("_PII" if pii else "")
    return f"{identifier(database)}.{identifier(name)}"


def access_role(kind: ConsumerKind, consumer_id: str, prefix: str = ROLE_PREFIX) -> str:
    """The access role of one consumer, e.g. `MESH_AGR_TEAM_FINANCE`."""
    return identifier(
        prefix + ACCESS_ROLE_INFIX + _KIND_TAG[kind] + "_" + re.sub(r"[^A-Za-z0-9]", "_", consumer_id)
    )


def holder(kind: ConsumerKind, consumer_id: str, prefix: str = ROLE_PREFIX) -> tuple[str, str]:
    """Who holds a consumer's access role: its user (person, service principal) or its team's role."""
    if kind == ConsumerKind.TEAM:
        return "ROLE", identifier(prefix + "TEAM_" + consumer_id)
    if kind == ConsumerKind.PERSON:
        return "USER", quote_identifier(consumer_id.upper())
    return "USER", identifier(consumer_id)


def desired(
    registry: Registry, today: date, database: str = DEFAULT_DATABASE, prefix: str = ROLE_PREFIX
) -> DesiredState:
    """The grants every agreement in force on `today` needs, in the environment's `database`."""
    state = DesiredState(database, prefix)
    db = identifier(database)
    served: dict[tuple[str, int], tuple[str, str, str | None]] = {}
    for key in sorted(registry.products):
        spec = registry.products[key].spec
        for port in spec.output_ports:
            if effective_status(spec, port, today) == Status.RETIRED:
                continue
            schema = f"{db}.{quote_identifier(spec.domain)}"
            table = f"{schema}.{quote_identifier(f'{spec.name}_v{port.major}')}"
            has_pii = bool(access.pii_columns(port))
            protected = f"{spec.name}_v{port.major}{PROTECTED_SUFFIX}"
            view = f"{schema}.{quote_identifier(protected)}" if has_pii else None
            served[(key, port.major)] = (schema, table, view)
            state.port_objects.append(("TABLE", table))
            if view:
                state.port_objects.append(("VIEW", view))
            for name in (schema, table, view):
                if name is not None:
                    state.names[canonical(name)] = name
    for loaded in sorted(registry.agreements, key=lambda a: a.id):
        agreement = loaded.agreement
        if agreement.consumer.kind == ConsumerKind.PRODUCT or loaded.state(today) != State.ACTIVE:
            continue
        port = served.get((loaded.producer, agreement.major))
        if port is None:
            continue  # a retired or removed port: nothing to grant, `mesh validate` says so
        schema, table, view = port
        domain, product = loaded.producer.split(".")
        role = access_role(agreement.consumer.kind, agreement.consumer.id, prefix)
        state.roles.add(role)
        state.need(Grant("USAGE", "DATABASE", db, "ROLE", role), loaded.id)
        to, grantee = holder(agreement.consumer.kind, agreement.consumer.id, prefix)
        state.need(Grant("USAGE", "ROLE", role, to, grantee), loaded.id)
        clear = agreement.pii_in_clear and view is not None
        for pii in (False, True) if clear else (False,):
            db_role = port_role(database, domain, product, agreement.major, pii)
            state.database_roles.add(db_role)
            # Readers of a port with PII read its masked view; the clear-text twin reads the table.
            on, read = ("VIEW", view) if view is not None and not pii else ("TABLE", table)
            state.need(Grant("USAGE", "SCHEMA", schema, "DATABASE_ROLE", db_role), loaded.id)
            state.need(Grant("SELECT", on, read, "DATABASE_ROLE", db_role), loaded.id)
            state.need(Grant("USAGE", "DATABASE_ROLE", db_role, "ROLE", role), loaded.id)
    return state


@dataclass(frozen=True)
class CurrentState:
    """What the account holds, as read by `access_sync.read_current` (or given by a test)."""

    roles: frozenset[str] = frozenset()
    """Access roles that exist (canonical names)."""
    database_roles: frozenset[str] = frozenset()
    """Database roles that exist, `<DB>.<NAME>` (canonical)."""
    grants: frozenset[Grant] = frozenset()


@dataclass
class Plan:
    """The smallest difference: what to create, grant and revoke, and the drift left alone (or pruned)."""

    create: list[str] = field(default_factory=list)
    grant: list[tuple[Grant, list[str]]] = field(default_factory=list)
    revoke: list[Grant] = field(default_factory=list)
    drift: list[Grant] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """Nothing to change (drift aside: it is left alone unless pruned)."""
        return not (self.create or self.grant or self.revoke)

    def statements(self, prune: bool = False) -> list[str]:
        """In the order they must run: roles first, grants, then revocations (drift last, with `prune`)."""
        out = list(self.create)
        out += [g.grant_sql() for g, _ in self.grant]
        out += [g.revoke_sql() for g in self.revoke]
        if prune:
            out += [g.revoke_sql() for g in self.drift]
        return out


def _managed(grant: Grant, desired_state: DesiredState) -> bool:
    """Whether a grant found in the account is of a shape this module compiles (so it owns it)."""
    prefix = canonical(desired_state.prefix + ACCESS_ROLE_INFIX)
    db = canonical(identifier(desired_state.database)) + "."
    grantee, name = canonical(grant.grantee), canonical(grant.name)
    if grant.to == "DATABASE_ROLE" and grantee.startswith(db) and "__" in grantee:
        return True
    if grant.to == "ROLE" and grantee.startswith(prefix):
        return grant.on in ("DATABASE_ROLE", "DATABASE") and (grant.on == "DATABASE" or "__" in name)
    return grant.on == "ROLE" and name.startswith(prefix)


def plan(desired_state: DesiredState, current: CurrentState) -> Plan:
    """What to run so the account holds exactly the desired grants; never revoke-then-regrant.

    A grant the account holds and the agreements need is left as is. One of a shape this module compiles
    (a port's database role, an access role) that no agreement needs any more is revoked: an expired or
    revoked agreement, a consumer gone. Any other grant on a port, or to these roles, was made by hand: it
    is drift, reported and left alone unless pruned (ownership is never drift).
    """
    result = Plan()
    for role in sorted(desired_state.roles):
        if canonical(role) not in current.roles:
            result.create.append(f"CREATE ROLE IF NOT EXISTS {role} COMMENT = 'mesh: access agreements'")
    for role in sorted(desired_state.database_roles):
        if canonical(role) not in current.database_roles:
            result.create.append(
                f"CREATE DATABASE ROLE IF NOT EXISTS {role} COMMENT = 'mesh: one port version'"
            )
    held = {g.key for g in current.grants}
    wanted = {g.key for g in desired_state.grants}
    # Order the grants so an object's privileges come before the role carrying them is handed out.
    rank = {"SCHEMA": 0, "TABLE": 1, "VIEW": 1, "DATABASE": 2, "DATABASE_ROLE": 3, "ROLE": 4}
    for grant in sorted(desired_state.grants, key=lambda g: (rank[g.on], g)):
        if grant.key not in held:
            result.grant.append((grant, desired_state.grants[grant]))
    for grant in sorted(current.grants, key=lambda g: (-rank.get(g.on, 0), g)):
        if grant.key in wanted or grant.privilege == "OWNERSHIP":
            continue
        found = _as_sql(grant, desired_state.names)
        (result.revoke if _managed(grant, desired_state) else result.drift).append(found)
    return result


def _as_sql(grant: Grant, names: dict[str, str]) -> Grant:
    """A grant read from SHOW, with its names written so a statement can name them again."""

    def written(name: str, kind: str) -> str:
        if '"' in name:
            return name
        if canonical(name) in names:
            return names[canonical(name)]
        if kind in ("USER", "ROLE"):
            return identifier(name)  # e.g. a user named by email must be quoted
        return name

    return Grant(
        grant.privilege, grant.on, written(grant.name, grant.on), grant.to, written(grant.grantee, grant.to)
    )
