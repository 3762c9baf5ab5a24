"""The mesh scorecard: a governance feature of the `mesh` location, over the fitness of every product.

`definitions(registry, env)` contributes the `mesh/scorecard` asset. Each materialization evaluates the
fitness functions (`fitness`) of every product with what the platform observed (the built catalog, and
the Dagster instance's SLO records of every port), and:
- renders the red/green table per domain as markdown in the asset's metadata (the Dagster UI shows it);
- reports one asset check per product, `fitness__<domain>__<product>`, failed (severity ERROR, red) when
  the product fails any characteristic, passed when it is fit; the check names every failing
  characteristic with its reason;
- writes a shareable, self-contained HTML page next to the catalog (`scorecard_path`).

It runs after every port publish and catalog rebuild (eager). Nothing is evaluated when the location
loads: only the check specs, one per product, are derived from the registry.
"""

# No `from __future__ import annotations`: Dagster resolves the `context` annotation at definition time.
import os
from pathlib import Path

import dagster as dg

from mesh_assets.assets.automation import after_upstream_settles
from mesh_assets.infra.environment import Environment
from mesh_assets.product import addressing
from mesh_assets.product.registry import GOVERNANCE_DOMAIN, Registry, load_registry

ASSET_KEY = dg.AssetKey([GOVERNANCE_DOMAIN, "scorecard"])
CATALOG_KEY = dg.AssetKey([GOVERNANCE_DOMAIN, "catalog"])
FILE_NAME = "scorecard.html"


def check_name(product_key: str) -> str:
    """The asset check of one product: `fitness__<domain>__<product>`."""
    return "fitness__" + product_key.replace(".", "__")


def scorecard_path(env: Environment) -> Path:
    """Where the HTML page is written: beside the catalog folder (`data/scorecard.html` by default).

    Not inside it: the catalog is rebuilt from scratch (and refuses a folder it did not build), so a page
    written into it would be deleted by the next rebuild, or would block the first one.
    """
    return env.catalog_dir.parent / FILE_NAME


def write_page(html: str, path: Path) -> Path:
    """Write the page atomically (a reader never sees half a page)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(html, encoding="utf-8")
    partial.replace(path)
    return path


def catalog_href(env: Environment) -> str:
    """The catalog folder relative to the page, for links to product pages."""
    return os.path.relpath(env.catalog_dir, scorecard_path(env).parent).replace(os.sep, "/")


def definitions(registry: Registry, env: Environment) -> dg.Definitions:
    """The `mesh/scorecard` asset and one asset check per product."""
    ports = addressing.all_port_keys(registry)
    keys = sorted(registry.products)
    check_specs = [
        dg.AssetCheckSpec(
            check_name(key),
            asset=ASSET_KEY,
            description=f"{key} passes every fitness function (self-describing, addressable, "
            "discoverable, secure, trustworthy, interoperable). Red when it fails one; the check's "
            "metadata names each failing characteristic and why.",
        )
        for key in keys
    ]

    @dg.multi_asset(
        name="mesh__scorecard",
        specs=[
            dg.AssetSpec(
                ASSET_KEY,
                deps=[*ports, CATALOG_KEY],
                **addressing.GOVERNANCE_ASSET,
                kinds={"html"},
                description="The data product fitness scorecard: every product against the six "
                "characteristics (self-describing, addressable, discoverable, secure, trustworthy, "
                "interoperable), red or green with the reason, per domain. One check per product; a "
                "shareable HTML page beside the catalog. Refreshed whenever a port or the catalog is.",
                automation_condition=after_upstream_settles(),
            )
        ],
        check_specs=check_specs,
    )
    def scorecard(context: dg.AssetExecutionContext):
        from mesh_assets.catalog.runtime import runtime_of_run
        from mesh_assets.govern import fitness

        current = load_registry(env.root)  # specs may have changed since the location loaded
        facts = fitness.Facts(
            catalog=fitness.CatalogFacts.read(env.catalog_dir),
            runtime=runtime_of_run(context.run_id, context.instance, current),
        )
        card = fitness.evaluate(current, facts)
        page = write_page(card.html(catalog_href(env)), scorecard_path(env))
        by_key = {p.key: p for p in card.products}
        blocking = [p.key for p in card.products if p.mandatory_failures]
        yield dg.MaterializeResult(
            asset_key=ASSET_KEY,
            metadata={
                "scorecard": dg.MetadataValue.md(card.markdown()),
                "path": dg.MetadataValue.path(str(page)),
                "products": len(card.products),
                "fit": sum(p.fit for p in card.products),
                "unfit": sum(not p.fit for p in card.products),
                "failing_mandatory": dg.MetadataValue.text(", ".join(blocking) or "none"),
                "mandatory": dg.MetadataValue.text(", ".join(sorted(c.label for c in card.mandatory))),
            },
        )
        for key in keys:
            product = by_key.get(key)
            if product is None:
                # Removed or renamed since the location loaded: nothing to judge until it reloads.
                yield dg.AssetCheckResult(
                    asset_key=ASSET_KEY,
                    check_name=check_name(key),
                    passed=False,
                    severity=dg.AssetCheckSeverity.WARN,
                    metadata={"reason": f"{key} is no longer in the specs; reload the code location"},
                )
                continue
            metadata: dict[str, dg.RawMetadataValue] = {
                r.characteristic.value: ("pass: " if r.passed else "FAIL: ") + r.reason
                for r in product.results
            }
            metadata["failing"] = ", ".join(r.characteristic.label for r in product.failures) or "none"
            yield dg.AssetCheckResult(
                asset_key=ASSET_KEY,
                check_name=check_name(key),
                passed=product.fit,
                severity=dg.AssetCheckSeverity.ERROR,
                description=(
                    f"{key} is fit"
                    if product.fit
                    else f"{key} fails {', '.join(r.characteristic.label for r in product.failures)}"
                ),
                metadata=metadata,
            )

    return dg.Definitions(assets=[scorecard])
