"""The catalog site builder: a home page with search and filters, and one page per data product.

The site is static and self-contained (no server, no CDN, no network): pages link to each other, to the
exported contracts and to the repository's files by relative paths, the search index is embedded in the
home page as JSON, and the stylesheet and script are copied beside the pages. It opens from a file
browser.

Each product page answers what (description, schema with meanings and examples), where (URI, table,
DuckDB and Snowflake snippets), when (last publish, check results, SLO status), with what (inputs,
consumers, a lineage picture), how (transformation and code), who (owner, access policy, how to request
access) and which versions (statuses, deprecations, contracts).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

import dagster as dg

from mesh_assets.catalog import lineage
from mesh_assets.catalog.bindings import binding_views
from mesh_assets.catalog.column_views import column_lineage
from mesh_assets.catalog.runtime import PortRuntime, unpublished_slos
from mesh_assets.contracts import odcs, odps
from mesh_assets.product import access, addressing, kinds, lifecycle
from mesh_assets.product.registry import Product, Registry, ResolvedInput
from mesh_assets.product.spec import Classification, DataProductSpec, OutputPort, ProductType, Status

MARKER = ".mesh-catalog"
"""File marking a folder as a catalog the builder may replace."""
PRODUCTS_DIR = "products"
CONTRACTS_DIR = "contracts"
ASSETS_DIR = "assets"
NOT_PUBLISHED = "not yet published"


class CatalogError(ValueError):
    """The catalog cannot be written where it was asked to."""


@dataclass(frozen=True)
class SiteReport:
    """What a build wrote."""

    path: Path
    """The site folder."""
    index: Path
    """The home page."""
    pages: int
    """HTML pages written (home page and one per product)."""
    products: int
    ports: int
    published_ports: int


def page_name(key: str) -> str:
    """A product page's file name, `<domain>.<product>.html`."""
    return f"{key}.html"


def _when(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return NOT_PUBLISHED
    delta = now - moment
    hours = delta.total_seconds() / 3600
    ago = (
        f"{int(delta.total_seconds() // 60)} min"
        if hours < 1
        else (f"{hours:.0f} h" if hours < 48 else f"{hours / 24:.0f} days")
    )
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC ({ago} ago)"


def _local_day(now: datetime) -> date:
    """The calendar day of `now` where the catalog is built (as `date.today()` would say)."""
    return now.astimezone().date() if now.tzinfo else now.date()


def _relative(target: Path, start: Path) -> str:
    """A relative URL from a folder to a file (forward slashes, as browsers expect)."""
    return Path(os.path.relpath(target.resolve(), start.resolve())).as_posix()


def _code_files(product: Product, root: Path) -> list[Path]:
    """The spec and the files of its transformation."""
    spec, folder = product.spec, product.folder
    found = [product.path, *kinds.kind_of(spec).code_files(spec, folder, root)]
    return [f for f in found if f.exists()]


def _snippets(
    product: Product, major: int, allowed_roles: list[str], deployment: odcs.Deployment
) -> dict[str, str]:
    spec = product.spec
    relation = addressing.port_relation(spec.domain, spec.name, major)
    quoted = relation.sql
    role = allowed_roles[0].upper() if allowed_roles else "<ROLE>"
    roles = (
        f"-- a role allowed to read: {', '.join(allowed_roles)}"
        if allowed_roles
        else "-- no role may read yet: ask the steward"
    )
    database = deployment.snowflake_database
    return {
        "duckdb_cli": f"duckdb -readonly {deployment.duckdb_path} -c 'SELECT * FROM {quoted} LIMIT 10'",
        "duckdb_python": (
            "import duckdb\n\n"
            "# read_only: DuckDB allows one writer per file, and the mesh may be publishing\n"
            f'with duckdb.connect("{deployment.duckdb_path}", read_only=True) as con:\n'
            f"    df = con.sql('SELECT * FROM {quoted}').df()"
        ),
        "snowflake_sql": (
            f"USE ROLE {role};  {roles}\n"
            "USE WAREHOUSE <your_warehouse>;\n"
            f"-- schema, table and column names are lowercase: keep the double quotes\n"
            f"SELECT * FROM {database}.{quoted} LIMIT 10;"
        ),
        "mesh_input": (
            "# dataproduct.yaml of your product\n"
            "input_ports:\n"
            f"  - product: {spec.key}\n"
            f"    version: '^{major}'\n"
            "    purpose: <what your product uses it for>\n\n"
            f"# SQL: {{{{ input('{spec.key}') }}}}    Python: inputs[\"{spec.key}\"]"
        ),
    }


def _column_views(product: Product, port: Any, registry: Registry) -> list[dict[str, Any]]:
    views = []
    lineage = column_lineage(product, port, registry)
    for column in port.columns:
        types = odcs.physical_types(column)
        views.append(
            {
                "name": column.name,
                "type": odcs.mesh_type(column),
                "duckdb": types["duckdb"],
                "snowflake": types["snowflake"],
                "nullable": column.nullable,
                "key": column.name in port.primary_key,
                "unique": column.unique or port.primary_key == [column.name],
                "pii": column.pii,
                "event_time": port.event_time == column.name,
                "description": column.description,
                "examples": ", ".join(str(e) for e in column.examples),
                "lineage": lineage[column.name],
            }
        )
    return views


def _request_access(product: Product) -> list[str]:
    spec = product.spec
    steward, team = spec.owner.steward, spec.owner.team
    if spec.access.mode == "approval_required":
        steps = [
            f"Access needs approval: only consumers holding an access agreement on {spec.key} may read it.",
            f"Ask with `mesh access request {spec.key}@v<major> --for <your product, team or email> "
            '--purpose "<why>"`: it writes the agreement file and names who decides (the steward, '
            f"{steward}, or the owner team {team}).",
            "Open a pull request with the file; once approved (`mesh access approve`), declare the input "
            "port in your product.",
        ]
    else:
        steps = [
            "Access is open: any product may declare this product as an input port.",
            "People and tools read it through one of the allowed roles; ask your platform admin for the "
            "role, or the steward if none fits.",
        ]
    if not spec.access_policy.allowed_roles:
        steps.append(f"No role may read it yet: ask {steward} ({team}) to grant one.")
    if any(c.pii for p in spec.output_ports for c in p.columns):
        handling = {"mask": "masked", "hash": "hashed", "remove": "removed"}[
            spec.access_policy.pii_handling.value
        ]
        steps.append(
            f"PII columns are {handling} for readers without the PII privilege; justify the need in your "
            "request."
        )
    return steps


def _agreement_readers(product: Product, registry: Registry) -> list[dict[str, Any]]:
    """Per served port: who reads it by agreement (in force or waiting) and the command to ask."""
    spec = product.spec
    registry.agreements  # noqa: B018 (reads the deferred agreement files once per registry)
    found = []
    for port in sorted(spec.output_ports, key=lambda p: -p.major):
        readers = []
        for loaded in sorted(access.agreements_of(spec), key=lambda a: a.id):
            agreement, state = loaded.agreement, loaded.state(registry.today).value
            if agreement.major != port.major or state not in {"requested", "approved", "active"}:
                continue
            readers.append(
                {
                    "consumer": agreement.consumer.id,
                    "kind": agreement.consumer.kind.value.replace("_", " "),
                    "purpose": agreement.purpose,
                    "state": state,
                    "pii": agreement.pii_in_clear,
                }
            )
        command = f'mesh access request {spec.key}@v{port.major} --for <you> --purpose "<why>"'
        found.append({"major": port.major, "readers": readers, "command": command})
    return found


def _product_view(
    product: Product,
    registry: Registry,
    runtime: dict[dg.AssetKey, PortRuntime],
    deployment: odcs.Deployment,
    pages_dir: Path,
    root: Path,
    now: datetime,
) -> dict[str, Any]:
    spec = product.spec
    consumers = registry.consumers_of(spec.key)
    ports = [
        _port_view(product, port, registry, runtime, deployment, consumers, now)
        for port in sorted(spec.output_ports, key=lambda p: -p.major)
    ]
    return {
        "key": spec.key,
        "name": spec.name,
        "domain": spec.domain,
        "title": spec.title,
        "status": spec.status.value,
        "product_type": spec.product_type.value,
        "classification": spec.classification.value,
        "business_capability": spec.business_capability,
        "tags": list(spec.tags),
        "description": spec.description.model_dump(),
        "owner": spec.owner.model_dump(),
        "support": {
            "channel": spec.support.channel,
            "kind": spec.support.kind,
        },
        "access": spec.access.model_dump(mode="json"),
        "access_policy": spec.access_policy.model_dump(mode="json"),
        "distribution_rights": spec.distribution_rights.model_dump(mode="json"),
        "data_sharing_agreement": spec.data_sharing_agreement.model_dump(mode="json"),
        "slos": spec.slos.model_dump(mode="json"),
        "request_access": _request_access(product),
        "agreement_readers": _agreement_readers(product, registry),
        "ports": ports,
        "inputs": _input_views(product, registry, _local_day(now)),
        "consumer_count": len({c.consumer.key for c in consumers}),
        "lineage": lineage.product_lineage(product, registry, page_name),
        "how": _how_view(product),
        "code": [
            {"label": f.resolve().relative_to(root.resolve()).as_posix(), "href": _relative(f, pages_dir)}
            for f in _code_files(product, root)
        ],
        "odps_href": f"../{CONTRACTS_DIR}/" + odps.descriptor_file_name(spec.domain, spec.name),
        "deprecated_ports": [p for p in ports if p["deprecation"]],
    }


def _port_view(
    product: Product,
    port: OutputPort,
    registry: Registry,
    runtime: dict[dg.AssetKey, PortRuntime],
    deployment: odcs.Deployment,
    consumers: list[ResolvedInput],
    now: datetime,
) -> dict[str, Any]:
    """One output port: its address, contract, last publish, checks, anomalies, SLOs and consumers."""
    spec = product.spec
    key = addressing.port_key(spec.domain, spec.name, port.major)
    relation = addressing.published(spec, port)
    state = runtime.get(key)
    published_at = state.published_at if state else None
    checks_view = _checks_view(spec, port, state, now)
    slos = state.slos if state else unpublished_slos(spec, now)
    return {
        "major": port.major,
        "version": port.version,
        "status": spec.port_status(port).value,
        "description": port.description,
        "deprecation": port.deprecation.model_dump(mode="json") if port.deprecation else None,
        # Past its sunset: still served, shown in red until its owner retires it.
        "overdue": lifecycle.is_overdue(spec, port, _local_day(now)),
        "lifecycle": lifecycle.describe(spec, port, _local_day(now)),
        "uri": addressing.port_uri(spec.domain, spec.name, port.major),
        "asset_key": key.to_user_string(),
        "table": relation.dotted,
        "duckdb_table": f"{deployment.duckdb_path} · {relation.dotted}",
        "snowflake_table": f'{deployment.snowflake_database}."{relation.schema}"."{relation.name}"',
        "columns": _column_views(product, port, registry),
        "primary_key": ", ".join(port.primary_key),
        "event_time": port.event_time,
        "row_count_min": port.quality.row_count.min,
        "snippets": _snippets(product, port.major, spec.access_policy.allowed_roles, deployment),
        "bindings": binding_views(deployment, spec, port),
        "contract_href": f"../{CONTRACTS_DIR}/"
        + addressing.contract_file_name(spec.domain, spec.name, port.major),
        "contract_id": addressing.contract_id(spec.domain, spec.name, port.major),
        "published": published_at is not None,
        "published_at": _when(published_at, now),
        "run_id": state.run_id if state else None,
        "row_count": state.row_count if state else None,
        "checks": checks_view,
        "checks_failed": sum(1 for c in checks_view if c["status"] == "failed"),
        "anomalies": [
            {
                "monitor": a.monitor,
                "bucket": a.bucket or "",
                "reason": a.reason,
                "at": _when(datetime.fromtimestamp(a.at, tz=UTC), now) if a.at else "",
            }
            for a in (state.anomalies if state else [])
        ],
        "slos": [vars(s) for s in slos],
        "consumers": [
            {"key": c.consumer.key, "href": page_name(c.consumer.key), "purpose": c.declared.purpose}
            for c in sorted(consumers, key=lambda c: c.consumer.key)
            if c.port.major == port.major
        ],
    }


def _checks_view(
    spec: DataProductSpec, port: OutputPort, state: PortRuntime | None, now: datetime
) -> list[dict[str, Any]]:
    """The port's checks as last run; before its first publish, the contract's rules, not yet run."""
    checks = state.checks if state else []
    if not checks:
        return [
            {
                "name": rule.name,
                "description": rule.description,
                "severity": rule.severity.value,
                "status": "not yet run",
                "observed": "",
                "threshold": "",
                "at": "",
            }
            for rule in odcs.port_rules(spec, port)
        ]
    return [
        {
            "name": c.name,
            "description": c.description,
            "severity": c.severity,
            "status": c.status,
            "observed": c.observed,
            "threshold": c.threshold,
            "at": _when(c.at, now) if c.at else "",
        }
        for c in checks
    ]


def _input_views(product: Product, registry: Registry, today: date) -> list[dict[str, Any]]:
    """The product's inputs: source extracts, and other products' ports with what they resolve to."""
    inputs = []
    for declared in product.spec.input_ports:
        source = getattr(declared, "source", None)
        if source is not None:
            inputs.append(
                {
                    "kind": "source",
                    "name": source,
                    "href": None,
                    "range": "",
                    "detail": f"{declared.format} extract",
                    "purpose": declared.description,
                    "deprecation": None,
                }
            )
            continue
        resolved = registry.resolve(product, declared)
        entry = {
            "kind": "product",
            "name": declared.product,
            "href": page_name(declared.product) if declared.product in registry.products else None,
            "range": declared.version,
            "purpose": declared.purpose,
            "detail": "",
            "deprecation": None,
            "overdue": False,
        }
        if resolved is not None:
            port_status = resolved.producer.spec.port_status(resolved.port).value
            entry["detail"] = f"v{resolved.port.major} ({resolved.port.version}, {port_status})"
            if resolved.port.deprecation is not None:
                entry["deprecation"] = resolved.port.deprecation.model_dump(mode="json")
                entry["overdue"] = lifecycle.is_overdue(resolved.producer.spec, resolved.port, today)
        inputs.append(entry)
    return inputs


def _how_view(product: Product) -> dict[str, Any]:
    """How the product is built, in the words of its kind (`product.kinds`)."""
    spec = product.spec
    kind = kinds.kind_of(spec)
    return {
        "kind": kind.name,
        "detail": kind.detail(spec),
        "internals": kind.internals(spec),
        "models": [spec.port_model(p) for p in sorted(spec.output_ports, key=lambda p: -p.major)],
    }


def _search_entry(view: dict[str, Any]) -> dict[str, Any]:
    """What the home page searches and filters on, for one product."""
    columns = sorted({c["name"] for p in view["ports"] for c in p["columns"]})
    statuses = sorted(
        {view["status"], *(p["status"] for p in view["ports"])}
        | ({lifecycle.OVERDUE} if any(p["overdue"] for p in view["ports"]) else set())
    )
    return {
        "key": view["key"],
        "title": view["title"],
        "domain": view["domain"],
        "type": view["product_type"],
        "status": statuses,
        "classification": view["classification"],
        "tags": view["tags"],
        "columns": columns,
        "text": " ".join(
            [
                view["key"],
                view["title"],
                view["business_capability"],
                *view["description"].values(),
                *(c["description"] for p in view["ports"] for c in p["columns"]),
                *(p["description"] or "" for p in view["ports"]),
            ]
        ),
        "href": f"{PRODUCTS_DIR}/{page_name(view['key'])}",
    }


def _json_for_script(data: Any) -> str:
    """JSON safe inside a <script> element (no `</script>` or HTML comment can close it early)."""
    text = json.dumps(data, ensure_ascii=False, sort_keys=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _environment() -> Any:
    import jinja2

    from mesh_assets.infra.environment import env_name

    templates = jinja2.Environment(
        loader=jinja2.PackageLoader("mesh_assets.catalog", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    # Every page's header names the environment (MESH_ENV) the catalog was built in.
    templates.globals["mesh_env"] = env_name()
    return templates


def _prepare(out_dir: Path) -> None:
    """Refuse to replace a folder the builder did not create (the site is rebuilt from scratch)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise CatalogError(f"{out_dir} is a file; give a folder for the catalog")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / MARKER).exists():
        raise CatalogError(
            f"{out_dir} is not empty and is not a catalog built by mesh; choose an empty or new folder"
        )


def _write_contracts(registry: Registry, folder: Path, deployment: odcs.Deployment) -> None:
    folder.mkdir(parents=True)
    odcs.export_contracts(registry, folder, deployment)
    odps.export_descriptors(registry, folder)


def build_site(
    registry: Registry,
    out_dir: Path,
    *,
    runtime: dict[dg.AssetKey, PortRuntime] | None = None,
    deployment: odcs.Deployment | None = None,
    now: datetime | None = None,
) -> SiteReport:
    """Build the catalog of every product of `registry` into `out_dir`, replacing a previous build.

    `runtime` is what the Dagster instance knows of each port (`runtime.read_runtime`); without it every
    port is shown as not yet published. The site is written to a sibling folder first and swapped in,
    so a failed build leaves the previous one intact.
    """
    out_dir = out_dir.resolve()
    _prepare(out_dir)
    runtime = runtime or {}
    deployment = deployment or odcs.Deployment()
    now = now or datetime.now(UTC)
    root = registry.root
    env = _environment()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        (staging / MARKER).write_text("Built by `mesh catalog build`; rebuilt from scratch on every build.\n")
        assets = staging / ASSETS_DIR
        assets.mkdir()
        for name in ("catalog.css", "catalog.js"):
            (assets / name).write_text(
                files("mesh_assets.catalog").joinpath("static", name).read_text("utf-8")
            )
        _write_contracts(registry, staging / CONTRACTS_DIR, deployment)
        pages_dir = staging / PRODUCTS_DIR
        pages_dir.mkdir()
        built = now.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        views = []
        for key in sorted(registry.products):
            # Links to repository files are computed from where the page will finally live.
            view = _product_view(
                registry.products[key], registry, runtime, deployment, out_dir / PRODUCTS_DIR, root, now
            )
            views.append(view)
            html = env.get_template("product.html").render(
                product=view, root="../", built=built, title=f"{view['title']} · {view['key']}"
            )
            (pages_dir / page_name(key)).write_text(html, encoding="utf-8")
        index = [_search_entry(v) for v in views]
        filters = {
            "domain": sorted({v["domain"] for v in views}),
            "type": [t.value for t in ProductType],
            "status": [s.value for s in Status] + [lifecycle.OVERDUE],
            "classification": [c.value for c in Classification],
        }
        published = sum(1 for v in views for p in v["ports"] if p["published"])
        ports = sum(len(v["ports"]) for v in views)
        home = env.get_template("index.html").render(
            products=views,
            filters=filters,
            index_json=_json_for_script(index),
            mesh_lineage=lineage.mesh_lineage(registry, lambda k: f"{PRODUCTS_DIR}/{page_name(k)}"),
            root="",
            built=built,
            title="Data product catalog",
            published=published,
            ports=ports,
            domains=len(filters["domain"]),
        )
        (staging / "index.html").write_text(home, encoding="utf-8")
        pages = 1 + len(views)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return SiteReport(
        path=out_dir,
        index=out_dir / "index.html",
        pages=pages,
        products=len(views),
        ports=ports,
        published_ports=published,
    )
