"""`freshness_state` agrees with Dagster's own evaluator of the same FreshnessPolicy, at the boundaries.

Dagster evaluates the policy `assets/ports.freshness_policy` makes of the SLO, on a real instance holding a
real materialization, at a frozen clock; the mesh's function must return the same state at every instant
tried, in particular exactly at the deadline (where `>` and `>=` disagree).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace

import dagster as dg
import pytest
from dagster._core.definitions.freshness_evaluator import FRESHNESS_EVALUATORS_BY_POLICY_TYPE
from dagster._core.loader import LoadingContextForTest
from dagster._core.test_utils import freeze_time

from mesh_assets.assets.ports import freshness_policy
from mesh_assets.catalog.runtime import freshness_status
from mesh_assets.product.freshness import freshness_state
from mesh_assets.product.spec import FreshnessSlo

HOUR = 3600.0
T0 = 1_800_000_000.0  # 2027-01-15 08:00 UTC
DEADLINE = T0 + 22 * HOUR  # 2027-01-16 06:00 UTC, a tick of `0 6 * * *`
KEY = dg.AssetKey(["fresh", "port"])


def dagster_state(slo: FreshnessSlo, published: float | None, at: float) -> str:
    """The state Dagster's evaluator gives the policy of `slo`, published at `published`, at `at`."""
    policy = freshness_policy(slo)

    @dg.asset(key=KEY, freshness_policy=policy)
    def port() -> None: ...

    node = dg.Definitions(assets=[port]).resolve_asset_graph().get(KEY)
    with dg.instance_for_test() as instance:
        if published is not None:
            with freeze_time(published):
                instance.report_runless_asset_event(dg.AssetMaterialization(KEY))
        evaluator = FRESHNESS_EVALUATORS_BY_POLICY_TYPE[type(policy)]()
        with freeze_time(at):
            state = asyncio.run(evaluator.evaluate_freshness(LoadingContextForTest(instance), node))
    return state.value


WINDOW = FreshnessSlo(max_age="24h", warn_after="12h")
CRON = FreshnessSlo(cron="0 6 * * *", lower_bound="2h")
CASES = [
    # (slo, last publish, evaluated at)
    (WINDOW, None, T0),
    (WINDOW, T0, T0 + 12 * HOUR - 1),
    (WINDOW, T0, T0 + 12 * HOUR),  # exactly at warn_after
    (WINDOW, T0, T0 + 24 * HOUR - 1),
    (WINDOW, T0, T0 + 24 * HOUR),  # exactly at max_age
    (WINDOW, T0, T0 + 24 * HOUR + 1),
    (CRON, DEADLINE - 2 * HOUR, DEADLINE),  # published at the window's start, judged at the tick
    (CRON, DEADLINE - 2 * HOUR - 1, DEADLINE),
    (CRON, DEADLINE - 2 * HOUR - 1, DEADLINE - 1),  # before the tick the previous window counts
    (CRON, DEADLINE + 60, DEADLINE + 60),  # late, but it did publish
]


@pytest.mark.parametrize(("slo", "published", "at"), CASES)
def test_freshness_state_is_dagsters_evaluation(
    slo: FreshnessSlo, published: float | None, at: float
) -> None:
    assert freshness_state(slo, published, at) == dagster_state(slo, published, at)


def test_the_boundaries_are_where_dagster_puts_them() -> None:
    assert freshness_state(WINDOW, T0, T0 + 12 * HOUR) == "WARN"
    assert freshness_state(WINDOW, T0, T0 + 24 * HOUR) == "FAIL"
    assert freshness_state(CRON, DEADLINE - 2 * HOUR, DEADLINE) == "PASS"
    assert freshness_state(CRON, DEADLINE - 2 * HOUR - 1, DEADLINE) == "FAIL"


def test_the_catalog_reports_the_same_state_in_its_words() -> None:
    """The catalog once used `>`: a port exactly `max_age` old was "met" there and FAIL in Dagster."""

    spec = SimpleNamespace(slos=SimpleNamespace(freshness=WINDOW))  # it reads only `slos.freshness`

    def status(published: float, at: float) -> str:
        when = datetime.fromtimestamp(published, UTC), datetime.fromtimestamp(at, UTC)
        return freshness_status(spec, *when).status  # type: ignore[arg-type]

    assert status(T0, T0 + 12 * HOUR - 1) == "met"
    assert status(T0, T0 + 12 * HOUR) == "warning"
    assert status(T0, T0 + 24 * HOUR) == "breached"
