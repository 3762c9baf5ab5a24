"""The automation condition of everything downstream of a source: refresh once per cascade, on its final data.

`AutomationCondition.eager()` refreshes an asset as soon as any dependency updates and none is in
progress. Across code locations that is too early: each location's automation sensor ticks on its own,
so when `customers.customer_master` publishes, the mesh sensor may see it before the diagnostics sensor
has requested `instrument_runs` (which reads it). An eager consumer of both then runs twice (or once,
on the stale `instrument_runs`), and the governance assets, which read every port, refresh once per port
of the cascade, sometimes while a producer's checks are still in flight.

`after_upstream_settles()` is eager plus one more wait: no dependency is *stale*, i.e. had one of its own
inputs update since it last updated (so its own automation is about to refresh it). Staleness is judged
per dependency from the event log, whichever location owns it, so the wait crosses code locations:

    customer_master publishes ─► instrument_runs stale ─► runs ─► customer_360 stale ─► runs ─► ...
                                 (customer_360 waits)            (governance waits)

and each asset refreshes once, after the last of its inputs in that cascade. A dependency stops being
stale when it updates, when its run fails (its failure is then what the consumer sees; nothing waits for
a retry), or when it cannot run because one of its own inputs is missing. A dependency requested on the
same tick is not stale: the consumer joins its run, as with `eager()`.
"""

from __future__ import annotations

import dagster as dg

LABEL = "eager, after upstream settles"


def stale() -> dg.AutomationCondition:
    """True for an asset whose inputs updated since it last updated and that is not being requested now.

    Evaluated on a consumer's dependencies (`any_deps_match`): such a dependency will refresh soon.
    """
    condition = dg.AutomationCondition
    inputs_updated = condition.any_deps_updated().since(
        condition.newly_updated() | condition.execution_failed().newly_true()
    )
    return (inputs_updated & ~condition.any_deps_missing() & ~condition.will_be_requested()).with_label(
        "stale (an input updated since it last ran)"
    )


def after_upstream_settles() -> dg.AutomationCondition:
    """`eager()`, waiting until no dependency is in progress or stale (see the module docstring)."""
    condition = dg.AutomationCondition
    return (condition.eager() & ~condition.any_deps_match(stale()).with_label("any_deps_stale")).with_label(
        LABEL
    )
