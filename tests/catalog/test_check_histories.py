"""A port's check histories are read in one query, record for record what Dagster's per-check API reads,
and the catalog's runtime built from them is the runtime built check by check."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import yaml
from conftest import REPO

from mesh_assets.product import dagster_private

RULES = ["not_null", "unique", "row_count"]


def _port(name: str, failing: str) -> dg.AssetsDefinition:
    @dg.asset(name=name, check_specs=[dg.AssetCheckSpec(rule, asset=name) for rule in RULES])
    def port() -> dg.MaterializeResult:
        return dg.MaterializeResult(
            check_results=[dg.AssetCheckResult(check_name=rule, passed=rule != failing) for rule in RULES]
        )

    return port


@pytest.fixture
def instance(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(yaml.safe_load((REPO / "dagster.yaml").read_text())))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for failing in ("unique", "", "row_count", ""):
            assert dg.materialize(
                [_port("orders", failing), _port("sales", "not_null")], instance=instance
            ).success
        yield instance


ORDERS = dg.AssetKey("orders")


def _one_by_one(instance: dg.DagsterInstance, rule: str, limit: int) -> list:
    """What Dagster's own API reads for one check: the reference for the one-query reads."""
    return list(
        instance.event_log_storage.get_asset_check_execution_history(dg.AssetCheckKey(ORDERS, rule), limit)
    )


def _seen(records) -> list[tuple[object, ...]]:
    return [(r.id, r.run_id, r.status, r.create_timestamp, r.partition, r.evaluation.passed) for r in records]


@pytest.mark.parametrize("limit", [1, 3, 1000])
def test_one_query_reads_each_checks_newest_records_as_the_per_check_api_does(
    instance: dg.DagsterInstance, limit: int
) -> None:
    histories = dagster_private.asset_check_histories(instance.event_log_storage, ORDERS, limit)
    assert histories is not None and sorted(histories) == sorted(RULES)  # only this port's checks
    for rule in RULES:
        one_by_one = _one_by_one(instance, rule, limit)
        assert len(one_by_one) == min(limit, 4)
        assert _seen(histories[rule]) == _seen(one_by_one)
        assert all(record.key == dg.AssetCheckKey(ORDERS, rule) for record in histories[rule])


@pytest.mark.parametrize("limit", [2, 1000])
def test_the_outcomes_are_each_records_status_and_time_without_reading_its_event(
    instance: dg.DagsterInstance, limit: int
) -> None:
    outcomes = dagster_private.asset_check_outcomes(instance.event_log_storage, ORDERS, limit)
    assert outcomes is not None and sorted(outcomes) == sorted(RULES)
    for rule in RULES:
        records = _one_by_one(instance, rule, limit)
        assert outcomes[rule] == [(r.status.value, r.create_timestamp) for r in records]
        # SUCCEEDED exactly when the evaluation passed: the SLO counts passes from the status alone.
        assert [status == "SUCCEEDED" for status, _ in outcomes[rule]] == [
            r.evaluation.passed for r in records
        ]


def test_histories_can_be_read_for_some_checks_only(instance: dg.DagsterInstance) -> None:
    histories = dagster_private.asset_check_histories(instance.event_log_storage, ORDERS, 2, ["unique"])
    assert histories is not None and list(histories) == ["unique"] and len(histories["unique"]) == 2


def test_a_storage_that_is_not_dagsters_sql_event_log_is_asked_check_by_check() -> None:
    assert dagster_private.asset_check_histories(object(), ORDERS, 10) is None
    assert dagster_private.asset_check_outcomes(object(), ORDERS, 10) is None
