"""Writing a port's bindings (Iceberg + partitioned Parquet, parity read-back included) against its build.

A port of `--rows` rows (default 1M) shaped like `sales.sales` v2 (month, customer, product line, counts,
a decimal revenue) is built the way write-audit-publish builds it, on a private DuckDB file: the
transformation aggregates ~8 orders per row into the candidate, the batch is cast onto the contract and
published. Then the platform's `write_bindings` serves it as an Iceberg table (SQLite catalog) and Parquet
files partitioned by product line, as the example declares, and reads each back for the parity check. The
baseline is that build (transformation + cast + publish, no audit: a smaller baseline than a real step,
so the share is overstated), measured in the same run, alternated `--repeat` times; medians reported.
Goal (issue 25): bindings ≤ 20% of the port's build at 1M rows. Results in
`benchmarks/results/bindings_<rows>.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SPEC = {
    "name": "sales",
    "domain": "bench",
    "title": "Bench sales",
    "description": {"purpose": "A benchmark port.", "usage": "Benchmarks only.", "limitations": "None."},
    "owner": {"team": "bench", "steward": "bench@example.com"},
    "product_type": "aggregate",
    "status": "active",
    "business_capability": "Benchmarks",
    "classification": "internal",
    "access": {"mode": "open"},
    "access_policy": {},
    "distribution_rights": {"redistribute_unmodified": False, "redistribute_modified": False},
    "data_sharing_agreement": {"reference": "none", "terms": "Benchmark."},
    "support": {"channel": "#bench"},
    "slos": {"freshness": {"max_age": "24h"}},
    "transformation": {"kind": "sql"},
    "output_ports": [
        {
            "version": "2.0.0",
            "columns": [
                {"name": "sales_month", "type": "date", "nullable": False, "description": "Month."},
                {"name": "customer_id", "type": "string", "nullable": False, "description": "Customer."},
                {"name": "product_line", "type": "string", "nullable": False, "description": "Line."},
                {"name": "order_count", "type": "bigint", "nullable": False, "description": "Orders."},
                {"name": "units", "type": "bigint", "nullable": False, "description": "Units."},
                {
                    "name": "net_revenue_eur",
                    "type": "decimal",
                    "precision": 18,
                    "scale": 2,
                    "nullable": False,
                    "description": "Revenue.",
                },
            ],
            "primary_key": ["sales_month", "customer_id", "product_line"],
            "bindings": [{"kind": "iceberg"}, {"kind": "parquet", "partition_by": ["product_line"]}],
        }
    ],
}


def step(rows: int, repeat: int) -> dict:
    """The port's real Dagster step (candidate, audit, monitors, publish), alternated with and without
    its bindings on one instance; per run, the step's wall time and what its metadata says."""
    import dagster as dg

    from mesh_assets.assets.ports import PortContext
    from mesh_assets.assets.publish import port_asset
    from mesh_assets.infra import environment
    from mesh_assets.product.registry import Product
    from mesh_assets.product.spec import DataProductSpec

    env = environment.resolve()
    warehouse = env.warehouse()
    customers = max(1, rows // (24 * 4))
    with warehouse.session() as session:
        session.ensure_schema("bench_internal")
        session.execute(_ORDERS.format(customers=customers, orders=rows * 8))

    def build(context, session, candidate) -> None:
        session.create_table_as(candidate, _AGGREGATE)

    specs = {}
    for bound in (True, False):
        data = json.loads(json.dumps(SPEC))
        if not bound:
            data["output_ports"][0]["bindings"] = []
        spec = DataProductSpec.model_validate(data)
        product = Product(spec, ROOT / "benchmarks" / "bindings.py")
        where = PortContext(target="duckdb", database="warehouse")
        specs[bound] = port_asset(product, spec.output_ports[0], where, [], "sql", build, None)
    found: dict[str, list] = {"with": [], "without": [], "binding_seconds": []}
    with dg.DagsterInstance.ephemeral() as instance:
        for attempt in range(repeat + 1):
            for bound in (False, True):
                started = time.perf_counter()
                result = dg.materialize([specs[bound]], instance=instance, resources={"warehouse": warehouse})
                seconds = time.perf_counter() - started
                if attempt == 0:
                    continue  # warm-up: imports (pyiceberg's 1.4 s is paid once per step process)
                metadata = result.get_asset_materialization_events()[0].materialization.metadata
                found["with" if bound else "without"].append(seconds)
                if bound:
                    found["binding_seconds"].append(metadata["mesh/binding_seconds"].value)
            print(
                f"run {attempt}: step without bindings {found['without'][-1] if attempt else 0:.2f} s, "
                f"with {found['with'][-1] if attempt else 0:.2f} s"
            )
    return found


_ORDERS = (
    "CREATE OR REPLACE TABLE bench_internal.orders AS SELECT "
    "DATE '2025-01-01' + to_months(CAST(hash(i) % 24 AS INTEGER)) AS order_month, "
    "'C' || lpad(CAST(hash(i * 7) % {customers} AS VARCHAR), 6, '0') AS customer_id, "
    "['reagents', 'instruments', 'consumables', 'service'][CAST(1 + hash(i * 13) % 4 AS BIGINT)] "
    "AS product_line, CAST(1 + hash(i * 17) % 9 AS BIGINT) AS units, "
    "(hash(i * 19) % 100000) / 100.0 AS revenue FROM range({orders}) t(i)"
)
_AGGREGATE = (
    "SELECT CAST(order_month AS DATE) AS sales_month, customer_id, product_line, count(*) AS order_count, "
    "sum(units) AS units, CAST(sum(revenue) AS DECIMAL(18,2)) AS net_revenue_eur "
    "FROM bench_internal.orders GROUP BY ALL"
)


def _cpu() -> float:
    """CPU seconds this process has used so far, in every thread."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--step", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        print("STEP " + json.dumps(step(args.rows, args.repeat)))
        return

    from mesh_assets.assets.bindings import new_publish_id, write_bindings
    from mesh_assets.infra import environment
    from mesh_assets.infra.warehouse.duckdb import DuckDBWarehouse
    from mesh_assets.product import addressing
    from mesh_assets.product.spec import DataProductSpec

    spec = DataProductSpec.model_validate(SPEC)
    port = spec.output_ports[0]
    customers = max(1, args.rows // (24 * 4))
    orders = args.rows * 8
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = environment.resolve(environ={"MESH_ROOT": str(ROOT), "MESH_DATA_DIR": str(work / "data")})
        warehouse = DuckDBWarehouse(path=str(work / "warehouse.duckdb"))
        candidate = addressing.Relation("bench_internal", "sales_v2__candidate")
        staging = addressing.staging_relation("bench", "sales", 2)
        published = addressing.port_relation("bench", "sales", 2)
        with warehouse.session() as session:
            session.ensure_schema("bench_internal")
            session.ensure_schema("bench")
            # The orders the port aggregates: input, not measured.
            session.execute(_ORDERS.format(customers=customers, orders=orders))
        builds, binds, rows = [], [], 0
        build_cpu, bind_cpu = [], []
        for attempt in range(args.repeat):
            with warehouse.session() as session:
                started, cpu = time.perf_counter(), _cpu()
                session.create_table_as(candidate, _AGGREGATE)
                session.stage(staging, session.cast_to_contract(candidate, port.columns))
                session.publish(staging, published)
                session.unstage(staging)
                session.drop_table(candidate)
                builds.append(time.perf_counter() - started)
                build_cpu.append(_cpu() - cpu)
                rows = session.row_count(published)
                started, cpu = time.perf_counter(), _cpu()
                outcomes = write_bindings(session, spec, port, env, new_publish_id(f"bench{attempt:04d}"))
                binds.append(time.perf_counter() - started)
                bind_cpu.append(_cpu() - cpu)
            assert all(o.written and not o.parity for o in outcomes), [(o.kind, o.error) for o in outcomes]
            per_kind = {o.kind: o.seconds for o in outcomes}
            print(
                f"run {attempt + 1}: build {builds[-1]:.2f} s ({build_cpu[-1]:.2f} CPU s), bindings "
                f"{binds[-1]:.2f} s ({bind_cpu[-1]:.2f} CPU s) {per_kind}"
            )
    build, bind = statistics.median(builds), statistics.median(binds)
    with tempfile.TemporaryDirectory() as tmp:
        child = {k: v for k, v in os.environ.items() if not k.startswith(("MESH_", "DAGSTER_"))}
        child |= {"MESH_ROOT": str(ROOT), "MESH_DATA_DIR": str(Path(tmp) / "data")}
        out = subprocess.run(
            [sys.executable, __file__, "--step", "--rows", str(args.rows), "--repeat", str(args.repeat)],
            env=child,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        print("\n".join(line for line in out.splitlines() if line.startswith("run ")))
        steps = json.loads(next(line for line in out.splitlines() if line.startswith("STEP "))[5:])
    result = {
        "rows": rows,
        "orders": orders,
        "cpus": os.cpu_count(),
        "load_avg": os.getloadavg(),
        "build_seconds": [round(s, 3) for s in builds],
        "binding_seconds": [round(s, 3) for s in binds],
        "median_build": round(build, 3),
        "median_bindings": round(bind, 3),
        "ratio": round(bind / build, 3),
        # CPU seconds of the process (every thread, DuckDB's included): on a shared, loaded machine the
        # wall times wait for cores, the CPU spent does not.
        "build_cpu_seconds": [round(s, 3) for s in build_cpu],
        "binding_cpu_seconds": [round(s, 3) for s in bind_cpu],
        "cpu_ratio": round(statistics.median(bind_cpu) / statistics.median(build_cpu), 3),
        "step_without_bindings": [round(s, 3) for s in steps["without"]],
        "step_with_bindings": [round(s, 3) for s in steps["with"]],
        "step_binding_seconds": steps["binding_seconds"],
    }
    without, with_ = statistics.median(steps["without"]), statistics.median(steps["with"])
    in_step = statistics.median(steps["binding_seconds"])
    result |= {"step_ratio": round(in_step / without, 3), "step_delta_ratio": round(with_ / without - 1, 3)}
    print(f"{rows:,} rows: bindings {bind:.2f} s = {bind / build:.1%} of the port's build {build:.2f} s")
    print(f"in CPU seconds: bindings = {result['cpu_ratio']:.1%} of the port's build")
    print(
        f"the port's Dagster step: {without:.2f} s without bindings, {with_:.2f} s with "
        f"(+{with_ / without - 1:.1%}); bindings {in_step:.2f} s = {in_step / without:.1%} of the step"
    )
    out = ROOT / "benchmarks" / "results" / f"bindings_{args.rows}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
