"""Stages: which may build at once, and a real mesh built with stages at once (as on Snowflake)."""

from __future__ import annotations

import threading
from pathlib import Path

import dagster as dg
import pytest

from mesh_assets.infra import environment
from mesh_assets.product.registry import load_registry, topological_order
from mesh_assets.run import runner, stages
from mesh_assets.run.events import RunEvent, StagesInParallel
from mesh_assets.run.results import RunStatus
from mesh_assets.run.stages import Stage, dependencies, parallel_limit, plan, run_stages

BOUND_S = 60  # a deadlock guard for the threads below, not a timing window


@pytest.fixture(scope="module")
def example(repo_root: Path) -> list[Stage]:
    return plan(topological_order(load_registry(repo_root)))


def test_a_stage_waits_only_for_the_stages_holding_what_it_reads(example: list[Stage]) -> None:
    names = [stage.domain for stage in example]
    needs = {names[i]: {names[j] for j in deps} for i, deps in enumerate(dependencies(example))}
    assert needs["customers"] == set() and needs["sales"] == set()  # independent: may build at once
    assert needs["diagnostics"] == {"customers"}
    assert needs["commercial_analytics"] == {"customers", "sales", "diagnostics"}


def test_independent_stages_build_at_once_and_dependents_only_after(example: list[Stage]) -> None:
    customers_started, sales_started = threading.Event(), threading.Event()
    order: list[str] = []
    seen_parallel: list[list[str]] = []

    def build(stage: Stage) -> None:
        order.append(stage.domain)
        # Each of the two independent stages waits for the other to have started: only concurrency passes.
        if stage.domain == "customers":
            customers_started.set()
            assert sales_started.wait(BOUND_S), "sales never started while customers was building"
        if stage.domain == "sales":
            sales_started.set()
            assert customers_started.wait(BOUND_S), "customers never started while sales was building"

    run_stages(example, build, limit=2, on_parallel=lambda s: seen_parallel.append([x.domain for x in s]))

    assert order.index("commercial_analytics") == len(order) - 1
    assert order.index("diagnostics") > order.index("customers")
    assert ["customers", "sales"] in [sorted(s) for s in seen_parallel]


def test_a_failing_stage_stops_what_has_not_started_and_its_error_is_raised(example: list[Stage]) -> None:
    built: list[str] = []

    def build(stage: Stage) -> None:
        built.append(stage.domain)
        if stage.domain == "customers":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_stages(example, build, limit=2)
    assert "commercial_analytics" not in built and "diagnostics" not in built


def test_duckdb_builds_one_stage_at_a_time_and_snowflake_up_to_the_pool_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESH_ROOT", str(tmp_path))
    (tmp_path / "domains").mkdir()
    monkeypatch.delenv("MESH_ENV", raising=False)
    monkeypatch.delenv("MESH_PARALLEL_STAGES", raising=False)
    with dg.instance_for_test() as instance:
        monkeypatch.setenv("MESH_TARGET", "duckdb")
        instance.event_log_storage.set_concurrency_slots("warehouse", 8)
        assert parallel_limit(environment.resolve(), instance) == 1
        monkeypatch.setenv("MESH_TARGET", "snowflake")
        assert parallel_limit(environment.resolve(), instance) == stages.DEFAULT_PARALLEL
        monkeypatch.setenv("MESH_PARALLEL_STAGES", "16")
        assert parallel_limit(environment.resolve(), instance) == 8
        instance.event_log_storage.set_concurrency_slots("warehouse", 1)
        assert parallel_limit(environment.resolve(), instance) == 1


@pytest.mark.slow
def test_independent_domains_build_at_once_each_stage_its_own_process_on_one_instance(
    isolated: Path, repo_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parallel path end to end on DuckDB (where the pool and the file lock still serialise writes)."""
    monkeypatch.setattr(runner, "parallel_limit", lambda env, instance: 2)
    events: list[RunEvent] = []

    results = runner.run_mesh(["customers", "sales"], on_event=events.append)

    assert [r.status for r in results] == [RunStatus.OK] * len(results), [
        (r.product, r.error) for r in results
    ]
    parallel = [sorted(e.domains) for e in events if isinstance(e, StagesInParallel)]
    assert ["customers", "sales"] in parallel
    runs = dg.DagsterInstance.get().get_run_records()
    assert len(runs) == 2 and all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    # Each run is owned by the process that built it (a kill of that process is reclaimable).
    assert len({r.dagster_run.tags["mesh/pid"] for r in runs}) == 2
