"""`mesh ci`: the gate a pull request runs; exit 0 means the change may merge.

Exit codes: 0 passed, 1 a step failed (validation, fitness, a breaking contract change, a blocking
check, a failed build), 2 the gate could not run (unknown base ref, no git, a refused environment).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add `mesh ci`."""

    @app.command("ci")
    def ci(
        base: Annotated[
            str, typer.Option("--base", help="Git ref the change is proven against, e.g. origin/main.")
        ] = "origin/main",
        env: Annotated[
            str | None,
            typer.Option("--env", help="Branch environment to build in (default: ci_<branch>)."),
        ] = None,
        reuse: Annotated[
            bool,
            typer.Option("--reuse", help="Keep what the environment built before (default: start fresh)."),
        ] = False,
        out: Annotated[
            Path | None,
            typer.Option(
                "--out", help="Folder for report.md and junit.xml (default: the environment's ci/)."
            ),
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    ) -> None:
        """Validate, diff contracts, build the changed products and their consumers beside prod, diff data."""
        import json
        import sys

        from rich.console import Console

        from mesh_assets.contracts.diff_git import ContractDiffError
        from mesh_assets.govern.ci_gate import run_ci
        from mesh_assets.govern.ci_report import JUNIT, MARKDOWN
        from mesh_assets.infra.environment import MeshEnvironmentError

        console = Console(width=None if sys.stdout.isatty() else 160, stderr=as_json)

        def progress(line: str) -> None:
            console.print(line, highlight=False, soft_wrap=True, markup=False)

        try:
            result = run_ci(base, env, fresh=not reuse, report_dir=out, progress=progress)
        except (ContractDiffError, MeshEnvironmentError) as exc:
            console.print(f"[red]mesh ci cannot run[/red]: {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from exc
        assert result.report_dir is not None
        if as_json:
            print(
                json.dumps(
                    {
                        "ok": result.ok,
                        "base": result.base,
                        "environment": result.env,
                        "changed": sorted(result.changes.changed),
                        "downstream": result.changes.downstream,
                        "steps": [{"name": s.name, "ok": s.ok, "summary": s.summary} for s in result.steps],
                        "report": str(result.report_dir / MARKDOWN),
                        "junit": str(result.report_dir / JUNIT),
                        "seconds": round(result.seconds, 1),
                    },
                    indent=2,
                )
            )
        else:
            for step in result.steps:
                if not step.ok:
                    for detail in step.details:
                        console.print(f"[red]✗[/red] {step.name}: {detail}", highlight=False, soft_wrap=True)
            verdict = "[green]passed[/green]" if result.ok else "[red]failed[/red]"
            console.print(f"mesh ci {verdict} in {result.seconds:.1f}s", highlight=False)
            console.print(f"report: {result.report_dir / MARKDOWN}", highlight=False, soft_wrap=True)
            console.print(f"junit:  {result.report_dir / JUNIT}", highlight=False, soft_wrap=True)
        raise typer.Exit(0 if result.ok else 1)
