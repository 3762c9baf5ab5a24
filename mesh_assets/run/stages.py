"""Stages of a `mesh run`: consecutive products of one domain, built as one Dagster run, in dependency order.

A stage may start once every stage holding a producer it reads has finished. On DuckDB stages run one
at a time (one writer per file). On Snowflake independent stages run at once, up to the `warehouse`
pool's limit (`dagster instance concurrency set warehouse 8`) and `MESH_PARALLEL_STAGES` (default 4):
each stage is its own Dagster run and every step still takes a pool slot, so the pool stays the one
limit on concurrent warehouse work.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import dagster as dg

    from mesh_assets.infra.environment import Environment
    from mesh_assets.product.registry import Product

DEFAULT_PARALLEL = 4


@dataclass
class Stage:
    """Consecutive products of one domain, built in one Dagster run."""

    domain: str
    products: list[Product]


def plan(products: list[Product]) -> list[Stage]:
    """Group the topologically ordered products into per-domain stages, keeping dependency order."""
    stages: list[Stage] = []
    for product in products:
        if stages and stages[-1].domain == product.spec.domain:
            stages[-1].products.append(product)
        else:
            stages.append(Stage(product.spec.domain, [product]))
    return stages


def dependencies(stages: list[Stage]) -> list[set[int]]:
    """For each stage, the earlier stages holding a producer one of its products reads."""
    where = {product.key: index for index, stage in enumerate(stages) for product in stage.products}
    needs = []
    for index, stage in enumerate(stages):
        producers = {i.product for product in stage.products for i in product.spec.product_inputs}
        needs.append({where[key] for key in producers if key in where and where[key] != index})
    return needs


def parallel_limit(env: Environment, instance: dg.DagsterInstance) -> int:
    """How many stages may build at once: 1 on DuckDB; on Snowflake the pool's limit, at most the setting."""
    if env.target != "snowflake":
        return 1
    from mesh_assets.assets.publish import WAREHOUSE_POOL

    wanted = max(1, env.parallel_stages or DEFAULT_PARALLEL)
    try:
        slots = instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).slot_count
    except Exception:  # a storage without pool support: its default limit applies, which is 1
        slots = 1
    return max(1, min(wanted, slots or 1))


def run_stages(
    stages: list[Stage],
    build: Callable[[Stage], None],
    limit: int,
    on_parallel: Callable[[list[Stage]], None] = lambda _: None,
) -> None:
    """Build every stage once all the stages it depends on are done, at most `limit` at once.

    With `limit` 1 the stages build in this thread, in order. Otherwise each builds in a daemon thread
    (so Ctrl-C stops the process without waiting for them: a run left in flight is reclaimed by the
    next `mesh run`); the first exception a stage raises is raised here once no more stages start.
    `on_parallel` hears every time more than one stage is building, with the stages building.
    """
    if limit <= 1:
        for stage in stages:
            build(stage)
        return
    needs = dependencies(stages)
    done: set[int] = set()
    running: set[int] = set()
    finished: queue.Queue[tuple[int, BaseException | None]] = queue.Queue()
    error: BaseException | None = None

    def work(index: int) -> None:
        try:
            build(stages[index])
        except BaseException as exc:  # handed to the scheduling thread, which raises it
            finished.put((index, exc))
        else:
            finished.put((index, None))

    while len(done) < len(stages):
        if error is None:
            ready = [i for i in range(len(stages)) if i not in done and i not in running and needs[i] <= done]
            started = []
            for index in ready[: max(0, limit - len(running))]:
                running.add(index)
                started.append(index)
                threading.Thread(target=work, args=(index,), daemon=True, name=f"stage-{index}").start()
            if started and len(running) > 1:
                on_parallel([stages[i] for i in sorted(running)])
        if not running:
            break
        try:
            # With a timeout: the main thread must stay interruptible (Ctrl-C) while stages build.
            index, exc = finished.get(timeout=0.5)
        except queue.Empty:
            continue
        running.discard(index)
        done.add(index)
        if exc is not None and error is None:
            error = exc
    if error is not None:
        raise error
