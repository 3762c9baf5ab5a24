"""`mesh slo`: every port's SLOs: status, SLI over the window, error budget left, last breach."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated

import typer


def slo(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    domain: Annotated[
        list[str] | None, typer.Option(help="Only ports of these domains (repeatable).")
    ] = None,
    strict: Annotated[
        bool, typer.Option(help="Exit 1 when any SLO is breached now or has exhausted its error budget.")
    ] = False,
) -> None:
    """Print each port's SLOs, measured from the Dagster instance's event log over the SLO window.

    Statuses: `ok`; `at risk` (the error budget is burning fast, or under 25% of it is left);
    `breached` (failing right now: stale, last publish failed, ...); `exhausted` (the window's error
    budget is spent); `no data`.
    """
    from rich.console import Console
    from rich.table import Table

    from mesh_assets.infra import environment
    from mesh_assets.observe.report import ago, report
    from mesh_assets.observe.sli import SLOS, port_slos
    from mesh_assets.product.registry import load_registry
    from mesh_assets.run.runner import ensure_instance

    env = environment.resolve()
    ports = port_slos(load_registry(env.root))
    if domain:
        ports = {name: p for name, p in ports.items() if p.product.split(".")[0] in domain}
    now = time.time()
    instance = ensure_instance(env)
    reports = report(instance, ports, now)
    failing = [
        (r.slo.name, name)
        for r in reports
        for name in SLOS
        if r.evaluation.judgements[name].status in {"breached", "exhausted"}
    ]
    if as_json:
        print(json.dumps({"ports": [r.to_json() for r in reports]}, indent=2))
    else:
        console = Console(width=None if sys.stdout.isatty() else 200)
        table = Table(title=f"SLOs of {len(reports)} port(s)")
        for column in ["port", "SLO", "status", "SLI", "target", "budget left", "last breach", "now"]:
            table.add_column(
                column, justify="right" if column in {"SLI", "target", "budget left"} else "left"
            )
        style = {"ok": "green", "at risk": "yellow", "breached": "red", "exhausted": "red", "no data": "dim"}
        for r in reports:
            for index, name in enumerate(SLOS):
                judgement = r.evaluation.judgements[name]
                status = judgement.status
                table.add_row(
                    r.slo.name if index == 0 else "",
                    name,
                    f"[{style[status]}]{status}[/{style[status]}]",
                    _share(judgement.sli),
                    f"{judgement.target:.2%}".replace(".00%", "%"),
                    _share(judgement.budget_left),
                    ago(r.state.last_breach.get(name), now),
                    r.evaluation.observed[name],
                    end_section=index == len(SLOS) - 1,
                )
        console.print(table)
        console.print(
            f"window per port: its spec's `slos.window`; {len(failing)} SLO(s) breached or exhausted",
            highlight=False,
        )
    raise typer.Exit(1 if strict and failing else 0)


def _share(value: float | None) -> str:
    from mesh_assets.observe.budget import format_share

    return format_share(value)


def register(app: typer.Typer) -> None:
    """Add `mesh slo` to the command line."""
    app.command("slo")(slo)
