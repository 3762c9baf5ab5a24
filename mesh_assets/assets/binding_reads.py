"""A Python product reading an input port through the port's Iceberg binding (`via: iceberg`).

The input resolves as every input does (the version range picks the producer's port; approvals and
lifecycle were checked with the specs, `product/binding_inputs.py`); only where the rows come from
changes: the Iceberg table's current snapshot, the producer's last good publish of that binding, instead
of the warehouse table. The consumer gets the frame it would get from the table: the port's columns in
its order, PII protected as the table read protects it (a `pii: protected` binding already holds what a
reader without the privilege reads; a `pii: clear` one is protected here for such a consumer), converted
to pandas by DuckDB as `query_df` converts the table's rows.

Environments: an environment reads its own binding (`dev__sales.sales_v2` in a branch); one that defers
to prod and has not built the producer reads prod's, as it reads prod's table (docs/environments.md).
A producer whose binding write failed keeps its last good snapshot (its parity check says so): a consumer
reading through the binding reads that snapshot, which is why the table stays the default.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import dagster as dg

from mesh_assets.assets import binding_iceberg
from mesh_assets.assets.bindings import places
from mesh_assets.product.binding_inputs import VIA_ICEBERG, iceberg_binding, via_of
from mesh_assets.product.bindings import BindingPii

if TYPE_CHECKING:
    import pandas as pd

    from mesh_assets.infra.environment import Environment
    from mesh_assets.product.registry import Product, Registry, ResolvedInput


def inputs_via_binding(product: Product, registry: Registry) -> dict[str, ResolvedInput]:
    """The product's inputs declared `via: iceberg`, by input name (`<domain>.<product>`), resolved."""
    found = {}
    for declared in product.spec.product_inputs:
        if via_of(declared) == VIA_ICEBERG:
            resolved = registry.resolve(product, declared)
            if resolved is not None:  # unresolved inputs are registry errors, raised before this runs
                found[declared.product] = resolved
    return found


def iceberg_place(resolved: ResolvedInput, env: Environment) -> binding_iceberg.IcebergPlace:
    """The Iceberg table the input reads in `env`: its own, or prod's when it defers and built none."""
    spec, port = resolved.producer.spec, resolved.port
    own = places(env, spec, port).iceberg
    if env.defers_to_prod and not binding_iceberg.publishes(own):
        return places(env.sibling("prod"), spec, port).iceberg
    return own


def read_input(resolved: ResolvedInput, env: Environment, log: Any = None) -> pd.DataFrame:
    """The input's rows read from the producer port's Iceberg binding, as the consumer reads the table."""
    import duckdb

    from mesh_assets.product.access import protected_projection, protection
    from mesh_assets.product.sql_text import quote_identifier

    producer, port, consumer = resolved.producer, resolved.port, resolved.consumer
    binding = iceberg_binding(port)
    if binding is None:  # `mesh validate` refuses it first; a stale code location may still ask
        raise dg.Failure(
            description=f"{consumer.path}: input {producer.key} reads `via: iceberg`, but {producer.key} "
            f"v{port.major} declares no iceberg binding. Fix: remove `via`, or add the binding to the port.",
            allow_retries=False,
        )
    where = iceberg_place(resolved, env)
    kept = binding_iceberg.publishes(where)
    if not kept:
        raise dg.Failure(
            description=f"{producer.key} v{port.major} has no Iceberg snapshot in {where.identifier} "
            f"(environment {env.name}) for {consumer.key} to read. Fix: build it first "
            f"(`mesh run --product {producer.key}`), or remove `via` to read the table.",
            allow_retries=True,
        )
    arrow = binding_iceberg.read(where)
    # Protect a clear binding as the table read would; a protected binding already is (never twice:
    # hashing a mask would give neither the table's values nor its pseudonyms).
    handling = protection(producer.spec, port, consumer.spec) if binding.pii == BindingPii.CLEAR else {}
    projection = (
        protected_projection(port, handling, "duckdb")
        if handling
        else [quote_identifier(c.name) for c in port.columns if c.name in arrow.schema.names]
    )
    connection = duckdb.connect(":memory:")
    try:
        connection.register("batch", arrow)
        selected = ", ".join(projection) or 'NULL AS "_no_columns"'  # every column PII and removed
        frame = connection.execute(f"SELECT {selected} FROM batch").df()
    finally:
        connection.close()
    if log is not None:
        log.info(
            f"{producer.key} v{port.major}: read {len(frame):,} rows via iceberg from {where.identifier}, "
            f"publish {kept[-1].publish_id}"
        )
    return frame
