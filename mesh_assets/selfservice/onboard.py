"""`mesh new domain <name> --from-dbt <path>`: onboard an existing dbt project as a domain of the mesh.

The project is copied (or linked) under `dbt_projects/`, given the platform's `local`/`prod` profile, and
built once with `dbt build --empty` into a scratch DuckDB file: that parses it (a project that does not
parse is refused with dbt's own message) and reveals the exact column types every model returns. Then:

- the models the team marks public (`access: public`, or `config.meta.mesh.port: true`), or the
  `--port` selection, become output ports, one product each; every other model, seed and snapshot
  becomes an internal of the product whose port it feeds, so every asset key is
  `<domain>/<product>/...` and never collides with another domain's. A product reads another only
  through its port, so a model feeding several products (a shared staging model) is published as a
  product of its own, which they read;
- each port's contract comes from the dbt YAML and the built relation: columns in order with their
  types, descriptions and `meta.pii`; `not_null`/`unique` tests (under `tests:` or `data_tests:`) and
  constraints become nullability, uniqueness and the primary key; `accepted_values`, `accepted_range`
  and `relationships` to another port become quality rules; any other single-model test becomes a
  custom SQL rule from its compiled query, so no test is lost;
- what dbt does not know (owner team, steward, classification, freshness SLO) comes from flags, from
  the person running the command when it is a terminal, or from defaults (a dbt group's owner, git).

The port models' entries move out of the project's YAML into the product specs (the platform generates
their enforced contracts and tests into `models/_mesh_generated.yml`), and a model reading another
product's port model through `ref()` is pointed at the published port (`source('port_<domain>', ...)`)
instead of its unaudited candidate. In a linked project these edits land in the team's own files, and
are listed. Any refusal undoes every change, in a linked project too.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mesh_assets.product.versions import Semver
from mesh_assets.selfservice.changes import Changes, Scaffolded
from mesh_assets.selfservice.errors import ScaffoldError
from mesh_assets.selfservice.governance_defaults import Governance, humanize, resolve_governance
from mesh_assets.selfservice.prompts import Asker, answer, check_identifier, suggest_identifier
from mesh_assets.selfservice.spec_document import render_spec, spec_document
from mesh_assets.selfservice.workspace import create_domain, existing_domains
from mesh_assets.selfservice.yaml_style import Flow, FlowMap

_QUOTING = (
    "\n# Added by `mesh new domain --from-dbt`: quote identifiers so Snowflake keeps the lowercase names\n"
    "# the platform and DuckDB use.\nquoting:\n  database: false\n  schema: true\n  identifier: true\n"
)
_OWNED = ("model", "seed", "snapshot")
_INTEGER_FIX = "cast it as integer (or bigint)"
_PHYSICAL = {
    "VARCHAR": "string",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "DOUBLE": "double",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
}
_FIXES = {
    "HUGEINT": "cast it as bigint (DuckDB sums integers into HUGEINT)",
    "TINYINT": _INTEGER_FIX,
    "SMALLINT": _INTEGER_FIX,
    "UTINYINT": _INTEGER_FIX,
    "USMALLINT": _INTEGER_FIX,
    "UINTEGER": "cast it as bigint",
    "UBIGINT": "cast it as bigint or decimal(20,0)",
    "FLOAT": "cast it as double",
    "REAL": "cast it as double",
    "TIMESTAMP WITH TIME ZONE": "cast it as timestamp (UTC)",
    "TIMESTAMP_NS": "cast it as timestamp",
    "TIMESTAMP_MS": "cast it as timestamp",
    "TIMESTAMP_S": "cast it as timestamp",
}
_DECLARED = {
    "string": "string",
    "text": "string",
    "varchar": "string",
    "char": "string",
    "character varying": "string",
    "int": "integer",
    "integer": "integer",
    "int4": "integer",
    "bigint": "bigint",
    "int8": "bigint",
    "long": "bigint",
    "double": "double",
    "double precision": "double",
    "float8": "double",
    "float": "double",
    "boolean": "boolean",
    "bool": "boolean",
    "date": "date",
    "timestamp": "timestamp",
    "timestamp_ntz": "timestamp",
    "datetime": "timestamp",
}


class OnboardError(ScaffoldError):
    """A refusal to onboard a dbt project, saying why and how to fix it."""


@dataclass
class OnboardRequest:
    """Everything `mesh new domain --from-dbt` can be told; `None` means: ask, or use the default."""

    domain: str
    path: Path
    link: bool = False
    project: str | None = None
    ports: list[str] = field(default_factory=list)
    primary_keys: dict[str, list[str]] = field(default_factory=dict)
    description: str | None = None
    owner_team: str | None = None
    steward: str | None = None
    classification: str | None = None
    status: str | None = None
    freshness: str | None = None
    support_channel: str | None = None
    business_capability: str | None = None
    allowed_roles: list[str] | None = None


@dataclass
class PortPlan:
    """One port model of the dbt project and the product it becomes."""

    uid: str
    model: str
    product: str
    version: str
    columns: list[dict[str, Any]] = field(default_factory=list)
    primary_key: list[str] = field(default_factory=list)
    event_time: str | None = None
    rules: list[dict[str, Any]] = field(default_factory=list)
    internals: list[str] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    """Products (by name) of this domain the port's models read or reference."""
    description: str = ""
    title: str = ""
    tags: list[str] = field(default_factory=list)
    why: str = ""
    """Why a model the team did not mark became a port (e.g. `read by customers and orders`)."""


@dataclass
class Plan:
    """What onboarding will write: the products, and what it could not carry over."""

    ports: list[PortPlan]
    warnings: list[str] = field(default_factory=list)
    rewrites: dict[str, dict[str, str]] = field(default_factory=dict)
    """File (relative to the project) -> {referenced model: published-port source call}."""
    group_owner: tuple[str, str] | None = None


# --------------------------------------------------------------------------------------------------
# Running dbt
# --------------------------------------------------------------------------------------------------


def dbt_message(output: str) -> str:
    """dbt's output without its timestamps and blank lines: the message a person needs."""
    lines = [re.sub(r"^\s*\d\d:\d\d:\d\d\s+", "", line).rstrip() for line in output.splitlines()]
    return "\n".join(line for line in lines if line.strip()).strip()


def _run_dbt(args: list[str], project_dir: Path, scratch: Path) -> subprocess.CompletedProcess[str]:
    from mesh_assets.build.dbt_contracts import dbt_executable

    command = [
        dbt_executable(),
        *args,
        "--project-dir",
        str(project_dir),
        "--profiles-dir",
        str(project_dir),
    ]
    env = {
        **os.environ,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "MESH_DUCKDB_PATH": str(scratch / "onboard.duckdb"),
        "DBT_LOG_PATH": str(scratch / "logs"),
    }
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=project_dir)


def build_empty(project_dir: Path, scratch: Path) -> tuple[dict[str, Any], str | None]:
    """Parse the project and build it with `--empty` into a scratch DuckDB file.

    Returns the manifest and, when some models did not run on DuckDB, dbt's message (the contract then
    falls back to the YAML's declared data types). Refuses a project that does not parse with dbt's
    own message.
    """
    has_packages = any((project_dir / f).exists() for f in ("packages.yml", "dependencies.yml"))
    if has_packages and not (project_dir / "dbt_packages").exists():
        deps = _run_dbt(["deps", "--quiet", "--no-use-colors"], project_dir, scratch)
        if deps.returncode != 0:
            raise OnboardError(
                f"dbt could not install the project's packages:\n{dbt_message(deps.stdout + deps.stderr)}",
                exit_code=1,
            )
    result = _run_dbt(
        [
            "build",
            "--empty",
            "--quiet",
            "--no-use-colors",
            "--no-version-check",
            "--exclude-resource-type",
            "unit_test",
            "--target",
            "local",
            "--target-path",
            str(scratch / "target"),
        ],
        project_dir,
        scratch,
    )
    manifest = scratch / "target" / "manifest.json"
    message = dbt_message(result.stdout + "\n" + result.stderr)
    if not manifest.exists() or result.returncode >= 2:
        raise OnboardError(f"dbt could not parse the project:\n{message}", exit_code=1)
    return json.loads(manifest.read_text()), (message if result.returncode != 0 else None)


def relation_types(database: Path, nodes: list[dict[str, Any]]) -> dict[str, list[tuple[str, str]]]:
    """`(column, DuckDB type)` of each built node, by unique id (absent when it was not built)."""
    import duckdb

    if not database.exists():
        return {}
    found: dict[str, list[tuple[str, str]]] = {}
    with duckdb.connect(str(database), read_only=True) as connection:
        for node in nodes:
            rows = connection.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                [node["schema"], node.get("alias") or node["name"]],
            ).fetchall()
            if rows:
                found[node["unique_id"]] = [(str(name), str(dtype)) for name, dtype in rows]
    return found


# --------------------------------------------------------------------------------------------------
# From dbt to contracts
# --------------------------------------------------------------------------------------------------


def logical_type(physical: str) -> dict[str, Any]:
    """The contract type of a DuckDB column type; `OnboardError`-worthy text under `problem` otherwise."""
    upper = physical.upper().strip()
    if upper in _PHYSICAL:
        return {"type": _PHYSICAL[upper]}
    match = re.fullmatch(r"DECIMAL\((\d+),\s*(\d+)\)", upper)
    if match:
        return {"type": "decimal", "precision": int(match[1]), "scale": int(match[2])}
    return {
        "problem": f"type {physical} has no contract type: "
        + _FIXES.get(
            upper, "cast it to varchar, integer, bigint, double, decimal(p,s), boolean, date or timestamp"
        )
    }


def declared_type(data_type: str | None) -> dict[str, Any] | None:
    """The contract type of a `data_type` declared in the dbt YAML, if it maps to one."""
    if not data_type:
        return None
    text = data_type.strip().lower()
    match = re.fullmatch(r"(?:decimal|numeric)\s*\((\d+)\s*,\s*(\d+)\)", text)
    if match:
        return {"type": "decimal", "precision": int(match[1]), "scale": int(match[2])}
    kind = _DECLARED.get(text)
    return {"type": kind} if kind else None


def _meta(node: dict[str, Any]) -> dict[str, Any]:
    return {**(node.get("meta") or {}), **((node.get("config") or {}).get("meta") or {})}


def _mesh_meta(node: dict[str, Any]) -> dict[str, Any]:
    mesh = _meta(node).get("mesh")
    return mesh if isinstance(mesh, dict) else {}


def is_marked_port(node: dict[str, Any]) -> bool:
    """Whether the team marked the model public: `access: public` or `config.meta.mesh.port`."""
    mark = _mesh_meta(node).get("port")
    if mark is False:
        return False
    return bool(mark) or node.get("access") == "public"


def _severity(test: dict[str, Any]) -> str:
    return "warn" if str((test.get("config") or {}).get("severity", "error")).lower() == "warn" else "error"


def _this_sql(test: dict[str, Any], port: dict[str, Any]) -> str | None:
    """A single-model test's compiled query with the model's relation replaced by `{{ this }}`."""
    code = test.get("compiled_code")
    if not code:
        return None
    name = re.escape(port.get("alias") or port["name"])
    schema = re.escape(port["schema"])
    relation = rf'(?:"?[A-Za-z0-9_]+"?\.)?"?{schema}"?\."?{name}"?'
    # `dbt build --empty` wraps each read in a never-true subquery: unwrap it first.
    code = re.sub(rf"\(\s*select \* from {relation} where false limit 0\s*\)", "{{ this }}", code, flags=re.I)
    code = re.sub(relation, "{{ this }}", code)
    code = "\n".join(line.rstrip() for line in code.strip().splitlines() if line.strip())
    return code if "{{ this }}" in code else None


class _Derivation:
    """Turns the manifest (and the built column types) into a `Plan`."""

    def __init__(
        self,
        manifest: dict[str, Any],
        types: dict[str, list[tuple[str, str]]],
        domain: str,
        request: OnboardRequest,
        asker: Asker | None,
    ) -> None:
        self.manifest = manifest
        self.types = types
        self.domain = domain
        self.request = request
        self.asker = asker
        self.nodes = {
            uid: node for uid, node in manifest["nodes"].items() if node.get("resource_type") in _OWNED
        }
        self.models = {uid: n for uid, n in self.nodes.items() if n["resource_type"] == "model"}
        self.tests = [n for n in manifest["nodes"].values() if n.get("resource_type") == "test"]
        self.parents = {
            uid: [p for p in node.get("depends_on", {}).get("nodes", []) if p in self.nodes]
            for uid, node in self.nodes.items()
        }
        self.warnings: list[str] = []

    def by_name(self, name: str) -> str | None:
        """The unique id of the model called `name`."""
        return next((uid for uid, n in self.models.items() if n["name"] == name), None)

    def select_ports(self) -> list[str]:
        """The port models: the `--port` selection, else the marked models, else the person's choice."""
        names = sorted(n["name"] for n in self.models.values())
        if self.request.ports:
            chosen = []
            for name in self.request.ports:
                uid = self.by_name(name)
                if uid is None:
                    seeds = {n["name"] for n in self.nodes.values() if n["resource_type"] != "model"}
                    if name in seeds:
                        raise OnboardError(
                            f"--port {name}: '{name}' is a seed or snapshot; publish a model that selects "
                            "from it"
                        )
                    close = difflib.get_close_matches(name, names, n=3)
                    hint = f"did you mean {', '.join(close)}?" if close else f"models: {', '.join(names)}"
                    raise OnboardError(f"--port {name}: no model '{name}' in the project; {hint}")
                chosen.append(uid)
            return list(dict.fromkeys(chosen))
        marked = [uid for uid, node in self.models.items() if is_marked_port(node)]
        if marked:
            return sorted(marked, key=lambda u: self.models[u]["name"])
        read = {p for uid in self.nodes for p in self.parents[uid]}
        leaves = sorted(n["name"] for uid, n in self.models.items() if uid not in read)
        if self.asker is not None:
            text = answer(
                None,
                label="No model is marked public. Models to publish as output ports (comma-separated)",
                flag="--port",
                default=",".join(leaves),
                asker=self.asker,
            )
            self.request.ports = [t.strip() for t in text.split(",") if t.strip()]
            return self.select_ports()
        raise OnboardError(
            "no model is marked as an output port: mark the models other teams may read with "
            "`access: public` (or `config: {meta: {mesh: {port: true}}}`) in the dbt YAML, or pass "
            f"--port <model> for each; candidates (models nothing else reads): {', '.join(leaves)}"
        )

    def check_port(self, uid: str) -> None:
        """Refuse a model the platform cannot publish as is (versions, ephemeral, custom schema/alias)."""
        node = self.models[uid]
        name = node["name"]
        config = node.get("config") or {}
        if node.get("version") is not None:
            raise OnboardError(
                f"model {name} uses dbt model versions; the mesh versions ports itself (one port per major): "
                "onboard its latest version as a plain model"
            )
        if config.get("materialized") == "ephemeral":
            raise OnboardError(f"model {name} is ephemeral; a port needs a table or view: materialize it")
        wanted = f"{self.domain}_internal"
        if node["schema"] != wanted or (node.get("alias") or name) != name:
            raise OnboardError(
                f"model {name} builds {node['schema']}.{node.get('alias') or name}, but a port's candidate "
                f"must be {wanted}.{name}: remove its custom schema/alias config (dbt_project.yml or the "
                "model's config())"
            )

    def new_port(self, uid: str, ports: dict[str, PortPlan], why: str = "") -> PortPlan:
        """The product a port model becomes (named and versioned by `meta.mesh`, else by the model)."""
        self.check_port(uid)
        node = self.models[uid]
        mesh = _mesh_meta(node)
        product = str(mesh.get("product") or node["name"])
        check_identifier("product", product)
        version = mesh.get("version") or (mesh.get("port") if isinstance(mesh.get("port"), str) else None)
        version = str(version or "1.0.0")
        try:
            Semver.parse(version)
        except ValueError:
            raise OnboardError(f"model {node['name']}: meta.mesh.version '{version}' is not x.y.z") from None
        if product in {p.product for p in ports.values()}:
            raise OnboardError(
                f"two port models would both become product '{product}'; set meta.mesh.product apart"
            )
        port = PortPlan(uid=uid, model=node["name"], product=product, version=version, why=why)
        ports[uid] = port
        return port

    def plan(self) -> Plan:
        """Ports, products, contracts and everything that could not be carried over."""
        for uid in self.nodes:
            check_identifier("dbt model", self.nodes[uid]["name"])
        port_uids = self.select_ports()
        ports: dict[str, PortPlan] = {}
        for uid in port_uids:
            self.new_port(uid, ports)
        owner = self.assign_internals(ports)
        self.link_products(ports, owner)
        for port in ports.values():
            self.contract(port, ports)
        rewrites = self.ref_rewrites(ports, owner)
        sources = sorted(
            f"{s['source_name']}.{s['name']}"
            for s in self.manifest.get("sources", {}).values()
            if any(s["unique_id"] in n.get("depends_on", {}).get("nodes", []) for n in self.nodes.values())
        )
        if sources:
            self.warnings.append(
                f"the project reads dbt source(s) {', '.join(sources)}, which the platform does not land: "
                "the tables must exist in the warehouse. To have the mesh land an extract instead, declare "
                "it as `- source: <system>.<extract>` in the product's input_ports and drop the dbt source"
            )
        plan = Plan(ports=sorted(ports.values(), key=lambda p: p.product), warnings=self.warnings)
        plan.rewrites = rewrites
        plan.group_owner = self.group_owner(port_uids)
        return plan

    def claims(self, ports: dict[str, PortPlan]) -> dict[str, set[str]]:
        """For each node, the products whose port it feeds (walking up from each port to the next)."""
        claims: dict[str, set[str]] = {}
        for uid, port in ports.items():
            stack = list(self.parents[uid])
            while stack:
                node = stack.pop()
                if node in ports or port.product in claims.get(node, set()):
                    continue
                claims.setdefault(node, set()).add(port.product)
                stack += self.parents[node]
        return claims

    def ancestors(self, uid: str) -> set[str]:
        """Every node upstream of `uid`."""
        found: set[str] = set()
        stack = list(self.parents[uid])
        while stack:
            node = stack.pop()
            if node not in found:
                found.add(node)
                stack += self.parents[node]
        return found

    def assign_internals(self, ports: dict[str, PortPlan]) -> dict[str, PortPlan]:
        """Every model, seed and snapshot to one product: the port it feeds (or is fed by).

        A product reads another only through its output port, so a model feeding several products (a
        shared staging model, say) becomes a product of its own, whose port they all read.
        """
        while True:
            claims = self.claims(ports)
            shared = {uid for uid, products in claims.items() if len(products) > 1}
            if not shared:
                break
            # Promote the shared nodes nearest the ports; what feeds only them then belongs to them.
            nearest = sorted(u for u in shared if not any(u in self.ancestors(o) for o in shared - {u}))
            for uid in nearest:
                node = self.nodes[uid]
                readers = " and ".join(sorted(claims[uid]))
                if node["resource_type"] != "model":
                    raise OnboardError(
                        f"{node['resource_type']} {node['name']} is read directly by {readers}; a product "
                        "reads another only through its output port: add a staging model selecting from it "
                        "that both read, or publish one of them with --port"
                    )
                self.new_port(uid, ports, why=f"read by {readers}")
                self.warnings.append(
                    f"{node['name']} feeds {readers}: published as the product {ports[uid].product} so that "
                    "they read its port (a product's internals are its own)"
                )
        owner: dict[str, PortPlan] = dict(ports)
        by_product = {p.product: p for p in ports.values()}
        for node, products in claims.items():
            owner[node] = by_product[next(iter(products))]
        progress = True
        while progress:
            progress = False
            for uid in sorted(self.nodes):
                if uid in owner:
                    continue
                upstream = sorted(
                    (owner[p] for p in self.parents[uid] if p in owner), key=lambda p: p.product
                )
                if upstream:
                    owner[uid], progress = upstream[0], True
        first = sorted(ports.values(), key=lambda p: p.product)[0]
        for uid in sorted(self.nodes):
            if uid not in owner:
                owner[uid] = first
                self.warnings.append(
                    f"{self.nodes[uid]['name']} feeds no port: it is listed as an internal of {first.product}"
                )
        for uid, port in owner.items():
            if uid not in ports:
                port.internals.append(self.nodes[uid]["name"])
        for port in ports.values():
            port.internals.sort()
        return owner

    def link_products(self, ports: dict[str, PortPlan], owner: dict[str, PortPlan]) -> None:
        """A product whose models read another product's port declares it as an input port."""
        for uid, port in owner.items():
            for parent in self.parents[uid]:
                if parent in ports and ports[parent] is not port and ports[parent].product not in port.inputs:
                    port.inputs.append(ports[parent].product)

    def ref_rewrites(
        self, ports: dict[str, PortPlan], owner: dict[str, PortPlan]
    ) -> dict[str, dict[str, str]]:
        """Reads of another product's port model through `ref()`, to point at the published port."""
        from mesh_assets.build.dbt_contracts import port_source_name

        rewrites: dict[str, dict[str, str]] = {}
        for uid, port in owner.items():
            node = self.nodes[uid]
            for parent in self.parents[uid]:
                producer = ports.get(parent)
                if producer is None or producer is port:
                    continue
                major = Semver.parse(producer.version).major
                call = f"source('{port_source_name(self.domain)}', '{producer.product}_v{major}')"
                if node["resource_type"] != "seed":
                    rewrites.setdefault(node["original_file_path"], {})[producer.model] = call
        return rewrites

    def group_owner(self, port_uids: list[str]) -> tuple[str, str] | None:
        """Team and email of the first port model's dbt group owner: what dbt knows of ownership."""
        groups = self.manifest.get("groups") or {}
        for uid in port_uids:
            group = self.models[uid].get("group")
            found = next((g for g in groups.values() if g.get("name") == group), None)
            email = ((found or {}).get("owner") or {}).get("email")
            if group and email:
                return suggest_identifier(group), email
        return None

    def contract(self, port: PortPlan, ports: dict[str, PortPlan]) -> None:
        """The port's columns, key, rules and descriptions, from the built relation and the dbt YAML."""
        node = self.models[port.uid]
        yaml_columns = node.get("columns") or {}
        built = self.types.get(port.uid)
        problems = []
        columns: list[dict[str, Any]] = []
        if built:
            for name, physical in built:
                kind = logical_type(physical)
                if "problem" in kind:
                    problems.append(f"{port.model}.{name}: {kind['problem']}")
                columns.append({"name": name, **kind})
            missing = sorted(set(yaml_columns) - {c["name"] for c in columns})
            if missing:
                self.warnings.append(
                    f"{port.model}: documented column(s) {', '.join(missing)} are not returned by the model; "
                    "left out of the contract"
                )
        else:
            for name, column in yaml_columns.items():
                kind = declared_type(column.get("data_type"))
                if kind is None:
                    problems.append(
                        f"{port.model}.{name}: the model did not build on DuckDB and the YAML declares no "
                        "usable data_type for it"
                    )
                columns.append({"name": name, **(kind or {})})
            if not columns:
                problems.append(
                    f"{port.model}: the model did not build on DuckDB and its YAML lists no columns"
                )
        if problems:
            raise OnboardError(
                "the port's contract cannot be derived:\n" + "\n".join(f"  - {p}" for p in problems)
            )
        names = [c["name"] for c in columns]
        bad = [n for n in names if not re.fullmatch(r"[a-z][a-z0-9_]*", n)]
        if bad:
            raise OnboardError(
                f"{port.model}: column(s) {', '.join(bad)} are not lowercase identifiers; "
                "alias them in the model"
            )
        not_null: set[str] = set()
        unique: set[str] = set()
        key_candidates: list[list[str]] = []
        for name, column in yaml_columns.items():
            for constraint in column.get("constraints") or []:
                if constraint.get("type") == "not_null":
                    not_null.add(name)
                if constraint.get("type") == "primary_key":
                    key_candidates.insert(0, [name])
        for constraint in node.get("constraints") or []:
            if constraint.get("type") == "primary_key" and constraint.get("columns"):
                key_candidates.insert(0, list(constraint["columns"]))
        rules: list[dict[str, Any]] = []
        for test in self.tests:
            attached = test.get("attached_node")
            single = test.get("depends_on", {}).get("nodes", []) == [port.uid]
            # A test belongs to the model it is attached to (a relationships test is attached to the
            # referencing model, though it reads both); a singular test to the one model it reads.
            if attached != port.uid and not (attached is None and single):
                continue
            self.map_test(test, port, ports, names, not_null, unique, key_candidates, rules)
        mesh = _mesh_meta(node)
        flagged = self.request.primary_keys.get(port.model) or mesh.get("primary_key")
        if isinstance(flagged, str):
            flagged = [k.strip() for k in flagged.split(",")]
        if flagged:
            key = list(flagged)
        else:
            both = [n for n in names if n in unique and n in not_null]
            key = next(iter(key_candidates), None) or both[:1] or [n for n in names if n in unique][:1]
        if not key and self.asker is not None:
            text = answer(
                None,
                label=f"Primary key of {port.model} (comma-separated columns of {', '.join(names)})",
                flag="--primary-key",
                default=names[0],
                asker=self.asker,
            )
            key = [k.strip() for k in text.split(",") if k.strip()]
        if not key:
            raise OnboardError(
                f"{port.model}: no primary key found (a unique + not_null test, a primary_key constraint or "
                "dbt_utils.unique_combination_of_columns); pass "
                f"--primary-key {port.model}=<column>[,<column>]"
            )
        unknown = [k for k in key if k not in names]
        if unknown:
            raise OnboardError(
                f"{port.model}: primary key column(s) {', '.join(unknown)} not in {', '.join(names)}"
            )
        for column in columns:
            name = column["name"]
            props = yaml_columns.get(name) or {}
            description = (props.get("description") or "").strip()
            if name in not_null or name in key:
                column["nullable"] = False  # nullable is the default; specs state only `false`
            if name in unique or key == [name]:
                column["unique"] = True
            meta = _meta(props)
            if meta.get("pii") or meta.get("contains_pii") or (meta.get("mesh") or {}).get("pii"):
                column["pii"] = True
            column["description"] = (
                description if len(description) >= 3 else f"`{name}` of the dbt model {port.model}."
            )
        port.columns = [FlowMap(_ordered(c)) for c in columns]
        port.primary_key = key
        event_time = (node.get("config") or {}).get("event_time")
        port.event_time = event_time if event_time in names else None
        port.rules = rules
        port.description = (node.get("description") or "").strip()
        port.title = str(mesh.get("title") or humanize(port.product))
        tags = (node.get("config") or {}).get("tags") or node.get("tags") or []
        port.tags = ["dbt", *(t for t in tags if re.fullmatch(r"[a-z0-9][a-z0-9_-]*", str(t)))]

    def map_test(
        self,
        test: dict[str, Any],
        port: PortPlan,
        ports: dict[str, PortPlan],
        names: list[str],
        not_null: set[str],
        unique: set[str],
        key_candidates: list[list[str]],
        rules: list[dict[str, Any]],
    ) -> None:
        """One dbt test of the port: a column property, a key, a quality rule, or a warning."""
        meta = test.get("test_metadata") or {}
        kind, namespace = meta.get("name"), meta.get("namespace")
        kwargs = meta.get("kwargs") or {}
        column = test.get("column_name") or kwargs.get("column_name")
        config = test.get("config") or {}
        conditional = bool(config.get("where")) or config.get("limit") is not None
        severity = _severity(test)
        depends = test.get("depends_on", {}).get("nodes", [])
        label = f"{kind or test['name']} on {port.model}" + (f".{column}" if column else "")
        plain = not conditional and namespace in (None, "dbt") and column in names
        if plain and kind == "not_null" and severity == "error":
            not_null.add(column)
            return
        if plain and kind == "unique" and severity == "error":
            unique.add(column)
            return
        if plain and kind == "accepted_values":
            values = kwargs.get("values") or []
            if values and all(isinstance(v, str | int) and not isinstance(v, bool) for v in values):
                rules.append(
                    FlowMap(type="accepted_values", column=column, values=Flow(values), **_sev(severity))
                )
                return
        if not conditional and kind == "accepted_range" and column in names and kwargs.get("inclusive", True):
            bounds = {k: kwargs[f"{k}_value"] for k in ("min", "max") if kwargs.get(f"{k}_value") is not None}
            if bounds:
                rules.append(FlowMap(type="range", column=column, **bounds, **_sev(severity)))
                return
        if kind == "unique_combination_of_columns" and not conditional:
            combination = kwargs.get("combination_of_columns") or []
            if combination and all(c in names for c in combination):
                key_candidates.append(list(combination))
                return
        if kind == "relationships" and not conditional and column in names:
            targets = [d for d in depends if d != port.uid]
            target = ports.get(targets[0]) if len(targets) == 1 else None
            if target is not None and target is not port:
                field_name = str(kwargs.get("field") or column)
                rules.append(
                    FlowMap(
                        type="references",
                        column=column,
                        port=f"{self.domain}.{target.product}",
                        to_column=field_name,
                        **_sev(severity),
                    )
                )
                if target.product not in port.inputs:
                    port.inputs.append(target.product)
                return
        if depends == [port.uid]:
            query = _this_sql(test, self.models[port.uid])
            if query is not None:
                taken = {r.get("name") for r in rules}
                name = suggest_identifier(f"{kind or 'test'}__{column or 'table'}")[:63]
                while name in taken:
                    name = (name[:60] + "_2")[:63]
                rules.append(
                    {
                        "type": "sql",
                        "name": name,
                        "description": f"From the dbt test {test['name']}.",
                        "query": query,
                        **_sev(severity),
                    }
                )
                return
        self.warnings.append(
            f"the dbt test {label} is not carried over (it reads other models); add it as a quality rule "
            "(type: sql) in the product's spec if it still matters"
        )


def plan_onboarding(
    manifest: dict[str, Any],
    types: dict[str, list[tuple[str, str]]],
    domain: str,
    request: OnboardRequest,
    asker: Asker | None = None,
) -> Plan:
    """What onboarding a parsed project (and its built column types) as `domain` would write."""
    return _Derivation(manifest, types, domain, request, asker).plan()


def _sev(severity: str) -> dict[str, str]:
    return {"severity": "warn"} if severity == "warn" else {}


def _ordered(column: dict[str, Any]) -> dict[str, Any]:
    order = ["name", "type", "precision", "scale", "nullable", "unique", "pii", "description"]
    return {k: column[k] for k in order if k in column}


# --------------------------------------------------------------------------------------------------
# Editing the project
# --------------------------------------------------------------------------------------------------


def remove_model_entries(text: str, names: set[str]) -> str:
    """The properties YAML without the `models:` entries named `names`, keeping comments and layout.

    Works on the text so the team's comments survive; if the file's layout defeats that (flow style,
    anchors), falls back to rewriting the parsed YAML.
    """
    original = yaml.safe_load(text) or {}
    wanted = dict(original)
    wanted["models"] = [m for m in original.get("models") or [] if (m or {}).get("name") not in names]
    if not wanted["models"]:
        del wanted["models"]
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if re.match(r"^models:\s*(#.*)?$", line)), None)
    result = None
    if start is not None:
        end = next(
            (i for i in range(start + 1, len(lines)) if re.match(r"^[^\s#-]", lines[i])),
            len(lines),
        )
        items = [i for i in range(start + 1, end) if re.match(r"^\s*- ", lines[i])]
        indent = min((len(lines[i]) - len(lines[i].lstrip()) for i in items), default=0)
        items = [i for i in items if len(lines[i]) - len(lines[i].lstrip()) == indent]
        drop: set[int] = set()
        for position, first in enumerate(items):
            last = items[position + 1] if position + 1 < len(items) else end
            # Comments and blank lines right before the next item belong to it, not to this one.
            while last - 1 > first and (
                not lines[last - 1].strip() or lines[last - 1].lstrip().startswith("#")
            ):
                last -= 1
            block = "".join(line[indent:] for line in lines[first:last])
            entry = (yaml.safe_load(block) or [None])[0]
            if isinstance(entry, dict) and entry.get("name") in names:
                # The comment lines right above an entry describe it: they go with it.
                above = first
                while above - 1 > start and lines[above - 1].lstrip().startswith("#"):
                    above -= 1
                drop |= set(range(above, last))
        kept = [line for i, line in enumerate(lines) if i not in drop]
        if not any(re.match(r"^\s*- ", kept[i]) for i in range(start + 1, min(len(kept), end - len(drop)))):
            kept[start] = re.sub(r"^models:", "models: []", kept[start])
        result = "".join(kept)
        parsed = yaml.safe_load(result) or {}
        if parsed.get("models") == []:
            parsed.pop("models")
        if parsed != wanted:
            result = None
    if result is None:
        result = yaml.safe_dump(wanted, sort_keys=False, width=110)
    return result


def rewrite_refs(text: str, replacements: dict[str, str]) -> str:
    """SQL with `ref('<model>')` (also `ref('<package>', '<model>')`) replaced by the given calls."""
    for model, call in replacements.items():
        pattern = rf"""ref\(\s*(?:['"][A-Za-z0-9_]+['"]\s*,\s*)?['"]{re.escape(model)}['"]\s*\)"""
        text = re.sub(pattern, call, text)
    return text


def _place(source: Path, target: Path, link: bool, changes: Changes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if link:
        target.symlink_to(source, target_is_directory=True)
    else:
        shutil.copytree(
            source,
            target,
            ignore=shutil.ignore_patterns(
                "target", "logs", ".git", ".venv", "__pycache__", "*.duckdb*", ".user.yml"
            ),
        )
    changes.adopt(target)


def _write_profile(project_dir: Path, profile: str, domain: str, link: bool, changes: Changes) -> list[str]:
    from mesh_assets.selfservice.templates import dbt_profiles

    path = project_dir / "profiles.yml"
    notes = []
    if path.exists():
        existing = yaml.safe_load(path.read_text()) or {}
        outputs = (existing.get(profile) or {}).get("outputs") or {}
        if link:
            if not {"local", "prod"} <= set(outputs):
                raise OnboardError(
                    f"{path} has no `local` and `prod` targets for profile '{profile}', which the platform "
                    "runs: add them (see dbt_projects/sales/profiles.yml), or onboard a copy (without --link)"
                )
            return notes
        notes.append("replaced the project's profiles.yml with the platform's local and prod targets")
    # Models build in the domain's private schema: the platform publishes ports from there after audit.
    changes.write(path, dbt_profiles(profile, f"{domain}_internal"))
    return notes


# --------------------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------------------


def onboard(root: Path, request: OnboardRequest, asker: Asker | None = None) -> Scaffolded:
    """Onboard the dbt project at `request.path` as the new domain `request.domain`; or refuse."""
    from mesh_assets.build.dbt_contracts import GENERATED_FILE, prepare
    from mesh_assets.product.registry import GOVERNANCE_DOMAIN, load_registry

    root = root.resolve()
    domain = request.domain
    check_identifier("domain", domain)
    if (
        domain == GOVERNANCE_DOMAIN
        or domain in existing_domains(root)
        or (root / "domains" / domain).exists()
    ):
        raise OnboardError(
            f"domain '{domain}' already exists; onboard the dbt project as a new domain (another name)"
        )
    source = request.path.expanduser().resolve()
    if not (source / "dbt_project.yml").is_file():
        raise OnboardError(f"{request.path} is not a dbt project: it has no dbt_project.yml")
    config = yaml.safe_load((source / "dbt_project.yml").read_text()) or {}
    profile = str(config.get("profile") or config.get("name") or domain)
    project = request.project or domain
    check_identifier("dbt project", project)
    target = root / "dbt_projects" / project
    # A project already placed under dbt_projects/ (and used by no product) is onboarded where it is.
    in_place = target.exists() and target.resolve() == source
    if in_place and any(
        getattr(p.spec.transformation, "project", None) == project
        for p in load_registry(root).products.values()
    ):
        raise OnboardError(f"dbt_projects/{project} already builds products; onboard another project")
    if (target.exists() or target.is_symlink()) and not in_place:
        raise OnboardError(f"dbt_projects/{project} already exists; pass --project <another name>")
    for key in request.primary_keys.values():
        for column in key:
            check_identifier("column", column)

    changes = Changes(root)
    notes: list[str] = []
    try:
        if not in_place:
            _place(source, target, request.link, changes)
        notes += _write_profile(target, profile, domain, request.link or in_place, changes)
        project_file = target / "dbt_project.yml"
        if "quoting" not in (yaml.safe_load(project_file.read_text()) or {}):
            changes.write(project_file, project_file.read_text().rstrip("\n") + "\n" + _QUOTING)
        changes.record(target / "dbt_packages")  # `dbt deps` may install them (into a linked project too)
        with tempfile.TemporaryDirectory(prefix="mesh-onboard-") as folder:
            scratch = Path(folder)
            manifest, build_problem = build_empty(target, scratch)
            owned = [n for n in manifest["nodes"].values() if n.get("resource_type") == "model"]
            types = relation_types(scratch / "onboard.duckdb", owned)
        if build_problem:
            notes.append(
                "some models did not build on DuckDB; their contracts use the YAML's data types:\n"
                + build_problem
            )
        registry = load_registry(root)
        plan = plan_onboarding(manifest, types, domain, request, asker)
        group = plan.group_owner
        pii = any(c.get("pii") for p in plan.ports for c in p.columns)
        governance = resolve_governance(
            root,
            registry,
            domain,
            owner_team=request.owner_team,
            steward=request.steward,
            classification=request.classification,
            status=request.status,
            freshness=request.freshness,
            support_channel=request.support_channel,
            business_capability=request.business_capability,
            allowed_roles=request.allowed_roles,
            default_classification="confidential" if pii else "internal",
            default_status="active",
            asker=asker,
            defaults={"team": group[0], "steward": group[1]} if group else None,
        )
        _edit_project(target, manifest, plan, changes)
        description = request.description or f"onboarded from the dbt project {config.get('name', project)}"
        create_domain(root, domain, description, changes)
        for port in plan.ports:
            _write_spec(root, domain, project, port, plan, governance, changes)
        for written in (GENERATED_FILE, "target", "logs"):
            changes.record(target / written)  # in a linked project, undo what dbt writes too
        try:
            prepare(load_registry(root), project)
        except RuntimeError as exc:
            raise OnboardError(str(exc), exit_code=1) from exc
        notes += _settle(root, domain, project, plan, governance, changes)
    except BaseException:
        changes.rollback()
        raise
    created, modified = changes.report()
    for port in plan.ports:
        notes.append(
            f"{domain}.{port.product}: port v{Semver.parse(port.version).major} from model {port.model} "
            f"({len(port.columns)} columns, key {', '.join(port.primary_key)}, {len(port.rules)} rule(s)); "
            f"internals: {', '.join(port.internals) or 'none'}"
            + (f"; reads {', '.join(port.inputs)}" if port.inputs else "")
        )
    notes += [f"warning: {w}" for w in plan.warnings]
    return Scaffolded(
        created=created,
        modified=modified,
        notes=notes,
        next_steps=["mesh validate", f"mesh run --domain {domain}"],
    )


def _edit_project(project_dir: Path, manifest: dict[str, Any], plan: Plan, changes: Changes) -> None:
    """Move the port models' properties out of the project's YAML; point cross-product refs at ports."""
    by_file: dict[str, set[str]] = {}
    for port in plan.ports:
        patch = manifest["nodes"][port.uid].get("patch_path")
        if patch:
            by_file.setdefault(patch.split("://", 1)[-1], set()).add(port.model)
    for relative, names in by_file.items():
        path = project_dir / relative
        header = (
            f"# {', '.join(sorted(names))}: moved to the product specs under domains/ when the project "
            "joined "
            "the mesh; their\n# contracts and tests are generated into models/_mesh_generated.yml "
            "(`mesh prepare`).\n"
        )
        changes.write(path, header + remove_model_entries(path.read_text(), names))
    for relative, replacements in plan.rewrites.items():
        path = project_dir / relative
        changes.write(path, rewrite_refs(path.read_text(), replacements))


def _write_spec(
    root: Path,
    domain: str,
    project: str,
    port: PortPlan,
    plan: Plan,
    governance: Governance,
    changes: Changes,
) -> None:
    folder = root / "domains" / domain / "products" / port.product
    major = Semver.parse(port.version).major
    purpose = (
        port.description
        if len(port.description) >= 10
        else (
            f"The {port.model} model of the {project} dbt project, published as a governed port of the "
            f"{domain} domain" + (f" ({port.why})." if port.why else ".")
        )
    )
    output: dict[str, Any] = {"version": port.version}
    if port.model != f"{port.product}_v{major}":
        output["model"] = port.model
    output["columns"] = port.columns
    output["primary_key"] = Flow(port.primary_key)
    if port.event_time:
        output["event_time"] = port.event_time
    output["quality"] = {"row_count": FlowMap({"min": 1}), "rules": port.rules}
    document = spec_document(
        name=port.product,
        domain=domain,
        title=port.title,
        purpose=purpose,
        usage=f"Read the published port {domain}.{port.product}_v{major}; one row per "
        f"{', '.join(port.primary_key)}.",
        limitations="The contract was derived from the dbt project's YAML and the model's column types when "
        "the project joined the mesh; the dbt YAML no longer describes this model, the spec does.",
        governance=governance,
        product_type="aggregate" if port.inputs else "source-aligned",
        tags=list(dict.fromkeys([domain.replace("_", "-"), *port.tags])),
        input_ports=[
            {
                "product": f"{domain}.{name}",
                "version": f"^{Semver.parse(next(p.version for p in plan.ports if p.product == name)).major}",
                "purpose": "Read by this product's dbt models or referenced by its rules.",
            }
            for name in port.inputs
        ],
        transformation={"kind": "dbt", "project": project, "internals": Flow(port.internals)},
        output_ports=[output],
    )
    changes.write(folder / "dataproduct.yaml", render_spec(document, folder))


def _settle(
    root: Path, domain: str, project: str, plan: Plan, governance: Governance, changes: Changes
) -> list[str]:
    """Validate the new domain; drop custom SQL rules the platform refuses (saying so); refuse the rest."""
    from mesh_assets.product.registry import load_registry
    from mesh_assets.selfservice.check import product_problems

    notes = []
    registry = load_registry(root)
    for port in plan.ports:
        folder = (root / "domains" / domain / "products" / port.product).resolve()
        issues = [i for i in registry.errors if i.file.resolve().parent == folder]
        rule_of = {i: re.match(r"output_ports\[0\]\.quality\.rules\[(\d+)\]", i.field) for i in issues}
        if issues and all(rule_of.values()):
            # A compiled dbt test the platform cannot run as a custom SQL rule: say so, keep the rest.
            dropped = {int(match[1]): issue for issue, match in rule_of.items() if match}
            for index, issue in sorted(dropped.items()):
                rule = port.rules[index]
                notes.append(
                    f"warning: {domain}.{port.product}: dropped rule {rule.get('name') or rule['type']} "
                    f"({issue.message}); add it back as a quality rule if it still matters"
                )
            port.rules = [r for index, r in enumerate(port.rules) if index not in dropped]
            _write_spec(root, domain, project, port, plan, governance, changes)
    registry = load_registry(root)
    problems = [
        p
        for found in product_problems(root, [f"{domain}.{p.product}" for p in plan.ports]).values()
        for p in found
    ]
    if problems:
        raise OnboardError(
            "the onboarded products do not validate:\n" + "\n".join(f"  - {p}" for p in problems), exit_code=1
        )
    return notes
