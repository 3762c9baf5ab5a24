"""The `mesh` command line: one verb per platform task. Heavy work lives in the modules it calls."""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from mesh_assets.run import events
from mesh_assets.run.results import ProductResult, RunStatus, write_summary

if TYPE_CHECKING:
    from mesh_assets.infra.environment import Environment

app = typer.Typer(help="mesh: governed data products on Dagster.", no_args_is_help=True, add_completion=False)
# Not a terminal (CI logs, pipes): wide enough that the summary table is never truncated.
console = Console(width=None if sys.stdout.isatty() else 160)
DEFAULT_SCALE = 10_000


@app.callback()
def _environment_guard() -> None:
    """Refuse, before any command runs, a bad `MESH_ENV` or a non-prod process aimed at prod's storage."""
    from mesh_assets.infra import environment

    try:
        environment.resolve()
    except environment.EnvironmentRefused as exc:
        console.print(f"[red]error[/red]: {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from exc
    except environment.MeshEnvironmentError:
        pass  # e.g. no repository here: the commands that need one say so themselves


def _root() -> Path:
    from mesh_assets.infra import environment

    return environment.resolve().root


@app.command()
def validate(
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Validate every product spec of the mesh; exit 1 with every error, each with file, field and fix."""
    from mesh_assets.govern.validate import validate as run_validation

    root = _root()
    report = run_validation(root)
    if as_json:
        print(report.to_json())
    else:
        for issue in report.issues:
            style = "red" if issue.severity == "error" else "yellow"
            console.print(
                f"[{style}]{issue.severity}[/{style}] {issue.render(root)}", highlight=False, soft_wrap=True
            )
        console.print(
            ("[green]valid[/green]: " if not report.errors else "[red]invalid[/red]: ") + report.summary()
        )
    raise typer.Exit(1 if report.errors else 0)


@app.command()
def generate(
    scale: Annotated[
        int, typer.Option(help="Number of distinct orders; other extracts scale with it.")
    ] = DEFAULT_SCALE,
    seed: Annotated[int, typer.Option(help="Random seed: same seed and scale, same bytes.")] = 42,
    out: Annotated[Path | None, typer.Option(help="Output folder (default: data/sources).")] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            metavar="YYYY-MM-DD",
            help="Day the extracts are taken (default: today, so the data is fresh); same seed, scale and "
            "as-of, same bytes.",
        ),
    ] = None,
) -> None:
    """Write the example mesh's source-system extracts (deterministic)."""
    from datetime import date

    from mesh_assets.infra import environment
    from mesh_assets.selfservice.generate import generate_sources

    try:
        day = date.fromisoformat(as_of) if as_of else None
    except ValueError as exc:
        raise typer.BadParameter(f"{as_of!r} is not a date YYYY-MM-DD", param_hint="--as-of") from exc
    target = out or environment.resolve().sources_dir
    report = generate_sources(
        target, scale=scale, seed=seed, progress=lambda m: console.print(f"  {m}"), as_of=day
    )
    for extract in report.extracts:
        console.print(f"  {extract.source:<24} {extract.rows:>12,} rows  {extract.path}")
    console.print(f"generated {len(report.extracts)} extracts at scale {scale:,} in {report.seconds:.1f}s")


@app.command()
def prepare(
    check: Annotated[bool, typer.Option(help="Fail instead of rewriting drifted generated files.")] = False,
) -> None:
    """Generate what derives from the specs (JSON Schema, dbt contracts) and parse the dbt projects."""
    from mesh_assets.assets.dbt_contracts import prepare as prepare_dbt
    from mesh_assets.govern.validate import schema_texts
    from mesh_assets.infra import environment
    from mesh_assets.product import kinds
    from mesh_assets.product.errors import MeshSpecError
    from mesh_assets.product.registry import load_registry

    env = environment.resolve()
    for schema_path, text in schema_texts().items():
        if not schema_path.exists() or schema_path.read_text() != text:
            if check:
                console.print(f"[red]{schema_path} is out of date[/red]: run `mesh prepare`")
                raise typer.Exit(1)
            schema_path.parent.mkdir(parents=True, exist_ok=True)
            schema_path.write_text(text)
            console.print(f"  wrote {schema_path.relative_to(env.root)}")
    registry = load_registry(env.root)
    projects = kinds.projects([p.spec for p in registry.products.values()])
    for project in projects:
        started = time.monotonic()
        try:
            manifest = prepare_dbt(registry, project, env.dbt_target, check=check)
        except MeshSpecError as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from exc
        console.print(
            f"  dbt project {project}: {manifest.relative_to(env.root)} ({time.monotonic() - started:.1f}s)"
        )
    # Column lineage read from the fresh manifests and the SQL, so the next location load finds it cached.
    from mesh_assets.assets.lineage_cache import mesh_lineage

    started = time.monotonic()
    mesh_lineage(registry)
    seconds = time.monotonic() - started
    console.print(f"  column lineage of {len(registry.products)} products ({seconds:.1f}s)")
    console.print("prepared")


@app.command()
def run(
    domain: Annotated[list[str] | None, typer.Option(help="Only these domains (repeatable).")] = None,
    product: Annotated[
        list[str] | None,
        typer.Option(
            help="Only these products, `<domain>.<product>` (repeatable); in a branch "
            "environment every other port is read from prod."
        ),
    ] = None,
    scale: Annotated[int, typer.Option(help="Scale for extracts generated when none exist.")] = DEFAULT_SCALE,
    summary_json: Annotated[
        Path | None, typer.Option(help="Also write the summary, one record per product, to this JSON file.")
    ] = None,
) -> None:
    """Build every product of every domain in dependency order, run their checks, print a summary."""
    from mesh_assets.infra import environment

    env = environment.resolve()
    _ensure_sources(env, scale)
    console.print(
        f"building the mesh in environment [bold]{env.name}[/bold] on [bold]{env.target}[/bold] "
        f"({env.duckdb_path if env.target == 'duckdb' else 'database ' + env.database})",
        highlight=False,
        soft_wrap=True,
    )
    started = time.monotonic()
    results = _build(domain or None, product or None)
    console.print(_summary_table(results, time.monotonic() - started))
    if summary_json is not None:
        write_summary(summary_json, results)
    raise typer.Exit(_verdict(results))


def _ensure_sources(env: Environment, scale: int) -> None:
    """On DuckDB with no extracts yet, generate the example's, so a first `mesh run` has data to build."""
    if env.target == "duckdb" and not (env.sources_dir / "_manifest.json").exists():
        # Imported only here: the generator pulls numpy and pyarrow, ~0.2 s of every run's start.
        from mesh_assets.selfservice.generate import generate_sources

        console.print(
            f"no source extracts in {env.sources_dir}: generating the example extracts "
            f"(scale {scale:,}; `mesh generate` to choose)"
        )
        generate_sources(env.sources_dir, scale=scale)


def _build(domains: list[str] | None, products: list[str] | None) -> list[ProductResult]:
    """Run the build, showing its progress; a refused build exits (2: environment, 1: specs, 130: Ctrl-C)."""
    from mesh_assets.infra import environment
    from mesh_assets.product.errors import MeshSpecError
    from mesh_assets.run.runner import run_mesh

    try:
        return run_mesh(domains, _show_event, products=products)
    except environment.MeshEnvironmentError as exc:
        console.print(f"[red]{exc}[/red]", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from exc
    except MeshSpecError as exc:
        console.print(f"[red]{exc}[/red]\nRun `mesh validate` for the full report.")
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:  # before the build started: nothing was built
        console.print("[red]interrupted[/red]: nothing was built")
        raise typer.Exit(130) from None


_MARKS = {
    RunStatus.OK: "[green]✓[/green]",
    RunStatus.FAILED: "[red]✗[/red]",
    RunStatus.SKIPPED: "[yellow]-[/yellow]",
    RunStatus.INTERRUPTED: "[red]✗[/red]",
}
_STYLES = {
    RunStatus.OK: "green",
    RunStatus.FAILED: "red",
    RunStatus.SKIPPED: "yellow",
    RunStatus.INTERRUPTED: "red",
}


def _show_event(event: events.RunEvent) -> None:
    """One line of progress per event of the build."""
    match event:
        case events.StageStarted(domain=domain, names=names):
            console.print(f"[cyan]▶[/cyan] {domain}: {', '.join(names)} …")
        case events.ProductFinished(result=result):
            rows = ", ".join(f"{port} {n:,} rows" for port, n in sorted(result.rows.items()) if n is not None)
            line = f"  {_MARKS[result.status]} {result.product} {rows} {result.error}"
            console.print(line.rstrip(), highlight=False)
        case events.GovernanceBuilt(ok=ok, built=built):
            mark = "[green]✓[/green]" if ok else "[red]✗[/red]"
            console.print(f"{mark} mesh governance: {', '.join(built) or 'nothing built'}", highlight=False)
        case events.Reclaimed(run_id=run_id, reason=reason):
            console.print(
                f"[yellow]reclaimed[/yellow] run {run_id}: {reason}", highlight=False, soft_wrap=True
            )
        case events.WaitingForPool(steps=steps, waited_s=waited, holders=holders):
            console.print(
                f"  [yellow]…[/yellow] waiting {waited:.0f}s for a `warehouse` pool slot"
                + (f" ({', '.join(steps)})" if steps else "")
                + ": "
                + ("; ".join(holders) or "no run holds one yet (the slot is being handed over)"),
                highlight=False,
                soft_wrap=True,
            )
        case events.StagesInParallel(domains=domains, limit=limit):
            console.print(
                f"[cyan]⇉[/cyan] building {len(domains)} stages at once: {', '.join(domains)} (at most "
                f"{limit}: the `warehouse` pool's limit)",
                highlight=False,
                soft_wrap=True,
            )
        case events.Deferred(plan=plan):
            console.print(f"deferring to prod: {plan.summary()}", highlight=False, soft_wrap=True)
        case events.Interrupted():
            console.print("[red]interrupted[/red]: stopped the build; nothing more is built", highlight=False)


def _summary_table(results: list[ProductResult], seconds: float) -> Table:
    """The summary: one row per product with its status, rows per port, checks and time."""
    interrupted = any(r.status == RunStatus.INTERRUPTED for r in results)
    verdict = "interrupted after" if interrupted else "in"
    table = Table(title=f"mesh run: {len(results)} products {verdict} {seconds:.1f}s")
    columns = ["domain", "product", "status", "rows per port", "checks passed", "warnings", "blocking failed"]
    for column in [*columns, "time (s)"]:
        table.add_column(column, justify="right" if column in columns[4:] or column == "time (s)" else "left")
    for result in results:
        rows = ", ".join(f"{port}: {n:,}" for port, n in sorted(result.rows.items()) if n is not None) or "-"
        style = _STYLES[result.status]
        table.add_row(
            result.domain,
            result.name,
            f"[{style}]{result.status}[/{style}]",
            rows,
            str(result.checks_passed),
            str(result.warnings),
            str(result.blocking_failed),
            f"{result.seconds:.1f}",
        )
    return table


def _verdict(results: list[ProductResult]) -> int:
    """Name each failure; the exit code: 130 when interrupted, 1 when a product failed, else 0."""
    failures = [r for r in results if r.status not in {RunStatus.OK, RunStatus.INTERRUPTED}]
    for failure in failures:
        console.print(f"[red]{failure.product}[/red]: {failure.error}", highlight=False)
    if any(r.status == RunStatus.INTERRUPTED for r in results):
        console.print("[red]interrupted[/red]: `mesh run` again finishes it; ports keep their last good data")
        return 130  # the shell's convention for "stopped by Ctrl-C"
    return 1 if failures else 0


COMMAND_MODULES: list[str] = [
    "mesh_assets.cli.contract_diff",
    "mesh_assets.cli.impact",
    "mesh_assets.cli.contract_io",
    "mesh_assets.cli.catalog",
    "mesh_assets.cli.slo",
    "mesh_assets.cli.monitor",
    "mesh_assets.cli.new",
    "mesh_assets.cli.grants",
    "mesh_assets.cli.access",
    "mesh_assets.cli.fitness",
    "mesh_assets.cli.env",
    "mesh_assets.cli.ci",
    "mesh_assets.cli.doctor",
]
"""Modules of `mesh_assets.cli`, one per verb (or family of verbs), whose `register(app)` adds them."""

for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)


def main() -> None:
    """Console-script entry point."""
    sys.exit(app())


if __name__ == "__main__":
    main()
