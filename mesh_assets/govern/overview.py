"""The mesh overview: every product and output port with owner, status, version, consumers and size.

Computed from the specs and the warehouse, refreshed whenever any port is published.
"""

import dagster as dg

from mesh_assets.assets.automation import after_upstream_settles
from mesh_assets.contracts.markdown import markdown_cell
from mesh_assets.infra.environment import Environment
from mesh_assets.infra.warehouse.base import Warehouse
from mesh_assets.product import addressing
from mesh_assets.product.registry import GOVERNANCE_DOMAIN, Registry, load_registry

# Not the `mesh` schema: in DuckDB the database file `mesh.duckdb` is itself the catalog `mesh`.
OVERVIEW = addressing.Relation("governance", "product_overview")


def overview_rows(registry: Registry) -> list[dict[str, object]]:
    """One row per output port of every product, from the specs alone."""
    rows = []
    for product in sorted(registry.products.values(), key=lambda p: p.key):
        spec = product.spec
        consumers = registry.consumers_of(product.key)
        for port in sorted(spec.output_ports, key=lambda p: -p.major):
            rows.append(
                {
                    "domain": spec.domain,
                    "product": spec.name,
                    "port": f"v{port.major}",
                    "version": port.version,
                    "status": spec.port_status(port).value,
                    "product_type": spec.product_type.value,
                    "classification": spec.classification.value,
                    "owner_team": spec.owner.team,
                    "steward": spec.owner.steward,
                    "uri": addressing.port_uri(spec.domain, spec.name, port.major),
                    "table_name": addressing.published(spec, port).dotted,
                    "consumers": ", ".join(
                        sorted(c.consumer.key for c in consumers if c.port.major == port.major)
                    ),
                }
            )
    return rows


def markdown_table(rows: list[dict[str, object]], columns: list[str]) -> str:
    """A markdown table of `columns` of `rows`, every cell escaped (`markdown_cell`)."""
    lines = ["| " + " | ".join(markdown_cell(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(markdown_cell(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def definitions(registry: Registry, env: Environment) -> dg.Definitions:
    """The overview asset."""
    ports = addressing.all_port_keys(registry)

    @dg.asset(
        key=[GOVERNANCE_DOMAIN, "product_overview"],
        deps=ports,
        **addressing.GOVERNANCE_ASSET,
        kinds={env.target, "table"},
        description="Every data product and output port of the mesh: owner, status, version, consumers and "
        "current rows. Refreshed whenever a port is published.",
        automation_condition=after_upstream_settles(),
        pool="warehouse",
    )
    def product_overview(context: dg.AssetExecutionContext, warehouse: dg.ResourceParam[Warehouse]):
        import pandas as pd

        rows = overview_rows(load_registry(env.root))
        with warehouse.session() as session:
            for row in rows:
                domain, product, port = str(row["domain"]), str(row["product"]), str(row["port"])
                relation = addressing.port_relation(domain, product, int(port[1:]))
                row["rows"] = session.row_count(relation) if session.exists(relation) else None
            session.write_dataframe(OVERVIEW, pd.DataFrame(rows))
        unpublished = [f"{r['domain']}.{r['product']} {r['port']}" for r in rows if r["rows"] is None]
        if unpublished:
            context.log.warning(f"ports not yet published: {', '.join(unpublished)}")
        shown = ["domain", "product", "port", "version", "status", "owner_team", "rows", "consumers"]
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": len(rows),
                "dagster/table_name": OVERVIEW.dotted,
                "products": len(registry.products),
                "ports": len(rows),
                "unpublished_ports": len(unpublished),
                "overview": dg.MetadataValue.md(markdown_table(rows, shown)),
            }
        )

    return dg.Definitions(assets=[product_overview])
