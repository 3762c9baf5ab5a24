"""`mesh fitness [--json]`: every product against the six characteristics; exit 1 on a mandatory failure."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add `fitness` to the `mesh` command."""

    @app.command()
    def fitness(
        as_json: Annotated[
            bool, typer.Option("--json", help="Print the scorecard as JSON (for CI).")
        ] = False,
        specs_only: Annotated[
            bool,
            typer.Option(
                "--specs-only",
                help="Judge the specs alone: ignore the built catalog and the instance's SLO records.",
            ),
        ] = False,
        html: Annotated[
            Path | None, typer.Option(help="Also write the shareable HTML scorecard to this file.")
        ] = None,
    ) -> None:
        """Score every product: self-describing, addressable, discoverable, secure, trustworthy,
        interoperable. Exit 1 when a product fails a characteristic the platform marks mandatory (*)."""
        from rich.console import Console
        from rich.table import Table

        from mesh_assets.govern import fitness as fitness_module
        from mesh_assets.govern.scorecard import write_page
        from mesh_assets.infra import environment
        from mesh_assets.product.registry import load_registry

        env = environment.resolve()
        registry = load_registry(env.root)
        facts = fitness_module.NO_FACTS
        if not specs_only:
            from mesh_assets.catalog.runtime import open_instance, read_runtime

            with open_instance(env.root) as instance:
                runtime = read_runtime(instance, registry) if instance is not None else None
            facts = fitness_module.Facts(
                catalog=fitness_module.CatalogFacts.read(env.catalog_dir), runtime=runtime
            )
        card = fitness_module.evaluate(registry, facts)
        if html is not None:
            write_page(card.html(), html)
        if as_json:
            typer.echo(card.to_json())
            raise typer.Exit(0 if card.passed else 1)

        console = Console(width=None if sys.stdout.isatty() else 160)
        for domain, products in card.domains():
            table = Table(title=f"{domain}", title_justify="left")
            table.add_column("product")
            table.add_column("status")
            for characteristic in fitness_module.CHARACTERISTICS:
                mark = "*" if characteristic in card.mandatory else ""
                table.add_column(characteristic.label + mark, justify="center")
            for product in products:
                cells = [
                    "[green]pass[/green]"
                    if r.passed
                    else ("[bold red]FAIL[/bold red]" if r.mandatory else "[red]fail[/red]")
                    for r in product.results
                ]
                table.add_row(product.name, product.status, *cells)
            console.print(table)
        for product in card.products:
            for result in product.failures:
                label = "[bold red]mandatory[/bold red]" if result.mandatory else "[red]red[/red]"
                console.print(
                    f"{label} {product.key} {result.characteristic.label}: {result.reason}",
                    highlight=False,
                    soft_wrap=True,
                )
        for key in card.unreadable:
            console.print(f"[bold red]invalid[/bold red] {key}: its spec does not parse; run `mesh validate`")
        observed = "; ".join(f"{k}: {v}" for k, v in card.facts.items())
        console.print(f"* mandatory. Observed beyond the specs: {observed}.", highlight=False)
        if html is not None:
            console.print(f"wrote {html}", highlight=False)
        verdict = "[green]fit[/green]" if card.passed else "[red]unfit[/red]"
        console.print(f"{verdict}: {card.summary()}", highlight=False)
        raise typer.Exit(0 if card.passed else 1)
