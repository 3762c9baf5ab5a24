"""`mesh run`'s bookkeeping and its typed events: who is skipped, who is interrupted, how events read."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesh_assets.cli import app as cli
from mesh_assets.product.registry import Registry, load_registry
from mesh_assets.run import events
from mesh_assets.run.results import ProductResult, RunStatus
from mesh_assets.run.runner import _Build
from mesh_assets.run.stages import Stage


@pytest.fixture(scope="module")
def registry(repo_root: Path) -> Registry:
    return load_registry(repo_root)


def _build(registry: Registry, keys: list[str], heard: list[events.RunEvent]) -> _Build:
    # No stage is executed here, so no Dagster instance is needed.
    return _Build(None, [registry.products[k] for k in keys], heard.append, limit=1)  # type: ignore[arg-type]


def test_a_product_whose_producer_failed_is_skipped_and_reported_without_building(registry: Registry) -> None:
    heard: list[events.RunEvent] = []
    build = _build(registry, ["customers.customer_master", "diagnostics.instrument_runs"], heard)
    build.failed.add("customers.customer_master")

    build.stage(Stage("diagnostics", [registry.products["diagnostics.instrument_runs"]]))

    skipped = build.results["diagnostics.instrument_runs"]
    assert skipped.status == RunStatus.SKIPPED
    assert skipped.error == "upstream failed: customers.customer_master"
    assert heard == [events.ProductFinished(skipped)]  # no StageStarted: nothing was left to build
    assert "diagnostics.instrument_runs" in build.failed  # so its own consumers are skipped too


def test_an_interrupt_marks_every_unbuilt_product_and_keeps_what_the_stage_published(
    registry: Registry,
) -> None:
    build = _build(registry, ["customers.customer_master", "sales.orders", "sales.sales"], [])
    build.in_flight.update({"sales.orders", "sales.sales"})
    build.results["customers.customer_master"] = ProductResult("customers.customer_master", RunStatus.OK)
    build.results["sales.orders"] = ProductResult("sales.orders", RunStatus.OK, {"v1": 10})
    build.results["sales.sales"] = ProductResult("sales.sales", RunStatus.FAILED, {"v1": 3}, error="boom")

    build.interrupt()

    assert [(r.product, r.status) for r in build.outcome()] == [
        ("customers.customer_master", RunStatus.OK),
        ("sales.orders", RunStatus.OK),  # published before the interrupt
        ("sales.sales", RunStatus.INTERRUPTED),
    ]
    interrupted = build.outcome()[2]
    assert interrupted.rows == {"v1": 3} and interrupted.error == "not built: the run was interrupted"


def test_a_product_never_reached_says_interrupted(registry: Registry) -> None:
    build = _build(registry, ["sales.orders"], [])
    build.interrupt()
    assert build.outcome() == [
        ProductResult("sales.orders", RunStatus.INTERRUPTED, error="not built: the run was interrupted")
    ]


class _Plan:
    def summary(self) -> str:
        return "2 built here, 5 read from prod"


@pytest.mark.parametrize(
    ("event", "line"),
    [
        (events.StageStarted("sales", ("orders", "sales")), "▶ sales: orders, sales …"),
        (
            events.ProductFinished(ProductResult("sales.orders", RunStatus.OK, {"v1": 2000, "v2": None})),
            "  ✓ sales.orders v1 2,000 rows",
        ),
        (
            events.ProductFinished(
                ProductResult("sales.sales", RunStatus.SKIPPED, error="upstream failed: x")
            ),
            "  - sales.sales  upstream failed: x",
        ),
        (events.GovernanceBuilt(True, ()), "✓ mesh governance: nothing built"),
        (events.Reclaimed("abc", "its process is gone"), "reclaimed run abc: its process is gone"),
        (
            events.WaitingForPool(("a",), 12.4, ()),
            "  … waiting 12s for a `warehouse` pool slot (a): no run holds one yet (the slot is being "
            "handed over)",
        ),
        (
            events.StagesInParallel(("customers", "sales"), 4),
            "⇉ building 2 stages at once: customers, sales (at most 4: the `warehouse` pool's limit)",
        ),
        (events.Deferred(_Plan()), "deferring to prod: 2 built here, 5 read from prod"),  # type: ignore[arg-type]
        (events.Interrupted(), "interrupted: stopped the build; nothing more is built"),
    ],
)
def test_mesh_run_shows_each_event_as_one_line(event: events.RunEvent, line: str) -> None:
    with cli.console.capture() as captured:
        cli._show_event(event)
    assert captured.get() == line + "\n"


def test_mesh_run_exits_130_when_interrupted_1_when_a_product_failed_else_0() -> None:
    ok = ProductResult("a.b", RunStatus.OK)
    assert cli._verdict([ok]) == 0
    assert cli._verdict([ok, ProductResult("a.c", RunStatus.SKIPPED, error="upstream failed")]) == 1
    assert cli._verdict([ok, ProductResult("a.c", RunStatus.INTERRUPTED)]) == 130
