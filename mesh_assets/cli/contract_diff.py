"""`mesh contract diff`: the working tree's contract changes against a git ref; exit 1 when one breaks.

Exit codes: 0 no breaking change without a new major (warnings may remain), 1 at least one, 2 the diff
could not run (no git, not a repository, unknown ref).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from mesh_assets.cli.commands import group

if TYPE_CHECKING:
    from rich.console import Console

    from mesh_assets.contracts.diff_report import DiffReport
    from mesh_assets.contracts.diff_rules import Change


def _style(change: Change) -> str:
    return (
        "red"
        if change.blocking
        else "magenta"
        if change.breaking
        else "yellow"
        if change.warning
        else "green"
    )


def _console() -> Console:
    from rich.console import Console

    # Not a terminal (CI logs, pipes): wide enough that the table is never truncated.
    return Console(width=None if sys.stdout.isatty() else 160)


def consumers_text(change: Change) -> str:
    """The affected consumers with their owners, or `-`."""
    return "; ".join(c.label() for c in change.consumers) or "-"


def render_changes(console: Console, changes: list[Change], title: str) -> None:
    """A table of changes: verdict, where, rule, reason and the consumers it affects."""
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for column in ["verdict", "product", "port", "column", "rule", "reason", "consumers (owner)"]:
        table.add_column(column, overflow="fold")
    for change in changes:
        style = _style(change)
        table.add_row(
            f"[{style}]{change.verdict}[/{style}]",
            change.product,
            change.port or "all ports",
            change.column or "-",
            str(change.rule),
            change.reason,
            consumers_text(change),
        )
    console.print(table)


def render_blocking(console: Console, report: DiffReport) -> None:
    """One line per blocking change, naming product, port, column, rule, fix and consumers."""
    for change in report.blocking:
        # A product-wide change names a spec field (e.g. slos.freshness) where a port change names a column.
        field = f"{'column' if change.port else 'field'} {change.column}" if change.column else ""
        where = " ".join(part for part in (change.product, change.port, field) if part)
        line = f"[red]✗ {where}[/red]: {change.rule}: {change.reason}"
        if change.fix:
            line += f". Fix: {change.fix}"
        if change.consumers:
            line += f". Affects {consumers_text(change)}"
        console.print(line, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add `mesh contract diff`."""
    contract = group(app, "contract", "Data contracts: diff, export, import.")

    @contract.command("diff")
    def diff(
        base: Annotated[
            str, typer.Option("--base", help="Git ref to compare with, e.g. HEAD~1 or origin/main.")
        ] = "HEAD",
        as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    ) -> None:
        """Compare every product's contract with the same at a git ref; exit 1 on breaking ones."""
        import json

        from mesh_assets.contracts.contract_diff import diff_working_tree
        from mesh_assets.contracts.diff_git import ContractDiffError
        from mesh_assets.infra import environment

        console = _console()
        try:
            report = diff_working_tree(environment.find_root(), base)
        except ContractDiffError as exc:
            if as_json:
                print(json.dumps({"ok": False, "base": base, "error": str(exc)}, indent=2))
            else:
                console.print(
                    f"[red]cannot diff against {base}[/red]: {exc}", highlight=False, soft_wrap=True
                )
            raise typer.Exit(2) from exc
        if as_json:
            print(report.to_json())
        else:
            if report.changes:
                render_changes(console, report.sorted(), f"contract changes against {base}")
            render_blocking(console, report)
            style = "red" if report.blocking else "green"
            console.print(f"[{style}]{report.summary()}[/{style}]", highlight=False, soft_wrap=True)
        raise typer.Exit(0 if report.ok else 1)
