"""Contract rules generated from the spec: each bad input is caught, explained, and harmless.

Rules are exercised on a real DuckDB batch through `audit` (what every port's asset runs), and the
write-audit-publish path for real on the example mesh: a failing blocking rule leaves the published port
byte-for-byte unchanged while the asset check says why. The Snowflake dialect of the same SQL runs on
fakesnow where it supports it.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from mesh_assets.infra.warehouse.duckdb import DuckDBWarehouse
from mesh_assets.product.addressing import Relation
from mesh_assets.product.registry import load_registry
from mesh_assets.product.spec import OutputPort
from mesh_assets.quality.checks import AuditContext, audit

BATCH = Relation("lab_internal", "samples_v1__candidate")
PUBLISHED = Relation("lab", "samples_v1")
SITES = Relation("sites", "site_master_v1")


def port(**quality: object) -> OutputPort:
    """A small contract: lab samples with a PII column, an event time and the given quality block."""
    return OutputPort.model_validate(
        {
            "version": "1.0.0",
            "primary_key": ["sample_id"],
            "event_time": "taken_at",
            "columns": [
                {"name": "sample_id", "type": "integer", "nullable": False, "description": "Sample number."},
                {"name": "site_id", "type": "string", "description": "Site the sample came from."},
                {"name": "patient_email", "type": "string", "pii": True, "description": "Patient contact."},
                {"name": "assay", "type": "string", "description": "Assay run on the sample."},
                {"name": "result", "type": "double", "description": "Measured value."},
                {"name": "taken_at", "type": "timestamp", "description": "When the sample was taken."},
            ],
            "quality": quality,
        }
    )


ROWS = [
    (1, "S1", "ann@example.com", "HbA1c", 5.4, "2026-11-20 08:00:00"),
    (2, "S1", "bob@example.com", "TSH", 2.1, "2026-11-20 09:00:00"),
    (3, "S2", "cy@example.com", "CRP", 12.0, "2026-11-20 10:00:00"),
]
NOW = datetime(2026, 11, 20, 12, 0, 0)


@pytest.fixture
def session(tmp_path: Path) -> Iterator:
    warehouse = DuckDBWarehouse(path=str(tmp_path / "rules.duckdb"))
    with warehouse.session() as session:
        for schema in ["lab_internal", "lab", "sites"]:
            session.ensure_schema(schema)
        session.execute(f"CREATE TABLE {SITES.sql} (site_id VARCHAR)")
        session.execute(f"INSERT INTO {SITES.sql} VALUES ('S1'), ('S2')")
        yield session


def load(session, rows: list[tuple], relation: Relation = BATCH) -> None:
    session.execute(
        f"CREATE OR REPLACE TABLE {relation.sql} (sample_id INTEGER, site_id VARCHAR, patient_email VARCHAR, "
        "assay VARCHAR, result DOUBLE, taken_at TIMESTAMP)"
    )
    for row in rows:
        session.execute(f"INSERT INTO {relation.sql} VALUES (?, ?, ?, ?, ?, ?)", list(row))


def outcomes(session, contract: OutputPort, **context: object) -> dict:
    ctx = AuditContext(**{"now": NOW, "references": {"sites.site_master": SITES}, **context})
    return {o.rule: o for o in audit(session, BATCH, contract, ctx, "24h")}


def test_values_out_of_range_fail_with_the_count_and_masked_sample_rows(session) -> None:
    load(session, [*ROWS, (4, "S2", "dan@example.com", "CRP", -3.0, "2026-11-20 11:00:00")])
    result = outcomes(session, port(rules=[{"type": "range", "column": "result", "min": 0, "max": 100}]))

    check = result["range__result"]
    assert not check.passed and check.blocks
    assert check.failing_count == 1
    sample = check.details["sample_failing_rows"]
    assert sample == [
        {
            "sample_id": "4",
            "site_id": "S2",
            "patient_email": "***",
            "assay": "CRP",
            "result": "-3.0",
            "taken_at": "2026-11-20 11:00:00",
        }
    ]


def test_accepted_values_pattern_and_length_rules_name_what_broke(session) -> None:
    load(session, [*ROWS, (4, "s-3", "eve@example.com", "Glucose", 1.0, "2026-11-20 11:00:00")])
    result = outcomes(
        session,
        port(
            rules=[
                {"type": "accepted_values", "column": "assay", "values": ["HbA1c", "TSH", "CRP"]},
                {"type": "pattern", "column": "site_id", "regex": "^S[0-9]+$", "severity": "warn"},
                {"type": "length", "column": "site_id", "max": 2},
            ]
        ),
    )

    assert result["accepted_values__assay"].failing_count == 1
    assert "HbA1c, TSH, CRP" in result["accepted_values__assay"].description
    assert not result["pattern__site_id"].passed and not result["pattern__site_id"].blocks  # warn informs
    assert result["length__site_id"].failing_count == 1


def test_referential_integrity_against_another_port_reports_orphans(session) -> None:
    load(session, [*ROWS, (4, "S9", "fay@example.com", "TSH", 1.0, "2026-11-20 11:00:00")])
    result = outcomes(
        session,
        port(
            rules=[
                {
                    "type": "references",
                    "column": "site_id",
                    "port": "sites.site_master",
                    "to_column": "site_id",
                },
            ]
        ),
    )

    check = result["references__site_id"]
    assert check.failing_count == 1
    assert check.details["sample_failing_rows"][0]["site_id"] == "S9"


def test_a_custom_sql_rule_fails_with_the_rows_its_query_returns_pii_masked(session) -> None:
    load(session, [*ROWS, (4, "S1", "gus@example.com", "HbA1c", 40.0, "2026-11-20 11:00:00")])
    query = "select sample_id, patient_email, result from {{ this }} where assay = 'HbA1c' and result > 20"
    result = outcomes(session, port(rules=[{"type": "sql", "name": "hba1c_plausible", "query": query}]))

    check = result["hba1c_plausible"]
    assert check.failing_count == 1
    assert check.details["sample_failing_rows"] == [
        {"sample_id": "4", "patient_email": "***", "result": "40.0"}
    ]


def test_a_custom_sql_rule_reading_a_table_it_does_not_declare_fails_without_running(session) -> None:
    load(session, ROWS)
    session.execute("CREATE TABLE lab_internal.raw_patients AS SELECT 'eve@example.com' AS patient_email")
    # `query_table` hides the name from the lint; the engine's binding of the query names it.
    query = (
        "select * from {{ this }} where patient_email in "
        "(select patient_email from query_table('lab_internal.raw_patients'))"
    )
    referencing = "select * from {{ this }} b where site_id not in (select site_id from sites.site_master_v1)"
    rules = [
        {"type": "sql", "name": "peeks", "query": query},
        {"type": "sql", "name": "reads_a_declared_reference", "query": referencing},
    ]

    result = outcomes(session, port(rules=rules))

    check = result["peeks"]
    assert not check.passed and check.blocks
    assert check.observed == (
        "refused at run time: reads lab_internal.raw_patients, not the batch or a declared port"
    )
    assert "sample_failing_rows" not in check.details
    assert result["reads_a_declared_reference"].passed


def test_a_volume_collapse_against_the_previous_publish_blocks(session) -> None:
    load(
        session,
        ROWS * 1 + [(i, "S1", "x@example.com", "TSH", 1.0, "2026-11-20 08:00:00") for i in range(10, 20)],
        PUBLISHED,
    )
    load(session, ROWS[:2])
    result = outcomes(session, port(volume_change={"max_drop": 0.5}), published=PUBLISHED)

    check = result["volume_change"]
    assert check.blocks
    assert "13 -> 2" in check.observed
    assert check.details["previous_rows"] == 13


def test_stale_event_times_fail_timeliness_against_the_freshness_slo(session) -> None:
    load(session, ROWS)
    fresh = outcomes(session, port(timeliness={"severity": "error"}))
    stale = outcomes(session, port(timeliness={"severity": "error"}), now=NOW + timedelta(days=3))

    assert fresh["data_timeliness"].passed
    assert stale["data_timeliness"].blocks
    assert stale["data_timeliness"].details["data_age_hours"] == pytest.approx(74.0)


def test_great_expectations_rules_run_in_the_great_expectations_library(session) -> None:
    load(session, [*ROWS, (4, "S1", "hal@example.com", "TSH", 250.0, "2026-11-20 11:00:00")])
    result = outcomes(
        session,
        port(
            rules=[
                {
                    "type": "expectation",
                    "expectation": "expect_column_values_to_be_between",
                    "kwargs": {"column": "result", "min_value": 0, "max_value": 100},
                },
                {
                    "type": "expectation",
                    "expectation": "expect_column_values_to_not_be_null",
                    "kwargs": {"column": "assay"},
                    "severity": "warn",
                },
            ]
        ),
    )

    between = result["gx__column_values_to_be_between__result"]
    assert not between.passed and between.failing_count == 1
    assert between.details["sample_failing_values"] == ["250.0"]
    assert result["gx__column_values_to_not_be_null__assay"].passed


def test_all_aggregate_rules_share_one_scan_of_the_batch(session, monkeypatch: pytest.MonkeyPatch) -> None:
    load(session, ROWS)
    scans: list[str] = []
    original = session.query

    def counting(sql: str, params=None):
        if BATCH.sql in sql:
            scans.append(sql)
        return original(sql, params)

    monkeypatch.setattr(session, "query", counting)
    result = outcomes(
        session,
        port(
            rules=[
                {"type": "accepted_values", "column": "assay", "values": ["HbA1c", "TSH", "CRP"]},
                {"type": "range", "column": "result", "min": 0},
                {"type": "pattern", "column": "site_id", "regex": "^S"},
                {"type": "length", "column": "site_id", "max": 4},
            ]
        ),
        published=PUBLISHED,
    )

    assert all(o.passed for o in result.values())
    assert len(scans) == 1, scans


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("select * from {{ this }} where", "does not parse"),
        ("select * from {{ this }} where no_such_column > 1", "no_such_column"),
    ],
)
def test_a_custom_rule_that_does_not_parse_or_names_a_missing_column_is_refused_at_validate_time(
    mesh_copy: Path, query: str, message: str
) -> None:
    spec = mesh_copy / "domains/customers/products/customer_master/dataproduct.yaml"
    text = spec.read_text().replace(
        "      rules:\n",
        f'      rules:\n        - {{type: sql, name: broken, query: "{query}"}}\n',
        1,
    )
    spec.write_text(text)
    from mesh_assets.govern.validate import validate

    errors = validate(mesh_copy).errors

    assert any(message in e.message and e.field.endswith("quality.rules[0].query") for e in errors), errors


def test_a_rule_on_a_column_the_contract_does_not_declare_is_refused(mesh_copy: Path) -> None:
    spec = mesh_copy / "domains/customers/products/customer_master/dataproduct.yaml"
    spec.write_text(
        spec.read_text().replace("column: customer_type, values", "column: customer_kind, values", 1)
    )
    errors = load_registry(mesh_copy).errors

    assert any("customer_kind" in e.message for e in errors), errors


def test_an_unknown_great_expectation_is_refused_by_mesh_validate(mesh_copy: Path) -> None:
    from mesh_assets.govern.validate import validate

    spec = mesh_copy / "domains/customers/products/customer_master/dataproduct.yaml"
    spec.write_text(
        spec.read_text().replace("expect_column_value_lengths_to_equal", "expect_colum_lengths_to_equal")
    )
    report = validate(mesh_copy)

    assert any("no expectation 'expect_colum_lengths_to_equal'" in e.message for e in report.errors)


# --- write-audit-publish on the example mesh ---------------------------------------------------------------


def _fingerprint(database: Path) -> tuple:
    with duckdb.connect(str(database), read_only=True) as con:
        return con.execute(
            "SELECT COUNT(*), SUM(HASH(t))::VARCHAR FROM customers.customer_master_v1 AS t"
        ).fetchone()


def _materialize(mesh: Path) -> dg.ExecuteInProcessResult:
    from mesh_assets.assets.location import build_domain

    defs = build_domain("customers")
    return defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=dg.DagsterInstance.get(), raise_on_error=False
    )


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ("df.head(len(df) // 4)", "volume_change"),
        (
            "df.assign(customer_type=df.customer_type.where(df.index % 7 != 0, 'pharmacy'))",
            "accepted_values__customer_type",
        ),
        ("df.assign(country_code=df.country_code.str.lower())", "pattern__country_code"),
    ],
    ids=["volume-collapse", "value-not-accepted", "pattern-broken"],
)
def test_a_failing_rule_leaves_the_published_port_unchanged_and_the_check_says_why(
    mesh_copy: Path, isolated: Path, change: str, rule: str
) -> None:
    assert _materialize(mesh_copy).success
    before = _fingerprint(isolated / "mesh.duckdb")

    transform = mesh_copy / "domains/customers/products/customer_master/transform.py"
    transform.write_text(
        transform.read_text()
        + textwrap.dedent(f"""

        _shipped = customer_master_v1


        def customer_master_v1(inputs):
            df = _shipped(inputs)
            return {change}
        """)
    )
    for name in list(sys.modules):
        if name.startswith("mesh_product_customer_master"):
            del sys.modules[name]
    result = _materialize(mesh_copy)

    assert not result.success
    assert _fingerprint(isolated / "mesh.duckdb") == before
    evaluation = next(e for e in result.get_asset_check_evaluations() if e.check_name == rule)
    assert not evaluation.passed
    assert evaluation.metadata["failing_count"].value > 0
    failure = next(e for e in result.all_events if e.is_step_failure and "v1" in (e.step_key or ""))
    assert rule in str(failure.step_failure_data.user_failure_data.description)


def test_rule_sql_also_runs_in_snowflakes_dialect_on_fakesnow() -> None:
    import fakesnow

    from mesh_assets.infra.warehouse.snowflake import SnowflakeWarehouse

    with fakesnow.patch():
        warehouse = SnowflakeWarehouse(
            account="acct", user="u", password="p", warehouse="wh", database="MESH"
        )
        with warehouse.session() as session:
            session.ensure_schema("lab_internal")
            session.ensure_schema("sites")
            session.execute(f'CREATE TABLE {SITES.sql} ("site_id" VARCHAR)')
            session.execute(f"INSERT INTO {SITES.sql} VALUES ('S1'), ('S2')")
            load_snowflake(
                session, [*ROWS, (4, "S9", "ivy@example.com", "Glucose", -1.0, "2026-11-20 11:00:00")]
            )
            result = {
                o.rule: o
                for o in audit(
                    session,
                    BATCH,
                    port(
                        rules=[
                            {"type": "accepted_values", "column": "assay", "values": ["HbA1c", "TSH", "CRP"]},
                            {"type": "range", "column": "result", "min": 0},
                            {
                                "type": "references",
                                "column": "site_id",
                                "port": "sites.site_master",
                                "to_column": "site_id",
                            },
                        ]
                    ),
                    AuditContext(now=NOW, references={"sites.site_master": SITES}),
                    "24h",
                )
            }

    assert result["contract_schema"].passed, result["contract_schema"].details
    assert result["primary_key_unique_not_null"].passed
    assert result["accepted_values__assay"].failing_count == 1
    assert result["range__result"].failing_count == 1
    assert result["references__site_id"].failing_count == 1
    assert result["range__result"].details["sample_failing_rows"][0]["patient_email"] == "***"


def load_snowflake(session, rows: list[tuple]) -> None:
    # Quoted, like every identifier the platform writes: unquoted names would be upper-cased.
    session.execute(
        f'CREATE OR REPLACE TABLE {BATCH.sql} ("sample_id" INTEGER, "site_id" VARCHAR, '
        '"patient_email" VARCHAR, "assay" VARCHAR, "result" DOUBLE, "taken_at" TIMESTAMP_NTZ)'
    )
    for row in rows:
        session.execute(f"INSERT INTO {BATCH.sql} VALUES (%s, %s, %s, %s, %s, %s)", list(row))
