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

Cost. `mesh generate --scale <cost-scale>` and `mesh run --domain sales` twice in fresh processes (the
second run's monitors have a past profile to read); from the Dagster instance: the orders port's
`mesh/monitor_seconds` (profile + monitors, recorded by the publish step), its publish step, the dbt step
that builds its candidate, and the whole run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
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


def _injections(newest: str) -> dict[str, str]:
    """SQL of each anomalous copy of `bench.batch` (the newest day is `newest`)."""
    day = f"CAST(updated_at AS DATE) = DATE '{newest}'"
    return {
        "partial_load": f"SELECT * FROM bench.batch WHERE NOT ({day} AND hash(order_id) % 10 < 7)",
        "stale_day": f"SELECT * FROM bench.batch WHERE CAST(updated_at AS DATE) < DATE '{newest}'",
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

    from mesh_assets.build.monitors import evaluate
    from mesh_assets.build.profile import compute_profile
    from mesh_assets.infra.warehouse.duckdb import DuckDBSession
    from mesh_assets.product.addressing import Relation
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
            profile = compute_profile(session, batch, port, now)
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
                for kind, sql in _injections(str(profile.newest_bucket)).items():
                    session.execute(f"CREATE OR REPLACE TABLE {copy.sql} AS {sql}")
                    judged = evaluate(compute_profile(session, copy, port, now), history, port, now)
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


def cost(scale: int) -> dict:
    """Profiling + monitors against the orders port's build, in two `mesh run --domain sales` runs."""
    with tempfile.TemporaryDirectory(prefix="mesh-bench-monitor-cost-") as tmp:
        work = Path(tmp)
        env = {
            **os.environ,
            "MESH_DATA_DIR": str(work / "data"),
            "MESH_DUCKDB_PATH": str(work / "mesh.duckdb"),
            "MESH_SOURCES_DIR": str(work / "sources"),
            "DAGSTER_HOME": str(work / "dagster_home"),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
        env.pop("MESH_TARGET", None)
        env.pop("MESH_ENV", None)
        (work / "dagster_home").mkdir()
        (work / "dagster_home" / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
        cli = [sys.executable, "-m", "mesh_assets.cli"]
        subprocess.run([*cli, "generate", "--scale", str(scale)], env=env, check=True, capture_output=True)
        runs = []
        for _ in range(2):
            started = time.perf_counter()
            done = subprocess.run([*cli, "run", "--domain", "sales"], env=env, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(done.stdout[-3000:] + done.stderr[-3000:])
            runs.append(time.perf_counter() - started)
        os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
        import dagster as dg

        with dg.DagsterInstance.get() as instance:
            key = dg.AssetKey(["sales", "orders", "v1"])
            record = instance.fetch_materializations(key, limit=1).records[0]
            metadata = record.asset_materialization.metadata
            monitor_s = float(metadata["mesh/monitor_seconds"].value)
            steps = {
                s.step_key: (s.end_time or 0) - (s.start_time or 0)
                for s in instance.get_run_step_stats(record.run_id)
            }
            checks = sum(1 for name in metadata if str(name).startswith("mesh/profile/"))
    publish_s = steps.get("sales__orders__v1", 0.0)
    dbt_s = sum(v for k, v in steps.items() if "dbt" in k or "sales_dbt" in k)
    port_build_s = publish_s + dbt_s
    return {
        "scale_orders": scale,
        "monitor_seconds": round(monitor_s, 3),
        "publish_step_s": round(publish_s, 2),
        "dbt_steps_s": round(dbt_s, 2),
        "port_build_s": round(port_build_s, 2),
        "monitors_share_of_port_build": round(monitor_s / port_build_s, 3) if port_build_s else None,
        "mesh_run_sales_s": [round(r, 2) for r in runs],
        "profile_figures_plotted": checks,
        "steps_s": {k: round(v, 2) for k, v in sorted(steps.items(), key=lambda kv: -kv[1])},
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
