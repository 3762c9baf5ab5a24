"""`mesh impact <domain>.<product>[@version]`: who consumes which port, and what the working tree breaks.

Informational: exits 0 whatever the diff finds (`mesh contract diff` is the gate), 2 for an unknown
product or version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from mesh_assets.contracts.impact import ImpactReport

_STANDING = {
    "ok": "[green]ok[/green]",
    "warning": "[yellow]warning[/yellow]",
    "overdue": "[bold red]overdue[/bold red]",
    "refused": "[red]refused[/red]",
}


def render(console: Console, report: ImpactReport) -> None:
    """The consumers of each port, then what the diff breaks for each consumer."""
    from rich.table import Table

    owner = f"{report.team}, {report.steward}" if report.team else "not in the working tree"
    console.print(f"[bold]{report.product}[/bold] (owner {owner})", highlight=False)
    groups = [
        (
            ("[bold red]" if p.overdue else "") + f"{p.label}: {len(p.consumers)} consumer(s)",
            list(p.consumers),
        )
        for p in report.ports
    ]
    if report.unresolved:
        groups.append(("no port satisfies their range", report.unresolved))
    for title, uses in groups:
        table = Table(title=title, title_justify="left")
        for column in ["consumer", "owner team", "steward", "purpose", "range", "standing"]:
            # Names and addresses stay whole so they can be searched for and copied.
            table.add_column(column, overflow="fold", no_wrap=column in {"consumer", "steward", "range"})
        for use in uses:
            c = use.consumer
            standing = _STANDING[use.standing] + "".join(f"\n{n}" for n in use.notes)
            table.add_row(c.product, c.team, c.steward, c.purpose or "-", c.version_range, standing)
        if not uses:
            table.add_row("-", "-", "-", "no consumer in the mesh", "-", "-")
        console.print(table)

    render_columns(console, report)
    if report.diff_error:
        console.print(f"[yellow]no diff against {report.base}[/yellow]: {report.diff_error}", soft_wrap=True)
        return
    console.print(f"\nWhat the working tree's changes against {report.base} would break:", highlight=False)
    said = False
    for use in report.uses:
        c = use.consumer
        for change in report.breaks(c.product):
            where = " ".join(p for p in (change.port or "all ports", change.column or "") if p)
            verdict = "[red]breaks[/red]" if change.blocking else f"[magenta]{change.verdict}[/magenta]"
            reading = use.port or "-"
            console.print(
                f"  {verdict} {c.label()} reading {reading}: {change.rule} ({where}): {change.reason}",
                highlight=False,
                soft_wrap=True,
            )
            said = True
        for change in report.notices(c.product):
            console.print(
                f"  [yellow]notice[/yellow] {c.label()}: {change.rule}: {change.reason}",
                highlight=False,
                soft_wrap=True,
            )
            said = True
    for change in report.unclaimed:
        where = " ".join(p for p in (change.port or "all ports", change.column or "") if p)
        console.print(
            f"  [red]{change.verdict}[/red] no consumer in the mesh: {change.rule} ({where}): "
            f"{change.reason}",
            highlight=False,
            soft_wrap=True,
        )
        said = True
    if not said:
        console.print(f"  nothing: no breaking change to {report.product} against {report.base}")


def render_columns(console: Console, report: ImpactReport) -> None:
    """Per port and column, the consumer ports and columns that read it (column lineage)."""
    from rich.table import Table

    for port, columns in report.columns.items():
        table = Table(title=f"{port} by column: who reads it (column lineage)", title_justify="left")
        table.add_column("column", no_wrap=True)
        table.add_column("read by (column path)", overflow="fold")
        table.add_column("owner", overflow="fold")
        for column, readers in columns.items():
            if not readers:
                table.add_row(column, "no consumer product reads it", "-")
            for index, reader in enumerate(readers):
                owner = f"{reader.team}, {reader.steward}"
                table.add_row(column if index == 0 else "", reader.route, owner)
        console.print(table)


def register(app: typer.Typer) -> None:
    """Add `mesh impact`."""

    @app.command("impact")
    def impact(
        target: Annotated[
            str,
            typer.Argument(
                help="<domain>.<product>, optionally @<version>: a major (2, v2), a version (2.0.0) or a "
                "range."
            ),
        ],
        base: Annotated[
            str, typer.Option("--base", help="Git ref the working tree's changes are measured against.")
        ] = "HEAD",
        as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
        column: Annotated[
            str | None, typer.Option("--column", help="Only this column: who reads it, by column lineage.")
        ] = None,
    ) -> None:
        """List who consumes which version of a product and what the working tree's changes break."""
        import sys

        from rich.console import Console

        from mesh_assets.contracts.impact import ImpactError, analyse
        from mesh_assets.infra import environment

        console = Console(width=None if sys.stdout.isatty() else 160)
        try:
            report = analyse(environment.find_root(), target, base, column=column)
        except ImpactError as exc:
            # Exit 2 like a usage error, but print the whole message: it holds the did-you-mean.
            console.print(f"[red]error[/red]: {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from exc
        if as_json:
            print(report.to_json())
            return
        render(console, report)
