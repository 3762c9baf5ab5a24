"""The governance code location (`mesh`): the whole mesh seen from the platform team's side.

It owns no data products. Each governance feature is its own module contributing definitions computed
centrally over every product's spec, so no product team can opt out; this module only assembles them.
"""

import dagster as dg

from mesh_assets import catalog, observe
from mesh_assets.assets.location import automation_sensor
from mesh_assets.govern import access_reconcile, overview, scorecard
from mesh_assets.infra import environment, reclaim
from mesh_assets.product.registry import GOVERNANCE_DOMAIN, load_registry

FEATURES = [overview, catalog, observe, scorecard, reclaim, access_reconcile]
"""Modules with `definitions(registry, env) -> dg.Definitions`, merged into the location."""


def build_governance() -> dg.Definitions:
    """The definitions of the `mesh` governance location."""
    env = environment.resolve()
    registry = load_registry(env.root)
    return dg.Definitions.merge(
        *(feature.definitions(registry, env) for feature in FEATURES),
        dg.Definitions(
            sensors=[automation_sensor(GOVERNANCE_DOMAIN)], resources={"warehouse": env.warehouse()}
        ),
    )
