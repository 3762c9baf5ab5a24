"""Contract checks at scale: the full SQL check suite of the `sales.orders` port, against two baselines
measured in the same run on the same batch:

- build: the time to build the port's batch from the landed ERP extract (type, dedupe, filter), i.e.
  the orders transformation;
- great-expectations on pandas: the same rules (schema aside) expressed as GX expectations and validated
  on a pandas DataFrame of the batch, including fetching it from the warehouse.

Usage: `python benchmarks/checks.py --scale 1000000 [--scale 10000000]`; results are written to
`benchmarks/results/checks_<scale>.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD_SQL = """
CREATE OR REPLACE TABLE sales_internal.orders_v1__candidate AS
WITH typed AS (
    SELECT CAST(order_id AS BIGINT) AS order_id, NULLIF(TRIM(customer_id), '') AS customer_id,
           CAST(order_ts AS TIMESTAMP) AS order_ts, TRIM(sku) AS sku,
           LOWER(TRIM(product_line)) AS product_line,
           CAST(quantity AS INTEGER) AS quantity, CAST(unit_price AS DECIMAL(12, 2)) AS unit_price,
           UPPER(TRIM(currency)) AS currency, LOWER(TRIM(status)) AS status,
           CAST(updated_at AS TIMESTAMP) AS updated_at
    FROM sales_internal.src_erp__orders
), latest AS (
    SELECT * EXCLUDE (rn) FROM (
        SELECT *, ROW_NUMBER() OVER (PARTITION BY order_id ORDER BY updated_at DESC, status DESC) AS rn
        FROM typed
    ) WHERE rn = 1
)
SELECT order_id, customer_id, order_ts, CAST(order_ts AS DATE) AS order_date, sku, product_line, quantity,
       unit_price, CAST(quantity * unit_price AS DECIMAL(14, 2)) AS amount, currency, status, updated_at
FROM latest WHERE quantity > 0 AND customer_id IS NOT NULL
"""


def gx_on_pandas(frame, port) -> float:
    """Seconds to validate the port's rules as GX expectations on a pandas DataFrame."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    started = time.perf_counter()
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas("bench")
        .add_dataframe_asset("orders")
        .add_batch_definition_whole_dataframe("all")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    suite = gx.ExpectationSuite(name="orders")
    e = gx.expectations
    suite.add_expectation(e.ExpectColumnValuesToBeUnique(column="order_id"))
    suite.add_expectation(e.ExpectTableRowCountToBeBetween(min_value=port.quality.row_count.min))
    for column in port.columns:
        if not column.nullable:
            suite.add_expectation(e.ExpectColumnValuesToNotBeNull(column=column.name))
    for rule in port.quality.rules:
        if rule.type == "range":
            suite.add_expectation(
                e.ExpectColumnValuesToBeBetween(column=rule.column, min_value=rule.min, max_value=rule.max)
            )
        elif rule.type == "accepted_values":
            suite.add_expectation(e.ExpectColumnValuesToBeInSet(column=rule.column, value_set=rule.values))
        elif rule.type == "expectation":
            suite.add_expectation(
                getattr(e, "".join(p.capitalize() for p in rule.expectation.split("_")))(**rule.kwargs)
            )
    result = batch.validate(suite)
    assert result.success is not None
    return time.perf_counter() - started


def main(scale: int) -> dict:
    """Build the orders batch at `scale`, then time the SQL suite and GX-on-pandas over it."""
    from mesh_assets.infra.warehouse.duckdb import DuckDBWarehouse
    from mesh_assets.product.addressing import Relation
    from mesh_assets.product.registry import load_registry
    from mesh_assets.quality.checks import AuditContext, audit, contract_rules
    from mesh_assets.selfservice.generate import generate_sources

    spec = load_registry(ROOT).products["sales.orders"].spec
    port = spec.output_ports[0]
    sql_only = port.model_copy(
        update={
            "quality": port.quality.model_copy(
                update={"rules": [r for r in port.quality.rules if r.type != "expectation"]}
            )
        }
    )
    batch = Relation("sales_internal", "orders_v1__candidate")
    with tempfile.TemporaryDirectory(prefix="mesh-checks-") as tmp:
        work = Path(tmp)
        generate_sources(work / "sources", scale=scale)
        warehouse = DuckDBWarehouse(path=str(work / "bench.duckdb"))
        with warehouse.session() as session:
            session.load_extract(
                Relation("sales_internal", "src_erp__orders"), work / "sources/erp/orders.csv", "csv"
            )
            started = time.perf_counter()
            session.execute(BUILD_SQL)
            build_s = time.perf_counter() - started
            rows = session.row_count(batch)

            context = AuditContext(references={})
            started = time.perf_counter()
            outcomes = audit(session, batch, sql_only, context, spec.slos.freshness.max_age)
            sql_s = time.perf_counter() - started
            started = time.perf_counter()
            full = audit(session, batch, port, context, spec.slos.freshness.max_age)
            full_s = time.perf_counter() - started

            started = time.perf_counter()
            frame = session.query_df(f"SELECT * FROM {batch.sql}")
            fetch_s = time.perf_counter() - started
        gx_s = gx_on_pandas(frame, port) + fetch_s
    result = {
        "scale_orders": scale,
        "batch_rows": rows,
        "rules_sql": len(outcomes),
        "rules_total": len(contract_rules(port, spec.slos.freshness.max_age)),
        "build_s": round(build_s, 2),
        "sql_suite_s": round(sql_s, 2),
        "full_suite_with_gx_rule_s": round(full_s, 2),
        "gx_on_pandas_same_rules_s": round(gx_s, 2),
        "ratio_sql_suite_to_build": round(sql_s / build_s, 3),
        "ratio_sql_suite_to_gx_pandas": round(sql_s / gx_s, 3),
        "ratio_full_suite_to_build": round(full_s / build_s, 3),
        "failed_rules": [o.rule for o in full if not o.passed],
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=int, action="append", default=None)
    args = parser.parse_args()
    for scale in args.scale or [1_000_000]:
        out = Path(__file__).parent / "results" / f"checks_{scale}.json"
        out.write_text(json.dumps(main(scale), indent=2) + "\n")
        print(f"recorded in {out}")
