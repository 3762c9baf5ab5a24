"""Readers of Dagster's records in the states a running mesh leaves them in, built with real runs.

A port's run is in flight (its checks only PLANNED, the run STARTED), failed mid-way (checks planned,
never evaluated), or its blocking check stopped the publish (checks newer than the port's last
materialization). The catalog (`catalog.runtime`), the scorecard's facts (`fitness`), the SLO feed
(`slo.feed`, which `mesh slo` and the monitor share) must read each one without crashing and say what
it means. The port is `customers.customer_master` v1 with its real contract rules; the run that
"publishes" it is a stand-in asset with the same key and checks, gated by a threading.Event so the test
can look at the instance while the run is in flight.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from mesh_assets.assets.dbt_outcomes import DBT_FAILURE
from mesh_assets.catalog.runtime import port_runtime, read_runtime
from mesh_assets.contracts.odcs import port_rules
from mesh_assets.observe import feed
from mesh_assets.observe.report import report
from mesh_assets.observe.sli import port_slos
from mesh_assets.product import addressing
from mesh_assets.product.registry import load_registry

REPO = Path(__file__).resolve().parents[2]
PORT = addressing.port_key("customers", "customer_master", 1)
UPSTREAM = dg.AssetKey(["customers", "customer_master", "internal", "prepared"])


@pytest.fixture(scope="module")
def registry():
    return load_registry(REPO)


@pytest.fixture
def spec(registry):
    return registry.products["customers.customer_master"].spec


@pytest.fixture
def instance(isolated: Path) -> Iterator[dg.DagsterInstance]:
    instance = dg.DagsterInstance.get()  # the isolated DAGSTER_HOME, with the repo's dagster.yaml
    try:
        yield instance
    finally:
        instance.dispose()


def _job(spec, mode: str = "publish", gate: threading.Event | None = None) -> dg.JobDefinition:
    """The port's run: `publish`, `check fails` (a blocking rule stops it), `step fails` (an error before
    the audit), `upstream fails` (the step before the port's fails, the port's is skipped)."""
    rules = port_rules(spec, spec.output_ports[0])
    first = rules[0].name

    @dg.asset(key=UPSTREAM)
    def prepared() -> None:
        if mode == "upstream fails":
            raise RuntimeError("the CRM extract is unreadable")

    @dg.multi_asset(
        specs=[dg.AssetSpec(PORT, deps=[UPSTREAM])],
        check_specs=[dg.AssetCheckSpec(rule.name, asset=PORT) for rule in rules],
    )
    def customer_master_v1():
        if gate is not None:
            assert gate.wait(60), "the test never released the run"
        if mode == "step fails":
            raise RuntimeError("the warehouse went away")
        for rule in rules:
            passed = not (mode == "check fails" and rule.name == first)
            yield dg.AssetCheckResult(
                asset_key=PORT, check_name=rule.name, passed=passed, metadata={"observed": 7, "threshold": 1}
            )
        if mode == "check fails":
            raise dg.Failure(f"blocking check {first} failed: the port keeps its last good data")
        yield dg.MaterializeResult(asset_key=PORT, metadata={"dagster/row_count": 100})

    defs = dg.Definitions(assets=[prepared, customer_master_v1])
    return defs.resolve_implicit_global_asset_job_def()


def _run(spec, instance: dg.DagsterInstance, mode: str = "publish") -> dg.ExecuteInProcessResult:
    return _job(spec, mode).execute_in_process(instance=instance, raise_on_error=False)


class InFlight:
    """A port's run held in flight (STARTED, checks PLANNED) until `release()`."""

    def __init__(self, spec, instance: dg.DagsterInstance) -> None:
        self.gate = threading.Event()
        self.result: list[dg.ExecuteInProcessResult] = []
        job = _job(spec, gate=self.gate)
        self.thread = threading.Thread(
            target=lambda: self.result.append(job.execute_in_process(instance=instance)), daemon=True
        )
        self.instance = instance

    def __enter__(self) -> InFlight:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self._checks_planned():
            assert time.monotonic() < deadline, "the run never planned its checks"
            time.sleep(0.05)
        return self

    def _checks_planned(self) -> bool:
        runs = self.instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
        if not runs:
            return False
        planned = self.instance.get_records_for_run(
            runs[0].run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED
        ).records
        return bool(planned)

    def __exit__(self, *exc) -> None:
        self.gate.set()
        self.thread.join(60)


def test_the_catalog_shows_checks_in_flight_as_running_on_the_published_data(spec, instance) -> None:
    assert _run(spec, instance).success
    published = read_runtime(instance, load_registry(REPO))[PORT].published_at
    with InFlight(spec, instance):
        runtime = port_runtime(instance, spec, spec.output_ports[0], datetime.now(UTC))
        assert {c.status for c in runtime.checks} == {"running"}
        assert all(c.on_published_data for c in runtime.checks)
        assert runtime.published_at == published  # the in-flight run has not published yet
        quality = next(s for s in runtime.slos if s.name == "quality")
        # Only the first run's evaluations count: the planned ones have no verdict yet.
        assert quality.status == "met"
        assert f"of {len(runtime.checks)})" in quality.measured
    after = port_runtime(instance, spec, spec.output_ports[0], datetime.now(UTC))
    assert {c.status for c in after.checks} == {"passed"}


def test_the_scorecard_judges_a_mesh_whose_port_is_being_published(spec, instance, registry) -> None:
    from mesh_assets.govern import fitness

    assert _run(spec, instance).success
    with InFlight(spec, instance):
        facts = fitness.Facts(catalog=None, runtime=read_runtime(instance, registry))
        card = fitness.evaluate(registry, facts)
    product = next(p for p in card.products if p.key == "customers.customer_master")
    assert "SLO breached" not in " ".join(r.reason for r in product.results)


def test_a_run_that_fails_mid_way_leaves_checks_that_never_ran(spec, instance) -> None:
    assert _run(spec, instance).success
    first_publish = instance.fetch_materializations(PORT, limit=1).records[0]
    assert not _run(spec, instance, "step fails").success
    runtime = port_runtime(instance, spec, spec.output_ports[0], datetime.now(UTC))
    assert {c.status for c in runtime.checks} == {"execution failed"}
    assert not any(c.on_published_data for c in runtime.checks)
    assert runtime.run_id == first_publish.run_id


def test_a_blocked_publish_leaves_checks_newer_than_the_published_data(spec, instance) -> None:
    first = _run(spec, instance)
    assert not _run(spec, instance, "check fails").success
    runtime = port_runtime(instance, spec, spec.output_ports[0], datetime.now(UTC))
    statuses = {c.name: c.status for c in runtime.checks}
    assert statuses.pop(runtime.checks[0].name) == "failed"
    assert set(statuses.values()) == {"passed"}
    assert not any(c.on_published_data for c in runtime.checks), (
        "a rejected candidate's checks shown as current"
    )
    assert runtime.run_id == first.run_id  # the port still serves the first publish


def test_a_port_skipped_behind_a_failed_step_is_a_failed_publish(spec, instance, registry) -> None:
    ports = {PORT.to_user_string(): port_slos(registry)[PORT.to_user_string()]}
    assert not _run(spec, instance, "upstream fails").success
    batch = feed.fetch(instance, {}, ports, since=0.0)
    failures = [f for run in batch.runs for f in run.failures]
    assert [f.port for f in failures] == [PORT.to_user_string()]
    assert "the CRM extract is unreadable" in failures[0].reason


def test_mesh_slo_measures_a_port_whose_run_is_in_flight(spec, instance, registry) -> None:
    ports = {PORT.to_user_string(): port_slos(registry)[PORT.to_user_string()]}
    assert _run(spec, instance).success
    with InFlight(spec, instance):
        (measured,) = report(instance, ports)
    assert measured.evaluation.judgements["availability"].status == "ok"
    assert measured.state.last_failure is None


def test_a_port_skipped_behind_a_failed_port_is_counted_once_on_that_port(spec, instance, registry) -> None:
    consumer = addressing.port_key("diagnostics", "instrument_runs", 1)

    @dg.asset(key=PORT)
    def producer() -> None:
        raise RuntimeError("the warehouse went away")

    @dg.asset(key=consumer, deps=[PORT])
    def reader() -> None: ...

    job = dg.Definitions(assets=[producer, reader]).resolve_implicit_global_asset_job_def()
    assert not job.execute_in_process(instance=instance, raise_on_error=False).success
    slos = port_slos(registry)
    ports = {key.to_user_string(): slos[key.to_user_string()] for key in (PORT, consumer)}
    failures = [f for run in feed.fetch(instance, {}, ports, since=0.0).runs for f in run.failures]
    assert [f.port for f in failures] == [PORT.to_user_string()]
    assert "the warehouse went away" in failures[0].reason


def test_a_port_whose_dbt_model_was_not_built_is_a_failed_publish_though_the_run_succeeds(
    spec, instance, registry
) -> None:
    # The dbt step no longer fails for one product's model (the others publish): it records why dbt did
    # not build the model, yields no output for it, and the port's step is skipped in a successful run.
    reason = "skipped by dbt: unit test test_prepared failed: actual differs from expected"

    @dg.multi_asset(specs=[dg.AssetSpec(UPSTREAM, skippable=True)])
    def dbt_step():
        yield dg.AssetObservation(asset_key=UPSTREAM, metadata={DBT_FAILURE: reason})

    @dg.asset(key=PORT, deps=[UPSTREAM])
    def port() -> None: ...

    job = dg.Definitions(assets=[dbt_step, port]).resolve_implicit_global_asset_job_def()
    assert job.execute_in_process(instance=instance, raise_on_error=False).success
    ports = {PORT.to_user_string(): port_slos(registry)[PORT.to_user_string()]}
    failures = [f for run in feed.fetch(instance, {}, ports, since=0.0).runs for f in run.failures]
    assert [f.port for f in failures] == [PORT.to_user_string()]
    assert failures[0].reason == f"dbt did not build it: {reason}"
