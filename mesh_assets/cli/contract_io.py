"""`mesh contract export` and `mesh contract import`: ODCS data contracts and ODPS descriptors in and out.

Export writes, for every output port, `<domain>.<product>.v<major>.odcs.yaml` (ODCS v3.2.0, checked
against the standard's JSON Schema and models before it is written) and, per product,
`<domain>.<product>.odps.yaml` (ODPS v1.0.0). Import turns an ODCS contract written elsewhere into a
`dataproduct.yaml` draft and says which mandatory fields the contract could not provide.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mesh_assets.cli.commands import group


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def register(app: typer.Typer) -> None:
    """Add `contract export` and `contract import` to the `mesh` command."""
    contract = group(app, "contract", "Data contracts: diff, export, import.")

    @contract.command("export")
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
        from mesh_assets.product.errors import MeshSpecError
        from mesh_assets.product.registry import load_registry

        env = environment.resolve()
        registry = load_registry(env.root)
        try:
            registry.raise_for_errors()
        except MeshSpecError as exc:
            typer.secho(f"{exc}\nRun `mesh validate` for the full report.", fg="red", err=True)
            raise typer.Exit(1) from exc
        unknown = sorted(set(product or []) - set(registry.products))
        if unknown:
            typer.secho(
                f"no product {', '.join(unknown)}; known: {', '.join(sorted(registry.products))}",
                fg="red",
                err=True,
            )
            raise typer.Exit(1)
        target = out or env.contracts_dir
        deployment = odcs_module.Deployment.from_environment(env)
        try:
            written = odcs_module.export_contracts(registry, target, deployment, product or None)
        except odcs_module.ContractError as exc:
            typer.secho(str(exc), fg="red", err=True)
            raise typer.Exit(1) from exc
        if odps:
            written += odps_module.export_descriptors(registry, target, product or None)
        for path in written:
            typer.echo(f"  wrote {_relative(path, env.root)}")
        from mesh_assets.product.addressing import CONTRACT_SUFFIX

        contracts = sum(1 for p in written if p.name.endswith(CONTRACT_SUFFIX))
        descriptors = len(written) - contracts
        typer.echo(
            f"exported {contracts} ODCS {odcs_module.API_VERSION} contract(s)"
            + (f" and {descriptors} ODPS {odps_module.API_VERSION} descriptor(s)" if odps else "")
            + f" to {_relative(target, env.root)} (physical types for {deployment.target})"
        )

    @contract.command("import")
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
    ) -> None:
        """Draft a dataproduct.yaml from an ODCS contract; print the mandatory fields still to fill."""
        import os

        from mesh_assets.contracts import odcs as odcs_module
        from mesh_assets.infra import environment

        env = environment.resolve()
        try:
            result = odcs_module.import_contract(odcs_module.read_contract(file), domain=domain)
        except odcs_module.ContractError as exc:
            typer.secho(f"cannot import {file}: {exc}", fg="red", err=True)
            raise typer.Exit(1) from exc
        if out is None:
            if not result.domain or not result.name:
                typer.secho(
                    "the contract names no "
                    + ("domain" if not result.domain else "product")
                    + ": pass --domain <domain>, or --out <folder>",
                    fg="red",
                    err=True,
                )
                raise typer.Exit(1)
            out = env.root / "domains" / result.domain / "products" / result.name
        target = out / "dataproduct.yaml"
        if target.exists() and not force:
            typer.secho(
                f"{_relative(target, env.root)} exists; pass --force to overwrite it", fg="red", err=True
            )
            raise typer.Exit(1)
        # The editor schema of the repository, as the shipped specs reference it; else the installed one's.
        schema = env.root / "mesh_assets" / "schemas" / "dataproduct.schema.json"
        if not schema.exists():
            import mesh_assets

            schema = Path(mesh_assets.__file__).parent / "schemas" / "dataproduct.schema.json"
        schema_ref = Path(os.path.relpath(schema, out.resolve())).as_posix()
        out.mkdir(parents=True, exist_ok=True)
        target.write_text(odcs_module.draft_yaml(result, file.name, schema_ref))
        typer.echo(f"wrote {_relative(target, env.root)}")
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
