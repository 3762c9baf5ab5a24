"""What a fitness evaluation observes beyond the specs (the built catalog, the Dagster instance), and the
mesh-wide lookups it computes once."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mesh_assets.product import addressing
from mesh_assets.product.registry import Product, Registry, effective_status
from mesh_assets.product.spec import LogicalType, OutputPort, Status

if TYPE_CHECKING:
    from mesh_assets.catalog.runtime import PortRuntime


# --- facts the platform observed (all optional) -----------------------------------------------------------


@dataclass(frozen=True)
class CatalogFacts:
    """What the built catalog holds: its search index (one entry per product) and its product pages."""

    path: Path
    built_at: datetime | None
    entries: Mapping[str, Mapping[str, Any]]
    pages: frozenset[str]
    """`<domain>.<product>` of every product page present."""

    @classmethod
    def read(cls, folder: Path) -> CatalogFacts | None:
        """The catalog at `folder` (`index.html` with its embedded search index), or None if not built."""
        index = folder / "index.html"
        if not index.exists():
            return None
        match = re.search(
            r'<script[^>]*id="search-index"[^>]*>(.*?)</script>', index.read_text("utf-8"), flags=re.S
        )
        entries = {e["key"]: e for e in json.loads(match[1])} if match else {}
        pages = frozenset(p.stem for p in (folder / "products").glob("*.html"))
        built = datetime.fromtimestamp(index.stat().st_mtime, tz=UTC)
        return cls(path=folder, built_at=built, entries=entries, pages=pages)


@dataclass(frozen=True)
class Facts:
    """Optional observations: the built catalog, and the Dagster instance's view of each port."""

    catalog: CatalogFacts | None = None
    runtime: Mapping[Any, PortRuntime] | None = None
    """Port asset key → `PortRuntime` (`catalog.runtime.read_runtime`)."""


NO_FACTS = Facts()


# --- what is computed once for the whole mesh -----------------------------------------------------------


@dataclass
class MeshIndex:
    """Mesh-wide lookups the characteristics share, computed once per evaluation."""

    uris: Counter[str] = field(default_factory=Counter)
    tables: Counter[str] = field(default_factory=Counter)
    business_keys: dict[str, dict[LogicalType, list[str]]] = field(default_factory=dict)
    """Column name → its type in each product whose port has it as the whole primary key."""

    @classmethod
    def of(cls, registry: Registry) -> MeshIndex:
        """Index every product of the registry."""
        index = cls()
        for product in registry.products.values():
            spec = product.spec
            for port in spec.output_ports:
                index.uris[addressing.port_uri(spec.domain, spec.name, port.major)] += 1
                index.tables[addressing.published(spec, port).dotted.lower()] += 1
                if len(port.primary_key) == 1:
                    column = next(c for c in port.columns if c.name == port.primary_key[0])
                    owners = index.business_keys.setdefault(column.name, {}).setdefault(column.type, [])
                    if product.key not in owners:
                        owners.append(product.key)
        return index


def served_ports(product: Product, registry: Registry) -> list[OutputPort]:
    """The product's ports that are still served (not retired), newest first."""
    spec = product.spec
    return sorted(
        (p for p in spec.output_ports if effective_status(spec, p, registry.today) != Status.RETIRED),
        key=lambda p: -p.major,
    )
