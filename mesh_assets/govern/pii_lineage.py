"""PII follows the data: a port column computed from personal data in clear is personal data too.

A consumer holding the PII privilege on an input reads its PII columns in clear text; any port column it
computes from one without a statistic aggregate, hash or mask (`ColumnDep.carries`, from column lineage)
republishes personal data and must be marked `pii: true`, so its own readers get it protected. Without
the privilege the platform hands the consumer masked, hashed or removed values, which are not personal
data. A column whose lineage is only assumed (a Python port without `lineage:`) is judged by name, as
before lineage: every column of such a port would otherwise be flagged.

`mesh validate` reports each unmarked column as a warning; the `secure` fitness function fails on it.
"""

from __future__ import annotations

from dataclasses import dataclass

from mesh_assets.assets.column_lineage import composed
from mesh_assets.product import access
from mesh_assets.product.errors import SpecIssue
from mesh_assets.product.registry import Product, Registry


@dataclass(frozen=True)
class UnmarkedPii:
    """A port column computed from an input's PII in clear, but not marked `pii: true`."""

    major: int
    column: str
    upstream: tuple[str, ...]
    """Column paths of the PII it is computed from, e.g. `customers.customer_master.contact_email`."""

    @property
    def where(self) -> str:
        """`v1.contact`."""
        return f"v{self.major}.{self.column}"


def unmarked_pii(product: Product, registry: Registry) -> list[UnmarkedPii]:
    """The product's port columns computed in clear from PII its inputs hand it, not marked as PII."""
    spec = product.spec
    clear: dict[str, set[str]] = {}  # producer key -> its PII columns this product reads in clear
    for declared in spec.product_inputs:
        resolved = registry.resolve(product, declared)
        if resolved is None or not access.pii_privilege(resolved.producer.spec, spec, registry.today):
            continue
        names = {c.name for c in access.pii_columns(resolved.port)}
        if names:
            clear[resolved.producer.key] = names
    if not clear:
        return []  # lineage is computed only for products that may see personal data in clear
    from mesh_assets.assets.lineage_cache import product_lineage

    lineage = product_lineage(product, registry)
    found = []
    for port in spec.output_ports:
        model = composed(product, lineage, port.major)
        for column in port.columns:
            if column.pii or model is None:
                continue
            if column.name in model.assumed:
                # No lineage to follow: a column named as an input's PII column is that column.
                upstream = tuple(f"{k}.{column.name}" for k, names in clear.items() if column.name in names)
            else:
                upstream = tuple(
                    d.ref.path
                    for d in model.columns.get(column.name, ())
                    if d.carries
                    and d.ref.node.kind == "port"
                    and d.ref.column in clear.get(d.ref.node.product, ())
                )
            if upstream:
                found.append(UnmarkedPii(port.major, column.name, upstream))
    return found


def issues(registry: Registry) -> list[SpecIssue]:
    """A warning for every port column carrying an input's PII in clear without `pii: true`."""
    found = []
    for product in registry.products.values():
        for unmarked in unmarked_pii(product, registry):
            index = next(i for i, p in enumerate(product.spec.output_ports) if p.major == unmarked.major)
            port = product.spec.output_ports[index]
            position = next(i for i, c in enumerate(port.columns) if c.name == unmarked.column)
            found.append(
                SpecIssue(
                    product.path,
                    f"output_ports[{index}].columns[{position}]",
                    f"'{unmarked.column}' is computed in clear from personal data "
                    f"({', '.join(unmarked.upstream)}) but not marked pii",
                    "mark it `pii: true`, or hash, mask or aggregate it in the transformation",
                    severity="warning",
                )
            )
    return found
