"""Column lineage computed for the mesh, and kept: the cache behind every reader of lineage.

Lineage is computed when a location loads or a command needs it and kept in a cache keyed by everything
it is computed from (the product's SQL or its dbt manifest, its spec, its inputs' contracts), so a
location's load imports no sqlglot once the cache is warm (`benchmarks/load_time.py`), and an edit is
simply a new key (no modification times to trust for SQL files).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
from pathlib import Path

from mesh_assets.build import lineage_models
from mesh_assets.build.column_lineage import ProductLineage, input_nodes, python_lineage
from mesh_assets.product.registry import Product, Registry
from mesh_assets.product.spec import DbtTransformation, PythonTransformation, SqlTransformation

CACHE_ENTRIES = 5000
"""Products kept in the lineage cache (every product of a large mesh, with room for edits)."""


def cache_file() -> Path:
    """Where computed lineage is kept: beside the installed packages, never in a working copy."""
    return Path(sys.prefix) / "var" / "cache" / "mesh" / "lineage.pickle"


_MEMORY: dict[str, ProductLineage] = {}


def _digest(product: Product, registry: Registry) -> str:
    spec = product.spec
    parts = [
        spec.model_dump_json(include={"transformation", "input_ports", "output_ports", "name", "domain"})
    ]
    for node, columns in input_nodes(product, registry).values():
        parts.append(f"{node}{columns}")
    transformation = spec.transformation
    if isinstance(transformation, SqlTransformation):
        for path in sorted(product.folder.glob("*.sql")):
            parts.append(path.read_text())
    elif isinstance(transformation, DbtTransformation):
        manifest = registry.root / "dbt_projects" / transformation.project / "target" / "manifest.json"
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
        stored = _read_cache()
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
            _write_cache({**stored, **computed})
    return {p.key: _MEMORY[digests[p.key]] for p in chosen}


def _read_cache() -> dict[str, ProductLineage]:
    try:
        entries = pickle.loads(cache_file().read_bytes())
    except Exception:  # missing, truncated or from another version: compute again
        return {}
    return entries if isinstance(entries, dict) else {}


def _write_cache(entries: dict[str, ProductLineage]) -> None:
    path = cache_file()
    kept = dict(list(entries.items())[-CACHE_ENTRIES:])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        partial.write_bytes(pickle.dumps(kept, protocol=pickle.HIGHEST_PROTOCOL))
        os.replace(partial, path)  # atomic: a concurrent reader sees the old or the new file
    except OSError:
        pass  # a read-only installation computes lineage every time


def compute(product: Product, registry: Registry) -> ProductLineage:
    """A product's lineage computed from its code or spec (no cache)."""
    transformation = product.spec.transformation
    if isinstance(transformation, PythonTransformation):
        return ProductLineage(
            {f"v{p.major}": python_lineage(product, p, registry) for p in product.spec.output_ports}
        )
    if isinstance(transformation, SqlTransformation):
        return lineage_models.sql_product(product, registry)
    return lineage_models.dbt_product(product, registry)
