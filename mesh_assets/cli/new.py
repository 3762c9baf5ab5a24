"""`mesh new domain` and `mesh new product`: self-service scaffolding for domain teams.

Every attribute has a flag, so CI and scripts never prompt; a person at a terminal is asked for what
the platform cannot guess (steward, owner team, classification, freshness) with the default offered.
A refusal exits 2 (bad input) or 1 (a step failed, e.g. dbt could not parse a project) and changes
nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mesh_assets.cli.commands import group

if TYPE_CHECKING:
    from rich.console import Console

    from mesh_assets.selfservice.onboard_plan import OnboardRequest
    from mesh_assets.selfservice.scaffold import Scaffolded

_NO_INPUT = typer.Option("--no-input", help="Never prompt, even at a terminal: use flags and defaults.")


class TerminalAsker:
    """Asks the person at the terminal, offering the default (Enter accepts it)."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def ask(self, label: str, default: str | None) -> str:
        """Prompt for one value."""
        if default is None:
            return str(typer.prompt(label))
        return str(typer.prompt(label, default=default))

    def tell(self, message: str) -> None:
        """Explain why an answer was refused."""
        self.console.print(f"[yellow]{message}[/yellow]", highlight=False)


def _console() -> Console:
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160)


def _asker(console: Console, no_input: bool) -> TerminalAsker | None:
    # Prompts only where a person can answer: CI and pipes get flags and defaults, never a hang.
    return TerminalAsker(console) if sys.stdin.isatty() and not no_input else None


def _show(console: Console, result: Scaffolded, what: str) -> None:
    from rich.markup import escape

    # Paths, names and dbt's words may hold brackets: never let them read as console markup.
    console.print(f"[green]created[/green] {escape(what)}", highlight=False)
    for path in result.created:
        console.print(f"  + {escape(path)}", highlight=False)
    for path in result.modified:
        console.print(f"  ~ {escape(path)}", highlight=False)
    for note in result.notes:
        style = "yellow" if note.startswith("warning:") else "dim"
        console.print(f"  [{style}]{escape(note)}[/{style}]", highlight=False, soft_wrap=True)
    if result.next_steps:
        console.print("next:")
        for step in result.next_steps:
            console.print(f"  {escape(step)}", highlight=False)


def _refuse(console: Console, exc: Exception, code: int) -> typer.Exit:
    from rich.markup import escape

    console.print(f"[red]refused[/red]: {escape(str(exc))}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _dbt_vars(text: str | None) -> dict:
    """`--dbt-vars`: a mapping in YAML (JSON is YAML), as dbt's own `--vars` takes it."""
    import yaml

    from mesh_assets.selfservice.errors import ScaffoldError

    if not text:
        return {}
    try:
        values = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScaffoldError(f"--dbt-vars is not JSON or YAML: {exc}") from exc
    if not isinstance(values, dict):
        raise ScaffoldError("--dbt-vars must be a mapping, e.g. '{\"load_source_data\": true}'")
    return values


def _primary_keys(values: list[str]) -> dict[str, list[str]]:
    from mesh_assets.selfservice.scaffold import ScaffoldError

    keys: dict[str, list[str]] = {}
    for value in values:
        model, sep, columns = value.partition("=")
        if not sep or not columns.strip():
            raise ScaffoldError(
                f"--primary-key {value}: write <model>=<column>[,<column>], e.g. orders=order_id"
            )
        keys[model.strip()] = [c.strip() for c in columns.split(",") if c.strip()]
    return keys


def _refuse_without_dbt(flags: dict[str, object]) -> None:
    """The flags that apply only with `--from-dbt` are refused without it, each named."""
    from mesh_assets.selfservice.scaffold import ScaffoldError

    given = [flag for flag, value in flags.items() if value]
    if given:
        raise ScaffoldError(f"{', '.join(given)} apply only with --from-dbt <path>")


def _onboard(console: Console, root: Path, request: OnboardRequest, no_input: bool) -> Scaffolded:
    """Onboard the dbt project as the domain's products (dbt builds it once, empty)."""
    from mesh_assets.selfservice.onboard import onboard

    console.print(f"onboarding {request.path} (dbt builds it once, empty, to read its models) …")
    return onboard(root, request, _asker(console, no_input))


def new_domain(
    name: Annotated[str, typer.Argument(help="Domain name: lowercase letters, digits and '_'.")],
    description: Annotated[
        str | None, typer.Option(help="What the domain covers (the code location's docstring).")
    ] = None,
    from_dbt: Annotated[
        Path | None,
        typer.Option("--from-dbt", help="Onboard this existing dbt project as the domain's products."),
    ] = None,
    link: Annotated[
        bool, typer.Option("--link", help="With --from-dbt: symlink the project instead of copying it.")
    ] = False,
    project: Annotated[
        str | None,
        typer.Option(help="With --from-dbt: folder under dbt_projects/ (default: the domain)."),
    ] = None,
    port: Annotated[
        list[str] | None,
        typer.Option(help="With --from-dbt: a model to publish as an output port (repeatable)."),
    ] = None,
    primary_key: Annotated[
        list[str] | None,
        typer.Option(help="With --from-dbt: <model>=<column>\\[,<column>] where dbt names no key."),
    ] = None,
    dbt_vars: Annotated[
        str | None,
        typer.Option(
            "--dbt-vars",
            help="With --from-dbt: dbt vars as JSON or YAML, e.g. '{\"load_source_data\": true}', for "
            "every dbt run of the project (kept in the specs' transformation.vars).",
        ),
    ] = None,
    owner_team: Annotated[str | None, typer.Option(help="Owning team (identifier).")] = None,
    steward: Annotated[
        str | None, typer.Option(help="Steward's email (default: a dbt group's owner or git user.email).")
    ] = None,
    classification: Annotated[
        str | None, typer.Option(help="public, internal, confidential or restricted.")
    ] = None,
    status: Annotated[str | None, typer.Option(help="Products' status (default: active).")] = None,
    freshness: Annotated[str | None, typer.Option(help="Freshness SLO, e.g. 24h (default).")] = None,
    support_channel: Annotated[str | None, typer.Option(help="Support channel, e.g. #shop-data.")] = None,
    business_capability: Annotated[str | None, typer.Option(help="Business capability served.")] = None,
    allowed_role: Annotated[
        list[str] | None, typer.Option(help="A role allowed to read the ports (repeatable).")
    ] = None,
    no_input: Annotated[bool, _NO_INPUT] = False,
) -> None:
    """Create a domain's code location and register it in workspace.yaml; or onboard a dbt project."""
    from mesh_assets.infra import environment
    from mesh_assets.selfservice.scaffold import ScaffoldError
    from mesh_assets.selfservice.scaffold import new_domain as scaffold_domain

    console = _console()
    root = environment.find_root()
    try:
        if from_dbt is None:
            dbt_only = {"--link": link, "--project": project, "--port": port, "--primary-key": primary_key}
            _refuse_without_dbt({**dbt_only, "--dbt-vars": dbt_vars})
            result = scaffold_domain(root, name, description)
        else:
            from mesh_assets.selfservice.onboard import OnboardRequest

            request = OnboardRequest(
                domain=name,
                path=from_dbt,
                link=link,
                project=project,
                ports=list(port or []),
                primary_keys=_primary_keys(list(primary_key or [])),
                dbt_vars=_dbt_vars(dbt_vars),
                description=description,
                owner_team=owner_team,
                steward=steward,
                classification=classification,
                status=status,
                freshness=freshness,
                support_channel=support_channel,
                business_capability=business_capability,
                allowed_roles=list(allowed_role) if allowed_role else None,
            )
            result = _onboard(console, root, request, no_input)
    except ScaffoldError as exc:
        raise _refuse(console, exc, exc.exit_code) from exc
    _show(console, result, f"domain {name}")


def new_product(
    domain: Annotated[str, typer.Argument(help="The domain the product belongs to.")],
    name: Annotated[str, typer.Argument(help="Product name: lowercase letters, digits and '_'.")],
    kind: Annotated[str, typer.Option(help="How it is built: sql, python or dbt.")] = "sql",
    input: Annotated[
        list[str] | None,
        typer.Option(
            "--input", help="An input port: <domain>.<product>\\[@<major>] (repeatable; the first leads)."
        ),
    ] = None,
    source: Annotated[
        list[str] | None,
        typer.Option(help="A source extract <system>.<extract> under MESH_SOURCES_DIR (repeatable)."),
    ] = None,
    primary_key: Annotated[
        list[str] | None, typer.Option(help="Primary key column (repeatable; default: the input's).")
    ] = None,
    title: Annotated[str | None, typer.Option(help="Human-readable name.")] = None,
    description: Annotated[str | None, typer.Option(help="Purpose: what the product is for.")] = None,
    usage: Annotated[str | None, typer.Option(help="How consumers are expected to use it.")] = None,
    limitations: Annotated[str | None, typer.Option(help="What it must not be used for.")] = None,
    owner_team: Annotated[str | None, typer.Option(help="Owning team (identifier).")] = None,
    steward: Annotated[str | None, typer.Option(help="Steward's email (default: git user.email).")] = None,
    classification: Annotated[
        str | None,
        typer.Option(help="public, internal, confidential or restricted (default: from the inputs)."),
    ] = None,
    product_type: Annotated[
        str | None, typer.Option(help="source-aligned, aggregate or consumer-aligned.")
    ] = None,
    status: Annotated[str | None, typer.Option(help="Lifecycle status (default: draft).")] = None,
    freshness: Annotated[str | None, typer.Option(help="Freshness SLO, e.g. 24h (default).")] = None,
    support_channel: Annotated[str | None, typer.Option(help="Support channel, e.g. #lab-data.")] = None,
    business_capability: Annotated[str | None, typer.Option(help="Business capability served.")] = None,
    allowed_role: Annotated[
        list[str] | None, typer.Option(help="A role allowed to read the port (repeatable).")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option(help="A discovery tag (repeatable).")] = None,
    project: Annotated[
        str | None,
        typer.Option(help="dbt products: the project under dbt_projects/ (default: domain's)."),
    ] = None,
    no_input: Annotated[bool, _NO_INPUT] = False,
) -> None:
    """Create a data product: complete spec, a transformation that runs, and a test."""
    from mesh_assets.infra import environment
    from mesh_assets.selfservice.scaffold import ProductRequest, ScaffoldError
    from mesh_assets.selfservice.scaffold import new_product as scaffold_product

    console = _console()
    request = ProductRequest(
        domain=domain,
        name=name,
        kind=kind,
        inputs=list(input or []),
        sources=list(source or []),
        primary_key=list(primary_key or []),
        title=title,
        description=description,
        usage=usage,
        limitations=limitations,
        owner_team=owner_team,
        steward=steward,
        classification=classification,
        product_type=product_type,
        status=status,
        freshness=freshness,
        support_channel=support_channel,
        business_capability=business_capability,
        allowed_roles=list(allowed_role) if allowed_role else None,
        tags=list(tag or []),
        project=project,
    )
    try:
        result = scaffold_product(environment.find_root(), request, _asker(console, no_input))
    except ScaffoldError as exc:
        raise _refuse(console, exc, exc.exit_code) from exc
    _show(console, result, f"product {domain}.{name} ({kind})")


def register(app: typer.Typer) -> None:
    """Add `mesh new domain` and `mesh new product`."""
    new = group(app, "new", "Create a domain or a data product that validates and builds at once.")
    new.command("domain")(new_domain)
    new.command("product")(new_product)
