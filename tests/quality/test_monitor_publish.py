"""Monitors in the write-audit-publish flow, for real: a port asset on a private DuckDB file and Dagster
instance. A blocking monitor keeps the last good data published; profiles are stored with each publish
(numbers the UI plots) and read back by a new instance on the same DAGSTER_HOME, i.e. after a restart.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest
from monitor_data import FIRST, KEY, PUBLISHED, null_spike, orders, product, publish

from mesh_assets.quality.profile import PROFILE_KEY, past_profiles


def published_rows() -> int:
    with duckdb.connect(os.environ["MESH_DUCKDB_PATH"], read_only=True) as connection:
        return connection.execute(f"SELECT COUNT(*) FROM {PUBLISHED.sql}").fetchone()[0]


def monitor_evaluations(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    return {
        e.check_name: e for e in result.get_asset_check_evaluations() if e.check_name.startswith("monitor_")
    }


def test_a_blocking_monitor_anomaly_keeps_the_last_good_data_published(isolated: Path, home: Path) -> None:
    item = product(isolated, severity="error")
    good = publish(item, orders(FIRST, 60))
    assert good.success
    rows = published_rows()

    bad = publish(item, orders(FIRST, 61, newest=null_spike))

    assert not bad.success
    failure = bad.get_step_failure_events()[0].step_failure_data.user_failure_data
    assert failure is not None and "monitor_null_rate__channel" in failure.description
    assert "keeps its last good data" in failure.description
    assert published_rows() == rows
    evaluation = monitor_evaluations(bad)["monitor_null_rate__channel"]
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert evaluation.metadata["status"] == dg.MetadataValue.text("anomaly")
    assert evaluation.metadata["training_size"].value >= 14
    assert {"value", "lower", "upper", "baseline", "reason"} <= set(evaluation.metadata)


def test_a_warn_monitor_anomaly_publishes_and_says_so(isolated: Path, home: Path) -> None:
    item = product(isolated)
    result = publish(item, orders(FIRST, 60, newest=null_spike))

    assert result.success
    evaluation = monitor_evaluations(result)["monitor_null_rate__channel"]
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    materialization = result.get_asset_materialization_events()[0].materialization
    assert materialization.metadata["mesh/monitor_anomalies"] == dg.MetadataValue.int(1)


def test_profiles_are_stored_with_each_publish_and_survive_a_restart(isolated: Path, home: Path) -> None:
    item = product(isolated)
    first = publish(item, orders(FIRST, 59))
    second = publish(item, orders(FIRST, 60))
    assert first.success and second.success

    metadata = second.get_asset_materialization_events()[0].materialization.metadata
    assert isinstance(metadata["mesh/profile/rows"], dg.FloatMetadataValue)  # the UI plots these
    assert isinstance(metadata["mesh/profile/null_rate__channel"], dg.FloatMetadataValue)
    assert PROFILE_KEY in metadata
    # The second publish judged its schema against the first's stored profile.
    schema = monitor_evaluations(second)["monitor_schema"]
    assert "same columns" in schema.metadata["reason"].value
    freshness = monitor_evaluations(second)["monitor_freshness"]
    assert freshness.metadata["hours_since_last_publish"].value >= 0

    # A new instance on the same DAGSTER_HOME: what a restarted daemon or the next `mesh` command sees.
    with dg.DagsterInstance.from_config(os.environ["DAGSTER_HOME"]) as instance:
        profiles = past_profiles(instance, KEY, limit=10)
    assert [p.newest_bucket for p in profiles] == ["2026-10-29", "2026-10-30"]
    assert profiles[-1].rows == len(orders(FIRST, 60))
    assert profiles[-1].shares["status"].keys() == {"placed", "shipped", "delivered", "cancelled"}


@pytest.fixture(autouse=True)
def _quiet_dagster_warnings() -> None:
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)
