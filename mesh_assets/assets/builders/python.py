"""Python products: a module in the product folder whose function builds a port from its inputs.

The function for a port is named after the port's model (default `<product>_v<major>`) and receives a
dict of DataFrames keyed by the declared input ports (`'crm.customers'`, `'customers.customer_master'`),
so it can read nothing it did not declare. The module is imported only when the asset runs, keeping
code-location load free of domain code and its imports.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from mesh_assets.assets import binding_reads
from mesh_assets.assets.publish import BuildCandidate
from mesh_assets.infra import environment
from mesh_assets.infra.environment import Environment
from mesh_assets.infra.warehouse.base import WarehouseSession
from mesh_assets.product import access, addressing, kinds
from mesh_assets.product.registry import Product, Registry
from mesh_assets.product.spec import OutputPort, PythonTransformation

if TYPE_CHECKING:
    import pandas as pd


def _load_function(path: Path, name: str) -> Callable[[dict[str, pd.DataFrame]], pd.DataFrame]:
    # Keyed by the file's full path, so two copies of a product (tests, branches) never share a module.
    # The modification time is part of the key so a long-lived process picks up an edited transform.
    stamp = f"{path.resolve()}:{path.stat().st_mtime_ns}"
    digest = hashlib.sha1(stamp.encode()).hexdigest()[:12]
    module_name = f"mesh_product_{path.parent.name}_{path.stem}_{digest}"
    module = sys.modules.get(module_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    function = getattr(module, name, None)
    if not callable(function):
        raise dg.Failure(
            description=f"{path} defines no function '{name}'. Add `def {name}(inputs: dict[str, "
            "pd.DataFrame]) -> pd.DataFrame`, or set the port's `model` to the function's name.",
            allow_retries=False,
        )
    return function


def input_relations(
    product: Product, registry: Registry
) -> dict[str, tuple[addressing.Relation, dg.AssetKey]]:
    """Each declared input of the product: where it is read from, and its asset key."""
    spec = product.spec
    found: dict[str, tuple[addressing.Relation, dg.AssetKey]] = {}
    for source in spec.source_inputs:
        found[source.source] = (
            addressing.source_relation(spec.domain, source.source),
            addressing.source_key(spec.domain, spec.name, source.source),
        )
    for declared in spec.product_inputs:
        resolved = registry.resolve(product, declared)
        if resolved is not None:  # unresolved inputs are registry errors, raised before this runs
            found[declared.product] = (
                resolved.relation,
                resolved.key,
            )
    return found


def port_builder(
    product: Product, registry: Registry, port: OutputPort, env: Environment | None = None
) -> tuple[BuildCandidate, list[dg.AssetKey]]:
    """The candidate builder of a Python port, and the assets it reads (inputs `via: iceberg` from the
    producer's binding in `env`, the location's environment)."""
    transformation = kinds.narrow(product.spec.transformation, PythonTransformation)
    module_path = product.folder / transformation.module
    function_name = product.spec.port_model(port)
    inputs = input_relations(product, registry)
    via_binding = binding_reads.inputs_via_binding(product, registry)

    def build(
        context: dg.AssetExecutionContext, session: WarehouseSession, candidate: addressing.Relation
    ) -> None:
        function = _load_function(module_path, function_name)
        # PII ports reach a consumer without the PII privilege protected per the producer's policy.
        protected = access.input_queries(product, registry, session.dialect)
        frames = {
            name: (
                binding_reads.read_input(via_binding[name], env or environment.resolve(), context.log)
                if name in via_binding
                else session.query_df(protected.get(name, f"SELECT * FROM {relation.sql}"))
            )
            for name, (relation, _) in inputs.items()
        }
        result = function(frames)
        context.log.info(f"{module_path.name}:{function_name} returned {len(result):,} rows")
        session.write_dataframe(candidate, result)

    return build, [key for _, key in inputs.values()]
