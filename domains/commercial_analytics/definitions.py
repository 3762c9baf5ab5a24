"""Code location of the `commercial_analytics` domain: consumer-aligned products from other ports."""

import dagster as dg

from mesh_assets.assets.location import build_domain


@dg.definitions
def defs() -> dg.Definitions:
    """Every product of the domain, built from its `dataproduct.yaml` files."""
    return build_domain("commercial_analytics")
