"""Code location of the `sales` domain: orders and revenue, built with dbt."""

import dagster as dg

from mesh_assets.assets.location import build_domain


@dg.definitions
def defs() -> dg.Definitions:
    """Every product of the domain, built from its `dataproduct.yaml` files."""
    return build_domain("sales")
