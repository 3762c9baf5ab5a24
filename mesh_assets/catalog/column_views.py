"""Per column of a port, for the catalog: the upstream columns it is computed from and who reads it.

Both come from column lineage (`build.column_lineage`, `contracts.column_impact`): upstream columns of
other products' ports and of source extracts, seen through the product's internals; readers are the
consumer ports and columns computed from it, and the consumers reading it only to join or filter. The
index of readers is built once per registry, since a catalog build asks for every product's columns.
"""

from __future__ import annotations

from typing import Any

from mesh_assets.assets.column_lineage import composed
from mesh_assets.assets.lineage_cache import product_lineage
from mesh_assets.contracts.column_impact import ColumnIndex
from mesh_assets.product.registry import Product, Registry
from mesh_assets.product.spec import OutputPort

_INDEX: list[tuple[Registry, ColumnIndex]] = []


def _index(registry: Registry) -> ColumnIndex:
    # One index per catalog build: a registry object is one load of the mesh.
    if not _INDEX or _INDEX[0][0] is not registry:
        _INDEX[:] = [(registry, ColumnIndex(registry))]
    return _INDEX[0][1]


def column_lineage(product: Product, port: OutputPort, registry: Registry) -> dict[str, dict[str, Any]]:
    """Each column's `upstream` column paths, `readers` (consumer routes) and `how` lineage was found."""
    model = composed(product, product_lineage(product, registry), port.major)
    index = _index(registry)
    views = {}
    for column in port.columns:
        deps = model.columns.get(column.name, ()) if model else ()
        how = "assumed" if model is None or column.name in model.assumed else model.how
        views[column.name] = {
            "upstream": sorted({d.ref.path for d in deps}),
            "readers": [
                r.route for r in index.readers(product.key, port.major, column.name, transitive=False)
            ],
            "how": how,
        }
    return views
