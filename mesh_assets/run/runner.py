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
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from mesh_assets.assets.dbt_outcomes import DBT_FAILURE
from mesh_assets.infra import environment, reclaim
from mesh_assets.product import addressing
from mesh_assets.product.registry import GOVERNANCE_DOMAIN, Product, load_registry, topological_order
from mesh_assets.run.stages import Stage, parallel_limit, plan, run_stages

# The progress display and summary table are the output; the full event log is in the Dagster UI.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class ProductResult:
    """What one product's build produced."""

    product: Product
    status: str = "pending"
    rows: dict[str, int | None] = field(default_factory=dict)
    checks_passed: int = 0
    checks_failed: int = 0
    checks_blocking: int = 0
    seconds: float = 0.0
    error: str = ""

    def to_json(self) -> dict:
        """The result as `mesh run --summary-json` writes it."""
        return {
            "product": self.product.key,
            "status": self.status,
            "rows": self.rows,
            "checks_passed": self.checks_passed,
            "warnings": self.checks_failed - self.checks_blocking,
            "blocking_failed": self.checks_blocking,
            "seconds": round(self.seconds, 2),
            "error": self.error,
        }


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
    domains: list[str] | None = None, on_event=None, products: list[str] | None = None
) -> list[ProductResult]:
    """Build the mesh (or the products of `domains`, or `products`); one result per product, in build order.

    In an environment that defers to prod (a branch environment), the ports of every product not built
    are first pointed at prod's, read-only (`mesh_assets.infra.deferral`), and the plan is reported
    through `on_event("deferral", plan, None)`; a build that reads a port nobody has is refused.

    Before building, runs of this host whose process died (a `kill -9`, an OOM kill) are marked failed
    and their pool slots freed, so a crash never wedges the next run. While a stage waits for the
    `warehouse` pool, who holds it is reported through `on_event("waiting", ...)`. Ctrl-C (or SIGTERM)
    stops the whole build: nothing more is built and every unbuilt product says `interrupted`.
    """
    env = environment.resolve()
    registry = load_registry(env.root)
    registry.raise_for_errors()
    instance = ensure_instance(env)
    notify = on_event or (lambda *_: None)
    for reclaimed in reclaim.reclaim_dead_runs(instance, reclaimer="mesh run"):
        notify("reclaimed", reclaimed.run_id, reclaimed.reason)
    if products:
        unknown = sorted(set(products) - set(registry.products))
        if unknown:
            raise environment.MeshEnvironmentError(
                f"no product {', '.join(unknown)}: products are named <domain>.<product>, e.g. "
                f"{next(iter(sorted(registry.products)), 'sales.orders')} (`mesh catalog` lists them)"
            )
    ordered = [
        p
        for p in topological_order(registry)
        if (not domains or p.spec.domain in domains) and (not products or p.key in products)
    ]
    if env.defers_to_prod:
        notify("deferral", _defer(env, registry, [p.key for p in ordered]), None)
    results = {p.key: ProductResult(p) for p in ordered}
    failed: set[str] = set()
    owner_tags = {**reclaim.Owner.current().tags(), reclaim.LAUNCHED_BY_TAG: "mesh run"}
    in_flight: set[str] = set()
    lock = threading.Lock()  # stages may build in threads (Snowflake): results are shared

    def build_stage(stage: Stage) -> None:
        runnable = []
        with lock:
            for product in stage.products:
                blocked = [i.product for i in product.spec.product_inputs if i.product in failed]
                if blocked:
                    results[product.key].status = "skipped"
                    results[product.key].error = f"upstream failed: {', '.join(blocked)}"
                    failed.add(product.key)
                    notify("skipped", product, results[product.key])
                else:
                    runnable.append(product)
        if not runnable:
            return
        notify("start", stage, runnable)
        with lock:
            in_flight.update(p.key for p in runnable)
        run_id = str(uuid.uuid4())
        with _reporting_waits(instance, run_id, notify):
            if limit > 1:
                interrupted = _execute_in_child(
                    stage.domain, runnable, run_id, owner_tags, results, failed, lock
                )
            else:
                interrupted = _execute(stage.domain, runnable, instance, run_id, owner_tags, results, failed)
        if interrupted:
            raise KeyboardInterrupt
        for product in runnable:
            notify("done", product, results[product.key])
        with lock:
            in_flight.difference_update(p.key for p in runnable)

    limit = parallel_limit(env, instance)
    with _interrupts_raise():
        try:
            run_stages(
                plan(ordered), build_stage, limit, lambda building: notify("parallel", building, limit)
            )
            if not products and (not domains or GOVERNANCE_DOMAIN in domains):
                governance = load_location(GOVERNANCE_DOMAIN)
                run_id = str(uuid.uuid4())
                with _reporting_waits(instance, run_id, notify):
                    outcome = governance.resolve_implicit_global_asset_job_def().execute_in_process(
                        instance=instance,
                        raise_on_error=False,
                        run_config=QUIET,
                        run_id=run_id,
                        tags=owner_tags,
                    )
                if _was_interrupted(outcome):
                    raise KeyboardInterrupt
                built = sorted(
                    e.asset_key.to_user_string() for e in outcome.get_asset_materialization_events()
                )
                notify("governance", outcome.success, built)
        except KeyboardInterrupt:
            for result in results.values():
                # A product of the interrupted stage that published before the interrupt stays `ok`.
                if result.status == "pending" or (result.product.key in in_flight and result.status != "ok"):
                    result.status = "interrupted"
                    result.error = "not built: the run was interrupted"
            notify("interrupted", None, None)
    return list(results.values())


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
def _reporting_waits(instance: dg.DagsterInstance, run_id: str, notify) -> Iterator[None]:
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
                for reclaimed in reclaim.reclaim_dead_runs(instance, reclaimer="mesh run"):
                    notify("reclaimed", reclaimed.run_id, reclaimed.reason)
                holders = [h.describe() for h in reclaim.pool_holders(instance) if h.run_id != run_id]
                notify("waiting", steps, (now - waiting_since, holders))
                next_report = now + WAIT_REPORT_EVERY_S
            except Exception as exc:  # a report must never break the run it reports on
                notify("waiting", [], (0.0, [f"could not read the pool's holders: {exc}"]))
                next_report = time.monotonic() + WAIT_REPORT_EVERY_S

    watcher = threading.Thread(target=watch, name=f"mesh-wait-{run_id[:8]}", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join(timeout=5)


def _execute(
    domain: str,
    runnable: list[Product],
    instance: dg.DagsterInstance,
    run_id: str,
    tags: dict[str, str],
    results: dict[str, ProductResult],
    failed: set[str],
) -> bool:
    """Build `runnable` as one in-process Dagster run of `domain`'s location; whether it was interrupted."""
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
    _collect(outcome, runnable, results, time.monotonic() - started, failed)
    return _was_interrupted(outcome)


RESULT_FIELDS = ("status", "rows", "checks_passed", "checks_failed", "checks_blocking", "seconds", "error")


def _execute_in_child(
    domain: str,
    runnable: list[Product],
    run_id: str,
    tags: dict[str, str],
    results: dict[str, ProductResult],
    failed: set[str],
    lock: threading.Lock,
) -> bool:
    """`_execute` in a child process (`python -m mesh_assets.run.runner`), for stages built at once.

    Dagster's in-process runs cannot start in two threads of one process (each run start reconfigures
    Python logging while the other's events take logging's locks: a deadlock), so a stage built beside
    another runs in its own process, on the same instance. Its output goes to a log beside the run's
    data; its results come back as JSON. Ctrl-C reaches it too (same process group).
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
    with lock:
        for product in runnable:
            result = results[product.key]
            if answer is None:
                result.status, result.error = "failed", f"the stage's process exited {code} with no result"
            else:
                for name, value in answer["results"][product.key].items():
                    setattr(result, name, value)
            if result.status == "failed":
                failed.add(product.key)
    return (answer is None and code in {130, -2}) or bool(answer and answer["interrupted"])


def _child_main(request_json: str, out: str) -> None:
    """The child side of `_execute_in_child`: build one stage, write its results."""
    import json

    request = json.loads(request_json)
    env = environment.resolve()
    registry = load_registry(env.root)
    runnable = [registry.products[key] for key in request["products"]]
    results = {p.key: ProductResult(p) for p in runnable}
    instance = ensure_instance(env)
    with _interrupts_raise():
        try:
            # The run is this process's: a kill of it (not of the parent) must be reclaimable.
            tags = {**request["tags"], **reclaim.Owner.current().tags()}
            interrupted = _execute(
                request["domain"], runnable, instance, request["run_id"], tags, results, set()
            )
        except KeyboardInterrupt:
            interrupted = True
    answer = {
        "interrupted": interrupted,
        "results": {key: {name: getattr(r, name) for name in RESULT_FIELDS} for key, r in results.items()},
    }
    Path(out).write_text(json.dumps(answer))


def _root_cause(event) -> str:
    """The innermost error of a failed step: what went wrong, not Dagster's wrapper around it."""
    error = event.step_failure_data.error
    while error.cause is not None:
        error = error.cause
    return error.message.strip().splitlines()[0] if error.message.strip() else error.cls_name or "error"


def _collect(
    outcome, runnable: list[Product], results: dict[str, ProductResult], elapsed: float, failed: set[str]
) -> None:
    by_prefix = {(p.spec.domain, p.spec.name): results[p.key] for p in runnable}
    for event in outcome.get_asset_materialization_events():
        key = event.asset_key
        result = by_prefix.get(tuple(key.path[:2]))
        if result is not None and addressing.is_port_key(key):
            rows = event.materialization.metadata.get("dagster/row_count")
            result.rows[key.path[2]] = rows.value if rows is not None else None
    for evaluation in outcome.get_asset_check_evaluations():
        result = by_prefix.get(tuple(evaluation.asset_key.path[:2]))
        if result is not None:
            if evaluation.passed:
                result.checks_passed += 1
            else:
                result.checks_failed += 1
                result.checks_blocking += evaluation.severity == dg.AssetCheckSeverity.ERROR
    failures = [e for e in outcome.all_events if e.is_step_failure]
    # Why dbt did not build a product's model (`builders/dbt.py` records it as an observation).
    not_built: dict[tuple[str, ...], list[str]] = {}
    for event in outcome.all_events:
        if event.event_type == dg.DagsterEventType.ASSET_OBSERVATION:
            observation = event.asset_observation_data.asset_observation
            reason = observation.metadata.get(DBT_FAILURE)
            if reason is not None:
                not_built.setdefault(tuple(observation.asset_key.path[:2]), []).append(str(reason.value))
    for product in runnable:
        result = results[product.key]
        result.seconds = elapsed
        expected = {f"v{p.major}" for p in product.spec.output_ports}
        missing = sorted(expected - set(result.rows))
        if missing or result.checks_blocking:
            result.status = "failed"
            failed.add(product.key)
            own = f"{product.spec.domain}__{product.spec.name}__v"
            mine = [f for f in failures if own in (f.step_key or "")]
            errors = [f for f in (mine or failures) if f.step_failure_data and f.step_failure_data.error]
            reasons = list(dict.fromkeys(not_built.get((product.spec.domain, product.spec.name), [])))
            upstream = [i.product for i in product.spec.product_inputs if i.product in failed]
            if upstream and not reasons and not mine:
                # Its producer in this stage failed, so Dagster never ran it: skipped, as across stages.
                result.status, result.error = "skipped", f"upstream failed: {', '.join(upstream)}"
                continue
            reasons += [_root_cause(f) for f in errors]
            detail = f"ports not published: {', '.join(missing)}" if missing else "blocking checks failed"
            result.error = "; ".join([detail, *reasons[:2]])
        else:
            result.status = "ok"


if __name__ == "__main__":
    import sys

    _child_main(sys.argv[1], sys.argv[2])
