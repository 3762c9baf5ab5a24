"""Back doors in code: every product's SQL parsed with sqlglot, refusing what the spec does not allow.

The spec says what a product reads (its input ports and source extracts); this lint checks the code says
the same. Every table a product's SQL names is resolved to what it is and refused when it is:

- an **internal** of another product (its domain's `<domain>_internal` schema: internal models, landed
  extracts, candidate and staging batches), whichever domain it is in: other products read output ports;
- an **output port not declared** as an input of the product (or another major version than the one its
  declared range resolves to);
- for SQL-kind products, any port named by its table rather than through `{{ input('<d>.<p>') }}`:
  `input()` is where the platform records the dependency and applies the port's PII protection.

Which SQL is read:
- SQL kind: every `<model>.sql` of the product, rendered with the same `input()`, `source()`, `ref()` as
  the builder, except that `input()` renders to a marker the lint skips (the builder itself refuses an
  undeclared `input()`, naming the fix, so it is not reported twice).
- dbt kind: each model of the product (its `internals` and port models) as dbt compiled it:
  `dbt_projects/<p>/target/compiled/<project>/<path>` when newer than the model file, else the manifest's
  `compiled_code` when the manifest is newer, else the model's raw code rendered here with `ref()` and
  `source()` resolved (from the manifest, else the project's source YAML) and other Jinja stubbed as on
  the local target (`target.type == 'duckdb'`; unknown macros render empty).

Each finding is a `SpecIssue` naming the SQL file, the table as written, and the port to read instead.
Unqualified names (CTEs, aliases) and schemas that are no domain's are not checked. sqlglot is imported
only when the lint runs.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from mesh_assets.assets.dbt_contracts import GENERATED_MACROS, candidate_reads
from mesh_assets.product import addressing, kinds
from mesh_assets.product.errors import SpecIssue
from mesh_assets.product.registry import Product, Registry, effective_status
from mesh_assets.product.spec import Status

INPUT_MARKER = "__mesh_input__"
"""Schema `input()` renders to in the lint: declared inputs the builder already checks."""
_PORT_NAME = re.compile(r"^(?P<product>[a-z][a-z0-9_]*)_v(?P<major>\d+)$")
_BATCH = re.compile(r"^(?P<product>[a-z][a-z0-9_]*)_v(?P<major>\d+)__(candidate|staging)$")


@dataclass(frozen=True)
class SqlSource:
    """One piece of SQL a product runs, and the file a person edits to change it."""

    product: Product
    file: Path
    sql: str
    origin: str
    """Where the SQL text came from: `rendered`, `compiled`, `manifest` or `raw`."""
    dialect: str = "duckdb"


@dataclass(frozen=True)
class _Owned:
    """What a relation in the warehouse is: whose, and what kind."""

    owner: str | None
    """`<domain>.<product>` owning it, if known."""
    what: str


# --- what each relation is ---------------------------------------------------------------------------


class _Map:
    """The mesh's relations by address: ports, and the internals each product owns."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.domains = {p.spec.domain for p in registry.products.values()}
        self.ports: dict[tuple[str, str], tuple[Product, int]] = {}
        self.internals: dict[tuple[str, str], _Owned] = {}
        for product in registry.products.values():
            spec = product.spec
            schema = spec.domain + addressing.INTERNAL_SCHEMA_SUFFIX
            for port in spec.output_ports:
                relation = addressing.published(spec, port)
                self.ports[(relation.schema, relation.name)] = (product, port.major)
                for batch in ("candidate", "staging"):
                    self._own(schema, f"{spec.name}_v{port.major}__{batch}", product, f"{batch} batch")
            for relation, what in kinds.kind_of(spec).owned_relations(spec):
                self._own(relation.schema, relation.name, product, what)
            for source in spec.source_inputs:
                relation = addressing.source_relation(spec.domain, source.source)
                # Several products of a domain may land the same extract: the first (by key) is named.
                if (relation.schema, relation.name) not in self.internals:
                    self._own(relation.schema, relation.name, product, f"landed extract {source.source}")

    def _own(self, schema: str, name: str, product: Product, what: str) -> None:
        self.internals[(schema, name)] = _Owned(product.key, what)

    @cached_property
    def _owned_by(self) -> dict[str | None, set[tuple[str, str]]]:
        # Indexed once: scanning every internal of the mesh per product was quadratic (1.6 s, profiled, of
        # `mesh validate` at 1,000 products).
        found: dict[str | None, set[tuple[str, str]]] = {}
        for address, owned in self.internals.items():
            found.setdefault(owned.owner, set()).add(address)
        return found

    def allowed(self, product: Product) -> tuple[set[tuple[str, str]], dict[tuple[str, str], str]]:
        """Relations the product may name: its own internals, and its declared inputs' ports."""
        spec = product.spec
        own = set(self._owned_by.get(product.key, ()))
        for source in spec.source_inputs:  # an extract it declares, even if a sibling landed it first
            relation = addressing.source_relation(spec.domain, source.source)
            own.add((relation.schema, relation.name))
        # A producer's candidate the generated `source()` reads when one dbt invocation builds both
        # (`dbt_contracts.candidate_reads`): in compiled code, a declared input, not a back door.
        for read in candidate_reads(self.registry, product):
            producer = read.producer.spec
            own.add((producer.domain + addressing.INTERNAL_SCHEMA_SUFFIX, producer.port_model(read.port)))
        declared: dict[tuple[str, str], str] = {}
        for item in spec.product_inputs:
            resolved = self.registry.resolve(product, item)
            if resolved is not None:
                relation = resolved.relation
                declared[(relation.schema, relation.name)] = item.product
        return own, declared


def _port_to_use(registry: Registry, key: str) -> tuple[str, int] | None:
    producer = registry.products.get(key)
    if producer is None:
        return None
    live = [
        p
        for p in producer.spec.output_ports
        if effective_status(producer.spec, p, registry.today) not in (Status.RETIRED, Status.DEPRECATED)
    ]
    port = max(live or producer.spec.output_ports, key=lambda p: p.major)
    return key, port.major


def _how_to_read(consumer: Product, key: str, major: int) -> str:
    line = f"declare '- product: {key}, version: \"^{major}\"' in input_ports of {consumer.key}"
    kind = kinds.kind_of(consumer)
    if kind.needs_prepare:
        return f"{line}, run `mesh prepare`, and read it with {kind.port_reference(key, major)}"
    return f"{line} and read it with {kind.port_reference(key, major)}"


def _findings(source: SqlSource, tables: list[tuple[str, str, str]], mesh: _Map) -> list[SpecIssue]:
    consumer = source.product
    own, declared = mesh.allowed(consumer)
    registry = mesh.registry
    issues: list[SpecIssue] = []
    reported: set[tuple[str, str]] = set()
    is_sql = kinds.kind_of(consumer).templated_sql
    origin = "" if source.origin in ("rendered", "raw") else f" (in its {source.origin} code)"

    def issue(written: str, message: str, fix: str) -> None:
        issues.append(SpecIssue(source.file, written, message + origin, fix))

    for schema, name, written in tables:
        address = (schema, name)
        if schema == INPUT_MARKER or address in reported:
            continue
        reported.add(address)
        if address in own:
            continue
        if schema.endswith(addressing.INTERNAL_SCHEMA_SUFFIX) and schema[: -len("_internal")] in mesh.domains:
            domain = schema[: -len(addressing.INTERNAL_SCHEMA_SUFFIX)]
            owned = mesh.internals.get(address)
            owner = owned.owner if owned else _guess_owner(registry, domain, name)
            if owned and owner:
                whose = f"the {owned.what} of {owner}"
            elif owner:
                whose = f"an internal table of {owner}"
            else:
                whose = f"an internal table of domain {domain}"
            where = "another domain" if domain != consumer.spec.domain else "another product of the domain"
            message = f"reads {written}, {whose} ({where}): a back door around its output port"
            target = _port_to_use(registry, owner) if owner else None
            if target is not None and target[0] != consumer.key:
                fix = f"read the port instead: {_how_to_read(consumer, *target)}"
            else:
                fix = f"read an output port of domain {domain} instead (see `mesh catalog build`)"
            issue(written, message, fix)
            continue
        if schema not in mesh.domains:
            continue  # not a mesh schema (e.g. information_schema): nothing the spec governs
        port = mesh.ports.get(address)
        if port is None:
            issue(
                written,
                f"reads {written}, which is not a published output port of domain {schema}",
                "read a declared input port; a port's table is <product>_v<major> (see `mesh catalog build`)",
            )
            continue
        producer, major = port
        if producer.key == consumer.key:
            continue  # its own published port (e.g. an incremental model reading its last publish)
        if address in declared:
            if is_sql:
                issue(
                    written,
                    f"names the port {producer.key} v{major} by its table",
                    f"write {{{{ input('{declared[address]}') }}}} so the platform tracks the dependency "
                    "and applies the port's access policy",
                )
            continue
        other = [k for k, v in declared.items() if v == producer.key]
        if other:
            resolved = other[0][1]
            message = (
                f"reads {written} ({producer.key} v{major}), but its declared range resolves to "
                f"{resolved}: a port it does not declare"
            )
            fix = f"change the input's version range to '^{major}', or read {resolved}"
        else:
            message = (
                f"reads {written}, the output port {producer.key} v{major}, which {consumer.key} does not "
                "declare as an input"
            )
            fix = _how_to_read(consumer, producer.key, major)
        issue(written, message, fix)
    return issues


def _guess_owner(registry: Registry, domain: str, name: str) -> str | None:
    batch = _BATCH.match(name)
    if batch and f"{domain}.{batch['product']}" in registry.products:
        return f"{domain}.{batch['product']}"
    for product in registry.domain_products(domain):
        if name.startswith(product.spec.name + "__"):
            return product.key
    return None


# --- reading SQL --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def parsed(sql: str, dialect: str = "duckdb") -> tuple[Any, ...]:
    """The statements of a SQL text as sqlglot parses them (None for an empty one), parsed once.

    `mesh validate` reads every model twice, here and in `code_access`; parsing is most of either lint
    (0.27 s of 0.46 s at 1,000 products, profiled). The trees are shared: read them, never change them.
    Raises `sqlglot.errors.ParseError` when the SQL does not parse.
    """
    import sqlglot

    return tuple(sqlglot.parse(sql, read=dialect))


def tables_in(sql: str, dialect: str = "duckdb") -> list[tuple[str, str, str]]:
    """`(schema, table, as written)` of every schema-qualified table a SQL text reads (lower case).

    Raises `sqlglot.errors.ParseError` when the SQL does not parse.
    """
    from sqlglot import exp

    found = []
    for statement in parsed(sql, dialect):
        if statement is None:
            continue
        for table in statement.find_all(exp.Table):
            if not table.db:
                continue  # a CTE, an alias, or the session's default schema
            schema, name = table.db.lower(), table.name.lower()
            found.append((schema, name, f"{schema}.{name}"))
    return found


def _render_sql_model(product: Product, registry: Registry, path: Path) -> str | None:
    from mesh_assets.assets.builders.sql import ModelTemplateError, render_template

    spec = product.spec

    def _input(reference: str) -> str:
        return f'"{INPUT_MARKER}"."{reference.replace(".", "__")}"'

    def _source(reference: str) -> str:
        return addressing.source_relation(spec.domain, reference).sql

    def _ref(name: str) -> str:
        return addressing.internal_relation(spec.domain, spec.name, name).sql

    try:
        return render_template(path.read_text(), input=_input, source=_source, ref=_ref)
    except ModelTemplateError:
        return None  # the builder reports template errors with the fix


def _sql_sources(product: Product, registry: Registry) -> Iterator[SqlSource]:
    for model in kinds.kind_of(product).models(product.spec):
        path = product.folder / f"{model}.sql"
        if not path.exists():
            continue  # the registry reports the missing file
        sql = _render_sql_model(product, registry, path)
        if sql is not None:
            yield SqlSource(product, path, sql, "rendered")


@dataclass
class _DbtProject:
    root: Path
    name: str
    dialect: str
    nodes: dict[str, dict[str, Any]]
    """Model name → manifest node (empty without a manifest)."""
    relations: dict[str, str]
    """Model name → relation SQL, for `ref()`."""
    sources: dict[tuple[str, str], str]
    """(source, table) → relation SQL, for `source()`."""
    manifest_mtime: float
    macros: str = ""
    """The project's own `{% macro %}` definitions, so a model calling one renders (`_render_dbt_raw`)."""


_MACRO = re.compile(r"\{%-?\s*macro\b.*?\{%-?\s*endmacro\s*-?%\}", re.S)


def _dbt_project(root: Path) -> _DbtProject:
    import yaml

    config = yaml.safe_load((root / "dbt_project.yml").read_text()) or {}
    name = str(config.get("name", root.name))
    manifest_path = root / "target" / "manifest.json"
    nodes: dict[str, dict[str, Any]] = {}
    relations: dict[str, str] = {}
    sources: dict[tuple[str, str], str] = {}
    dialect = "duckdb"
    mtime = 0.0
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        mtime = manifest_path.stat().st_mtime
        dialect = {"snowflake": "snowflake"}.get(manifest.get("metadata", {}).get("adapter_type"), "duckdb")
        for node in manifest.get("nodes", {}).values():
            if node.get("resource_type") == "model" and node.get("package_name", name) == name:
                nodes[node["name"]] = node
                relations[node["name"]] = f'"{node["schema"]}"."{node.get("alias") or node["name"]}"'
        for node in manifest.get("sources", {}).values():
            identifier = node.get("identifier") or node["name"]
            sources[(node["source_name"], node["name"])] = f'"{node["schema"]}"."{identifier}"'
    if not sources:
        # No manifest (a fresh checkout): the sources the project's YAML declares.
        for file in sorted((root / "models").rglob("*.yml")):
            data = yaml.safe_load(file.read_text()) or {}
            for source in data.get("sources") or []:
                for table in source.get("tables") or []:
                    identifier = table.get("identifier") or table["name"]
                    schema = source.get("schema") or source["name"]
                    sources[(source["name"], table["name"])] = f'"{schema}"."{identifier}"'
    folders = [root / str(folder) for folder in config.get("macro-paths") or ["macros"]]
    # Not the generated `source()` override: it needs dbt's `builtins`, and its published-port branch is
    # what this lint's own `source()` renders (the candidate branch is allowed in `_Map.allowed`).
    files = [
        file for folder in folders for file in sorted(folder.rglob("*.sql")) if file.name != GENERATED_MACROS
    ]
    macros = "".join("".join(_MACRO.findall(file.read_text())) for file in files)
    return _DbtProject(root, name, dialect, nodes, relations, sources, mtime, macros)


class _Stub:
    """Anything Jinja asks of an unknown dbt macro or variable: renders empty, callable, attribute-able."""

    def __call__(self, *args: Any, **kwargs: Any) -> _Stub:
        return self

    def __getattr__(self, name: str) -> _Stub:
        return self

    def __str__(self) -> str:
        return ""

    def __bool__(self) -> bool:
        return False

    def __iter__(self) -> Iterator[Any]:
        return iter(())


def _render_dbt_raw(raw: str, project: _DbtProject, product: Product) -> str | None:
    import jinja2

    internal = product.spec.domain + addressing.INTERNAL_SCHEMA_SUFFIX

    def ref(*args: str, **kwargs: Any) -> str:
        model = args[-1]
        return project.relations.get(model, f'"{internal}"."{model}"')

    def source(source_name: str, table: str) -> str:
        return project.sources.get((source_name, table), f'"{source_name}"."{table}"')

    env = jinja2.Environment(
        undefined=jinja2.ChainableUndefined, autoescape=False, extensions=["jinja2.ext.do"]
    )
    target = {"type": "duckdb", "name": "local", "schema": product.spec.domain, "database": "mesh"}
    stub = _Stub()
    context: dict[str, Callable[..., Any] | Any] = {
        "ref": ref,
        "source": source,
        "config": stub,
        "var": stub,
        "env_var": stub,
        "is_incremental": lambda: False,
        "target": target,
        "this": f'"{internal}"."this"',
    }
    try:
        template = env.from_string(project.macros + raw)
        return template.render(**context)
    except jinja2.TemplateError:
        # Unknown syntax (custom tags): strip the Jinja and lint what is left.
        text = re.sub(r"\{#.*?#\}", "", raw, flags=re.S)
        text = re.sub(r"\{%.*?%\}", "", text, flags=re.S)
        return re.sub(r"\{\{.*?\}\}", "NULL", text, flags=re.S)


def _dbt_sources(products: list[Product], project: _DbtProject) -> Iterator[SqlSource]:
    for product in products:
        for model in kinds.kind_of(product).models(product.spec):
            node = project.nodes.get(model)
            if node is not None:
                file = project.root / node["original_file_path"]
            else:
                found = sorted((project.root / "models").rglob(f"{model}.sql"))
                if not found:
                    continue  # the dbt prepare step reports models a spec names but the project lacks
                file = found[0]
            if not file.exists():
                continue
            edited = file.stat().st_mtime
            relative = file.relative_to(project.root)
            compiled = project.root / "target" / "compiled" / project.name / relative
            if compiled.exists() and compiled.stat().st_mtime >= edited:
                yield SqlSource(product, file, compiled.read_text(), "compiled", project.dialect)
                continue
            code = (node or {}).get("compiled_code")
            if code and project.manifest_mtime >= edited:
                yield SqlSource(product, file, code, "manifest", project.dialect)
                continue
            rendered = _render_dbt_raw(file.read_text(), project, product)
            if rendered is not None:
                yield SqlSource(product, file, rendered, "raw", "duckdb")


def sql_sources(registry: Registry) -> list[SqlSource]:
    """Every piece of SQL the products of the mesh run, with the file that holds it."""
    found: list[SqlSource] = []
    dbt: dict[str, list[Product]] = {}
    for key in sorted(registry.products):
        product = registry.products[key]
        kind = kinds.kind_of(product)
        project = kind.project(product.spec)
        if kind.templated_sql:
            found += _sql_sources(product, registry)
        elif project is not None and kind.sql_code:
            dbt.setdefault(project, []).append(product)
    for name, products in sorted(dbt.items()):
        root = registry.root / kinds.DBT_PROJECTS / name
        if (root / "dbt_project.yml").exists():
            found += _dbt_sources(products, _dbt_project(root))
    return found


def lint(registry: Registry) -> list[SpecIssue]:
    """Every back door in the SQL of every product of the mesh."""
    import sqlglot

    mesh = _Map(registry)
    issues: list[SpecIssue] = []
    for source in sql_sources(registry):
        try:
            tables = tables_in(source.sql, source.dialect)
        except sqlglot.errors.ParseError as exc:
            issues.append(
                SpecIssue(
                    source.file,
                    "",
                    f"sqlglot cannot parse this SQL ({str(exc).splitlines()[0]}), so what it reads is "
                    "unchecked",
                    "simplify the statement, or report the construct to the platform team",
                    severity="warning",
                )
            )
            continue
        issues += _findings(source, tables, mesh)
    return issues
