"""`mesh env create|list|drop`: the environments of the mesh (see docs/environments.md)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

env_app = typer.Typer(
    help="Environments: isolated copies of the mesh, one per MESH_ENV.", no_args_is_help=True
)


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(1)


def _size(size: int | None) -> str:
    if size is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return str(size)


@env_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The environment's name (lowercase identifier).")],
    base: Annotated[str, typer.Option("--from", help="The environment it starts from.")] = "prod",
) -> None:
    """Create environment NAME: a folder on DuckDB, a zero-copy clone of prod's database on Snowflake."""
    from mesh_assets.infra import environments
    from mesh_assets.infra.environment import MeshEnvironmentError

    try:
        info = environments.create(name, base)
    except MeshEnvironmentError as exc:
        raise _fail(exc) from exc
    typer.echo(f"environment {info.name} ({info.target}): {info.location}")
    typer.echo(f"use it with MESH_ENV={info.name}")


@env_app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False) -> None:
    """List the environments: name, target, storage, base, creation time, size."""
    from mesh_assets.infra import environments
    from mesh_assets.infra.environment import MeshEnvironmentError

    try:
        infos = environments.list_environments()
    except MeshEnvironmentError as exc:
        raise _fail(exc) from exc
    if as_json:
        print(json.dumps([info.to_json() for info in infos], indent=2))
        return
    for info in infos:
        created = info.created.strftime("%Y-%m-%d %H:%M") if info.created else "-"
        typer.echo(
            f"{info.name:<16} {info.target:<9} {info.base or '-':<6} {created:<16} "
            f"{_size(info.size_bytes):>9}  {info.location}"
        )


@env_app.command("drop")
def drop(
    name: Annotated[str | None, typer.Argument(help="The environment to drop.")] = None,
    older_than: Annotated[
        str | None, typer.Option("--older-than", help="Instead: drop every environment older than e.g. 7d.")
    ] = None,
) -> None:
    """Drop environment NAME (its storage and Dagster instance), or every one older than --older-than.

    prod is never dropped; nor is dev on DuckDB (its folder is the data root).
    """
    from mesh_assets.infra import environments
    from mesh_assets.infra.environment import MeshEnvironmentError

    if (name is None) == (older_than is None):
        raise typer.BadParameter("give either NAME or --older-than")
    try:
        if older_than is not None:
            dropped = environments.drop_older_than(environments.parse_age(older_than))
        else:
            dropped = [environments.drop(name)]  # type: ignore[arg-type]
    except MeshEnvironmentError as exc:
        raise _fail(exc) from exc
    for info in dropped:
        typer.echo(f"dropped {info.name}: {info.location}")
    if not dropped:
        typer.echo("nothing to drop")


def register(app: typer.Typer) -> None:
    """Add `mesh env` to the command line."""
    app.add_typer(env_app, name="env")
