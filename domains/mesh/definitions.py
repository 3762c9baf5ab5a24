"""Code location `mesh`: governance of the whole mesh (overview; home of scorecards and SLO sensors)."""

import dagster as dg

from mesh_assets.govern.location import build_governance


@dg.definitions
def defs() -> dg.Definitions:
    """The governance assets and sensors, computed centrally over every product's spec."""
    return build_governance()
