"""Code location of the `diagnostics` domain: runs of diagnostic instruments at customer sites."""

import dagster as dg

from mesh_assets.assets.location import build_domain


@dg.definitions
def defs() -> dg.Definitions:
    """Every product of the domain, built from its `dataproduct.yaml` files."""
    return build_domain("diagnostics")
