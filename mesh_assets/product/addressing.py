"""Where things live: asset keys, warehouse relations and stable URIs of ports and internals.

Ports and internals are told apart by their address alone. A port lives in its domain's schema
(`<domain>.<product>_v<major>`) under asset key `<domain>/<product>/v<major>`; internals live in the
domain's private schema (`<domain>_internal`) under `<domain>/<product>/internal/<name>`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from mesh_assets.product.sql_text import qualified

if TYPE_CHECKING:
    from mesh_assets.product.registry import Product, Registry
    from mesh_assets.product.spec import DataProductSpec, OutputPort

INTERNAL_SCHEMA_SUFFIX = "_internal"
INTERNAL_SEGMENT = "internal"
SOURCE_SEGMENT = "source"


@dataclass(frozen=True)
class Relation:
    """A table or view in the warehouse, addressed by schema and name."""

    schema: str
    name: str

    @property
    def sql(self) -> str:
        """The quoted, qualified name to use in SQL."""
        return qualified(self.schema, self.name)

    @property
    def dotted(self) -> str:
        """`schema.name`, as shown to people."""
        return f"{self.schema}.{self.name}"


def port_key(domain: str, product: str, major: int) -> dg.AssetKey:
    """Asset key of a product's output port for one major version."""
    return dg.AssetKey([domain, product, f"v{major}"])


def internal_key(domain: str, product: str, name: str) -> dg.AssetKey:
    """Asset key of an asset private to a product."""
    return dg.AssetKey([domain, product, INTERNAL_SEGMENT, name])


def source_key(domain: str, product: str, source: str) -> dg.AssetKey:
    """Asset key of a source extract landed by a product (`source` is `<system>.<extract>`)."""
    return dg.AssetKey([domain, product, SOURCE_SEGMENT, source.replace(".", "__")])


def is_port_key(key: dg.AssetKey) -> bool:
    """True when the key addresses an output port."""
    path = key.path
    return len(path) == 3 and path[2].startswith("v") and path[2][1:].isdigit()


def port_relation(domain: str, product: str, major: int) -> Relation:
    """The published table of an output port."""
    return Relation(domain, f"{product}_v{major}")


def published(spec: DataProductSpec, port: OutputPort) -> Relation:
    """The published table of `spec`'s output `port`."""
    return port_relation(spec.domain, spec.name, port.major)


def staging_relation(domain: str, product: str, major: int) -> Relation:
    """Where a port's next batch is written and audited before it is published."""
    return Relation(domain + INTERNAL_SCHEMA_SUFFIX, f"{product}_v{major}__staging")


def internal_relation(domain: str, product: str, name: str) -> Relation:
    """An internal model's table, in the domain's private schema."""
    return Relation(domain + INTERNAL_SCHEMA_SUFFIX, f"{product}__{name}")


def source_relation(domain: str, source: str) -> Relation:
    """The landed copy of a source extract, in the domain's private schema."""
    return Relation(domain + INTERNAL_SCHEMA_SUFFIX, "src_" + source.replace(".", "__"))


def port_uri(domain: str, product: str, major: int) -> str:
    """The stable, warehouse-independent address of a port."""
    return f"mesh://{domain}/{product}/v{major}"


GOVERNANCE_ASSET: dict[str, Any] = {
    "group_name": "governance",
    "owners": ["team:platform"],
    "tags": {"mesh/role": "governance"},
}
"""Attributes every asset of the `mesh` governance location shares."""


def all_port_keys(registry: Registry) -> list[dg.AssetKey]:
    """The asset key of every output port of the mesh (what governance assets watch)."""
    return [
        port_key(product.spec.domain, product.spec.name, port.major)
        for product in registry.products.values()
        for port in product.spec.output_ports
    ]


CONTRACT_SUFFIX = ".odcs.yaml"
"""File-name suffix of an exported ODCS contract."""


def contract_id(domain: str, product: str, major: int) -> str:
    """The stable id of a port's contract: `<domain>.<product>.v<major>` (also its file name stem)."""
    return f"{domain}.{product}.v{major}"


def contract_file_name(domain: str, product: str, major: int) -> str:
    """`<domain>.<product>.v<major>.odcs.yaml`."""
    return contract_id(domain, product, major) + CONTRACT_SUFFIX


def repo_root_of(product: Product) -> Path:
    """The repository holding a product: specs live at `<root>/domains/<d>/products/<p>/dataproduct.yaml`."""
    path = product.path.resolve()
    if len(path.parents) > 4 and path.parents[3].name == "domains":
        return path.parents[4]
    return path.parent  # a spec outside the repository layout: its own folder stands for the repository
