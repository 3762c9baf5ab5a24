"""The data product catalog: a static, searchable site of every product, and the asset that refreshes it.

`build_site` (in `site`) writes the site; `definitions` contributes the `mesh/catalog` asset to the
governance location, rebuilding the site whenever a port is published so it shows the latest publish,
check results and SLO status of every port; `bindings` says how to read each binding of a port.
Templates and the stylesheet/script are package data under `templates/` and `static/`.
"""

from pathlib import Path

import dagster as dg

from mesh_assets.assets.automation import after_upstream_settles
from mesh_assets.infra.environment import Environment
from mesh_assets.product import addressing
from mesh_assets.product.registry import GOVERNANCE_DOMAIN, Registry, load_registry

DEFAULT_DIR = Path("data") / "catalog"
"""Where the catalog is written, relative to the repository root."""


def catalog_dir(env: Environment) -> Path:
    """Where the catalog is written: `$MESH_CATALOG_DIR`, else `<root>/data/catalog`."""
    return env.catalog_dir


def definitions(registry: Registry, env: Environment) -> dg.Definitions:
    """The `mesh/catalog` asset: the catalog site, rebuilt whenever any output port is published."""
    ports = addressing.all_port_keys(registry)

    @dg.asset(
        key=[GOVERNANCE_DOMAIN, "catalog"],
        deps=ports,
        **addressing.GOVERNANCE_ASSET,
        kinds={"html"},
        description="The data product catalog: a static site (open index.html from a file browser) with "
        "search, a page per product (schema, where and how to connect, last publish, check results, SLO "
        "status, lineage, owner and access) and every port's ODCS contract. Rebuilt whenever a port is "
        "published.",
        automation_condition=after_upstream_settles(),
    )
    def catalog(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        from mesh_assets.catalog.runtime import runtime_of_run
        from mesh_assets.catalog.site import build_site
        from mesh_assets.contracts.odcs import Deployment

        current = load_registry(env.root)  # specs may have changed since the location loaded
        report = build_site(
            current,
            catalog_dir(env),
            runtime=runtime_of_run(context.run_id, context.instance, current),
            deployment=Deployment.from_environment(env),
        )
        if report.published_ports < report.ports:
            context.log.info(f"{report.ports - report.published_ports} port(s) not yet published")
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(str(report.path)),
                "index": dg.MetadataValue.path(str(report.index)),
                "pages": report.pages,
                "products": report.products,
                "ports": report.ports,
                "published_ports": report.published_ports,
            }
        )

    return dg.Definitions(assets=[catalog])
