"""Impact by column: who reads each column of a port, from column lineage and access agreements.

Readers are of two kinds:
- **consumer products**, from their column lineage (`build.column_lineage`): a consumer port column
  computed from the column (followed transitively across domains: a column of `customer_360` computed
  from `customer_master.country_code` is itself read by `sales_forecast`), or a consumer that reads it
  only to join, filter or group rows (it breaks too, though none of its columns is computed from it);
- **people, teams and tools**, from their access agreements in force on the port's major: an agreement
  with `columns` covers those, one without covers every column.

`judge_by_readers` uses them on the contract diff: a removed, renamed or retyped column is breaking for
each reader that reads it, and a change no reader reads is allowed as `no reader`. Readers the mesh cannot
see (anyone reading through a role grant, outside the agreements) are not counted: see docs/lineage.md.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date
from functools import cached_property
from typing import Any

from mesh_assets.assets.column_lineage import ColumnRef, ModelLineage, Node, composed, port_node
from mesh_assets.assets.lineage_cache import mesh_lineage
from mesh_assets.assets.lineage_sql import WILDCARD
from mesh_assets.contracts.diff_rules import Change, Consumer, Rule
from mesh_assets.product.registry import Registry

JUDGED_RULES = {Rule.COLUMN_REMOVED, Rule.COLUMN_RENAMED, Rule.TYPE_NARROWED, Rule.TYPE_CHANGED}
"""Changes that break a reader only if it reads the column: a reader of other columns never sees them."""
NO_READER = "no reader"
"""The allowance of a column change no consumer product reads and no access agreement covers."""


@dataclass(frozen=True)
class ColumnReader:
    """A consumer product's port reading a producer's column, and the column path from it."""

    product: str
    port: str
    """`v<major>` of the consumer's port."""
    column: str | None
    """The consumer column computed from it; None when it is read only to join, filter or group rows."""
    team: str
    steward: str
    path: tuple[str, ...]
    """Column paths from the producer's column to this reader's, e.g.
    `customers.customer_master.country_code`, `commercial_analytics.customer_360.country_code`."""

    @property
    def route(self) -> str:
        """`a.b.c → d.e.f`, or `a.b.c → d.e (join/filter)` for a reader computing no column from it."""
        text = " → ".join(self.path)
        return text if self.column is not None else f"{text} → {self.product} (join/filter)"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "product": self.product,
            "port": self.port,
            "column": self.column,
            "team": self.team,
            "steward": self.steward,
            "path": list(self.path),
        }


class ColumnIndex:
    """Every consumer port's lineage, indexed by the producer column it reads."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.computed: dict[ColumnRef, list[tuple[Node, str]]] = defaultdict(list)
        self.read: dict[ColumnRef, set[Node]] = defaultdict(set)
        self.models: dict[Node, ModelLineage] = {}
        lineage = mesh_lineage(registry)
        for key, product in sorted(registry.products.items()):
            for port in product.spec.output_ports:
                model = composed(product, lineage[key], port.major)
                if model is None:
                    continue
                consumer = port_node(key, port.major)
                self.models[consumer] = model
                for column, deps in model.columns.items():
                    for dep in deps:
                        if dep.ref.node.kind == "port" and dep.ref.node.product != key:
                            self.computed[dep.ref].append((consumer, column))
                for ref in model.reads:
                    if ref.node.kind == "port" and ref.node.product != key:
                        self.read[ref].add(consumer)

    @cached_property
    def _owners(self) -> dict[str, tuple[str, str]]:
        return {k: (p.spec.owner.team, p.spec.owner.steward) for k, p in self.registry.products.items()}

    def _columns_of(self, node: Node) -> set[str]:
        product = self.registry.products.get(node.product)
        port = (
            next((p for p in product.spec.output_ports if p.major == node.major), None) if product else None
        )
        return {c.name for c in port.columns} if port else set()

    def _reads_everything(self, consumer: Node, producer: Node) -> bool:
        # A consumer reading every column of the port (`SELECT *`, an assumed Python lineage) reads a column
        # the port no longer has too: its lineage was computed against the contract as it is now.
        model = self.models.get(consumer)
        columns = self._columns_of(producer)
        if model is None or not columns:
            return False
        read = {r.column for r in model.reads if r.node == producer}
        return WILDCARD in read or columns <= read

    def readers(self, product: str, major: int, column: str, transitive: bool = True) -> list[ColumnReader]:
        """Every consumer port reading `column` of `product`'s port v`major`, nearest first."""
        start = ColumnRef(port_node(product, major), column)
        found: list[ColumnReader] = []
        seen: set[tuple[Node, str | None]] = set()
        queue: list[tuple[ColumnRef, tuple[str, ...]]] = [(start, (f"{product}.{column}",))]
        while queue:
            ref, path = queue.pop(0)
            wildcard = ColumnRef(ref.node, WILDCARD)
            computed = self.computed.get(ref, []) + self.computed.get(wildcard, [])
            for consumer, consumer_column in computed:
                if (consumer, consumer_column) in seen:
                    continue
                seen.add((consumer, consumer_column))
                step = (*path, f"{consumer.product}.{consumer_column}")
                found.append(self._reader(consumer, consumer_column, step))
                if transitive:
                    queue.append((ColumnRef(consumer, consumer_column), step))
            computing = {c for c, _ in computed}
            readers = self.read.get(ref, set()) | self.read.get(wildcard, set())
            if ref == start:
                readers |= {
                    c for c in self.models if c.product != product and self._reads_everything(c, ref.node)
                }
            for consumer in sorted(readers - computing):
                if (consumer, None) not in seen:
                    seen.add((consumer, None))
                    found.append(self._reader(consumer, None, path))
        return found

    def _reader(self, consumer: Node, column: str | None, path: tuple[str, ...]) -> ColumnReader:
        team, steward = self._owners.get(consumer.product, ("", ""))
        return ColumnReader(consumer.product, consumer.name, column, team, steward, path)


def agreement_readers(registry: Registry, product: str, major: int, column: str, today: date) -> list[str]:
    """People, teams and tools whose agreement in force on the port covers `column` (all when unscoped)."""
    from mesh_assets.product.agreement import ConsumerKind, State

    found = []
    for loaded in registry.agreements:
        agreement = loaded.agreement
        if loaded.producer != product or agreement.major != major:
            continue
        if agreement.consumer.kind == ConsumerKind.PRODUCT:
            continue  # a product's reading is known from its lineage
        if agreement.state(today) not in (State.ACTIVE, State.APPROVED):
            continue
        if agreement.columns is None or column in agreement.columns:
            scope = "every column" if agreement.columns is None else "its columns"
            found.append(f"{agreement.consumer} ({scope}, agreement {loaded.id})")
    return found


def judge_by_readers(changes: list[Change], registry: Registry, today: date | None = None) -> list[Change]:
    """The diff's column changes judged by who reads the column: its readers named, or allowed as no reader.

    Only breaking, blocking `JUDGED_RULES` changes are touched; the rest are returned as they are.
    """
    today = today or registry.today
    index: ColumnIndex | None = None
    judged = []
    for change in changes:
        if not (change.blocking and change.rule in JUDGED_RULES and change.port and change.column):
            judged.append(change)
            continue
        index = index or ColumnIndex(registry)
        major = int(change.port[1:])
        products = [r for r in index.readers(change.product, major, change.column, transitive=False)]
        people = agreement_readers(registry, change.product, major, change.column, today)
        if not products and not people:
            judged.append(
                replace(
                    change,
                    allowed=NO_READER,
                    consumers=(),
                    reason=f"{change.reason}; no consumer product reads it (column lineage) and no access "
                    "agreement covers it",
                )
            )
            continue
        by_product = {c.product: c for c in change.consumers}
        consumers = [by_product.get(r.product) or _consumer(registry, r) for r in products]
        routes = "; ".join(dict.fromkeys(r.route for r in products))
        reason = change.reason
        if routes:
            reason += f"; read as {routes}"
        if people:
            reason += f"; access covers it for {', '.join(people)}"
        judged.append(replace(change, reason=reason, consumers=tuple(dict.fromkeys(consumers))))
    return judged


def _consumer(registry: Registry, reader: ColumnReader) -> Consumer:
    spec = registry.products[reader.product].spec
    return Consumer(reader.product, spec.owner.team, spec.owner.steward, "", "")
