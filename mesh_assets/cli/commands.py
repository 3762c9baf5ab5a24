"""CLI verbs beyond the core ones, one module per verb; each exposes `register(app: typer.Typer)`.

`mesh_assets.cli.app` registers every module listed in its `COMMAND_MODULES`. A verb in a group
(`mesh contract diff`) gets the group with `group(app, "contract", ...)`.
"""

import typer


def group(app: typer.Typer, name: str, help: str) -> typer.Typer:
    """The sub-command group `name` of `app`, created on first use."""
    for info in app.registered_groups:
        if info.name == name and info.typer_instance is not None:
            return info.typer_instance
    sub = typer.Typer(help=help, no_args_is_help=True)
    app.add_typer(sub, name=name)
    return sub
