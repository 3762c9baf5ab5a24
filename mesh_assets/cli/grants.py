"""`mesh grants --target snowflake [--out FILE]`: the whole mesh's access policy as Snowflake SQL."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

TARGETS = ("snowflake",)
"""Targets with grants to render. DuckDB has no roles: there the platform enforces the policy itself."""


def register(app: typer.Typer) -> None:
    """Add `grants` to the `mesh` command."""

    @app.command()
    def grants(
        target: Annotated[
            str, typer.Option(help="Warehouse to render for; only `snowflake` has roles and grants.")
        ] = "snowflake",
        out: Annotated[
            Path | None, typer.Option(help="Write the SQL to this file instead of stdout.")
        ] = None,
        database: Annotated[
            str | None,
            typer.Option(help="Database of the ports (default: SNOWFLAKE_DATABASE on Snowflake, else MESH)."),
        ] = None,
        role_prefix: Annotated[
            str | None,
            typer.Option(help="Prefix of every role the mesh creates (roles are account-wide; default "
            "MESH_ROLE_PREFIX, else MESH_)."),
        ] = None,
        platform_role: Annotated[
            str, typer.Option(help="Role the domain roles are granted to (the platform's service user's).")
        ] = "SYSADMIN",
        warehouse: Annotated[
            str | None,
            typer.Option(help="Virtual warehouse the domain roles compute on (default SNOWFLAKE_WAREHOUSE)."),
        ] = None,
    ) -> None:
        """Render roles, grants on port schemas and tables, masking policies and secure views (idempotent).

        Nothing is granted on internals. Run the output after the ports are published, e.g. with
        `snowsql -f`, as a role that may create roles and owns the port schemas.
        """
        from mesh_assets.govern import grants as grants_module
        from mesh_assets.infra import environment
        from mesh_assets.infra.warehouse.snowflake_names import DEFAULT_DATABASE
        from mesh_assets.product.registry import load_registry

        if target.lower() not in TARGETS:
            typer.secho(
                f"no grants to render for '{target}': "
                + (
                    "DuckDB has no roles; locally the platform applies the access policy where it reads "
                    "ports for consumer products (see docs/governance.md)"
                    if target.lower() == "duckdb"
                    else f"choose one of {', '.join(TARGETS)}"
                ),
                fg="red",
                err=True,
            )
            raise typer.Exit(2)
        env = environment.resolve()
        registry = load_registry(env.root)
        if registry.errors:
            typer.secho(
                f"{len(registry.errors)} spec error(s): grants are rendered only from a valid mesh; run "
                "`mesh validate`",
                fg="red",
                err=True,
            )
            raise typer.Exit(1)
        name = database or (env.database if env.target == "snowflake" else DEFAULT_DATABASE)
        prefix = role_prefix or env.role_prefix
        sql = grants_module.render(
            registry,
            database=name,
            prefix=prefix,
            platform_role=platform_role,
            warehouse=warehouse or env.snowflake_warehouse,
        )
        if out is None:
            typer.echo(sql, nl=False)
            return
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(sql)
        count = sum(1 for line in sql.splitlines() if line.endswith(";"))
        typer.echo(f"wrote {count} statements for {len(registry.products)} products to {out}", err=True)
