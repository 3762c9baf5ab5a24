"""Write-audit-publish, for real: the customers location materialized on a private DuckDB file.

A port's batch is written as a candidate, audited by the contract rules in one scan, and only then cast
and swapped into the published table. A blocking failure keeps the last good data published and the bad
batch inspectable. Broken batches are produced by wrapping the shipped `transform.py` in a private copy of
the mesh (`mesh_copy`), so the real transformation runs first.
"""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from mesh_assets.assets.location import build_domain
from mesh_assets.infra import environment
from mesh_assets.infra.warehouse.duckdb import DuckDBSession
from mesh_assets.product.addressing import Relation
from mesh_assets.product.registry import load_registry
from mesh_assets.product.spec import Column, LogicalType, OutputPort, Quality, RowCount
from mesh_assets.quality.checks import PrimaryKeyRule, audit, contract_rules

PORT_KEY = dg.AssetKey(["customers", "customer_master", "v1"])
PORT = Relation("customers", "customer_master_v1")
CANDIDATE = Relation("customers_internal", "customer_master_v1__candidate")
# Every rule customer_master's contract generates (baseline, not-null, volume, timeliness, validity, GX).
_SHIPPED = load_registry(Path(__file__).resolve().parents[2]).products["customers.customer_master"].spec
RULES = [rule.name for rule in contract_rules(_SHIPPED.output_ports[0], _SHIPPED.slos.freshness.max_age)]
# Generated extracts are dated 2026-11-01: the warn-severity timeliness rule reports them as old data.
WARN_ONLY = {"data_timeliness", "pattern__contact_email"}
# The unit tests' ORDERS contract: the three baseline rules and the (first-publish) volume rule.
BASELINE_RULES = [
    "contract_schema",
    "primary_key_unique_not_null",
    "row_count_within_bounds",
    "volume_change",
]
TRANSFORM = Path("domains/customers/products/customer_master/transform.py")


# --- helpers ---------------------------------------------------------------------------------------------


def materialize_customers() -> dg.ExecuteInProcessResult:
    """One run of every asset of the customers location, on the test's private instance and warehouse."""
    defs = build_domain("customers")
    with dg.DagsterInstance.get() as instance:
        return defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, raise_on_error=False
        )


def warehouse_query(sql: str) -> list[tuple]:
    """Read the test's warehouse file directly, independently of the platform's session code."""
    with duckdb.connect(os.environ["MESH_DUCKDB_PATH"], read_only=True) as connection:
        return connection.execute(sql).fetchall()


def fingerprint(relation: Relation) -> tuple[int, str, str]:
    """Row count, checksum of the sorted keys, and checksum of every row's full content."""
    count, keys, rows = warehouse_query(
        "SELECT COUNT(*), md5(string_agg(customer_id, ',' ORDER BY customer_id)), "
        f"md5(string_agg(t::VARCHAR, '|' ORDER BY t::VARCHAR)) FROM {relation.sql} t"
    )[0]
    return count, keys, rows


def break_transform(root: Path, returned: str) -> None:
    """Wrap the copy's transform so the port function returns `returned` (an expression of `df`).

    A Dagster run normally executes in a fresh process; these runs share the test's process, so any
    copy of the module imported by an earlier run is forgotten and the edited file is loaded.
    """
    path = (root / TRANSFORM).resolve()
    path.write_text(
        path.read_text()
        + textwrap.dedent(
            f"""

            _shipped_customer_master_v1 = customer_master_v1


            def customer_master_v1(inputs):
                df = _shipped_customer_master_v1(inputs)
                return {returned}
            """
        )
    )
    for name, module in list(sys.modules.items()):
        if getattr(module, "__file__", None) and Path(module.__file__).resolve() == path:
            del sys.modules[name]


def check_evaluations(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations() if e.asset_key == PORT_KEY}
    # The learned monitors (tests/quality/test_monitors.py) run beside the contract rules.
    evaluations = {name: e for name, e in evaluations.items() if not name.startswith("monitor_")}
    assert sorted(evaluations) == sorted(RULES)
    return evaluations


def port_failure(result: dg.ExecuteInProcessResult) -> Any:
    """The user failure the port step raised (the run must have failed on that step alone)."""
    assert not result.success
    failures = result.get_step_failure_events()
    assert [f.step_key for f in failures] == ["customers__customer_master__v1"]
    data = failures[0].step_failure_data.user_failure_data
    assert data is not None, failures[0].step_failure_data.error
    return data


def port_materialized(result: dg.ExecuteInProcessResult) -> bool:
    return any(e.asset_key == PORT_KEY for e in result.get_asset_materialization_events())


@pytest.fixture
def published(mesh_copy: Path, isolated: Path) -> tuple[int, str, str]:
    """A first, good run of the copy's shipped transform; the fingerprint of what it published."""
    result = materialize_customers()
    assert result.success
    return fingerprint(PORT)


# --- a good run ------------------------------------------------------------------------------------------


def test_a_good_run_publishes_the_port_after_all_its_checks_pass(isolated: Path) -> None:
    result = materialize_customers()

    assert result.success
    rows = warehouse_query(f"SELECT COUNT(*) FROM {PORT.sql}")[0][0]
    assert rows > 0
    assert warehouse_query(f"SELECT COUNT(*), COUNT(DISTINCT customer_id) FROM {PORT.sql}") == [(rows, rows)]

    evaluations = check_evaluations(result)
    blocking = {name: e for name, e in evaluations.items() if name not in WARN_ONLY}
    assert all(e.passed for e in blocking.values())
    for evaluation in blocking.values():
        assert evaluation.severity == dg.AssetCheckSeverity.ERROR
        assert {"observed", "threshold", "failing_count", "rule"} <= set(evaluation.metadata)
        assert evaluation.metadata["failing_count"] == dg.MetadataValue.int(0)
    timeliness = evaluations["data_timeliness"]
    assert timeliness.severity == dg.AssetCheckSeverity.WARN
    assert not timeliness.passed  # the extracts' newest update is weeks before today
    assert "old" in timeliness.metadata["observed"].value
    assert evaluations["row_count_within_bounds"].metadata["observed"] == dg.MetadataValue.text(str(rows))
    assert evaluations["primary_key_unique_not_null"].metadata["observed"] == dg.MetadataValue.text(
        "0 duplicate, 0 null"
    )

    materialization = next(
        e.materialization for e in result.get_asset_materialization_events() if e.asset_key == PORT_KEY
    )
    assert materialization.metadata["dagster/row_count"] == dg.MetadataValue.int(rows)
    passed = sum(e.passed for e in evaluations.values())
    assert materialization.metadata["mesh/checks_passed"] == dg.MetadataValue.int(passed)
    assert materialization.metadata["mesh/checks_failed"] == dg.MetadataValue.int(len(evaluations) - passed)

    # Published as the contract says: its columns, in order, cast to their physical types.
    port = (
        load_registry(environment.resolve().root).products["customers.customer_master"].spec.output_ports[0]
    )
    physical = {
        LogicalType.STRING: "VARCHAR",
        LogicalType.TIMESTAMP: "TIMESTAMP",
        LogicalType.INTEGER: "INTEGER",
    }
    assert warehouse_query(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'customers' "
        "AND table_name = 'customer_master_v1' ORDER BY ordinal_position"
    ) == [(c.name, physical[c.type]) for c in port.columns]


# --- blocking failures never replace the last good data ----------------------------------------------------


def test_duplicate_keys_fail_the_run_and_keep_the_last_good_data_published(
    mesh_copy: Path, isolated: Path, published: tuple[int, str, str]
) -> None:
    first_ids = [row[0] for row in warehouse_query(f"SELECT customer_id FROM {PORT.sql} ORDER BY 1 LIMIT 3")]
    break_transform(mesh_copy, "pd.concat([df, df.head(3)], ignore_index=True)")

    result = materialize_customers()

    failure = port_failure(result)
    assert "primary_key_unique_not_null" in failure.description
    assert "keeps its last good data" in failure.description
    assert CANDIDATE.dotted in failure.description
    assert failure.metadata["failed_rules"] == dg.MetadataValue.json(["primary_key_unique_not_null"])
    assert not port_materialized(result)

    # The published port is exactly what the first run published.
    assert fingerprint(PORT) == published

    # The failed batch is kept for inspection, duplicates included.
    assert warehouse_query(f"SELECT COUNT(*) FROM {CANDIDATE.sql}")[0][0] == published[0] + 3
    assert warehouse_query(
        f"SELECT customer_id, COUNT(*) FROM {CANDIDATE.sql} GROUP BY 1 HAVING COUNT(*) > 1 ORDER BY 1"
    ) == [(customer_id, 2) for customer_id in first_ids]

    evaluations = check_evaluations(result)
    key_check = evaluations["primary_key_unique_not_null"]
    assert not key_check.passed
    assert key_check.metadata["duplicate_key_rows"] == dg.MetadataValue.int(3)
    assert key_check.metadata["null_key_rows"] == dg.MetadataValue.int(0)
    assert key_check.metadata["failing_count"] == dg.MetadataValue.int(3)
    assert key_check.metadata["observed"] == dg.MetadataValue.text("3 duplicate, 0 null")
    samples = key_check.metadata["sample_duplicate_keys"].data
    assert sorted(samples) == [[customer_id, "2"] for customer_id in first_ids]
    assert evaluations["contract_schema"].passed
    assert evaluations["row_count_within_bounds"].passed


@pytest.mark.parametrize(
    ("returned", "problem", "column"),
    [
        ("df.assign(loyalty_tier='gold')", "undeclared_columns", "loyalty_tier"),
        ("df.drop(columns=['city'])", "missing_columns", "city"),
        ("df.assign(crm_versions=df['crm_versions'].astype(str))", "type_mismatches", "crm_versions"),
    ],
    ids=["extra-column", "dropped-column", "wrong-type"],
)
def test_a_schema_violation_fails_contract_schema_and_leaves_the_other_rules_not_evaluated(
    mesh_copy: Path, isolated: Path, published: tuple[int, str, str], returned: str, problem: str, column: str
) -> None:
    break_transform(mesh_copy, returned)

    result = materialize_customers()

    failure = port_failure(result)
    assert "contract_schema" in failure.description
    assert not port_materialized(result)
    assert fingerprint(PORT) == published

    evaluations = check_evaluations(result)
    schema = evaluations["contract_schema"]
    assert not schema.passed
    details = {
        name: schema.metadata[name].data
        for name in ["missing_columns", "undeclared_columns", "type_mismatches"]
    }
    assert len(details.pop(problem)) == 1
    assert schema.metadata[problem].data[0].startswith(column)
    assert details == {name: [] for name in details}
    assert schema.metadata["failing_count"] == dg.MetadataValue.int(1)

    for rule in ["primary_key_unique_not_null", "row_count_within_bounds", "not_null_columns"]:
        skipped = evaluations[rule]
        assert not skipped.passed, f"{rule} must not report passed on a batch it did not evaluate"
        assert skipped.metadata["observed"] == dg.MetadataValue.text("not evaluated")
        assert skipped.metadata["skipped_because"] == dg.MetadataValue.text("contract_schema failed")


def test_a_row_count_below_the_contract_minimum_fails_row_count_within_bounds(
    mesh_copy: Path, isolated: Path, published: tuple[int, str, str]
) -> None:
    minimum = load_registry(mesh_copy).products["customers.customer_master"].spec.output_ports[0].quality
    too_few = minimum.row_count.min - 1
    break_transform(mesh_copy, f"df.head({too_few})")

    result = materialize_customers()

    failure = port_failure(result)
    assert "row_count_within_bounds" in failure.description
    assert "primary_key_unique_not_null" not in failure.description
    assert fingerprint(PORT) == published

    evaluations = check_evaluations(result)
    rows = evaluations["row_count_within_bounds"]
    assert not rows.passed
    assert rows.metadata["row_count"] == dg.MetadataValue.int(too_few)
    assert rows.metadata["threshold"] == dg.MetadataValue.text(f"[{minimum.row_count.min}, inf]")
    assert evaluations["contract_schema"].passed
    assert evaluations["primary_key_unique_not_null"].passed


# --- the audit itself, on small tables -------------------------------------------------------------------


class CountingSession(DuckDBSession):
    """A DuckDB session that records every query it runs."""

    def __init__(self, connection: duckdb.DuckDBPyConnection) -> None:
        super().__init__(connection)
        self.queries: list[str] = []

    def query(self, sql: str, params: Any = None) -> list[tuple]:
        self.queries.append(sql)
        return super().query(sql, params)

    def scans_of(self, relation: Relation) -> list[str]:
        return [sql for sql in self.queries if relation.sql in sql]


BATCH = Relation("shop_internal", "orders_v1__candidate")
ORDERS = OutputPort(
    version="1.0.0",
    columns=[
        Column(name="shop", type=LogicalType.STRING, nullable=False, description="Shop code."),
        Column(
            name="order_no", type=LogicalType.INTEGER, nullable=False, description="Order number in the shop."
        ),
        Column(name="amount", type=LogicalType.DOUBLE, description="Order amount."),
    ],
    primary_key=["shop", "order_no"],
    quality=Quality(row_count=RowCount(min=2, max=100)),
)


@pytest.fixture
def counting() -> Iterator[CountingSession]:
    connection = duckdb.connect()
    session = CountingSession(connection)
    session.ensure_schema(BATCH.schema)
    yield session
    connection.close()


def load_batch(session: CountingSession, rows: list[tuple[str | None, int | None, float]]) -> None:
    values = ", ".join("(" + ", ".join("NULL" if v is None else repr(v) for v in row) + ")" for row in rows)
    session.execute(f"CREATE OR REPLACE TABLE {BATCH.sql} (shop VARCHAR, order_no INTEGER, amount DOUBLE)")
    session.execute(f"INSERT INTO {BATCH.sql} VALUES {values}")
    session.queries.clear()


def test_the_audit_answers_every_rule_with_one_scan_of_the_batch(counting: CountingSession) -> None:
    load_batch(counting, [("a", 1, 1.0), ("a", 2, 2.0), ("b", 1, 3.0)])

    outcomes = audit(counting, BATCH, ORDERS)

    assert [o.rule for o in outcomes] == BASELINE_RULES
    assert all(o.passed for o in outcomes)
    scans = counting.scans_of(BATCH)
    assert len(scans) == 1
    assert scans[0].startswith("SELECT ") and "COUNT(*)" in scans[0]
    # The only other query reads the catalog, not the batch.
    assert all("information_schema" in sql for sql in counting.queries if sql not in scans)


def test_a_failing_key_rule_costs_one_extra_query_for_the_sample_keys(counting: CountingSession) -> None:
    load_batch(counting, [("a", 1, 1.0), ("a", 1, 2.0), ("b", 1, 3.0)])

    outcomes = {o.rule: o for o in audit(counting, BATCH, ORDERS)}

    assert not outcomes["primary_key_unique_not_null"].passed
    assert outcomes["primary_key_unique_not_null"].details["sample_duplicate_keys"] == [["a", "1", "2"]]
    assert len(counting.scans_of(BATCH)) == 2


def test_a_failed_schema_skips_the_scan_and_reports_the_data_rules_failed(counting: CountingSession) -> None:
    counting.execute(f"CREATE OR REPLACE TABLE {BATCH.sql} (shop VARCHAR, amount DOUBLE)")
    counting.queries.clear()

    outcomes = audit(counting, BATCH, ORDERS)

    assert [(o.rule, o.passed) for o in outcomes] == [(rule, False) for rule in BASELINE_RULES]
    assert outcomes[0].details["missing_columns"] == ["order_no"]
    assert all(o.observed == "not evaluated" and o.blocks for o in outcomes[1:])
    assert counting.scans_of(BATCH) == []


def test_the_row_count_rule_enforces_the_upper_bound_too(counting: CountingSession) -> None:
    load_batch(counting, [("a", n, 1.0) for n in range(101)])

    outcomes = {o.rule: o for o in audit(counting, BATCH, ORDERS)}

    assert not outcomes["row_count_within_bounds"].passed
    assert outcomes["row_count_within_bounds"].observed == 101
    assert outcomes["row_count_within_bounds"].threshold == "[2, 100]"


def test_an_empty_batch_fails_the_row_count_but_has_no_key_problems(counting: CountingSession) -> None:
    counting.execute(f"CREATE OR REPLACE TABLE {BATCH.sql} (shop VARCHAR, order_no INTEGER, amount DOUBLE)")

    outcomes = {o.rule: o for o in audit(counting, BATCH, ORDERS)}

    assert outcomes["primary_key_unique_not_null"].passed
    assert not outcomes["row_count_within_bounds"].passed
    assert outcomes["row_count_within_bounds"].observed == 0


def test_the_primary_key_rule_finds_duplicate_pairs_and_null_keys_of_a_composite_key(
    counting: CountingSession,
) -> None:
    load_batch(
        counting,
        [
            ("a", 1, 1.0),
            ("a", 1, 2.0),  # duplicate pair
            ("a", 1, 3.0),  # and again
            ("a", 2, 4.0),  # same shop, other order: fine
            ("b", 1, 5.0),  # same order number, other shop: fine
            (None, 7, 6.0),  # null key part
            (None, 7, 7.0),  # the same null pair is a null, not a duplicate
            ("c", None, 8.0),  # null key part
        ],
    )
    rule = PrimaryKeyRule(ORDERS)
    aggregates = rule.aggregates(counting)
    select = ", ".join(f"{sql} AS {alias}" for alias, sql in aggregates.items())
    values = dict(zip(aggregates, counting.query(f"SELECT {select} FROM {BATCH.sql}")[0], strict=True))

    outcome = rule.judge(counting, BATCH, values)

    assert not outcome.passed
    assert outcome.details["null_key_rows"] == 3
    assert outcome.details["duplicate_key_rows"] == 2
    assert outcome.failing_count == 5
    assert outcome.observed == "2 duplicate, 3 null"
    # The most repeated key first, with its count.
    assert outcome.details["sample_duplicate_keys"][0] == ["a", "1", "3"]


def test_sample_duplicate_keys_list_only_non_null_duplicates(counting: CountingSession) -> None:
    load_batch(counting, [("a", 1, 1.0), ("a", 1, 2.0), (None, 7, 3.0), (None, 7, 4.0), (None, 7, 5.0)])

    outcome = {o.rule: o for o in audit(counting, BATCH, ORDERS)}["primary_key_unique_not_null"]

    assert outcome.details["duplicate_key_rows"] == 1
    assert outcome.details["sample_duplicate_keys"] == [["a", "1", "2"]]


def test_a_composite_key_that_is_unique_and_not_null_passes(counting: CountingSession) -> None:
    load_batch(counting, [("a", 1, 1.0), ("a", 2, 1.0), ("b", 1, 1.0), ("b", 2, 1.0)])

    outcome = {o.rule: o for o in audit(counting, BATCH, ORDERS)}["primary_key_unique_not_null"]

    assert outcome.passed
    assert outcome.details == {"null_key_rows": 0, "duplicate_key_rows": 0}


def test_non_nullable_and_unique_columns_beyond_the_key_are_checked_in_the_same_scan(
    counting: CountingSession,
) -> None:
    from mesh_assets.product.spec import OutputPort

    port = OutputPort.model_validate(
        {
            "version": "1.0.0",
            "primary_key": ["shop", "order_no"],
            "columns": [
                {"name": "shop", "type": "string", "nullable": False, "description": "The shop."},
                {"name": "order_no", "type": "integer", "nullable": False, "description": "Order number."},
                {
                    "name": "amount",
                    "type": "double",
                    "nullable": False,
                    "unique": True,
                    "description": "Amount.",
                },
            ],
        }
    )
    load_batch(counting, [("a", 1, 1.0), ("a", 2, 1.0), ("b", 1, None)])

    outcomes = {o.rule: o for o in audit(counting, BATCH, port)}

    assert list(outcomes) == [*BASELINE_RULES[:3], "not_null_columns", "unique_columns", "volume_change"]
    assert not outcomes["not_null_columns"].passed
    assert outcomes["not_null_columns"].details["null_counts"] == {"amount": 1}
    assert not outcomes["unique_columns"].passed
    assert outcomes["unique_columns"].details["duplicate_counts"] == {"amount": 1}
    assert len(counting.scans_of(BATCH)) == 1
