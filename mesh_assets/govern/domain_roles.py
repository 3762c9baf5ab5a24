"""Each domain's own Snowflake role: what its transformations run as, and the grants that role holds.

On Snowflake a domain's steps (landing its extracts, its SQL, Python and dbt models, audits and
publishes) run as `MESH_DOMAIN_<DOMAIN>` (`mesh_assets.infra.warehouse.snowflake.domain_role`), with
secondary roles off — never as the platform's admin role. So the warehouse itself refuses what a
product did not declare, as DuckDB's isolated session does locally: the role owns its domain's two
schemas (`<domain>`: ports; `<domain>_internal`: sources, internals, candidates, staging) and may read
only the ports its products declare as inputs (which `mesh validate` holds to the producers' access
policies and agreements) — a port with PII only through its masked secure view, unless the producer's
policy lets a product of the domain read it in clear. Nothing else of another domain is granted to it.

The statements are part of `mesh grants` (section "Domain roles"), idempotent like the rest: `CREATE … IF
NOT EXISTS`, `GRANT` (a repeated grant is a no-op) and `GRANT OWNERSHIP … COPY CURRENT GRANTS` (keeps the
readers' grants on the schema when ownership moves from the role that created it). Each domain role is
granted to the platform role (default `SYSADMIN`, Snowflake's recommended top of custom roles), so the
service user that holds it may `USE ROLE` any domain role, and the governance location (which reads every
port) keeps running as the platform role.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from mesh_assets.infra.warehouse.snowflake import domain_role
from mesh_assets.product import access, addressing
from mesh_assets.product.registry import GOVERNANCE_DOMAIN, Registry, effective_status
from mesh_assets.product.spec import Status
from mesh_assets.product.sql_text import qualified, quote_identifier, quote_literal

PLATFORM_ROLE = "SYSADMIN"
"""The role the domain roles are granted to: the platform's service user holds it."""


def statements(
    registry: Registry,
    add: Callable[[str, str], None],
    db: str,
    prefix: str,
    platform_role: str = PLATFORM_ROLE,
    today: date | None = None,
    warehouse: str | None = None,
) -> None:
    """Add (`add(kind, sql)`) every domain role's statements, domain by domain in name order.

    `warehouse` is the virtual warehouse the domains compute on (`SNOWFLAKE_WAREHOUSE`); without it the
    script leaves that one grant to the admin (the header says so)."""
    today = today or registry.today
    domains = sorted({p.spec.domain for p in registry.products.values()} - {GOVERNANCE_DOMAIN})
    for domain in domains:
        role = domain_role(domain, prefix)
        said = f"mesh: the {domain} domain's transformations run as this role"
        comment = quote_literal(said, backslash_escapes=True)
        add("role", f"CREATE ROLE IF NOT EXISTS {role} COMMENT = {comment}")
        add("grant_role", f"GRANT ROLE {role} TO ROLE {platform_role}")
        add("grant_usage", f"GRANT USAGE ON DATABASE {db} TO ROLE {role}")
        if warehouse:
            add("grant_usage", f"GRANT USAGE ON WAREHOUSE {warehouse} TO ROLE {role}")
        for schema in (domain, domain + addressing.INTERNAL_SCHEMA_SUFFIX):
            name = f"{db}.{quote_identifier(schema)}"
            add("schema", f"CREATE SCHEMA IF NOT EXISTS {name}")
            owned = f"TO ROLE {role} COPY CURRENT GRANTS"
            add("grant_ownership", f"GRANT OWNERSHIP ON SCHEMA {name} {owned}")
            # Tables created before the role existed (by the platform role) must be replaceable by it.
            add(
                "grant_ownership",
                f"GRANT OWNERSHIP ON ALL TABLES IN SCHEMA {name} {owned}",
            )
        reads = _reads(registry, domain, today)
        for schema in sorted({schema for schema, _, _ in reads}):
            add("grant_usage", f"GRANT USAGE ON SCHEMA {db}.{quote_identifier(schema)} TO ROLE {role}")
        for schema, name, kind in reads:
            add("grant_select", f"GRANT SELECT ON {kind} {db}.{qualified(schema, name)} TO ROLE {role}")


def _reads(registry: Registry, domain: str, today: date) -> list[tuple[str, str, str]]:
    """`(schema, name, TABLE|VIEW)` of every other domain's port the domain's products declare as inputs.

    A port with PII is read through its masked secure view (`<port>__protected`, which `mesh grants`
    makes) unless a product of the domain may read its PII in clear (the producer's policy): then the
    table, as the platform's read of it for that product does.
    """
    clear: set[tuple[str, str]] = set()
    protected: set[tuple[str, str]] = set()
    for product in registry.domain_products(domain):
        for declared in product.spec.product_inputs:
            resolved = registry.resolve(product, declared)
            if resolved is None:
                continue
            producer = resolved.producer.spec
            if producer.domain == domain:
                continue  # its own ports: the role owns the schema
            if effective_status(producer, resolved.port, today) == Status.RETIRED:
                continue
            relation = resolved.relation
            if access.protection(producer, resolved.port, product.spec):
                protected.add((relation.schema, relation.name))
            else:
                clear.add((relation.schema, relation.name))
    views = {(schema, name + access.PROTECTED_SUFFIX, "VIEW") for schema, name in protected - clear}
    return sorted({(schema, name, "TABLE") for schema, name in clear} | views)
