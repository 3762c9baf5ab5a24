"""A stand-in for a port's publish step, to fill a Dagster instance with publishes without a warehouse."""

from __future__ import annotations

import dagster as dg


def stub_port(key: dg.AssetKey, fail: bool, rows: int = 1000) -> dg.AssetsDefinition:
    """A port's publish step: its blocking row-count check, then publish or fail as `publish.py` does."""

    @dg.multi_asset(
        name="__".join(key.path),
        specs=[dg.AssetSpec(key)],
        check_specs=[dg.AssetCheckSpec("row_count_within_bounds", asset=key, blocking=True)],
    )
    def _publish():
        yield dg.AssetCheckResult(
            asset_key=key,
            check_name="row_count_within_bounds",
            passed=not fail,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"observed": str(0 if fail else rows), "threshold": ">= 100"},
        )
        if fail:
            raise dg.Failure(description="blocking contract check(s) failed: row_count_within_bounds")
        yield dg.MaterializeResult(asset_key=key, metadata={"dagster/row_count": rows})

    return _publish
