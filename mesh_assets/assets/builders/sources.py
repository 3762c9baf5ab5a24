"""Source input ports: land an operational system's extract in the domain's private schema.

Extracts land as text, untyped and uncleaned, so a dirty value never fails ingestion; typing and
cleaning are the product's own transformation, where the contract checks can see them.
"""

import dagster as dg

from mesh_assets.assets.ports import owners, product_tags, refresh_cron
from mesh_assets.assets.publish import WAREHOUSE_POOL
from mesh_assets.infra.environment import Environment
from mesh_assets.infra.warehouse.base import Warehouse
from mesh_assets.product import addressing
from mesh_assets.product.registry import Product
from mesh_assets.product.spec import SourceInput


def source_asset(product: Product, source: SourceInput, env: Environment) -> dg.AssetsDefinition:
    """The asset that lands one source extract for a product."""
    spec = product.spec
    key = addressing.source_key(spec.domain, spec.name, source.source)
    relation = addressing.source_relation(spec.domain, source.source)
    path = env.sources_dir / source.system / f"{source.extract}.{source.format}"

    @dg.asset(
        key=key,
        group_name=spec.name,
        owners=owners(spec),
        tags={**product_tags(spec, "internal"), "mesh/input_port": source.source},
        kinds={env.target, source.format},
        description=f"Lands the `{source.source}` extract ({path.name}) as text in {relation.dotted}. "
        + source.description,
        metadata={
            "dagster/table_name": relation.dotted,
            "mesh/source_file": str(path),
        },
        automation_condition=dg.AutomationCondition.on_cron(
            refresh_cron(spec.slos.freshness), cron_timezone=spec.slos.freshness.cron_timezone
        ),
        pool=WAREHOUSE_POOL,
    )
    def _land(
        context: dg.AssetExecutionContext, warehouse: dg.ResourceParam[Warehouse]
    ) -> dg.MaterializeResult:
        if not path.exists():
            raise dg.Failure(
                description=f"no extract for source {source.source} at {path}. Generate the example "
                "extracts with `mesh generate`, or point MESH_SOURCES_DIR at the system's export folder.",
                allow_retries=False,
            )
        with warehouse.session() as session:
            session.load_extract(relation, path, source.format)
            rows = session.row_count(relation)
        context.log.info(f"landed {rows:,} rows of {source.source} into {relation.dotted}")
        return dg.MaterializeResult(
            metadata={"dagster/row_count": rows, "mesh/source_bytes": path.stat().st_size}
        )

    return _land
