"""`mesh monitor`: every port's learned monitors: status (`ok` | `anomaly` | `learning`), value, bounds."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated

import typer


def monitor(
    as_json: Annotated[bool, typer.Option("--json", help="Print the monitors as JSON.")] = False,
    domain: Annotated[
        list[str] | None, typer.Option(help="Only ports of these domains (repeatable).")
    ] = None,
    anomalies_only: Annotated[
        bool, typer.Option("--anomalies", help="Only monitors whose latest result is an anomaly.")
    ] = False,
    strict: Annotated[
        bool, typer.Option(help="Exit 1 when any monitor's latest result is an anomaly.")
    ] = False,
) -> None:
    """Print the latest result of each port's learned monitors, read from the Dagster instance.

    Statuses: `ok` (within learned bounds); `anomaly` (outside them: the reason says which way and what
    was learned); `learning` (too little history yet, e.g. `learning, 5 of 14`); `error` (the monitor
    could not run); `not yet run`. Tune monitors under `monitors:` of a port in its dataproduct.yaml
    (see docs/monitors.md).
    """
    from rich.console import Console
    from rich.table import Table

    from mesh_assets.infra import environment
    from mesh_assets.observe.anomalies import latest_monitors
    from mesh_assets.observe.report import ago
    from mesh_assets.product.registry import load_registry
    from mesh_assets.run.runner import ensure_instance

    env = environment.resolve()
    instance = ensure_instance(env)
    states = latest_monitors(instance, load_registry(env.root), domain)
    anomalous = [s for s in states if s.status == "anomaly"]
    shown = anomalous if anomalies_only else states
    if as_json:
        print(json.dumps({"monitors": [s.to_json() for s in shown]}, indent=2))
    else:
        now = time.time()
        console = Console(width=None if sys.stdout.isatty() else 220)
        table = Table(title=f"Monitors of {len({s.port for s in states})} port(s)")
        for column in ["port", "monitor", "status", "value", "bounds", "day", "when", "reason"]:
            table.add_column(column, justify="right" if column in {"value"} else "left")
        style = {"ok": "green", "anomaly": "red", "learning": "yellow", "error": "red"}
        previous = None
        for s in shown:
            colour = style.get(s.status, "dim")
            bounds = "" if s.lower is None and s.upper is None else f"[{_num(s.lower)}, {_num(s.upper)}]"
            table.add_row(
                s.port if s.port != previous else "",
                s.monitor.removeprefix("monitor_"),
                f"[{colour}]{s.status}[/{colour}]",
                _num(s.value),
                bounds,
                s.bucket or "",
                ago(s.at, now) if s.at else "",
                s.reason,
            )
            previous = s.port
        console.print(table)
        console.print(f"{len(anomalous)} anomaly(ies) in {len(states)} monitor(s)", highlight=False)
    raise typer.Exit(1 if strict and anomalous else 0)


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:,.4g}"


def register(app: typer.Typer) -> None:
    """Add `mesh monitor` to the command line."""
    app.command("monitor")(monitor)
