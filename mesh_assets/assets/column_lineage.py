"""Column lineage of every product: which upstream columns each port and internal column is computed from.

One model per product kind:
- **SQL**: each `<model>.sql` rendered with `input()`, `source()` and `ref()` resolved to relations, then
  read by sqlglot (`lineage_sql`), internals first so a port sees through them.
- **dbt**: each model of the product from the project's manifest (its `compiled_code`, else its raw code
  rendered with `ref()`/`source()` resolved and other Jinja stubbed as on the local target).
- **Python**: code cannot be read, so the port's `lineage:` in the spec says it; a column it does not
  declare depends on every column of every input (`how = "assumed"`), so unknown never reads as unused.

Every model also records what it *reads*: the columns its joins and filters use count, since removing
them breaks the consumer just as much. This module holds the types and what needs no parser; SQL and dbt
models are read in `lineage_models`, and `lineage_cache.mesh_lineage` is how every reader gets lineage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import dagster as dg

from mesh_assets.assets.lineage_sql import WILDCARD
from mesh_assets.product import addressing
from mesh_assets.product.registry import Product, Registry
from mesh_assets.product.spec import OutputPort

NodeKind = Literal["port", "internal", "source"]


@dataclass(frozen=True, order=True)
class Node:
    """A table of the mesh: a product's port (`name` = `v<major>`), internal model, or landed source."""

    kind: NodeKind
    product: str
    """`<domain>.<product>` owning it (for a source: the product that lands it)."""
    name: str
    """`v<major>` for a port, the model for an internal, `<system>.<extract>` for a source."""

    @property
    def label(self) -> str:
        """How a person reads it: `customers.customer_master`, `diagnostics.instrument_runs/stg_runs`."""
        if self.kind == "port":
            return self.product
        if self.kind == "internal":
            return f"{self.product}/{self.name}"
        return f"source {self.name}"

    @property
    def major(self) -> int | None:
        """The port's major version (None for internals and sources)."""
        return int(self.name[1:]) if self.kind == "port" else None


@dataclass(frozen=True, order=True)
class ColumnRef:
    """One column of one table; column `*` means every column of it (which ones is unknown)."""

    node: Node
    column: str

    @property
    def path(self) -> str:
        """`customers.customer_master.country_code`."""
        return f"{self.node.label}.{self.column}"


@dataclass(frozen=True)
class ColumnDep:
    """An upstream column an output column is computed from."""

    ref: ColumnRef
    carries: bool = True
    """Its values pass through unprotected (no statistic aggregate, hash or mask): PII follows them."""


How = Literal["sql", "dbt", "declared", "assumed", "unknown"]


@dataclass(frozen=True)
class ModelLineage:
    """The lineage of one model or port: each column's upstream columns, and every upstream column read."""

    columns: dict[str, tuple[ColumnDep, ...]]
    reads: frozenset[ColumnRef]
    how: How
    """`sql`/`dbt`: read from the code; `declared`: the spec's `lineage:`; `assumed`: every input column;
    `unknown`: the code could not be read, so every input column is assumed."""
    note: str = ""
    assumed: frozenset[str] = frozenset()
    """Columns whose lineage is assumed (every input column), not read or declared."""


@dataclass
class ProductLineage:
    """A product's models (internals by name, ports by `v<major>`), as computed from its code or spec."""

    models: dict[str, ModelLineage] = field(default_factory=dict)

    def port(self, major: int) -> ModelLineage | None:
        """A port's lineage as the product's code says (may point at its own internals)."""
        return self.models.get(f"v{major}")


def port_node(key: str, major: int) -> Node:
    """The node of a product's port."""
    return Node("port", key, f"v{major}")


def input_nodes(product: Product, registry: Registry) -> dict[str, tuple[Node, list[str]]]:
    """Each declared input (`<domain>.<product>` or `<system>.<extract>`) as a node and its known columns."""
    found: dict[str, tuple[Node, list[str]]] = {}
    for declared in product.spec.product_inputs:
        resolved = registry.resolve(product, declared)
        if resolved is not None:
            found[declared.product] = (
                port_node(resolved.producer.key, resolved.port.major),
                [c.name for c in resolved.port.columns],
            )
    for source in product.spec.source_inputs:
        found[source.source] = (Node("source", product.key, source.source), [])
    return found


def _every_input_column(inputs: dict[str, tuple[Node, list[str]]]) -> tuple[ColumnDep, ...]:
    return tuple(
        ColumnDep(ColumnRef(node, column))
        for node, columns in inputs.values()
        for column in columns or [WILDCARD]
    )


def python_lineage(product: Product, port: OutputPort, registry: Registry) -> ModelLineage:
    """A Python port's lineage: the spec's `lineage:`, else every column of every input for each column."""
    inputs = input_nodes(product, registry)
    every = _every_input_column(inputs)
    declared = port.lineage
    columns: dict[str, tuple[ColumnDep, ...]] = {}
    assumed = set()
    reads: set[ColumnRef] = set()
    for column in port.columns:
        names = declared.columns.get(column.name) if declared else None
        if names is None:
            columns[column.name] = every
            assumed.add(column.name)
        else:
            columns[column.name] = tuple(
                ColumnDep(ref) for ref in (_declared_ref(n, inputs) for n in names) if ref is not None
            )
    for deps in columns.values():
        reads |= {d.ref for d in deps}
    for name in declared.also_reads if declared else []:
        ref = _declared_ref(name, inputs)
        if ref is not None:
            reads.add(ref)
    how: How = "declared" if declared and not assumed else "assumed"
    return ModelLineage(columns, frozenset(reads), how, assumed=frozenset(assumed))


def _declared_ref(name: str, inputs: dict[str, tuple[Node, list[str]]]) -> ColumnRef | None:
    table, _, column = name.rpartition(".")
    found = inputs.get(table)
    return ColumnRef(found[0], column) if found else None


def declared_lineage_issues(product: Product, registry: Registry) -> list[tuple[str, str, str]]:
    """`(field, message, fix)` for each `lineage:` entry naming an input or column the product lacks."""
    issues = []
    inputs = input_nodes(product, registry)
    for index, port in enumerate(product.spec.output_ports):
        if port.lineage is None:
            continue
        names = {c.name for c in port.columns}
        where = f"output_ports[{index}].lineage"
        for column in port.lineage.columns:
            if column not in names:
                issues.append(
                    (
                        f"{where}.columns.{column}",
                        f"'{column}' is not a column of the port",
                        f"use one of {', '.join(sorted(names))}",
                    )
                )
        entries = [(f"{where}.columns.{c}", n) for c, ns in port.lineage.columns.items() for n in ns]
        entries += [(f"{where}.also_reads", n) for n in port.lineage.also_reads]
        for field_name, name in entries:
            table, _, column = name.rpartition(".")
            if table not in inputs:
                issues.append(
                    (
                        field_name,
                        f"'{name}' names '{table}', which is not an input port",
                        f"use <input>.<column> with one of {', '.join(sorted(inputs)) or '(no inputs)'}",
                    )
                )
            elif inputs[table][1] and column not in inputs[table][1]:
                issues.append(
                    (
                        field_name,
                        f"'{name}': {table} has no column '{column}' in its contract",
                        f"use one of {', '.join(inputs[table][1])}",
                    )
                )
    return issues


def composed(product: Product, lineage: ProductLineage, major: int) -> ModelLineage | None:
    """A port's lineage seen through the product's internals: upstream columns of ports and sources only."""
    port = lineage.port(major)
    if port is None:
        return None
    seen: dict[ColumnRef, tuple[ColumnDep, ...]] = {}

    def expand(dep: ColumnDep, trail: frozenset[ColumnRef]) -> tuple[ColumnDep, ...]:
        ref = dep.ref
        if ref.node.kind != "internal" or ref.node.product != product.key or ref in trail:
            return (dep,)
        if ref not in seen:
            model = lineage.models.get(ref.node.name)
            if model is None:
                seen[ref] = ()
            else:
                names = model.columns if ref.column == WILDCARD else [ref.column]
                upstream = [d for n in names for d in model.columns.get(n, ())]
                if not upstream and ref.column not in model.columns:
                    upstream = [ColumnDep(r) for r in model.reads]  # unknown column: all it reads
                seen[ref] = tuple(x for d in upstream for x in expand(d, trail | {ref}))
        return tuple(ColumnDep(x.ref, x.carries and dep.carries) for x in seen[ref])

    columns = {
        name: _merge(d for dep in deps for d in expand(dep, frozenset()))
        for name, deps in port.columns.items()
    }
    reads: set[ColumnRef] = set()
    pending, done = list(port.reads), set()
    while pending:
        ref = pending.pop()
        if ref.node.kind == "internal" and ref.node.product == product.key:
            if ref.node.name not in done:
                done.add(ref.node.name)
                model = lineage.models.get(ref.node.name)
                pending += list(model.reads) if model else []
        else:
            reads.add(ref)
    for deps in columns.values():
        reads |= {d.ref for d in deps}
    return ModelLineage(columns, frozenset(reads), port.how, port.note, port.assumed)


def _merge(deps: object) -> tuple[ColumnDep, ...]:
    merged: dict[ColumnRef, bool] = {}
    for dep in deps:  # type: ignore[attr-defined]
        merged[dep.ref] = merged.get(dep.ref, False) or dep.carries
    return tuple(ColumnDep(ref, carries) for ref, carries in sorted(merged.items()))


def node_asset_key(node: Node) -> dg.AssetKey:
    """The Dagster asset key of a node."""
    domain, name = node.product.split(".")
    if node.kind == "port":
        return addressing.port_key(domain, name, node.major or 0)
    if node.kind == "internal":
        return addressing.internal_key(domain, name, node.name)
    return addressing.source_key(domain, name, node.name)


def reads_column(model: ModelLineage, node: Node, column: str) -> bool:
    """Whether a model reads `column` of `node` (a wildcard read reads every column)."""
    return ColumnRef(node, column) in model.reads or ColumnRef(node, WILDCARD) in model.reads


def dagster_lineage(model: ModelLineage | None) -> dg.TableColumnLineage | None:
    """A model's lineage as Dagster's `dagster/column_lineage` (direct upstream assets; `*` left out)."""
    if model is None:
        return None
    deps_by_column = {
        column: [
            dg.TableColumnDep(asset_key=node_asset_key(d.ref.node), column_name=d.ref.column)
            for d in deps
            if d.ref.column != WILDCARD
        ]
        for column, deps in model.columns.items()
    }
    kept = {c: d for c, d in deps_by_column.items() if d}
    return dg.TableColumnLineage(deps_by_column=kept) if kept else None
