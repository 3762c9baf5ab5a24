"""Deferral: a branch environment builds only what it is asked to and reads every other port from prod.

Like dbt's `--defer`, without copying prod's data. Before a build in a deferring environment
(`Environment.defers_to_prod`), each output port of a product that is *not* built is made a view in the
environment's own warehouse storage, over prod's published table, read-only:

- DuckDB: the environment's sessions (and dbt's, through its profile) attach prod's file `READ_ONLY` as
  `mesh_prod`; the view is `CREATE VIEW "sales"."orders_v1" AS SELECT * FROM "mesh_prod"."sales"."orders_v1"`.
  Nothing of prod's is written or copied: a view is a line of SQL in the branch's file.
- Snowflake: the view names prod's table by its fully qualified name (`MESH."sales"."orders_v1"`) from the
  environment's database (`MESH_<ENV>`). A zero-copy clone holds prod's tables as they were at clone time;
  a deferred port's cloned table is replaced by the view, so consumers read prod as it is now.

Consumers (SQL, Python, dbt `source()`) keep reading `"sales"."orders_v1"` unchanged: resolution follows
the view. A port of a product that *is* built gets its view dropped first, so its publish writes a real
table. A port that prod lacks but this environment built earlier is kept and said; one that neither has is
`missing`, and a build whose products read it is refused before it starts (`refuse_missing`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mesh_assets.infra.environment import MeshEnvironmentError
from mesh_assets.product import addressing

if TYPE_CHECKING:
    from mesh_assets.infra.warehouse.base import Warehouse, WarehouseSession
    from mesh_assets.product.addressing import Relation
    from mesh_assets.product.registry import Product, Registry

_VIEW = "VIEW"


def _params(session: WarehouseSession, sql: str) -> str:
    """`sql` with `?` placeholders in the session's style (the Snowflake connector's is `%s`)."""
    return sql.replace("?", "%s") if session.dialect == "snowflake" else sql


@dataclass
class DeferralPlan:
    """What a deferring build reads from where (port labels like `sales.orders v1`)."""

    deferred: list[str] = field(default_factory=list)
    """Ports read from prod through a view."""
    local: list[str] = field(default_factory=list)
    """Ports not built now that prod lacks, read from this environment's earlier build."""
    missing: list[str] = field(default_factory=list)
    """Ports not built now that neither prod nor this environment has."""
    built: list[str] = field(default_factory=list)
    """Ports this build writes (their deferral views, if any, were dropped)."""

    def summary(self) -> str:
        """One line: how many ports come from where."""
        parts = [f"{len(self.built)} built here", f"{len(self.deferred)} read from prod"]
        if self.local:
            parts.append(
                f"{len(self.local)} kept from this environment's earlier build ({', '.join(self.local)})"
            )
        if self.missing:
            parts.append(f"{len(self.missing)} missing ({', '.join(self.missing)})")
        return ", ".join(parts)


def _label(product: Product, major: int) -> str:
    return f"{product.key} v{major}"


def _object_type(session: WarehouseSession, relation: Relation, database: str | None = None) -> str | None:
    """`BASE TABLE`, `VIEW` or None: what `relation` is in this environment's database (or `database`)."""
    if database is None:
        sql = (
            "select table_type from information_schema.tables "
            "where table_catalog = current_database() and table_schema = ? and table_name = ?"
        )
    else:
        sql = (
            f"select table_type from {database}.information_schema.tables "
            "where table_schema = ? and table_name = ?"
        )
    rows = session.query(_params(session, sql), [relation.schema, relation.name])
    return str(rows[0][0]).upper() if rows else None


def _prod_has(session: WarehouseSession, warehouse: Warehouse, relation: Relation) -> bool:
    prod_sql = warehouse.prod_sql(relation)
    if prod_sql is None:
        return False
    catalog = prod_sql.split(".", 1)[0]
    if warehouse.target == "duckdb":
        # DuckDB's information_schema spans every attached catalog; prod is there only if its file exists.
        rows = session.query(
            "select 1 from information_schema.tables "
            "where table_catalog = ? and table_schema = ? and table_name = ?",  # DuckDB: `?` as is
            [catalog.strip('"'), relation.schema, relation.name],
        )
        return bool(rows)
    return _object_type(session, relation, database=catalog) is not None


def statements(relation: Relation, prod_sql: str, existing: str | None) -> list[str]:
    """The SQL that makes `relation` a view over prod's table, given what it is now."""
    drop = {"BASE TABLE": f"DROP TABLE {relation.sql}", _VIEW: f"DROP VIEW {relation.sql}"}
    return [
        *([drop[existing]] if existing in drop else []),
        f"CREATE VIEW {relation.sql} AS SELECT * FROM {prod_sql}",
    ]


def sync(
    session: WarehouseSession, warehouse: Warehouse, registry: Registry, selected: Iterable[str]
) -> DeferralPlan:
    """Point every port of the products not in `selected` at prod; clear the views of those that are.

    `selected` holds product keys (`<domain>.<product>`). Runs in the environment's own session; the
    views it creates read prod by the names `warehouse.prod_sql` gives.
    """
    chosen = set(selected)
    plan = DeferralPlan()
    for product in sorted(registry.products.values(), key=lambda p: p.key):
        for port in product.spec.output_ports:
            relation = addressing.published(product.spec, port)
            existing = _object_type(session, relation)
            label = _label(product, port.major)
            if product.key in chosen:
                if existing == _VIEW:
                    session.execute(f"DROP VIEW {relation.sql}")
                plan.built.append(label)
                continue
            prod_sql = warehouse.prod_sql(relation)
            if prod_sql is not None and _prod_has(session, warehouse, relation):
                session.ensure_schema(relation.schema)
                for statement in statements(relation, prod_sql, existing):
                    session.execute(statement)
                plan.deferred.append(label)
            elif existing == "BASE TABLE":
                plan.local.append(label)
            else:
                if existing == _VIEW:
                    # A view over a prod table that is gone: dropped, so the read fails by name below.
                    session.execute(f"DROP VIEW {relation.sql}")
                plan.missing.append(label)
    return plan


def refuse_missing(plan: DeferralPlan, registry: Registry, selected: Iterable[str], where: str) -> None:
    """Refuse a build whose products read a port that neither prod nor this environment has."""
    missing = set(plan.missing)
    problems = []
    for key in selected:
        product = registry.products.get(key)
        if product is None:
            continue
        for declared in product.spec.product_inputs:
            resolved = registry.resolve(product, declared)
            if resolved is None:
                continue
            label = _label(resolved.producer, resolved.port.major)
            if label in missing:
                problems.append(f"{key} reads {label}")
    if problems:
        raise MeshEnvironmentError(
            f"cannot defer to prod ({where}): {'; '.join(sorted(problems))}, which prod has not published "
            "and this environment has not built. Build the producer here too (add it to the selection) "
            "or publish it to prod first (MESH_ENV=prod mesh run)."
        )
