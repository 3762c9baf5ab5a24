"""Asset builders: one module per way a product is built (source landing, SQL, Python, dbt).

`BUILDERS` maps each transformation kind (`product.kinds.KINDS`) to what builds its assets, so the code
location dispatches on the kind without naming one. A new kind adds its module here and one entry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

import dagster as dg

from mesh_assets.assets.builders import python as python_builder
from mesh_assets.assets.builders import sql as sql_builder
from mesh_assets.product import addressing

if TYPE_CHECKING:
    from mesh_assets.assets.column_lineage import ProductLineage
    from mesh_assets.assets.publish import BuildCandidate
    from mesh_assets.infra.environment import Environment
    from mesh_assets.product.registry import Product, Registry
    from mesh_assets.product.spec import OutputPort

InternalAssets = Callable[
    ["Product", "Registry", "Environment", "dg.AutomationCondition | None", "ProductLineage | None"],
    "list[dg.AssetsDefinition]",
]
PortBuilder = Callable[
    ["Product", "Registry", "OutputPort", "Environment"], "tuple[BuildCandidate | None, list[dg.AssetKey]]"
]
ProjectAssets = Callable[
    ["Registry", str, str, "Environment", "dict[str, dg.AutomationCondition | None]"], "dg.AssetsDefinition"
]


@dataclass(frozen=True)
class KindBuilder:
    """What builds the Dagster assets of one transformation kind."""

    internal_assets: InternalAssets
    """The assets of a product's internal models (beside its ports)."""
    port_builder: PortBuilder
    """A port's candidate builder (None: another asset builds the candidate) and the assets it reads."""
    project_assets: ProjectAssets | None = None
    """The assets of a shared project (`kinds.TransformationKind.project`), one per project and domain."""


def _no_internals(
    product: Product,
    registry: Registry,
    env: Environment,
    automation: dg.AutomationCondition | None,
    lineage: ProductLineage | None,
) -> list[dg.AssetsDefinition]:
    return []


def _sql_port(
    product: Product, registry: Registry, port: OutputPort, env: Environment
) -> tuple[BuildCandidate | None, list[dg.AssetKey]]:
    return sql_builder.port_builder(product, registry, product.spec.port_model(port), env.target)


def _python_port(
    product: Product, registry: Registry, port: OutputPort, env: Environment
) -> tuple[BuildCandidate | None, list[dg.AssetKey]]:
    return python_builder.port_builder(product, registry, port, env)


def _dbt_port(
    product: Product, registry: Registry, port: OutputPort, env: Environment
) -> tuple[BuildCandidate | None, list[dg.AssetKey]]:
    # The project's multi-asset builds the port model: the port reads it, and builds nothing itself.
    spec = product.spec
    return None, [addressing.internal_key(spec.domain, spec.name, spec.port_model(port))]


def _dbt_project(
    registry: Registry,
    domain: str,
    project: str,
    env: Environment,
    automation: dict[str, dg.AutomationCondition | None],
) -> dg.AssetsDefinition:
    from mesh_assets.assets.builders import dbt as dbt_builder  # dagster-dbt only where dbt is used

    return dbt_builder.dbt_project_assets(registry, domain, project, env, automation)


BUILDERS: Mapping[str, KindBuilder] = MappingProxyType(
    {
        "sql": KindBuilder(sql_builder.internal_assets, _sql_port),
        "python": KindBuilder(_no_internals, _python_port),
        "dbt": KindBuilder(_no_internals, _dbt_port, _dbt_project),
    }
)
"""The builder of every transformation kind, by the kind's name (`tests/product/test_kinds.py`)."""
