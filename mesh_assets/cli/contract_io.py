"""`mesh contract export` and `mesh contract import`: ODCS data contracts and ODPS descriptors in and out.

Export writes, for every output port, `<domain>.<product>.v<major>.odcs.yaml` (ODCS v3.2.0, checked
against the standard's JSON Schema and models before it is written) and, per product,
`<domain>.<product>.odps.yaml` (ODPS v1.0.0). Import turns an ODCS contract written elsewhere into a
`dataproduct.yaml` draft and says which mandatory fields the contract could not provide: a contract of
several tables drafts its first, the one `--table` names, or one product per table (`--all-tables`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mesh_assets.cli.commands import group

if TYPE_CHECKING:
    from mesh_assets.contracts.odcs_draft import ImportResult
    from mesh_assets.product.registry import Registry


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _fail(message: str) -> typer.Exit:
    typer.secho(message, fg="red", err=True)
    return typer.Exit(1)


def _export_registry(root: Path, product: list[str] | None) -> Registry:
    """The mesh's registry, refused when a spec is invalid or `--product` names an unknown product."""
    from mesh_assets.product.errors import MeshSpecError
    from mesh_assets.product.registry import load_registry

    registry = load_registry(root)
    try:
        registry.raise_for_errors()
    except MeshSpecError as exc:
        raise _fail(f"{exc}\nRun `mesh validate` for the full report.") from exc
    unknown = sorted(set(product or []) - set(registry.products))
    if unknown:
        raise _fail(f"no product {', '.join(unknown)}; known: {', '.join(sorted(registry.products))}")
    return registry


def export(
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default: data/contracts, or in $MESH_DATA_DIR).")
    ] = None,
    odps: Annotated[
        bool,
        typer.Option("--odps/--no-odps", help="Also write each product's ODPS v1.0.0 descriptor."),
    ] = True,
    product: Annotated[
        list[str] | None,
        typer.Option(help="Only this product, as <domain>.<product> (repeatable)."),
    ] = None,
) -> None:
    """Write an ODCS v3.2.0 contract per output port (and an ODPS descriptor per product)."""
    from mesh_assets.contracts import odcs as odcs_module
    from mesh_assets.contracts import odps as odps_module
    from mesh_assets.infra import environment
    from mesh_assets.product.addressing import CONTRACT_SUFFIX

    env = environment.resolve()
    registry = _export_registry(env.root, product)
    target = out or env.contracts_dir
    deployment = odcs_module.Deployment.from_environment(env)
    try:
        written = odcs_module.export_contracts(registry, target, deployment, product or None)
    except odcs_module.ContractError as exc:
        raise _fail(str(exc)) from exc
    if odps:
        written += odps_module.export_descriptors(registry, target, product or None)
    for path in written:
        typer.echo(f"  wrote {_relative(path, env.root)}")
    contracts = sum(1 for p in written if p.name.endswith(CONTRACT_SUFFIX))
    descriptors = len(written) - contracts
    typer.echo(
        f"exported {contracts} ODCS {odcs_module.API_VERSION} contract(s)"
        + (f" and {descriptors} ODPS {odps_module.API_VERSION} descriptor(s)" if odps else "")
        + f" to {_relative(target, env.root)} (physical types for {deployment.target})"
    )


def _drafts(file: Path, domain: str | None, table: str | None, all_tables: bool) -> list[ImportResult]:
    """The contract's draft (of `--table`, else its first table), or one per table with `--all-tables`."""
    from mesh_assets.contracts import odcs_import
    from mesh_assets.contracts.odcs_standard import ContractError

    if table is not None and all_tables:
        raise typer.BadParameter("pass either --table <name> or --all-tables", param_hint="--table")
    try:
        document = odcs_import.read_contract(file)
        if all_tables:
            return odcs_import.import_tables(document, domain=domain)
        return [odcs_import.import_contract(document, domain=domain, table=table)]
    except ContractError as exc:
        raise _fail(f"cannot import {file}: {exc}") from exc


def _folders(results: list[ImportResult], out: Path | None, root: Path, all_tables: bool) -> list[Path]:
    """Each draft's folder: `--out` (with `--all-tables`, a folder per product in it), else the product's
    folder under `domains/`. Refused when a draft names no domain or product, or two drafts one product."""
    folders = []
    for result in results:
        if out is not None and not all_tables:
            folders.append(out)
            continue
        if not result.domain or not result.name:
            raise _fail(
                "the contract names no "
                + ("domain" if not result.domain else "product")
                + ": pass --domain <domain>, or --out <folder>"
            )
        base = out if out is not None else root / "domains" / result.domain / "products"
        folders.append(base / result.name)
    twice = sorted({str(f) for f in folders if folders.count(f) > 1})
    if twice:
        raise _fail(
            f"two tables of the contract would be drafted into {', '.join(twice)}; draft them one by "
            "one with --table <name> --out <folder>"
        )
    return folders


def _schema_ref(root: Path, folder: Path) -> str:
    """The editor schema, relative to the draft's folder: the repository's, as the shipped specs reference
    it; else the installed package's."""
    import os

    schema = root / "mesh_assets" / "schemas" / "dataproduct.schema.json"
    if not schema.exists():
        import mesh_assets

        schema = Path(mesh_assets.__file__).parent / "schemas" / "dataproduct.schema.json"
    return Path(os.path.relpath(schema, folder.resolve())).as_posix()


def _report(result: ImportResult) -> None:
    """The import's notes, then the mandatory fields still to fill and the values to fix."""
    for note in result.notes:
        typer.echo(f"  note: {note}")
    if result.complete:
        typer.secho(
            "the draft is a complete spec; write its transformation, then run `mesh validate`", fg="green"
        )
        return
    if result.missing:
        typer.secho(
            f"{len(result.missing)} mandatory field(s) the contract does not provide; fill them in:",
            fg="yellow",
        )
        for gap in result.missing:
            typer.echo(f"  - {gap.render()}")
    if result.problems:
        typer.secho(f"{len(result.problems)} value(s) to fix:", fg="yellow")
        for problem in result.problems:
            typer.echo(f"  - {problem}")
    typer.echo("then run `mesh validate`, which names each remaining one")


def import_(
    file: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, readable=True, help="An ODCS v3 contract (YAML)."),
    ],
    domain: Annotated[
        str | None, typer.Option(help="Domain of the new product (default: the contract's domain).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for dataproduct.yaml (default: domains/<domain>/products/<name>)."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing dataproduct.yaml.")] = False,
    table: Annotated[
        str | None,
        typer.Option(help="The contract's table (schema object) to draft (default: its first)."),
    ] = None,
    all_tables: Annotated[
        bool,
        typer.Option(
            "--all-tables", help="Draft one product per table, each in its own folder (under --out if given)."
        ),
    ] = False,
) -> None:
    """Draft a dataproduct.yaml from an ODCS contract; print the mandatory fields still to fill."""
    from mesh_assets.contracts.odcs_draft import draft_yaml
    from mesh_assets.infra import environment

    env = environment.resolve()
    results = _drafts(file, domain, table, all_tables)
    folders = _folders(results, out, env.root, all_tables)
    targets = [folder / "dataproduct.yaml" for folder in folders]
    taken = [_relative(target, env.root) for target in targets if target.exists()]
    if taken and not force:  # checked for every draft first: a refusal writes nothing
        verb, them = ("exists", "it") if len(taken) == 1 else ("exist", "them")
        raise _fail(f"{', '.join(taken)} {verb}; pass --force to overwrite {them}")
    for result, folder, target in zip(results, folders, targets, strict=True):
        schema_ref = _schema_ref(env.root, folder)
        folder.mkdir(parents=True, exist_ok=True)
        target.write_text(draft_yaml(result, file.name, schema_ref))
        typer.echo(f"wrote {_relative(target, env.root)}")
        _report(result)
    if all_tables:
        typer.echo(f"drafted {len(results)} product(s), one per table of {file.name}")


def register(app: typer.Typer) -> None:
    """Add `contract export` and `contract import` to the `mesh` command."""
    contract = group(app, "contract", "Data contracts: diff, export, import.")
    contract.command("export")(export)
    contract.command("import")(import_)
