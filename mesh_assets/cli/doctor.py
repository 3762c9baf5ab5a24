"""`mesh doctor [--json]`: check the target the way the platform will use it (see docs/doctor.md).

One line per check: pass, fail or cannot-tell, with what was seen and, unless it passed, the fix. Exit 1
if any check failed; `cannot-tell` alone does not fail.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from mesh_assets.infra.doctor.report import CheckResult
    from mesh_assets.infra.environment import Environment

ENVIRONMENT = "environment resolves"
_COLORS = {"pass": "green", "fail": "red", "cannot-tell": "yellow"}


def register(app: typer.Typer) -> None:
    """Add `doctor` to the `mesh` command."""

    @app.command()
    def doctor(
        as_json: Annotated[
            bool,
            typer.Option("--json", help="Print the checks as a JSON list of {check, status, detail, fix}."),
        ] = False,
    ) -> None:
        """Check the target the way the platform will use it: one line per check, and the fix for each
        that does not pass. Exit 1 if any check fails (cannot-tell alone does not)."""
        from mesh_assets.infra.doctor.report import exit_code, to_json

        results = diagnose()
        if as_json:
            print(json.dumps(to_json(results), indent=2))
        else:
            for result in results:
                typer.echo(render(result, color=True))
            counts = {status: sum(r.status == status for r in results) for status in _COLORS}
            typer.echo("mesh doctor: " + ", ".join(f"{n} {status}" for status, n in counts.items()))
        raise typer.Exit(exit_code(results))


def render(result: CheckResult, color: bool = False) -> str:
    """One line: status, check, what was seen and, unless it passed, the fix."""
    status = f"{result.status.value:<11}"
    if color:
        status = typer.style(status, fg=_COLORS[result.status.value], bold=result.status.value == "fail")
    fix = f" — fix: {result.fix}" if result.fix and result.status.value != "pass" else ""
    return f"{status}  {result.check}: {result.detail}{fix}"


def diagnose() -> list[CheckResult]:
    """Every check for this process's environment: its target's, the engine versions, its Dagster instance."""
    from mesh_assets.infra import environment
    from mesh_assets.infra.doctor.instance import instance_checks
    from mesh_assets.infra.doctor.report import failed, passed
    from mesh_assets.infra.doctor.versions import check_versions

    try:
        env = environment.resolve()
    except environment.MeshEnvironmentError as exc:
        return [failed(ENVIRONMENT, str(exc), "fix the variable it names (see README: Environment)")]
    where = env.duckdb_path if env.target == "duckdb" else f"database {env.database}"
    results = [passed(ENVIRONMENT, f"{env.name} on {env.target} ({where})")]
    results += _snowflake(env) if env.target == "snowflake" else _duckdb(env)
    results.append(check_versions(env.target, env.root))
    results += instance_checks(env.dagster_home, env.target, env.is_prod)
    return results


def _duckdb(env: Environment) -> list[CheckResult]:
    from mesh_assets.infra.doctor.duckdb import duckdb_checks

    return duckdb_checks(env.duckdb_path)


def _snowflake(env: Environment) -> list[CheckResult]:
    """The Snowflake checks on a connection opened the one way the platform opens them."""
    import os
    from contextlib import contextmanager

    from mesh_assets.infra.doctor.snowflake import snowflake_checks
    from mesh_assets.infra.warehouse.snowflake_sign_in import SnowflakeSignIn, snowflake_connection

    try:
        # The values (secrets included) are read here, through the sign-in factory, as `mesh env` does.
        sign_in: SnowflakeSignIn | None = SnowflakeSignIn.from_environ(os.environ)
        refused: Exception | None = None
    except ValueError as exc:  # SignInError, or a value the model refuses
        sign_in, refused = None, exc

    @contextmanager
    def connect():
        if sign_in is None:
            raise refused or ValueError("no Snowflake sign-in")
        with snowflake_connection(sign_in, query_tag="mesh-doctor") as connection:
            yield connection

    return snowflake_checks(
        connect,
        database=env.database,
        prod_database=env.prod_database,
        expected_role=sign_in.role if sign_in else None,
        who=sign_in.describe() if sign_in else "",
        domain_roles=_domain_roles(env),
    )


def _domain_roles(env: Environment) -> list[str]:
    """The role of every domain with products, when domains run as their own roles (the default)."""
    if not env.domain_roles:
        return []
    from mesh_assets.infra.warehouse.snowflake import domain_role
    from mesh_assets.product.registry import GOVERNANCE_DOMAIN, load_registry

    domains = {p.spec.domain for p in load_registry(env.root).products.values()} - {GOVERNANCE_DOMAIN}
    return [domain_role(domain, env.role_prefix) for domain in sorted(domains)]
