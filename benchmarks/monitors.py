"""Learned monitors against injected anomalies: recall per kind, false alarms on normal days, and cost.

Replay (recall and false alarms). The example ERP orders are generated for every day of `--history` +
`--replay` days, as `mesh generate --as-of DAY` does (`generate_sources(as_of=day)`, default seed), so
each day's newest day is a fresh draw with the generator's weekly and yearly rhythm. Each day's batch
of the `sales.orders` port is built in DuckDB with the port's own dbt SQL (`stg_orders` + `orders_v1`,
rendered with the landed extract), profiled and judged by the platform's code (`profile.compute_profile`,
`monitors.evaluate`) at 03:00 the day after, trained on the profiles of the publishes before it. The
first `--history` days only train. On each replayed day the normal batch is judged (a false alarm: any
monitor anomalous), then six copies, each with one anomaly
injected into its newest day:

| kind | injected | expected to fire |
|---|---|---|
| partial_load | 70% of the newest day's rows missing | monitor_volume |
| stale_day | the newest day did not arrive (data ends a day earlier) | monitor_freshness |
| null_spike | 30% of the newest day's customer_id null | monitor_null_rate__customer_id |
| shifted_mean | the newest day's amount x 1.5 | monitor_mean__amount |
| category_takeover | every order of the newest day `cancelled` | monitor_shares__status |
| dropped_column | `currency` missing | monitor_schema |

The port's spec is the shipped one with `customer_id` nullable (the shipped contract forbids nulls, so it
has no null-rate monitor to test). Anomalous batches are not learned (as if blocked).

Cost. `mesh generate --scale <cost-scale>`, then `mesh run --domain sales` with the orders port's monitors
on and, as the baseline, off (`monitors: enabled: false` in a copy of the specs), alternating, each
after a warm-up run. The profile rides in the audit's single scan, so its cost is the difference of the
port step's audit + monitor seconds (`mesh/audit_seconds`, `mesh/monitor_seconds`) between the two,
reported against the port's build (its dbt steps and its audit/publish step).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "dbt_projects" / "sales" / "models" / "orders"
SEED = 42
"""`mesh generate`'s default seed, for every day, as `mesh generate --as-of DAY` would: the same catalog
of products and prices every day (a new seed would redraw the price list, which no real ERP does)."""
KINDS = {
    "partial_load": "monitor_volume",
    "stale_day": "monitor_freshness",
    "null_spike": "monitor_null_rate__customer_id",
    "shifted_mean": "monitor_mean__amount",
    "category_takeover": "monitor_shares__status",
    "dropped_column": "monitor_schema",
}


def _port():
    """The shipped sales.orders v1 port, with customer_id nullable (so it has a null-rate monitor)."""
    from mesh_assets.product.registry import load_registry
    from mesh_assets.product.spec import OutputPort

    port = load_registry(ROOT).products["sales.orders"].spec.output_ports[0]
    data = port.model_dump(mode="json", exclude_none=True)
    for column in data["columns"]:
        if column["name"] == "customer_id":
            column["nullable"] = True
    return OutputPort.model_validate(data)


def _port_sql(extract: Path) -> str:
    """The port's candidate SQL: the dbt models with `source()` and `ref()` rendered by hand."""
    stg = (MODELS / "stg_orders.sql").read_text()
    stg = re.sub(
        r"\{\{\s*source\('erp',\s*'orders'\)\s*\}\}", f"read_csv('{extract}', all_varchar=true)", stg
    )
    port = (MODELS / "orders_v1.sql").read_text()
    stg = "\n".join(line for line in stg.splitlines() if not line.startswith("--"))
    return re.sub(r"\{\{\s*ref\('stg_orders'\)\s*\}\}", f"({stg}) AS stg", port)


def _injections(bucket: str, newest: str, newest_update: str) -> dict[str, str]:
    """SQL of each anomalous copy of `bench.batch`: `newest` is the newest day of the port's monitored
    days (of `bucket`: `monitors.time_column`, else the event time), `newest_update` of its event time."""
    day = f"CAST({bucket} AS DATE) = DATE '{newest}'"
    return {
        "partial_load": f"SELECT * FROM bench.batch WHERE NOT ({day} AND hash(order_id) % 10 < 7)",
        "stale_day": f"SELECT * FROM bench.batch WHERE CAST(updated_at AS DATE) < DATE '{newest_update}'",
        "null_spike": "SELECT * REPLACE (CASE WHEN "
        f"{day} AND hash(order_id) % 10 < 3 THEN NULL ELSE customer_id END AS customer_id) FROM bench.batch",
        "shifted_mean": "SELECT * REPLACE (CASE WHEN "
        f"{day} THEN CAST(amount * 1.5 AS DECIMAL(14, 2)) ELSE amount END AS amount) FROM bench.batch",
        "category_takeover": f"SELECT * REPLACE (CASE WHEN {day} THEN 'cancelled' ELSE status END AS status) "
        "FROM bench.batch",
        "dropped_column": "SELECT * EXCLUDE (currency) FROM bench.batch",
    }


def replay(scale: int, history_days: int, replay_days: int, first: date) -> dict:
    """Recall per kind and false alarms, judging each day with the profiles of the days before."""
    import duckdb

    from mesh_assets.infra.warehouse.duckdb import DuckDBSession
    from mesh_assets.product.addressing import Relation
    from mesh_assets.quality.monitors import evaluate, known_values
    from mesh_assets.quality.profile import bucket_column, scan_profile
    from mesh_assets.selfservice.generate import generate_sources

    port = _port()
    batch, copy = Relation("bench", "batch"), Relation("bench", "injected")
    history: list = []
    hits = {kind: 0 for kind in KINDS}
    caught_any = {kind: 0 for kind in KINDS}
    false_days, false_by_monitor, learning_days = 0, {}, 0
    timings = {"generate_s": 0.0, "build_batch_s": 0.0, "profile_s": 0.0, "judge_s": 0.0}
    rows_per_day: list[int] = []
    with tempfile.TemporaryDirectory(prefix="mesh-bench-monitors-") as tmp, duckdb.connect() as connection:
        session = DuckDBSession(connection)
        session.execute("CREATE SCHEMA bench")
        for i in range(history_days + replay_days):
            as_of = first + timedelta(days=i)
            now = datetime.combine(as_of, datetime.min.time()) + timedelta(hours=3)
            started = time.perf_counter()
            generate_sources(Path(tmp), scale=scale, seed=SEED, as_of=as_of)
            timings["generate_s"] += time.perf_counter() - started
            started = time.perf_counter()
            session.execute(
                f"CREATE OR REPLACE TABLE {batch.sql} AS {_port_sql(Path(tmp) / 'erp' / 'orders.csv')}"
            )
            timings["build_batch_s"] += time.perf_counter() - started
            started = time.perf_counter()
            # As a publish does: value shares of the values the last publishes saw counted in the scan.
            profile, _ = scan_profile(session, batch, port, now, known=known_values(history))
            timings["profile_s"] += time.perf_counter() - started
            started = time.perf_counter()
            results = evaluate(profile, history, port, now)
            timings["judge_s"] += time.perf_counter() - started
            if i >= history_days:
                rows_per_day.append(int(profile.buckets[profile.newest_bucket]["rows"] or 0))
                anomalous = [r.name for r in results if r.verdict.anomaly]
                learning_days += any(r.verdict.status == "learning" for r in results)
                false_days += bool(anomalous)
                for name in anomalous:
                    false_by_monitor[name] = false_by_monitor.get(name, 0) + 1
                newest_update = str(profile.max_event_time)[:10]
                injections = _injections(str(bucket_column(port)), str(profile.newest_bucket), newest_update)
                for kind, sql in injections.items():
                    session.execute(f"CREATE OR REPLACE TABLE {copy.sql} AS {sql}")
                    injected, _ = scan_profile(session, copy, port, now, known=known_values(history))
                    judged = evaluate(injected, history, port, now)
                    fired = {r.name for r in judged if r.verdict.anomaly}
                    hits[kind] += KINDS[kind] in fired
                    caught_any[kind] += bool(fired)
            history = [*history, profile][-port.monitors.window :]
            print(f"{as_of}: {profile.rows:,} rows, newest day {profile.newest_bucket}", file=sys.stderr)
    days = replay_days
    return {
        "scale_orders": scale,
        "history_days": history_days,
        "replay_days": days,
        "newest_day_rows_median": statistics.median(rows_per_day) if rows_per_day else None,
        "recall": {kind: round(hits[kind] / days, 3) for kind in KINDS},
        "recall_any_monitor": {kind: round(caught_any[kind] / days, 3) for kind in KINDS},
        "expected_monitor": KINDS,
        "false_alarm_days": false_days,
        "false_alarm_rate": round(false_days / days, 3),
        "false_alarms_by_monitor": dict(sorted(false_by_monitor.items())),
        "replay_days_still_learning": learning_days,
        "monitors_per_batch": len(results),
        "seconds": {k: round(v, 2) for k, v in timings.items()},
        "profile_s_per_batch": round(timings["profile_s"] / (history_days + replay_days), 3),
    }


def _mesh_copy(root: Path, monitors: bool) -> None:
    """The repository's domains and dbt projects under `root`; with `monitors=False` the orders port's
    monitors are turned off (`monitors: enabled: false`), the baseline of the cost."""
    root.mkdir(parents=True)
    shutil.copytree(ROOT / "domains", root / "domains", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(
        ROOT / "dbt_projects", root / "dbt_projects", ignore=shutil.ignore_patterns("target", "logs")
    )
    if not monitors:
        spec = root / "domains" / "sales" / "products" / "orders" / "dataproduct.yaml"
        text = spec.read_text()
        assert "\n    monitors:\n" in text, "the orders port's spec has no monitors section to turn off"
        spec.write_text(text.replace("\n    monitors:\n", "\n    monitors:\n      enabled: false\n", 1))


def _orders_publish(home: Path) -> dict[str, float]:
    """The orders port's last publish: its recorded seconds and its run's step times."""
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(home)
    with dg.DagsterInstance.get() as instance:
        key = dg.AssetKey(["sales", "orders", "v1"])
        record = instance.fetch_materializations(key, limit=1).records[0]
        metadata = record.asset_materialization.metadata
        steps = {
            s.step_key: (s.end_time or 0) - (s.start_time or 0)
            for s in instance.get_run_step_stats(record.run_id)
        }
        return {
            "audit_s": float(metadata["mesh/audit_seconds"].value),
            "monitor_s": float(metadata["mesh/monitor_seconds"].value),
            "publish_s": float(metadata["mesh/publish_seconds"].value),
            "step_s": steps.get("sales__orders__v1", 0.0),
            "dbt_s": sum(v for k, v in steps.items() if "dbt" in k),
            "plotted": sum(1 for name in metadata if str(name).startswith("mesh/profile/")),
        }


def cost(scale: int, repeats: int = 3) -> dict:
    """Profiling + monitors against the orders port's build: `mesh run --domain sales` with the port's
    monitors on and off (the baseline), alternating, on the same generated data. The profile rides in
    the audit's scan, so its cost is the difference of the port step's audit + monitors between the two.
    The first run of each is a warm-up (and gives the monitors a past profile to read)."""
    with tempfile.TemporaryDirectory(prefix="mesh-bench-monitor-cost-") as tmp:
        work = Path(tmp)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("MESH_", "DAGSTER_"))}
        base.update(PYTHONPATH=str(ROOT), DBT_SEND_ANONYMOUS_USAGE_STATS="false")
        cli = [sys.executable, "-m", "mesh_assets.cli"]
        sources = work / "sources"
        modes: dict[str, dict[str, str]] = {}
        for mode in ("on", "off"):
            _mesh_copy(work / mode / "repo", monitors=mode == "on")
            home = work / mode / "dagster_home"
            home.mkdir(parents=True)
            (home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
            modes[mode] = {
                **base,
                "MESH_ROOT": str(work / mode / "repo"),
                "MESH_DATA_DIR": str(work / mode / "data"),
                "MESH_DUCKDB_PATH": str(work / mode / "mesh.duckdb"),
                "MESH_SOURCES_DIR": str(sources),
                "DAGSTER_HOME": str(home),
            }
        subprocess.run(
            [*cli, "generate", "--scale", str(scale)], env=modes["on"], check=True, capture_output=True
        )
        runs: dict[str, list[float]] = {"on": [], "off": []}
        measured: dict[str, list[dict[str, float]]] = {"on": [], "off": []}
        for i in range(repeats + 1):
            for mode, env in modes.items():
                started = time.perf_counter()
                done = subprocess.run(
                    [*cli, "run", "--domain", "sales"], env=env, capture_output=True, text=True
                )
                if done.returncode != 0:
                    raise RuntimeError(done.stdout[-3000:] + done.stderr[-3000:])
                if i:  # the first run of each is the warm-up
                    runs[mode].append(time.perf_counter() - started)
                    measured[mode].append(_orders_publish(Path(env["DAGSTER_HOME"])))
    med = {
        mode: {k: statistics.median(m[k] for m in measured[mode]) for k in measured[mode][0]}
        for mode in measured
    }
    on, off = med["on"], med["off"]
    checks_on = on["audit_s"] + on["monitor_s"]
    extra = checks_on - (off["audit_s"] + off["monitor_s"])
    port_build = on["step_s"] + on["dbt_s"]
    return {
        "scale_orders": scale,
        "repeats": repeats,
        "os_load_avg": list(os.getloadavg()),
        "monitors_on": {k: round(v, 3) for k, v in on.items()},
        "monitors_off": {k: round(v, 3) for k, v in off.items()},
        "profile_and_monitors_s": round(extra, 3),
        "port_build_s": round(port_build, 2),
        "monitors_share_of_port_build": round(extra / port_build, 3) if port_build else None,
        "port_step_on_vs_off_s": [round(on["step_s"], 2), round(off["step_s"], 2)],
        "mesh_run_sales_s": {mode: [round(r, 2) for r in rs] for mode, rs in runs.items()},
        "profile_figures_plotted": int(on["plotted"]),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=int, default=200_000, help="orders per generated day (replay)")
    parser.add_argument("--history", type=int, default=90, help="days that only train")
    parser.add_argument("--replay", type=int, default=60, help="days judged, normal and injected")
    parser.add_argument("--first", default="2026-06-01", help="as-of day of the first generated day")
    parser.add_argument("--cost-scale", type=int, default=1_000_000)
    parser.add_argument("--skip-cost", action="store_true")
    args = parser.parse_args()
    result = {"replay": replay(args.scale, args.history, args.replay, date.fromisoformat(args.first))}
    if not args.skip_cost:
        result["cost"] = cost(args.cost_scale)
    print(json.dumps(result, indent=2))
    out = Path(__file__).parent / "results" / "monitors.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"recorded in {out}", file=sys.stderr)
