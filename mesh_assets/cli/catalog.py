"""`mesh catalog build`: the static, searchable data product catalog (open its index.html in a browser)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mesh_assets.cli.commands import group


def register(app: typer.Typer) -> None:
    """Add `catalog build` to the `mesh` command."""
    catalog = group(app, "catalog", "The data product catalog: a static site of every product.")

    @catalog.command("build")
    def build(
        out: Annotated[
            Path | None,
            typer.Option(
                help="Output folder (default: $MESH_CATALOG_DIR, else data/catalog in the repository)."
            ),
        ] = None,
    ) -> None:
        """Build the catalog: search, a page per product, contracts, and what Dagster knows of each port."""
        from mesh_assets.catalog import catalog_dir
        from mesh_assets.catalog.runtime import open_instance, read_runtime
        from mesh_assets.catalog.site import CatalogError, build_site
        from mesh_assets.contracts.odcs import Deployment
        from mesh_assets.infra import environment
        from mesh_assets.product.registry import load_registry

        env = environment.resolve()
        registry = load_registry(env.root)
        if registry.errors:
            typer.secho(
                f"{len(registry.errors)} spec error(s): products whose spec does not parse are left out; "
                "run `mesh validate`",
                fg="yellow",
                err=True,
            )
        target = out or catalog_dir(env)
        with open_instance(env.root) as instance:
            if instance is None:
                typer.echo("no Dagster instance (DAGSTER_HOME unset): every port shows as not yet published")
            runtime = read_runtime(instance, registry)
        try:
            report = build_site(
                registry, target, runtime=runtime, deployment=Deployment.from_environment(env)
            )
        except CatalogError as exc:
            typer.secho(str(exc), fg="red", err=True)
            raise typer.Exit(1) from exc
        typer.echo(
            f"built {report.pages} pages for {report.products} products "
            f"({report.published_ports} of {report.ports} ports published): {report.index}"
        )
