"""Freshness of a port under its spec's freshness SLO, judged exactly as Dagster's evaluators judge it.

The spec's `FreshnessSlo` becomes a Dagster `FreshnessPolicy` (`assets/ports.freshness_policy`), which
the daemon evaluates while it runs. When it does not (no daemon, not evaluated yet), the SLI monitor and
the catalog derive the state themselves with `freshness_state`; it must agree with the daemon, boundary
included, or a port would flip state when the daemon starts. `tests/product/test_freshness.py` compares
the two on a real instance, at and around each deadline.

Dagster's rules (`dagster._core.definitions.freshness_evaluator`, 1.13):

- time window: FAIL once `age >= max_age`, else WARN once `age >= warn_after`, else PASS;
- cron: PASS when the last publish is at or after `latest completed tick - lower_bound`, else FAIL;
- never published: UNKNOWN.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from mesh_assets.product.spec import FreshnessSlo, parse_duration

FreshnessState = Literal["UNKNOWN", "PASS", "WARN", "FAIL"]


def latest_deadline(cron: str, timezone: str, at: float) -> float:
    """The latest tick of a deadline cron at or before `at` (epoch seconds), in the cron's timezone."""
    # Dagster has no public cron API; its evaluator uses this helper, and only the same arithmetic
    # (DST folds, its cron dialect) keeps the derived state equal to the daemon's.
    from mesh_assets.product.dagster_private import latest_completed_cron_tick

    return latest_completed_cron_tick(cron, datetime.fromtimestamp(at, UTC), timezone).timestamp()


def freshness_state(slo: FreshnessSlo, last_publish: float | None, at: float) -> FreshnessState:
    """The state Dagster's evaluator computes at `at` (epoch seconds) given the last publish time."""
    if last_publish is None:
        return "UNKNOWN"
    if slo.cron is not None:
        lower = parse_duration(slo.lower_bound or "0m").total_seconds()
        window_start = latest_deadline(slo.cron, slo.cron_timezone, at) - lower
        return "PASS" if last_publish >= window_start else "FAIL"
    assert slo.max_age is not None  # the spec model guarantees one of max_age / cron
    age = at - last_publish
    if age >= parse_duration(slo.max_age).total_seconds():
        return "FAIL"
    if slo.warn_after and age >= parse_duration(slo.warn_after).total_seconds():
        return "WARN"
    return "PASS"


def stale_from(slo: FreshnessSlo, last_publish: float) -> float | None:
    """When a time-window port published at `last_publish` turns FAIL; None for a cron deadline."""
    if slo.max_age is None:
        return None
    return last_publish + parse_duration(slo.max_age).total_seconds()
