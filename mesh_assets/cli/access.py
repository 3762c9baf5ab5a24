"""`mesh access`: ask for access, decide on it, list and audit agreements, and keep the grants in step.

    mesh access request sales.sales@v2 --for commercial_analytics.customer_360 --purpose "…"
    mesh access approve|reject|revoke <id> --by <email> [--reason "…"]
    mesh access list [--json] [--product P] [--consumer C] [--expiring 30d]
    mesh access audit [--json]
    mesh access migrate
    mesh access directory import people.csv
    mesh access sync [--dry-run] [--prune]     (Snowflake; on DuckDB it shows the plan)

Every error names the file or the agreement, what is wrong and the fix. The clock is read here, once per
command (`_now`), and passed down, so the modules below are tested on any day.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mesh_assets.cli.commands import group
from mesh_assets.infra.warehouse.snowflake_names import DEFAULT_ROLE_PREFIX
from mesh_assets.product.purposes import PurposeCategory

if TYPE_CHECKING:
    from mesh_assets.govern.access_grants import DesiredState, Plan


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", fg="red", err=True)
    return typer.Exit(code)


def _who(by: str | None) -> str:
    """`--by`, else the git user's email: who is asking or deciding is always recorded."""
    if by:
        return by.strip().lower()
    try:
        found = subprocess.run(
            ["git", "config", "user.email"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        found = ""
    if not found:
        raise _fail("who are you? Fix: pass --by <your email> (or set git config user.email)")
    return found.lower()


def _loaded():
    from mesh_assets.infra import environment
    from mesh_assets.product.registry import load_registry

    root = environment.resolve().root
    return root, load_registry(root)


def request(
    target: Annotated[str, typer.Argument(help="<domain>.<product>[@vN] (default: its newest port).")],
    consumer: Annotated[
        str, typer.Option("--for", help="<domain>.<product>, an email, team:<name> or sp:<name>.")
    ],
    purpose: Annotated[str, typer.Option(help="What the data is for, in a sentence.")],
    category: Annotated[
        PurposeCategory, typer.Option(help="Kind of use; the policy decides by it.")
    ] = PurposeCategory.REPORTING,
    columns: Annotated[str | None, typer.Option(help="Only these columns, comma-separated.")] = None,
    pii: Annotated[bool, typer.Option("--pii", help="Ask to read PII in clear (always decided).")] = False,
    until: Annotated[str | None, typer.Option(metavar="YYYY-MM-DD", help="Last day of access.")] = None,
    by: Annotated[str | None, typer.Option(help="Your email (default: git config user.email).")] = None,
) -> None:
    """Ask for access: writes the agreement file, prints the pull request's description."""
    from mesh_assets.govern import access_requests as requests

    try:
        end = date.fromisoformat(until) if until else None
    except ValueError as exc:
        raise typer.BadParameter(f"{until!r} is not a date YYYY-MM-DD", param_hint="--until") from exc
    root, registry = _loaded()
    try:
        outcome = requests.request(
            root,
            registry,
            target,
            consumer,
            purpose,
            category,
            _who(by),
            _now(),
            columns=[c.strip() for c in columns.split(",")] if columns else None,
            pii=pii,
            until=end,
        )
    except (requests.AccessError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"wrote {outcome.loaded.path.relative_to(root)}\n")
    typer.echo(outcome.message)


def _decide(action_name: str) -> Callable[..., None]:
    """The `approve`, `reject` or `revoke` command: one body, told apart by the action."""

    def command(
        agreement_id: Annotated[str, typer.Argument(help="The agreement's id (`mesh access list`).")],
        by: Annotated[str | None, typer.Option(help="Your email (default: git config user.email).")] = None,
        reason: Annotated[str, typer.Option(help="Why, recorded with the decision.")] = "",
    ) -> None:
        from mesh_assets.govern import access_requests as requests
        from mesh_assets.product.agreement import Action

        action = Action(action_name)
        if len(reason.strip()) < 3 and action != Action.APPROVE:
            raise _fail(f"say why with --reason: a {action.value} is recorded with its reason")
        root, registry = _loaded()
        try:
            outcome = requests.decide(
                root, registry, agreement_id, action, _who(by), reason.strip() or "approved", _now()
            )
        except (requests.AccessError, ValueError) as exc:
            raise _fail(str(exc)) from exc
        typer.echo(outcome.message)
        typer.echo("`mesh access sync` provisions the change once merged.")

    command.__doc__ = {
        "approve": "Approve a request (or confirm an approved agreement at its reassessment).",
        "reject": "Reject a request, saying why.",
        "revoke": "Revoke an agreement; `mesh access sync` then removes its grants.",
    }[action_name]
    return command


def list_agreements(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    product: Annotated[str | None, typer.Option(help="Only this provider <domain>.<product>.")] = None,
    consumer: Annotated[str | None, typer.Option(help="Only this consumer id.")] = None,
    expiring: Annotated[
        str | None, typer.Option(help="Only those ending or due for reassessment within, e.g. 30d.")
    ] = None,
) -> None:
    """Every agreement: consumer, port, purpose, decision and state, dates."""
    from mesh_assets.govern.access_report import rows

    _, registry = _loaded()
    today = _now().date()
    within = None
    if expiring:
        if not expiring.rstrip("d").isdigit():
            raise typer.BadParameter("write a number of days, e.g. 30d", param_hint="--expiring")
        within = timedelta(days=int(expiring.rstrip("d")))
    found = rows(registry, today, product=product, consumer=consumer, within=within)
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    if not found:
        typer.echo("no agreements" + (" match" if product or consumer or expiring else ""))
        return
    for row in found:
        typer.echo(
            f"{row['id']}\n  {row['consumer']} reads v{row['major']} for {row['purpose_category']}: "
            f"{row['purpose']}\n  decision: {row['approval']}"
            + (f" by {', '.join(row['approvers'])}" if row["approvers"] else "")
            + f"; state: {row['state']}; start {row['start'] or '-'}, end {row['end'] or '-'}, "
            f"reassess by {row['reassess_by'] or '-'}" + (" (PII in clear)" if row["pii_in_clear"] else "")
        )


def audit(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Verify every audit trail's chain; exit 1 naming the first edited entry."""
    from mesh_assets.govern.access_report import audit_logs
    from mesh_assets.infra import environment

    env = environment.resolve()
    results = audit_logs(env.root, env.data_dir)
    broken = [r for r in results if not r.intact]
    if as_json:
        payload = [
            {"file": str(r.path), "entries": r.entries, "intact": r.intact, "problem": r.problem}
            for r in results
        ]
        typer.echo(json.dumps({"intact": not broken, "logs": payload}, indent=2))
    else:
        for r in results:
            shown = r.path.relative_to(env.root) if r.path.is_relative_to(env.root) else r.path
            mark = "ok" if r.intact else "BROKEN"
            typer.echo(f"{mark:6} {shown}: {r.entries} entries" + (f": {r.problem}" if r.problem else ""))
        typer.echo(f"{len(results)} audit trail(s), {len(broken)} broken")
    raise typer.Exit(1 if broken else 0)


def migrate() -> None:
    """Move `access.approved_consumers` of every spec into agreement files."""
    from mesh_assets.govern import access_requests as requests
    from mesh_assets.infra import environment

    root = environment.resolve().root
    written = requests.migrate(root, _now())
    for path in written:
        typer.echo(f"wrote {path.relative_to(root)}")
    typer.echo(f"migrated {len(written)} approval(s); review them and commit")


def sync(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Read and plan; change nothing.")] = False,
    prune: Annotated[bool, typer.Option("--prune", help="Also revoke grants no agreement made.")] = False,
    database: Annotated[str | None, typer.Option(help="Database of the ports (default: the env's).")] = None,
    role_prefix: Annotated[str, typer.Option(help="Prefix of the mesh's roles.")] = DEFAULT_ROLE_PREFIX,
) -> None:
    """Make the warehouse grant exactly what the agreements in force need (on DuckDB: the plan)."""
    from mesh_assets.govern import access_audit, access_grants, access_sync
    from mesh_assets.infra import environment
    from mesh_assets.infra.warehouse.snowflake_names import DEFAULT_DATABASE

    env = environment.resolve()
    _, registry = _loaded()
    now = _now()
    name = database or (env.database if env.target == "snowflake" else DEFAULT_DATABASE)
    wanted = access_grants.desired(registry, now.date(), name, role_prefix)
    if env.target != "snowflake":
        _show_duckdb_plan(wanted)
        return
    from mesh_assets.infra.warehouse.snowflake_sign_in import SnowflakeSignIn, snowflake_connection

    with (
        snowflake_connection(SnowflakeSignIn.from_environ(os.environ), database=name) as connection,
        connection.cursor() as cursor,
    ):
        result = access_sync.sync(
            access_sync.cursor_runner(cursor),
            wanted,
            dry_run=dry_run,
            prune=prune,
            log=env.data_dir / access_audit.GRANTS_LOG,
            now=now,
        )
    _report_sync(result.plan, dry_run, prune)


def _show_duckdb_plan(wanted: DesiredState) -> None:
    """DuckDB has no grants: say so, and show the statements Snowflake would need."""
    from mesh_assets.govern import access_grants

    empty = access_grants.plan(wanted, access_grants.CurrentState())
    typer.echo(
        "DuckDB has no roles or grants: the platform's own reads enforce agreements (a consumer "
        "product reads only with one in force, PII protected unless it grants PII in clear). On "
        f"Snowflake the agreements in force need these {len(empty.statements())} statements:"
    )
    for statement in empty.statements():
        typer.echo(f"  {statement};")


def _report_sync(found: Plan, dry_run: bool, prune: bool) -> None:
    """The statements run (or to run), the drift found, and a count of each."""
    verb = "would run" if dry_run else "ran"
    for statement in found.statements(prune):
        typer.echo(f"  {statement};")
    for grant in found.drift:
        typer.secho(
            f"drift: {grant.grant_sql()} (no agreement made it; "
            + ("revoked" if prune and not dry_run else "left alone; --prune revokes it")
            + ")",
            fg="yellow",
        )
    typer.echo(
        f"{verb} {len(found.statements(prune))} statement(s): {len(found.create)} role(s), "
        f"{len(found.grant)} grant(s), {len(found.revoke)} revocation(s); {len(found.drift)} drift"
        + ("" if found.statements(prune) else " — nothing to do")
    )


def import_directory(
    csv_file: Annotated[Path, typer.Argument(help="kind,id,team,domain,clearance")],
) -> None:
    """Rewrite `domains/mesh/directory.yaml` from an identity-system export."""
    from mesh_assets.infra import environment
    from mesh_assets.product import directory as directory_module

    root = environment.resolve().root
    imported, issues = directory_module.import_csv(csv_file)
    for issue in issues:
        typer.secho(issue.render(), fg="red", err=True)
    if issues:
        raise typer.Exit(1)
    target = root / directory_module.DIRECTORY_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(directory_module.dump(imported))
    typer.echo(
        f"wrote {target.relative_to(root)}: {len(imported.people)} people, "
        f"{len(imported.service_principals)} service principals, {len(imported.teams)} teams"
    )


def register(app: typer.Typer) -> None:
    """Add the `access` group to the `mesh` command."""
    access = group(app, "access", "Access agreements: request, decide, list, audit and sync grants.")
    access.command()(request)
    for name in ("approve", "reject", "revoke"):
        access.command(name)(_decide(name))
    access.command("list")(list_agreements)
    access.command()(audit)
    access.command()(migrate)
    access.command()(sync)
    directory = typer.Typer(
        help="The directory of people, service principals and teams.", no_args_is_help=True
    )
    access.add_typer(directory, name="directory")
    directory.command("import")(import_directory)
