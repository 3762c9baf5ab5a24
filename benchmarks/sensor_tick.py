"""SLO monitor tick over 1,000 ports, against baselines measured on the same instance in the same run.

Setup (not timed): a synthetic mesh of 1,000 products (the shipped `customers/customer_master` spec,
renamed into 20 domains of 50), a fresh SQLite Dagster instance in a temporary DAGSTER_HOME, and one
publish (a runless materialization with a row count) per port.

Timed, each the sensor function alone (what runs in the code server, where Dagster's sensor timeout
applies); writing the SLI observations a tick returns is the daemon's job and is timed separately:

- `first`: the first tick ever, counting every port's window from the event log;
- `steady`: a tick with nothing new (the common case), median of several;
- `restart`: a tick in a new process: per-port state reloaded from the recorded SLI observations;
- `busy`: a tick after every port published again and 10 ports failed a blocking check (10 alerts,
  routed to the log since no Slack token is set).

Baselines: `empty`, a sensor that parses its cursor and returns it (the floor of any sensor on this
instance), and `one_query`, a sensor that also runs one event-log query after its cursor (the floor of
any event-driven sensor). The requirement is `steady` and `busy` under 1 s.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "domains" / "customers" / "products" / "customer_master" / "dataproduct.yaml"
DOMAINS = 20


def synthetic_mesh(root: Path, products: int) -> None:
    """`products` copies of the template spec under `root/domains/d<NN>/products/p<NNNN>/`."""
    text = TEMPLATE.read_text()
    for index in range(products):
        domain, name = f"d{index % DOMAINS:02d}", f"p{index:04d}"
        folder = root / "domains" / domain / "products" / name
        folder.mkdir(parents=True)
        spec = re.sub(r"^name: .*$", f"name: {name}", text, count=1, flags=re.M)
        spec = re.sub(r"^domain: .*$", f"domain: {domain}", spec, count=1, flags=re.M)
        (folder / "dataproduct.yaml").write_text(spec)


def _timed(fn: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def main(products: int, repeats: int) -> dict[str, Any]:
    """Build the synthetic mesh and instance, time the ticks and the baselines."""
    logging.disable(logging.WARNING)  # the busy tick's 10 alerts go to the log on purpose
    work = Path(tempfile.mkdtemp(prefix="mesh-bench-slo-"))
    try:
        home = work / "dagster_home"
        home.mkdir()
        shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
        os.environ["DAGSTER_HOME"] = str(home)
        for name in ["MESH_ALERT_WEBHOOK_URL", "MESH_SLACK_TOKEN"]:
            os.environ.pop(name, None)
        synthetic_mesh(work / "mesh", products)

        import dagster as dg
        from dagster import DagsterEventType, EventRecordsFilter

        from mesh_assets.observe import sensors
        from mesh_assets.observe.sli import port_slos
        from mesh_assets.product.registry import load_registry

        seconds, registry = _timed(lambda: load_registry(work / "mesh"))
        ports = port_slos(registry)
        assert len(ports) == products, f"expected {products} ports, got {len(ports)}"
        print(f"synthetic mesh: {len(ports)} ports in {len(registry.products)} products ({seconds:.1f}s)")

        instance = dg.DagsterInstance.get()
        setup_started = time.perf_counter()

        def publish_all(rows: int) -> None:
            for number, slo in enumerate(ports.values()):
                instance.report_runless_asset_event(
                    dg.AssetMaterialization(asset_key=slo.key, metadata={"dagster/row_count": rows + number})
                )

        publish_all(1000)
        print(f"setup: {len(ports)} publishes written in {time.perf_counter() - setup_started:.1f}s")

        cursor: dict[str, str | None] = {"monitor": None, "empty": None, "one_query": None}

        def monitor_tick() -> tuple[float, Any]:
            context = dg.build_sensor_context(instance=instance, cursor=cursor["monitor"])
            seconds, result = _timed(lambda: sensors.monitor_tick(context, registry, ports))
            cursor["monitor"] = result.cursor
            return seconds, result

        def persist(result: Any) -> float:
            seconds, _ = _timed(
                lambda: [instance.report_runless_asset_event(event) for event in result.asset_events]
            )
            return seconds

        def empty_tick() -> float:
            context = dg.build_sensor_context(instance=instance, cursor=cursor["empty"])

            def body() -> Any:
                state = json.loads(context.cursor or "{}")
                state["n"] = state.get("n", 0) + 1
                return dg.SensorResult(cursor=json.dumps(state))

            seconds, result = _timed(body)
            cursor["empty"] = result.cursor
            return seconds

        def one_query_tick() -> float:
            context = dg.build_sensor_context(instance=instance, cursor=cursor["one_query"])

            def body() -> Any:
                after = json.loads(context.cursor or "{}").get("after")
                records = instance.event_log_storage.get_event_records(
                    EventRecordsFilter(DagsterEventType.ASSET_MATERIALIZATION, after_cursor=after),
                    limit=5000,
                    ascending=True,
                )
                after = records[-1].storage_id if records else after
                return dg.SensorResult(cursor=json.dumps({"after": after}))

            seconds, result = _timed(body)
            cursor["one_query"] = result.cursor
            return seconds

        first_s, result = monitor_tick()
        first_persist_s = persist(result)
        first_observations = len(result.asset_events)
        one_query_tick()  # moves the query baseline's cursor past the setup events

        steady = [monitor_tick() for _ in range(repeats)]
        steady_s = statistics.median(s for s, _ in steady)
        empty_s = statistics.median(empty_tick() for _ in range(repeats))
        one_query_s = statistics.median(one_query_tick() for _ in range(repeats))

        sensors.forget_cached_state()
        restart_s, result = monitor_tick()
        persist(result)

        publish_all(1100)
        for slo in list(ports.values())[:10]:
            instance.report_runless_asset_event(
                dg.AssetCheckEvaluation(
                    asset_key=slo.key,
                    check_name="primary_key_unique_not_null",
                    passed=False,
                    severity=dg.AssetCheckSeverity.ERROR,
                )
            )
        busy_s, result = monitor_tick()
        busy_alerts = int(re.search(r"(\d+) new alert", result.skip_reason.skip_message)[1])
        busy_persist_s = persist(result)
        busy_observations = len(result.asset_events)
        cursor_bytes = len(cursor["monitor"] or "")
        instance.dispose()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    results = {
        "ports": products,
        "first_tick_s": round(first_s, 4),
        "first_tick_observations": first_observations,
        "first_tick_observations_written_by_daemon_s": round(first_persist_s, 2),
        "steady_tick_s": round(steady_s, 4),
        "restart_tick_s": round(restart_s, 4),
        "busy_tick_s": round(busy_s, 4),
        "busy_tick_alerts": busy_alerts,
        "busy_tick_observations": busy_observations,
        "busy_tick_observations_written_by_daemon_s": round(busy_persist_s, 2),
        "cursor_bytes_after_busy_tick": cursor_bytes,
        "baseline_empty_sensor_s": round(empty_s, 6),
        "baseline_one_query_sensor_s": round(one_query_s, 5),
        "steady_vs_one_query_ratio": round(steady_s / one_query_s, 1),
        "steady_vs_empty_ratio": round(steady_s / empty_s, 0),
        "busy_vs_one_query_ratio": round(busy_s / one_query_s, 1),
        "under_1s": steady_s < 1.0 and busy_s < 1.0,
    }
    print(f"{'tick':<34}{'seconds':>10}")
    for label, value in [
        ("first (whole window counted)", first_s),
        ("steady (nothing new), median", steady_s),
        ("restart (state reloaded)", restart_s),
        (f"busy ({products} publishes, {busy_alerts} alerts)", busy_s),
        ("baseline: empty sensor", empty_s),
        ("baseline: one event-log query", one_query_s),
    ]:
        print(f"{label:<34}{value:>10.4f}")
    print(
        f"steady tick = {results['steady_vs_one_query_ratio']}x the one-query baseline "
        f"({results['steady_vs_empty_ratio']:.0f}x the empty sensor); busy tick = "
        f"{results['busy_vs_one_query_ratio']}x the one-query baseline"
    )
    print(
        f"daemon writes of the returned SLI observations (SQLite): first tick {first_observations} in "
        f"{first_persist_s:.1f}s, busy tick {busy_observations} in {busy_persist_s:.1f}s"
    )
    print(("PASS" if results["under_1s"] else "FAIL") + ": steady and busy ticks under 1 s")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--ports", type=int, default=1000, help="Number of synthetic products (one port each)."
    )
    parser.add_argument("--repeats", type=int, default=5, help="Repeats of the steady and baseline ticks.")
    args = parser.parse_args()
    out = Path(__file__).parent / "results" / "sensor_tick.json"
    out.write_text(json.dumps(main(args.ports, args.repeats), indent=2) + "\n")
    print(f"recorded in {out}")
