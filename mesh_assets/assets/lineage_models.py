"""Column lineage read from code: a SQL product's model files, a dbt product's manifest models.

Each model is rendered to plain SQL with its references resolved to relations, read by
`lineage_sql.statement_lineage` against the schemas known so far (input ports' contracts, the models
already read), and its table columns mapped back to mesh nodes (`column_lineage.Node`). A model that
cannot be read depends on every column of every input (`how = "unknown"`, with the reason).
"""

from __future__ import annotations

import json
import re
from typing import Any

from mesh_assets.assets.column_lineage import (
    ColumnDep,
    ColumnRef,
    How,
    ModelLineage,
    Node,
    ProductLineage,
    input_nodes,
    port_node,
)
from mesh_assets.assets.dbt_contracts import port_source_name, products_of_project
from mesh_assets.assets.lineage_sql import WILDCARD, statement_lineage
from mesh_assets.product import addressing, kinds
from mesh_assets.product.registry import Product, Registry


class _Tables:
    """Relations a model may name, each to its node and known columns (the schema sqlglot qualifies with)."""

    def __init__(self) -> None:
        self.nodes: dict[tuple[str, str], Node] = {}
        self.schema: dict[str, dict[str, dict[str, str]]] = {}

    def add(self, relation: addressing.Relation, node: Node, columns: list[str]) -> str:
        key = (relation.schema.lower(), relation.name.lower())
        self.nodes[key] = node
        if columns:
            self.schema.setdefault(key[0], {})[key[1]] = {c.lower(): "VARCHAR" for c in columns}
        return relation.sql

    def read(
        self, sql: str, dialect: str, how: How, fallback: tuple[ColumnDep, ...], outputs: list[str]
    ) -> ModelLineage:
        """The lineage of `sql`; `outputs` (a port's contract) not produced by it are assumed to read all."""
        found = statement_lineage(sql, self.schema, dialect)
        if found.error is not None:
            return ModelLineage(
                {c: fallback for c in outputs},
                frozenset(d.ref for d in fallback),
                "unknown",
                found.error,
                frozenset(outputs),
            )
        columns: dict[str, tuple[ColumnDep, ...]] = {}
        for name, sources in found.columns.items():
            columns[name] = tuple(
                ColumnDep(ColumnRef(self.nodes[c.table], c.column), c.carries)
                for c in sources
                if c.table in self.nodes
            )
        assumed = [c for c in outputs if c not in columns]
        for name in assumed:
            columns[name] = fallback
        reads = {ColumnRef(self.nodes[t], c) for t, c in found.reads if t in self.nodes}
        reads |= {d.ref for deps in columns.values() for d in deps}
        return ModelLineage(columns, frozenset(reads), how, "", frozenset(assumed))


def _every(tables: _Tables, nodes: list[Node]) -> tuple[ColumnDep, ...]:
    found = []
    for (db, name), node in tables.nodes.items():
        if node in nodes:
            columns = list(tables.schema.get(db, {}).get(name, {})) or [WILDCARD]
            found += [ColumnDep(ColumnRef(node, c)) for c in columns]
    return tuple(dict.fromkeys(found))


def sql_product(product: Product, registry: Registry) -> ProductLineage:
    """Lineage of a SQL product's internals (by name) and ports (`v<major>`)."""
    from mesh_assets.assets.builders.sql import render_template

    spec = product.spec
    tables = _Tables()
    inputs = input_nodes(product, registry)
    for reference, (node, columns) in inputs.items():
        if node.kind == "port":
            domain, name = node.product.split(".")
            tables.add(addressing.port_relation(domain, name, node.major or 0), node, columns)
        else:
            tables.add(addressing.source_relation(spec.domain, reference), node, columns)
    for port in spec.output_ports:  # a product may read its own last publish
        relation = addressing.published(spec, port)
        tables.add(relation, port_node(spec.key, port.major), [c.name for c in port.columns])
    fallback = _every(tables, [node for node, _ in inputs.values()])

    def _input(reference: str) -> str:
        node = inputs.get(reference, (None,))[0]
        if node is None:
            return "__undeclared__.__undeclared__"
        domain, name = node.product.split(".")
        return addressing.port_relation(domain, name, node.major or 0).sql

    def _source(reference: str) -> str:
        return addressing.source_relation(spec.domain, reference).sql

    def _ref(name: str) -> str:
        return addressing.internal_relation(spec.domain, spec.name, name).sql

    lineage = ProductLineage()
    models = [(name, name, []) for name in kinds.kind_of(spec).internals(spec)]
    models += [(f"v{p.major}", spec.port_model(p), [c.name for c in p.columns]) for p in spec.output_ports]
    for key, model, outputs in models:
        path = product.folder / f"{model}.sql"
        try:
            sql = render_template(path.read_text(), input=_input, source=_source, ref=_ref)
        except Exception as exc:  # unreadable or bad template: `mesh validate` names it; lineage is unknown
            found = ModelLineage(
                {c: fallback for c in outputs},
                frozenset(d.ref for d in fallback),
                "unknown",
                f"{type(exc).__name__}: {exc}",
                frozenset(outputs),
            )
        else:
            found = tables.read(sql, "duckdb", "sql", fallback, outputs)
        lineage.models[key] = found
        if key == model:  # an internal: later models read its columns
            node = Node("internal", spec.key, model)
            tables.add(addressing.internal_relation(spec.domain, spec.name, model), node, list(found.columns))
    return lineage


# --- dbt ------------------------------------------------------------------------------------------------


def _manifest(registry: Registry, project: str) -> dict[str, Any] | None:
    path = registry.root / "dbt_projects" / project / "target" / "manifest.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _relation(node: dict[str, Any]) -> addressing.Relation:
    return addressing.Relation(
        node.get("schema") or "", node.get("alias") or node.get("identifier") or node["name"]
    )


def dbt_product(product: Product, registry: Registry) -> ProductLineage:
    """Lineage of a dbt product's models (by name) and ports (`v<major>`, read through their models)."""
    spec = product.spec
    kind = kinds.kind_of(spec)
    project = str(kind.project(spec))
    tables = _Tables()
    inputs = input_nodes(product, registry)
    owners = {}
    for owner in products_of_project(registry, project):
        for model in kinds.kind_of(owner).models(owner.spec):
            owners[model] = owner
    lineage = ProductLineage()
    mine = kind.models(spec)
    manifest = _manifest(registry, project)
    fallback_nodes = [node for node, _ in inputs.values()]
    if manifest is None:
        fallback = tuple(ColumnDep(ColumnRef(n, WILDCARD)) for n in fallback_nodes)
        for model in mine:
            lineage.models[model] = ModelLineage(
                {}, frozenset(d.ref for d in fallback), "unknown", "no manifest: run `mesh prepare`"
            )
    else:
        _read_project(manifest, product, registry, owners, tables, lineage, mine)
    for port in spec.output_ports:
        model = spec.port_model(port)
        node = Node("internal", spec.key, model)
        read = lineage.models.get(model)
        columns = {c.name: (ColumnDep(ColumnRef(node, c.name)),) for c in port.columns}
        how: How = "dbt" if read is not None and read.how == "dbt" else "unknown"
        lineage.models[f"v{port.major}"] = ModelLineage(
            columns,
            frozenset(d.ref for deps in columns.values() for d in deps),
            how,
            read.note if read else "",
        )
    return lineage


def _read_project(
    manifest: dict[str, Any],
    product: Product,
    registry: Registry,
    owners: dict[str, Product],
    tables: _Tables,
    lineage: ProductLineage,
    mine: list[str],
) -> None:
    spec = product.spec
    nodes = {
        n["unique_id"]: n
        for n in manifest.get("nodes", {}).values()
        if n.get("resource_type") in ("model", "seed")
    }
    by_name = {n["name"]: n for n in nodes.values()}
    sources = manifest.get("sources", {})
    producers = {}
    for owner in registry.products.values():
        for port in owner.spec.output_ports:
            producers[(port_source_name(owner.spec.domain), f"{owner.spec.name}_v{port.major}")] = (
                owner,
                port,
            )
    declared = {n for n, _ in input_nodes(product, registry).values()}
    for source in sources.values():
        found = producers.get((source["source_name"], source["name"]))
        if found is not None:
            node = port_node(found[0].key, found[1].major)
            tables.add(_relation(source), node, [c.name for c in found[1].columns])
        else:
            reader = next(
                (
                    o
                    for o in owners.values()
                    if f"{source['source_name']}.{source['name']}" in {s.source for s in o.spec.source_inputs}
                ),
                product,
            )
            tables.add(
                _relation(source), Node("source", reader.key, f"{source['source_name']}.{source['name']}"), []
            )
    for model in nodes.values():
        owner = owners.get(model["name"])
        node = Node("internal", owner.key if owner else f"{spec.domain}.{model['name']}", model["name"])
        tables.add(_relation(model), node, [])
    fallback = _every(tables, list(declared))
    # Read the product's models and what they depend on inside the project, dependencies first.
    order: list[str] = []

    def visit(unique_id: str, trail: tuple[str, ...]) -> None:
        if unique_id in order or unique_id in trail or unique_id not in nodes:
            return
        for dep in nodes[unique_id].get("depends_on", {}).get("nodes", []):
            visit(dep, (*trail, unique_id))
        order.append(unique_id)

    for name in mine:
        if name in by_name:
            visit(by_name[name]["unique_id"], ())
    for unique_id in order:
        model = nodes[unique_id]
        owner = owners.get(model["name"])
        outputs = []
        if owner is not None:
            port = next(
                (p for p in owner.spec.output_ports if owner.spec.port_model(p) == model["name"]), None
            )
            outputs = [c.name for c in port.columns] if port is not None else []
        sql = model.get("compiled_code") or _render_raw(model.get("raw_code", ""), model, by_name, sources)
        found = tables.read(sql, "duckdb", "dbt", fallback, outputs)
        tables.add(
            _relation(model),
            tables.nodes[(_relation(model).schema.lower(), _relation(model).name.lower())],
            list(found.columns),
        )
        if model["name"] in mine:
            lineage.models[model["name"]] = found


class _Stub:
    """Any dbt context member that is called, indexed or printed renders empty (`config(...)`, `var`)."""

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        return ""

    def __getattr__(self, name: str) -> _Stub:
        return self

    def __str__(self) -> str:
        return ""


def _render_raw(raw: str, model: dict[str, Any], by_name: dict[str, Any], sources: dict[str, Any]) -> str:
    """A dbt model's raw code with `ref()` and `source()` resolved, other Jinja as on the local target."""
    import jinja2

    def ref(*args: str, **kwargs: Any) -> str:
        target = by_name.get(args[-1])
        return _relation(target).sql if target else f'"__unknown__"."{args[-1]}"'

    def source(source_name: str, table: str) -> str:
        found = next(
            (s for s in sources.values() if s["source_name"] == source_name and s["name"] == table), None
        )
        return _relation(found).sql if found else f'"{source_name}"."{table}"'

    env = jinja2.Environment(
        undefined=jinja2.ChainableUndefined, autoescape=False, extensions=["jinja2.ext.do"]
    )
    target = {"type": "duckdb", "name": "local", "schema": model.get("schema"), "database": "mesh"}
    context = {
        "ref": ref,
        "source": source,
        "config": _Stub(),
        "var": _Stub(),
        "env_var": _Stub(),
        "is_incremental": lambda: False,
        "target": target,
        "this": _relation(model).sql,
    }
    try:
        return env.from_string(raw).render(**context)
    except jinja2.TemplateError:
        # Custom tags or macros this renderer lacks: drop the Jinja and read what is left.
        text = re.sub(r"\{#.*?#\}", "", raw, flags=re.S)
        text = re.sub(r"\{%.*?%\}", "", text, flags=re.S)
        return re.sub(r"\{\{.*?\}\}", "NULL", text, flags=re.S)
