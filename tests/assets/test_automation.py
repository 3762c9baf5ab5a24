"""The automation condition of downstream assets: once per cascade, after every input of it.

Each location's sensor evaluates only its own assets; here a consumer is evaluated alone (as its
location's sensor would) while its inputs are materialized by hand (as other locations' runs would),
on a real Dagster instance.
"""

from __future__ import annotations

import dagster as dg
import pytest

from mesh_assets.assets.automation import LABEL, after_upstream_settles


def _defs(condition: dg.AutomationCondition, fail_middle: bool = False) -> dg.Definitions:
    """source → middle → consumer, and source → consumer: the customer_master / instrument_runs /
    customer_360 shape."""

    @dg.asset
    def source() -> None: ...

    @dg.asset(deps=[source], automation_condition=condition)
    def middle() -> None:
        if fail_middle:
            raise RuntimeError("a blocking check stopped the publish")

    @dg.asset(deps=[source, middle], automation_condition=condition)
    def consumer() -> None: ...

    return dg.Definitions(assets=[source, middle, consumer])


class Consumer:
    """The consumer's sensor: evaluates the consumer alone, keeping its cursor between ticks."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
        self.defs, self.instance, self.cursor = defs, instance, None

    def tick(self) -> bool:
        """One evaluation; True if it requests the consumer."""
        result = dg.evaluate_automation_conditions(
            defs=self.defs,
            instance=self.instance,
            asset_selection=dg.AssetSelection.assets("consumer"),
            cursor=self.cursor,
        )
        self.cursor = result.cursor
        return result.get_num_requested(dg.AssetKey("consumer")) > 0


def _materialize(defs: dg.Definitions, instance: dg.DagsterInstance, *names: str) -> bool:
    job = defs.resolve_implicit_global_asset_job_def()
    selection = [dg.AssetKey(name) for name in names]
    return job.execute_in_process(instance=instance, asset_selection=selection, raise_on_error=False).success


@pytest.fixture
def instance() -> dg.DagsterInstance:
    with dg.instance_for_test() as instance:
        yield instance


def test_a_consumer_waits_for_an_input_whose_own_input_just_updated(instance: dg.DagsterInstance) -> None:
    defs = _defs(after_upstream_settles())
    assert _materialize(defs, instance, "source", "middle", "consumer")
    consumer = Consumer(defs, instance)
    assert not consumer.tick()  # nothing changed since the build

    assert _materialize(defs, instance, "source")
    assert not consumer.tick(), "the consumer ran while `middle`, which reads `source`, is still to refresh"
    assert not consumer.tick()

    assert _materialize(defs, instance, "middle")
    assert consumer.tick(), "the consumer did not run once its last input refreshed"
    assert not consumer.tick(), "the consumer ran twice for one cascade"


def test_plain_eager_runs_the_consumer_on_the_first_input_of_the_cascade(
    instance: dg.DagsterInstance,
) -> None:
    # What `after_upstream_settles` prevents: eager runs on `source` alone, then again after `middle`.
    defs = _defs(dg.AutomationCondition.eager())
    assert _materialize(defs, instance, "source", "middle", "consumer")
    consumer = Consumer(defs, instance)
    consumer.tick()
    assert _materialize(defs, instance, "source")
    assert consumer.tick()


def test_a_consumer_stops_waiting_when_its_input_fails_to_publish(instance: dg.DagsterInstance) -> None:
    defs = _defs(after_upstream_settles(), fail_middle=False)
    assert _materialize(defs, instance, "source", "middle", "consumer")
    consumer = Consumer(defs, instance)
    consumer.tick()
    assert _materialize(defs, instance, "source")
    assert not consumer.tick()

    failing = _defs(after_upstream_settles(), fail_middle=True)
    assert not _materialize(failing, instance, "middle")
    assert consumer.tick(), "the consumer waits forever for an input whose publish failed"


def test_a_consumer_joins_the_run_of_an_input_requested_on_the_same_tick(
    instance: dg.DagsterInstance,
) -> None:
    defs = _defs(after_upstream_settles())
    assert _materialize(defs, instance, "source", "middle", "consumer")
    cursor = dg.evaluate_automation_conditions(defs=defs, instance=instance).cursor
    assert _materialize(defs, instance, "source")
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
    # One location evaluating both: `middle` is requested, and `consumer` with it (one run, as eager).
    assert result.get_num_requested(dg.AssetKey("middle")) == 1
    assert result.get_num_requested(dg.AssetKey("consumer")) == 1


def test_the_condition_is_labelled_for_the_ui() -> None:
    assert after_upstream_settles().get_label() == LABEL
