"""Column lineage computed for the mesh, and kept: the cache behind every reader of lineage.

Lineage is computed when a location loads or a command needs it and kept in a cache keyed by everything
it is computed from (the product's SQL or its dbt manifest, its spec, its inputs' contracts), so a
location's load imports no sqlglot once the cache is warm (`benchmarks/load_time.py`), and an edit is
simply a new key (no modification times to trust for SQL files).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType

from mesh_assets.assets import lineage_models
from mesh_assets.assets.column_lineage import ProductLineage, input_nodes, python_lineage
from mesh_assets.product import kinds, pickle_store
from mesh_assets.product.registry import Product, Registry

FORMAT = 1
"""Part of every key: raise it when what lineage computes changes, so older entries are not read."""
STALE_DAYS = 7
"""Cache files of meshes not loaded for this long (test copies, benchmarks' generated meshes) are removed."""


def cache_file(root: Path) -> Path:
    """Where the lineage of the mesh under `root` is kept: beside the installed packages, never in a
    working copy. One file per mesh, holding only its products, so a load reads no other mesh's lineage."""
    digest = hashlib.blake2b(str(root.resolve()).encode(), digest_size=8).hexdigest()
    return pickle_store.cache_dir() / f"lineage-{digest}.pickle"


_MEMORY: dict[str, ProductLineage] = {}


def _digest(product: Product, registry: Registry) -> str:
    spec = product.spec
    parts = [
        str(FORMAT),
        spec.model_dump_json(include={"transformation", "input_ports", "output_ports", "name", "domain"}),
    ]
    for node, columns in input_nodes(product, registry).values():
        parts.append(f"{node}{columns}")
    kind = kinds.kind_of(spec)
    if kind.sql_code:  # lineage read from the code: the code is part of the key
        parts += [path.read_text() for path in kind.folder_code(spec, product.folder)]
    project = kind.project(spec)
    if project is not None:  # a shared project's models are read from its manifest
        manifest = registry.root / kinds.DBT_PROJECTS / project / "target" / "manifest.json"
        stat = manifest.stat() if manifest.exists() else None
        parts.append(f"{manifest}:{stat.st_mtime_ns if stat else 0}:{stat.st_size if stat else 0}")
    return hashlib.blake2b("\n".join(parts).encode(), digest_size=16).hexdigest()


def product_lineage(product: Product, registry: Registry) -> ProductLineage:
    """The lineage of every model of a product, from the cache when nothing it depends on changed."""
    return mesh_lineage(registry, [product])[product.key]


def mesh_lineage(registry: Registry, products: list[Product] | None = None) -> dict[str, ProductLineage]:
    """Lineage of `products` (default: every product), by key; computed once per content, then cached."""
    chosen = products if products is not None else [registry.products[k] for k in sorted(registry.products)]
    digests = {p.key: _digest(p, registry) for p in chosen}
    missing = [p for p in chosen if digests[p.key] not in _MEMORY]
    if missing:
        stored = _read_cache(registry.root)
        for product in missing:
            digest = digests[product.key]
            if digest in stored:
                _MEMORY[digest] = stored[digest]
        computed = {}
        for product in missing:
            digest = digests[product.key]
            if digest not in _MEMORY:
                computed[digest] = _MEMORY[digest] = compute(product, registry)
        if computed:
            # Keep only entries of products the mesh still has: an edit replaces its product's entry.
            current = (
                {_digest(p, registry) for p in registry.products.values()}
                if products
                else set(digests.values())
            )
            _write_cache(registry.root, {k: v for k, v in {**stored, **computed}.items() if k in current})
    return {p.key: _MEMORY[digests[p.key]] for p in chosen}


def _read_cache(root: Path) -> dict[str, ProductLineage]:
    return pickle_store.read(cache_file(root))


def _write_cache(root: Path, entries: dict[str, ProductLineage]) -> None:
    path = cache_file(root)
    if not pickle_store.write(path, entries):
        return  # a read-only installation computes lineage every time
    stale = time.time() - STALE_DAYS * 86400
    for other in path.parent.glob("lineage-*.pickle"):
        try:
            if other != path and other.stat().st_mtime < stale:
                other.unlink(missing_ok=True)
        except OSError:  # removed by a concurrent load meanwhile
            pass


def _python_lineage(product: Product, registry: Registry) -> ProductLineage:
    # Python code is not read: each port's lineage is what its spec declares (`python_lineage`).
    return ProductLineage(
        {f"v{p.major}": python_lineage(product, p, registry) for p in product.spec.output_ports}
    )


LINEAGE: Mapping[str, Callable[[Product, Registry], ProductLineage]] = MappingProxyType(
    {
        "sql": lineage_models.sql_product,
        "python": _python_lineage,
        "dbt": lineage_models.dbt_product,
    }
)
"""How the lineage of each transformation kind is computed, by the kind's name."""


def compute(product: Product, registry: Registry) -> ProductLineage:
    """A product's lineage computed from its code or spec (no cache)."""
    return LINEAGE[kinds.kind_of(product).name](product, registry)
