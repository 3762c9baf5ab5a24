"""Code location of the `customers` domain: mastered customer data (labs, hospitals, clinics)."""

import dagster as dg

from mesh_assets.assets.location import build_domain


@dg.definitions
def defs() -> dg.Definitions:
    """Every product of the domain, built from its `dataproduct.yaml` files."""
    return build_domain("customers")
