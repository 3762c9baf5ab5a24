"""The mesh's access policy as idempotent Snowflake SQL (`mesh grants --target snowflake`).

Rendered from every product spec through `access`, in a fixed order, with no timestamp: the same specs
give byte-identical SQL, and running it twice leaves the account as running it once (`CREATE … IF NOT
EXISTS`, `CREATE OR REPLACE`, `ALTER … SET`, `GRANT`, `REVOKE` and `SET MASKING POLICY … FORCE`).

What it creates, and why:

1. **Roles**: one per reader role named in any spec (`allowed_roles`, `denied_roles`), prefixed (`MESH_`
   by default) so the mesh's roles never collide with the account's, plus the PII privilege role
   (`MESH_PII_READER`). Which people hold them is the account admin's business, not the spec's.
2. **Masking policies** in the `governance` schema, one per PII handling and Snowflake type family. A
   policy shows the value only to a session holding the PII role; otherwise `***` / NULL (mask), a
   SHA-256 or HASH pseudonym (hash; NULL for types a hash cannot keep), or NULL (remove: a view's columns
   cannot vary per reader, so on Snowflake a removed column reads as NULL).
3. **Per port**, for the reader roles (allowed and not denied):
   - without PII: `GRANT SELECT` on the port table. Publishing replaces the table with `CLONE … COPY
     GRANTS`, which keeps these grants.
   - with PII: a **secure view** `<domain>."<product>_v<major>__protected"` listing the contract's
     columns, the masking policies attached to its PII columns, and `GRANT SELECT` on the view only. The
     base table is granted to no reader (and revoked from them): policies attached to the table itself
     would be dropped by the next publish's `CREATE OR REPLACE … CLONE`, whereas the view outlives every
     publish. The view is re-created first, then masked, then granted, so a run never exposes an
     unmasked view to a reader.
   - `USAGE` on the database and on the port's schema `<domain>`; **nothing on `<domain>_internal`**.
4. **Denials**: `REVOKE` on the port (and its view) from each denied role, and of each reader role from
   each denied role (deny must win over a role inherited through the hierarchy).
5. **Domain roles** (`domain_roles`): the role each domain's transformations run as, owning its schemas
   and granted SELECT on exactly the ports its products declare as inputs.

Retired ports get nothing. Run it after the ports exist (after `mesh run`): a view or grant on a table
that was never published fails. Consumer *products* read through their domain's role, which holds SELECT
on the ports they declare (PII ports too: the platform's read masks them, as on DuckDB).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from mesh_assets.govern import domain_roles
from mesh_assets.infra.warehouse.snowflake_names import DEFAULT_DATABASE, DEFAULT_ROLE_PREFIX
from mesh_assets.product import access
from mesh_assets.product.registry import Registry, effective_status
from mesh_assets.product.spec import Column, LogicalType, OutputPort, PiiHandling, Status
from mesh_assets.product.sql_text import qualified, quote_identifier, quote_literal

ROLE_PREFIX = DEFAULT_ROLE_PREFIX
"""Prefix of every role the mesh creates (roles live at account level, shared with other systems)."""
GOVERNANCE_SCHEMA = "governance"
"""Schema holding the masking policies (also the governance location's tables)."""
PROTECTED_SUFFIX = access.PROTECTED_SUFFIX
"""Suffix of the secure view through which readers read a port with PII columns."""

_FAMILY = {
    LogicalType.STRING: "STRING",
    LogicalType.INTEGER: "NUMBER",
    LogicalType.BIGINT: "NUMBER",
    LogicalType.DECIMAL: "NUMBER",
    LogicalType.DOUBLE: "FLOAT",
    LogicalType.BOOLEAN: "BOOLEAN",
    LogicalType.DATE: "DATE",
    LogicalType.TIMESTAMP: "TIMESTAMP_NTZ",
}
"""Logical type → the Snowflake type a masking policy's signature is declared with."""
_DONE = {PiiHandling.MASK: "masked", PiiHandling.HASH: "hashed", PiiHandling.REMOVE: "removed"}


@dataclass(frozen=True)
class Statement:
    """One SQL statement of the rendered script, with what it does (for tests and for reading)."""

    kind: str
    """`role`, `schema`, `masking_policy`, `masking_body`, `secure_view`, `set_masking_policy`,
    `grant_usage`, `grant_select`, `revoke_select`, `revoke_role`, `grant_role`, `grant_ownership`."""
    sql: str
    section: str = ""
    """What the statement belongs to, shown as a comment above its group in the script."""


def identifier(name: str) -> str:
    """A Snowflake role or database name: unquoted upper case when it is a plain identifier."""
    upper = name.upper()
    if re.fullmatch(r"[A-Z_][A-Z0-9_$]*", upper):
        return upper
    return quote_identifier(name)


def role_name(role: str, prefix: str = ROLE_PREFIX) -> str:
    """The Snowflake role of a spec role, e.g. `sales_ops` → `MESH_SALES_OPS`."""
    return identifier(prefix + re.sub(r"[^A-Za-z0-9_]", "_", role))


def pii_role(prefix: str = ROLE_PREFIX) -> str:
    """The role holding the PII privilege."""
    return role_name(access.PII_ROLE, prefix)


def policy_name(handling: PiiHandling, column: Column) -> str:
    """The masking policy protecting a column with `handling`, e.g. `mesh_pii_mask_string`."""
    return f"mesh_pii_{handling.value}_{_FAMILY[column.type].lower()}"


def _string(text: str) -> str:
    # Snowflake reads a backslash in a string literal as an escape: it is doubled to stand for itself.
    return quote_literal(text, backslash_escapes=True)


def policy_body(handling: PiiHandling, family: str, pii: str) -> str:
    """The policy's expression over `val`: clear text for a session holding the PII role."""
    if handling == PiiHandling.MASK:
        hidden = _string(access.MASK) if family == "STRING" else "NULL"
    elif handling == PiiHandling.HASH:
        hidden = {"STRING": "SHA2(val, 256)", "NUMBER": "HASH(val)", "FLOAT": "CAST(HASH(val) AS FLOAT)"}.get(
            family, "NULL"
        )
    else:
        hidden = "NULL"
    return (
        f"CASE WHEN IS_ROLE_IN_SESSION({_string(pii)}) THEN val WHEN val IS NULL THEN NULL ELSE {hidden} END"
    )


def _served_ports(registry: Registry, today: date) -> list[tuple[str, str, OutputPort]]:
    """`(domain, product key, port)` of every port that is served, in a stable order."""
    found = []
    for key in sorted(registry.products):
        spec = registry.products[key].spec
        for port in sorted(spec.output_ports, key=lambda p: -p.major):
            if effective_status(spec, port, today) != Status.RETIRED:
                found.append((spec.domain, key, port))
    return found


@dataclass
class _Script:
    """The script being written, one step (a method) at a time, each under its section."""

    registry: Registry
    db: str
    """The database, as SQL."""
    prefix: str
    pii: str
    """The PII privilege role, as SQL."""
    served: list[tuple[str, str, OutputPort]]
    out: list[Statement] = field(default_factory=list)
    section: str = ""

    def __post_init__(self) -> None:
        self.readers_of = {key: access.reader_roles(p.spec) for key, p in self.registry.products.items()}

    def add(self, kind: str, sql: str) -> None:
        """Append one statement to the current section."""
        self.out.append(Statement(kind, sql, self.section))

    def role(self, role: str) -> str:
        return role_name(role, self.prefix)

    def roles(self) -> None:
        """1. The PII privilege role, then every reader and denied role named in a spec."""
        self.section = "Roles: the PII privilege, then every reader and denied role of the specs"
        self.add(
            "role",
            f"CREATE ROLE IF NOT EXISTS {self.pii} COMMENT = "
            + _string("mesh: sees PII in clear text in the ports a reader role grants"),
        )
        named = sorted(
            {
                role
                for p in self.registry.products.values()
                for role in [*self.readers_of[p.key], *p.spec.access_policy.denied_roles]
                if role.lower() not in access.CATCH_ALL_ROLES
            },
            key=str.lower,
        )
        for role in named:
            self.add(
                "role",
                f"CREATE ROLE IF NOT EXISTS {self.role(role)} COMMENT = "
                + _string(f"mesh role '{role}' (named in the access_policy of the data product specs)"),
            )

    def masking_policies(self) -> None:
        """2. Masking policies, one per (handling, type family) in use."""
        products = self.registry.products
        used: dict[tuple[PiiHandling, str], None] = {}
        for _, key, port in self.served:
            handling = products[key].spec.access_policy.pii_handling
            for column in access.pii_columns(port):
                used[(handling, _FAMILY[column.type])] = None
        if not used:
            return
        self.section = f"Masking policies: clear text only for sessions holding {self.pii}"
        schema = f"{self.db}.{quote_identifier(GOVERNANCE_SCHEMA)}"
        self.add("schema", f"CREATE SCHEMA IF NOT EXISTS {schema}")
        for handling, family in sorted(used, key=lambda h: (h[0].value, h[1])):
            name = f"{schema}.{quote_identifier(f'mesh_pii_{handling.value}_{family.lower()}')}"
            body = policy_body(handling, family, self.pii)
            comment = _string(f"mesh: PII handling '{handling.value}' for {family} columns")
            self.add(
                "masking_policy",
                f"CREATE MASKING POLICY IF NOT EXISTS {name} AS (val {family}) RETURNS {family} -> "
                f"{body} COMMENT = {comment}",
            )
            # IF NOT EXISTS keeps an older body; SET BODY brings it to the current one. (CREATE OR REPLACE
            # is refused while the policy is attached to a column.)
            self.add("masking_body", f"ALTER MASKING POLICY {name} SET BODY -> {body}")

    def usage(self) -> None:
        """3. Usage on the database and on the port schemas (never on <domain>_internal)."""
        self.section = "Usage on the database and on the port schemas (nothing on <domain>_internal)"
        readers_of = self.readers_of
        for role in sorted({r for _, key, _ in self.served for r in readers_of[key]}, key=str.lower):
            self.add("grant_usage", f"GRANT USAGE ON DATABASE {self.db} TO ROLE {self.role(role)}")
        for domain in sorted({d for d, _, _ in self.served}):
            roles = sorted(
                {r for d, key, _ in self.served if d == domain for r in readers_of[key]}, key=str.lower
            )
            for role in roles:
                self.add(
                    "grant_usage",
                    f"GRANT USAGE ON SCHEMA {self.db}.{quote_identifier(domain)} TO ROLE {self.role(role)}",
                )

    def port(self, domain: str, key: str, port: OutputPort) -> None:
        """4. One served port: SELECT on its table, or on its masked secure view when it has PII."""
        spec = self.registry.products[key].spec
        table = f"{self.db}.{qualified(domain, f'{spec.name}_v{port.major}')}"
        readers = [self.role(r) for r in self.readers_of[key]]
        denied = [self.role(r) for r in spec.access_policy.denied_roles]
        pii_cols = access.pii_columns(port)
        self.section = f"{key} v{port.major}: " + (
            f"readers {', '.join(readers)}" if readers else "no reader role (secure by default)"
        )
        if denied:
            self.section += f"; denied {', '.join(denied)}"
        if not pii_cols:
            for r in readers:
                self.add("grant_select", f"GRANT SELECT ON TABLE {table} TO ROLE {r}")
            for r in denied:
                self.add("revoke_select", f"REVOKE SELECT ON TABLE {table} FROM ROLE {r}")
            return
        handling = spec.access_policy.pii_handling
        self.section += f"; PII {', '.join(c.name for c in pii_cols)} {_DONE[handling]} through a secure view"
        view = f"{self.db}.{qualified(domain, f'{spec.name}_v{port.major}{PROTECTED_SUFFIX}')}"
        columns = ", ".join(quote_identifier(c.name) for c in port.columns)
        comment = _string(
            f"mesh: {key} v{port.major} for readers; PII columns "
            f"({', '.join(c.name for c in pii_cols)}) {handling.value} without {self.pii}"
        )
        # Re-created (no grants), then masked, then granted: a run never exposes an unmasked view.
        self.add(
            "secure_view",
            f"CREATE OR REPLACE SECURE VIEW {view} COMMENT = {comment} AS SELECT {columns} FROM {table}",
        )
        for column in pii_cols:
            policy = f"{self.db}.{qualified(GOVERNANCE_SCHEMA, policy_name(handling, column))}"
            self.add(
                "set_masking_policy",
                f"ALTER VIEW {view} MODIFY COLUMN {quote_identifier(column.name)} "
                f"SET MASKING POLICY {policy} FORCE",
            )
        for r in readers:
            self.add("grant_select", f"GRANT SELECT ON VIEW {view} TO ROLE {r}")
        # Readers go through the view: a grant on the base table would bypass the masking.
        for r in readers:
            self.add("revoke_select", f"REVOKE SELECT ON TABLE {table} FROM ROLE {r}")
        for r in denied:
            self.add("revoke_select", f"REVOKE SELECT ON VIEW {view} FROM ROLE {r}")
            self.add("revoke_select", f"REVOKE SELECT ON TABLE {table} FROM ROLE {r}")

    def denials(self) -> None:
        """5. Deny wins over inheritance: a denied role must not hold a reader role of its denier."""
        self.section = "Denied roles must not inherit a reader role of the product that denies them"
        pairs = sorted(
            {
                (reader, denied)
                for key, p in self.registry.products.items()
                for denied in p.spec.access_policy.denied_roles
                for reader in self.readers_of[key]
            },
            key=lambda pair: (pair[1].lower(), pair[0].lower()),
        )
        for reader, denied in pairs:
            self.add("revoke_role", f"REVOKE ROLE {self.role(reader)} FROM ROLE {self.role(denied)}")


def statements(
    registry: Registry,
    database: str = DEFAULT_DATABASE,
    prefix: str = ROLE_PREFIX,
    today: date | None = None,
    platform_role: str = domain_roles.PLATFORM_ROLE,
    warehouse: str | None = None,
) -> list[Statement]:
    """Every statement of the script, in the order it must run (steps 1-6 of the module docstring)."""
    today = today or registry.today
    script = _Script(registry, identifier(database), prefix, pii_role(prefix), _served_ports(registry, today))
    script.roles()
    script.masking_policies()
    script.usage()
    for domain, key, port in script.served:
        script.port(domain, key, port)
    script.denials()
    # 6. The domains' own roles: what each domain's transformations run as (never the platform's role).
    script.section = (
        f"Domain roles: each domain's steps run as its own role, owning its schemas and reading only the "
        f"ports it declares (granted to {platform_role})"
    )
    domain_roles.statements(registry, script.add, script.db, prefix, platform_role, today, warehouse)
    return script.out


def unreadable_ports(registry: Registry, today: date | None = None) -> list[str]:
    """Served ports no role may read (no allowed role that is not denied): `<key> v<major>`."""
    today = today or registry.today
    return [
        f"{key} v{port.major}"
        for _, key, port in _served_ports(registry, today)
        if not access.reader_roles(registry.products[key].spec)
    ]


def render(
    registry: Registry,
    database: str = DEFAULT_DATABASE,
    prefix: str = ROLE_PREFIX,
    today: date | None = None,
    platform_role: str = domain_roles.PLATFORM_ROLE,
    warehouse: str | None = None,
) -> str:
    """The whole script: a header, then each group of statements under a comment, each ending with `;`."""
    listed = statements(registry, database, prefix, today, platform_role, warehouse)
    ports = sum(len(p.spec.output_ports) for p in registry.products.values())
    domains = len({p.spec.domain for p in registry.products.values()})
    lines = [
        "-- mesh access policy for Snowflake, rendered by `mesh grants --target snowflake` from the specs.",
        f"-- {len(registry.products)} products, {ports} output ports in {domains} domains; database "
        f"{identifier(database)}; role prefix {prefix}.",
        "-- Idempotent: the same specs render the same script, and running it again changes nothing.",
        "-- Run it after the ports are published, as a role that may create roles and owns the port",
        "-- schemas. Nothing is granted on <domain>_internal: readers see output ports only.",
    ]
    if not warehouse:
        lines.append(
            "-- No warehouse named (SNOWFLAKE_WAREHOUSE or --warehouse): grant USAGE on the domains' "
            "warehouse to each MESH_DOMAIN_* role yourself."
        )
    nobody = unreadable_ports(registry, today)
    if nobody:
        lines.append(f"-- Readable by no role (no allowed_roles yet): {', '.join(nobody)}.")
    section = None
    for statement in listed:
        if statement.section != section:
            section = statement.section
            lines += ["", f"-- {section}"]
        lines.append(statement.sql + ";")
    return "\n".join(lines) + "\n"
