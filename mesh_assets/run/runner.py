"""`mesh run`: materialize every product of every domain, in dependency order across code locations.

Products are ordered so producers run before consumers; consecutive products of one domain run as one
Dagster run of that domain's code location (a stage, `stages.py`), on the same Dagster instance `make dev`
shows (so every run and check result is visible in the UI). On Snowflake, stages that do not read each
other build at once, up to the `warehouse` pool's limit; on DuckDB one at a time. A product whose
upstream failed is skipped, not run on stale data.
"""

from __future__ import annotations

import importlib
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import dagster as dg

from mesh_assets.assets.dbt_outcomes import DBT_FAILURE, DBT_SKIPPED
from mesh_assets.infra import environment, reclaim
from mesh_assets.product import addressing
from mesh_assets.product.registry import (
    GOVERNANCE_DOMAIN,
    Product,
    Registry,
    load_registry,
    topological_order,
)
from mesh_assets.run import events
from mesh_assets.run.events import (
    Deferred,
    GovernanceBuilt,
    Interrupted,
    OnEvent,
    ProductFinished,
    Reclaimed,
    StagesInParallel,
    StageStarted,
    WaitingForPool,
)
from mesh_assets.run.results import ProductResult, RunStatus
from mesh_assets.run.stages import Stage, parallel_limit, plan, run_stages

# The progress display and summary table are the output; the full event log is in the Dagster UI.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def load_location(domain: str) -> dg.Definitions:
    """A domain's definitions, loaded the way Dagster loads its code location."""
    module = importlib.import_module(f"domains.{domain}.definitions")
    defs = module.defs
    if isinstance(defs, dg.Definitions):
        return defs
    return defs.load_fn()  # `@dg.definitions`-decorated: Dagster's lazy loader


def ensure_instance(env: environment.Environment) -> dg.DagsterInstance:
    """The environment's Dagster instance (`DAGSTER_HOME`, default `<repo>/.dagster_home/<env>`).

    Creating a fresh instance's SQLite storage is not safe from two processes at once (both try to
    create the tables), so the first touch of the storage happens under a cross-process lock.
    """
    from mesh_assets.infra.warehouse.duckdb import FileLock

    # Per environment, as the Makefile's: runs, check history and SLO state never mix across environments.
    # Opened from its folder, not through DAGSTER_HOME: the process environment is never written.
    home, root = env.dagster_home, env.root
    home.mkdir(parents=True, exist_ok=True)
    with FileLock(home / "instance", timeout_s=120).hold():
        config = home / "dagster.yaml"
        if not config.exists() and (root / "dagster.yaml").exists():
            shutil.copy(root / "dagster.yaml", config)
        instance = dg.DagsterInstance.from_config(str(home))
        instance.get_runs(limit=1)  # creates the storage's tables on first use
    return instance


def _product_keys(defs: dg.Definitions, product: Product) -> list[dg.AssetKey]:
    prefix = [product.spec.domain, product.spec.name]
    return [spec.key for spec in defs.resolve_all_asset_specs() if spec.key.path[:2] == prefix]


def run_mesh(
    domains: list[str] | None = None, on_event: OnEvent | None = None, products: list[str] | None = None
) -> list[ProductResult]:
    """Build the mesh (or the products of `domains`, or `products`); one result per product, in build order.

    In an environment that defers to prod (a branch environment), the ports of every product not built
    are first pointed at prod's, read-only (`mesh_assets.infra.deferral`), and the plan is reported as a
    `Deferred` event; a build that reads a port nobody has is refused.

    Before building, runs of this host whose process died (a `kill -9`, an OOM kill) are marked failed
    and their pool slots freed, so a crash never wedges the next run. While a stage waits for the
    `warehouse` pool, who holds it is reported (`WaitingForPool`). Ctrl-C (or SIGTERM) stops the whole
    build: nothing more is built and every unbuilt product says `interrupted`. Progress reaches
    `on_event` as the events of `mesh_assets.run.events`.
    """
    notify = on_event or events.ignore
    env = environment.resolve()
    registry = load_registry(env.root)
    registry.raise_for_errors()
    instance = ensure_instance(env)
    _reclaim_dead(instance, notify)
    ordered = _select(registry, domains, products)
    if env.defers_to_prod:
        notify(Deferred(_defer(env, registry, [p.key for p in ordered])))
    build = _Build(instance, ordered, notify, parallel_limit(env, instance))
    with _interrupts_raise():
        try:
            build.stages()
            if not products and (not domains or GOVERNANCE_DOMAIN in domains):
                build.governance()
        except KeyboardInterrupt:
            build.interrupt()
            notify(Interrupted())
    return build.outcome()


def _reclaim_dead(instance: dg.DagsterInstance, notify: OnEvent) -> None:
    """Mark this host's runs whose process died failed and free their pool slots, reporting each."""
    for reclaimed in reclaim.reclaim_dead_runs(instance, reclaimer="mesh run"):
        notify(Reclaimed(reclaimed.run_id, reclaimed.reason))


def _select(registry: Registry, domains: list[str] | None, products: list[str] | None) -> list[Product]:
    """The products to build, producers first; an unknown product key is refused naming the form."""
    if products:
        unknown = sorted(set(products) - set(registry.products))
        if unknown:
            raise environment.MeshEnvironmentError(
                f"no product {', '.join(unknown)}: products are named <domain>.<product>, e.g. "
                f"{next(iter(sorted(registry.products)), 'sales.orders')} (`mesh catalog` lists them)"
            )
    return [
        p
        for p in topological_order(registry)
        if (not domains or p.spec.domain in domains) and (not products or p.key in products)
    ]


class _Build:
    """One `mesh run` while its stages build: what each product did, which failed, which are building.

    On Snowflake stages build in threads, so the shared state is only touched under `lock`.
    """

    def __init__(
        self, instance: dg.DagsterInstance, ordered: list[Product], notify: OnEvent, limit: int
    ) -> None:
        self.instance, self.ordered, self.notify, self.limit = instance, ordered, notify, limit
        self.results: dict[str, ProductResult] = {}
        self.failed: set[str] = set()
        self.in_flight: set[str] = set()
        self.lock = threading.Lock()
        self.tags = {**reclaim.Owner.current().tags(), reclaim.LAUNCHED_BY_TAG: "mesh run"}

    def stages(self) -> None:
        """Build every stage in dependency order (independent ones at once, up to `limit`)."""

        def parallel(building: list[Stage]) -> None:
            self.notify(StagesInParallel(tuple(stage.domain for stage in building), self.limit))

        run_stages(plan(self.ordered), self.stage, self.limit, parallel)

    def stage(self, stage: Stage) -> None:
        """Build one stage's products whose producers did not fail, as one Dagster run."""
        runnable = self._skip_blocked(stage)
        if not runnable:
            return
        self.notify(StageStarted(stage.domain, tuple(p.spec.name for p in runnable)))
        with self.lock:
            self.in_flight.update(p.key for p in runnable)
        run_id = str(uuid.uuid4())
        with _reporting_waits(self.instance, run_id, self.notify):
            if self.limit > 1:
                built, interrupted = _execute_in_child(stage.domain, runnable, run_id, self.tags)
            else:
                built, interrupted = _execute(stage.domain, runnable, self.instance, run_id, self.tags)
        with self.lock:
            for result in built:
                self.results[result.product] = result
                if result.status != RunStatus.OK:
                    self.failed.add(result.product)
        if interrupted:
            raise KeyboardInterrupt
        for result in built:
            self.notify(ProductFinished(result))
        with self.lock:
            self.in_flight.difference_update(p.key for p in runnable)

    def _skip_blocked(self, stage: Stage) -> list[Product]:
        """The stage's products to build; each one reading a failed product is skipped (and reported)."""
        runnable = []
        with self.lock:
            for product in stage.products:
                blocked = [i.product for i in product.spec.product_inputs if i.product in self.failed]
                if blocked:
                    result = ProductResult(
                        product.key, RunStatus.SKIPPED, error=f"upstream failed: {', '.join(blocked)}"
                    )
                    self.results[product.key] = result
                    self.failed.add(product.key)
                    self.notify(ProductFinished(result))
                else:
                    runnable.append(product)
        return runnable

    def governance(self) -> None:
        """Build the governance location's assets (scorecard, catalog, ...) once every domain is built."""
        governance = load_location(GOVERNANCE_DOMAIN)
        run_id = str(uuid.uuid4())
        with _reporting_waits(self.instance, run_id, self.notify):
            outcome = governance.resolve_implicit_global_asset_job_def().execute_in_process(
                instance=self.instance,
                raise_on_error=False,
                run_config=QUIET,
                run_id=run_id,
                tags=self.tags,
            )
        if _was_interrupted(outcome):
            raise KeyboardInterrupt
        built = sorted(e.asset_key.to_user_string() for e in outcome.get_asset_materialization_events())
        self.notify(GovernanceBuilt(outcome.success, tuple(built)))

    def interrupt(self) -> None:
        """Every product not built says `interrupted`."""
        with self.lock:
            for product in self.ordered:
                result = self.results.get(product.key)
                if result is None:
                    result = ProductResult(product.key, RunStatus.INTERRUPTED)
                elif product.key not in self.in_flight or result.status == RunStatus.OK:
                    # A product of the interrupted stage that published before the interrupt stays `ok`.
                    continue
                self.results[product.key] = replace(
                    result, status=RunStatus.INTERRUPTED, error="not built: the run was interrupted"
                )

    def outcome(self) -> list[ProductResult]:
        """One result per product, in build order."""
        with self.lock:
            return [self.results[p.key] for p in self.ordered]


def _defer(env: environment.Environment, registry, selected: list[str]):
    """Point the ports of every product not in `selected` at prod's; refuse reads of missing ports."""
    from mesh_assets.infra import deferral

    warehouse = env.warehouse().process_config_and_initialize()
    with warehouse.session() as session:
        plan = deferral.sync(session, warehouse, registry, selected)
    where = str(env.prod_duckdb_path) if env.target == "duckdb" else f"database {env.prod_database}"
    deferral.refuse_missing(plan, registry, selected, where)
    return plan


_INTERRUPTED = "DagsterExecutionInterruptedError"


def _was_interrupted(outcome) -> bool:
    """Whether Ctrl-C / SIGTERM stopped the run (Dagster turns it into a failed step)."""
    for event in outcome.all_events:
        data = event.step_failure_data if event.is_step_failure else None
        error = data.error if data else None
        while error is not None:
            if error.cls_name == _INTERRUPTED:
                return True
            error = error.cause
    return False


@contextmanager
def _interrupts_raise() -> Iterator[None]:
    """SIGTERM stops `mesh run` as Ctrl-C does (Dagster turns both into an interrupt inside a run)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)

    def _terminate(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


WAIT_REPORT_FIRST_S = 2.0
"""A stage waiting this long for the `warehouse` pool says who holds it..."""
WAIT_REPORT_EVERY_S = 10.0
"""... and says it again at this interval while it still waits."""


@contextmanager
def _reporting_waits(instance: dg.DagsterInstance, run_id: str, notify: OnEvent) -> Iterator[None]:
    """While the run executes, report (and reclaim dead) holders of the pool its steps wait for."""
    done = threading.Event()

    def watch() -> None:
        waiting_since: float | None = None
        next_report = 0.0
        while not done.wait(0.5):
            try:
                steps = reclaim.waiting_steps(instance, run_id)
                if not steps:
                    waiting_since = None
                    continue
                now = time.monotonic()
                if waiting_since is None:
                    waiting_since, next_report = now, now + WAIT_REPORT_FIRST_S
                if now < next_report:
                    continue
                # A holder may have died while we wait: reclaim it rather than wait for it forever.
                _reclaim_dead(instance, notify)
                holders = [h.describe() for h in reclaim.pool_holders(instance) if h.run_id != run_id]
                notify(WaitingForPool(tuple(steps), now - waiting_since, tuple(holders)))
                next_report = now + WAIT_REPORT_EVERY_S
            except Exception as exc:  # a report must never break the run it reports on
                notify(WaitingForPool((), 0.0, (f"could not read the pool's holders: {exc}",)))
                next_report = time.monotonic() + WAIT_REPORT_EVERY_S

    watcher = threading.Thread(target=watch, name=f"mesh-wait-{run_id[:8]}", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join(timeout=5)


def _execute(
    domain: str, runnable: list[Product], instance: dg.DagsterInstance, run_id: str, tags: dict[str, str]
) -> tuple[list[ProductResult], bool]:
    """Build `runnable` as one in-process Dagster run of `domain`'s location: their results, and whether
    the run was interrupted."""
    defs = load_location(domain)
    job = defs.resolve_implicit_global_asset_job_def()
    keys = [key for product in runnable for key in _product_keys(defs, product)]
    started = time.monotonic()
    outcome = job.execute_in_process(
        instance=instance,
        asset_selection=keys,
        raise_on_error=False,
        run_config=QUIET,
        run_id=run_id,
        tags=tags,
    )
    return _collect(outcome, runnable, time.monotonic() - started), _was_interrupted(outcome)


def _execute_in_child(
    domain: str, runnable: list[Product], run_id: str, tags: dict[str, str]
) -> tuple[list[ProductResult], bool]:
    """`_execute` in a child process (`python -m mesh_assets.run.runner`), for stages built at once.

    Dagster's in-process runs cannot start in two threads of one process (each run start reconfigures
    Python logging while the other's events take logging's locks: a deadlock), so a stage built beside
    another runs in its own process, on the same instance. Its output goes to a log beside the run's
    data; its results come back as JSON (`ProductResult.to_record`). Ctrl-C reaches it too (same process
    group); a product it did not get to has no result.
    """
    import json
    import subprocess
    import sys
    import tempfile

    env = environment.resolve()
    logs = env.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "results.json"
        request = {"domain": domain, "products": [p.key for p in runnable], "run_id": run_id, "tags": tags}
        with (logs / f"stage-{run_id[:8]}-{domain}.log").open("w") as log:
            code = subprocess.call(
                [sys.executable, "-m", "mesh_assets.run.runner", json.dumps(request), str(out)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        answer = json.loads(out.read_text()) if out.exists() else None
    if answer is None:
        error = f"the stage's process exited {code} with no result"
        return [ProductResult(p.key, RunStatus.FAILED, error=error) for p in runnable], code in {130, -2}
    records = answer["results"]
    results = [ProductResult.from_record(records[p.key]) for p in runnable if p.key in records]
    return results, bool(answer["interrupted"])


def _child_main(request_json: str, out: str) -> None:
    """The child side of `_execute_in_child`: build one stage, write its results."""
    import json

    request = json.loads(request_json)
    env = environment.resolve()
    registry = load_registry(env.root)
    runnable = [registry.products[key] for key in request["products"]]
    instance = ensure_instance(env)
    results: list[ProductResult] = []
    with _interrupts_raise():
        try:
            # The run is this process's: a kill of it (not of the parent) must be reclaimable.
            tags = {**request["tags"], **reclaim.Owner.current().tags()}
            results, interrupted = _execute(request["domain"], runnable, instance, request["run_id"], tags)
        except KeyboardInterrupt:
            interrupted = True
    answer = {"interrupted": interrupted, "results": {r.product: r.to_record() for r in results}}
    Path(out).write_text(json.dumps(answer))


def _root_cause(event) -> str:
    """The innermost error of a failed step: what went wrong, not Dagster's wrapper around it."""
    error = event.step_failure_data.error
    while error.cause is not None:
        error = error.cause
    return error.message.strip().splitlines()[0] if error.message.strip() else error.cls_name or "error"


@dataclass
class _Tally:
    """What a run's events say about one product, added up while they are read."""

    rows: dict[str, int | None] = field(default_factory=dict)
    passed: int = 0
    warnings: int = 0
    blocking: int = 0


def _tally(outcome, runnable: list[Product]) -> dict[tuple[str, ...], _Tally]:
    """Rows published per port and check outcomes, per (domain, product) of `runnable`."""
    tallies: dict[tuple[str, ...], _Tally] = {(p.spec.domain, p.spec.name): _Tally() for p in runnable}
    for event in outcome.get_asset_materialization_events():
        key = event.asset_key
        tally = tallies.get(tuple(key.path[:2]))
        if tally is not None and addressing.is_port_key(key):
            rows = event.materialization.metadata.get("dagster/row_count")
            tally.rows[key.path[2]] = rows.value if rows is not None else None
    for evaluation in outcome.get_asset_check_evaluations():
        tally = tallies.get(tuple(evaluation.asset_key.path[:2]))
        if tally is None:
            continue
        if evaluation.passed:
            tally.passed += 1
        elif evaluation.severity == dg.AssetCheckSeverity.ERROR:
            tally.blocking += 1
        else:
            tally.warnings += 1
    return tallies


def _not_built(outcome) -> dict[tuple[str, ...], list[str]]:
    """Why dbt did not build a product's models (`builders/dbt.py` records it as an observation)."""
    reasons: dict[tuple[str, ...], list[str]] = {}
    for event in outcome.all_events:
        if event.event_type == dg.DagsterEventType.ASSET_OBSERVATION:
            observation = event.asset_observation_data.asset_observation
            reason = observation.metadata.get(DBT_FAILURE)
            if reason is not None:
                reasons.setdefault(tuple(observation.asset_key.path[:2]), []).append(str(reason.value))
    return reasons


def _collect(outcome, runnable: list[Product], elapsed: float) -> list[ProductResult]:
    """Each of `runnable`'s result, from the events of the run that built them."""
    tallies = _tally(outcome, runnable)
    not_built = _not_built(outcome)
    failures = [e for e in outcome.all_events if e.is_step_failure]
    failed: set[str] = set()  # producers are before their consumers in `runnable`
    results = []
    for product in runnable:
        where = (product.spec.domain, product.spec.name)
        tally = tallies[where]
        status, error = _judge(product, tally, failures, not_built.get(where, []), failed)
        if status != RunStatus.OK:
            failed.add(product.key)
        results.append(
            ProductResult(
                product.key, status, tally.rows, tally.passed, tally.warnings, tally.blocking, elapsed, error
            )
        )
    return results


def _judge(
    product: Product, tally: _Tally, failures: list, not_built: list[str], failed: set[str]
) -> tuple[RunStatus, str]:
    """A product's status and error: ok when every port published and no blocking check failed."""
    missing = sorted({f"v{p.major}" for p in product.spec.output_ports} - set(tally.rows))
    if not missing and not tally.blocking:
        return RunStatus.OK, ""
    own = f"{product.spec.domain}__{product.spec.name}__v"
    mine = [f for f in failures if own in (f.step_key or "")]
    errors = [f for f in (mine or failures) if f.step_failure_data and f.step_failure_data.error]
    reasons = list(dict.fromkeys(not_built))
    upstream = [i.product for i in product.spec.product_inputs if i.product in failed]
    if upstream and not mine and all(r.startswith(DBT_SKIPPED) for r in reasons):
        # Its producer in this stage failed, so Dagster never ran it (or dbt, building both in one process,
        # skipped its models for that failure): skipped, as across stages.
        return RunStatus.SKIPPED, f"upstream failed: {', '.join(upstream)}"
    reasons += [_root_cause(f) for f in errors]
    detail = f"ports not published: {', '.join(missing)}" if missing else "blocking checks failed"
    return RunStatus.FAILED, "; ".join([detail, *reasons[:2]])


if __name__ == "__main__":
    import sys

    _child_main(sys.argv[1], sys.argv[2])
