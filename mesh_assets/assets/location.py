"""A domain's code location: every product of the domain, built from its specs.

A domain's `definitions.py` is one call to `build_domain`. The platform's policy is applied here, once,
for every domain: warehouse resource, pools, automation (source-aligned products ingest on the cadence
their freshness SLO needs; everything downstream refreshes once its inputs have settled, see
`automation`) and the automation sensor that runs by default, so nothing needs a click.
"""

from __future__ import annotations

import dagster as dg

from mesh_assets.assets import lineage_cache
from mesh_assets.assets.automation import after_upstream_settles
from mesh_assets.assets.builders import BUILDERS, KindBuilder
from mesh_assets.assets.builders.sources import source_asset
from mesh_assets.assets.dbt_contracts import candidate_reads
from mesh_assets.assets.ports import PortContext
from mesh_assets.assets.publish import port_asset
from mesh_assets.infra import environment
from mesh_assets.product import addressing, kinds
from mesh_assets.product.registry import Product, Registry, load_registry
from mesh_assets.product.spec import OutputPort, ReferencesRule


def build_domain(domain: str) -> dg.Definitions:
    """The Dagster definitions of one domain's code location."""
    env = environment.resolve()
    registry = load_registry(env.root)
    registry.raise_for_errors(domain)
    products = registry.domain_products(domain)
    if not products:
        # A new domain (`mesh new domain`) has no products yet: load empty rather than break the workspace.
        dg.get_dagster_logger().warning(
            f"domain '{domain}' has no data products yet: add one with `mesh new product {domain} <name>`"
        )
        return dg.Definitions()
    # Column lineage of the domain's products (cached: a warm load imports no sqlglot; `column_lineage`).
    lineage = lineage_cache.mesh_lineage(registry, products)
    where = PortContext(target=env.target, database=env.database, lineage=lineage)
    # Refresh once per cascade, after every input of it (see `automation`).
    eager = after_upstream_settles()
    assets: list[dg.AssetsDefinition] = []
    shared: dict[str, KindBuilder] = {}  # shared projects (dbt) → their kind's builder, in first-seen order
    for product in products:
        spec = product.spec
        assets += [source_asset(product, source, env) for source in spec.source_inputs]
        kind = kinds.kind_of(spec)
        builder = BUILDERS[kind.name]
        assets += builder.internal_assets(product, registry, env, eager, lineage[product.key])
        project = kind.project(spec)
        if project is not None:
            shared.setdefault(project, builder)
        # Built in one dbt run from a producer's candidate: its ports publish only after the producer's.
        candidates = {
            read.key: addressing.internal_key(
                read.producer.spec.domain, read.producer.spec.name, read.producer.spec.port_model(read.port)
            )
            for read in candidate_reads(registry, product)
        }
        for port in spec.output_ports:
            build, deps = builder.port_builder(product, registry, port, env)
            references = referenced_ports(product, port, registry)
            deps = [*deps, *(key for key in candidates if key not in deps)]
            deps = [*deps, *(key for _, key in references.values() if key not in deps)]
            relations = {name: relation for name, (relation, _) in references.items()}
            assets.append(
                port_asset(product, port, where, deps, kind.name, build, eager, relations, candidates)
            )
    for project, builder in shared.items():
        assert builder.project_assets is not None, f"a kind with shared projects builds them ({project})"
        automation = {p.key: eager for p in products}
        assets.append(builder.project_assets(registry, domain, project, env, automation))
    return dg.Definitions(
        assets=assets,
        sensors=[automation_sensor(domain)],
        resources={"warehouse": env.warehouse(domain)},
    )


def referenced_ports(
    product: Product, port: OutputPort, registry: Registry
) -> dict[str, tuple[addressing.Relation, dg.AssetKey]]:
    """Ports that the port's referential-integrity rules read: published relation and asset key."""
    found = {}
    for rule in port.quality.rules:
        if isinstance(rule, ReferencesRule):
            declared = next((i for i in product.spec.product_inputs if i.product == rule.port), None)
            resolved = registry.resolve(product, declared) if declared else None
            if resolved is not None:  # unresolvable references are registry errors, raised earlier
                found[rule.port] = (
                    resolved.relation,
                    resolved.key,
                )
    return found


def automation_sensor(location: str) -> dg.AutomationConditionSensorDefinition:
    """The declarative-automation sensor of a location, running by default."""
    return dg.AutomationConditionSensorDefinition(
        f"{location}_automation",
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Materializes {location}'s assets when their automation conditions are met.",
    )
