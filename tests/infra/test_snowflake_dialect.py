"""Every place the platform writes SQL differently for Snowflake has a test that fails if the Snowflake
branch is changed: by its exact statement where fakesnow cannot tell (fakesnow transpiles Snowflake SQL to
DuckDB, so DuckDB's own spelling would run there too), and by running it on fakesnow where it can.

Other Snowflake branches are covered where they live: grants' masking policies (tests/govern/test_grants.py),
the deferral's parameter style (tests/infra/test_deferral.py), data diff's qualified names
(tests/contracts/test_data_diff.py), expectations' string escapes (tests/quality/test_expectations_sql.py).
"""

from __future__ import annotations

import hashlib
from typing import Any

import fakesnow
import pytest

from mesh_assets.assets.builders.sql import for_dialect
from mesh_assets.infra.warehouse.snowflake import SnowflakeWarehouse
from mesh_assets.product.access import PiiHandling, protected_projection
from mesh_assets.product.addressing import Relation
from mesh_assets.product.quality import SqlRule
from mesh_assets.product.spec import OutputPort
from mesh_assets.quality.quality_rules import CustomSqlCheck

PORT = OutputPort.model_validate(
    {
        "version": "1.0.0",
        "description": "Contacts.",
        "primary_key": ["id"],
        "columns": [
            {"name": "id", "type": "integer", "description": "Key.", "nullable": False},
            {"name": "email", "type": "string", "description": "Contact email.", "pii": True},
        ],
    }
)


class RecordingSession:
    """A session in `dialect` that records what it is asked and answers every query with zero."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.sent: list[str] = []

    def query(self, sql: str, params: Any = None) -> list[tuple]:
        self.sent.append(sql)
        return [(0,)]

    def relations_read(self, sql: str) -> None:
        return None  # as Snowflake's session: the engine's binding is not read there


@pytest.mark.parametrize(
    ("dialect", "expected"),
    [
        ("snowflake", 'SHA2(CAST("email" AS VARCHAR), 256) AS "email"'),
        ("duckdb", 'SHA256(CAST("email" AS VARCHAR)) AS "email"'),
    ],
)
def test_hashed_pii_is_spelled_in_each_backends_own_sha_256(dialect: str, expected: str) -> None:
    items = protected_projection(PORT, {"email": PiiHandling.HASH}, dialect)
    assert items == ['"id"', expected]


def test_hashed_pii_on_snowflake_gives_the_sha_256_hex_digest_on_fakesnow() -> None:
    select = ", ".join(protected_projection(PORT, {"email": PiiHandling.HASH}, "snowflake"))
    warehouse = SnowflakeWarehouse(account="acct", user="u", password="p", warehouse="wh", database="MESH")
    with fakesnow.patch(), warehouse.session() as session:
        session.ensure_schema("crm")
        session.execute('CREATE TABLE "crm"."contacts" ("id" INTEGER, "email" VARCHAR)')
        session.execute("""INSERT INTO "crm"."contacts" VALUES (1, 'ana@lab.ch'), (2, NULL)""")
        rows = session.query(f'SELECT {select} FROM "crm"."contacts" ORDER BY "id"')
    assert rows == [(1, hashlib.sha256(b"ana@lab.ch").hexdigest()), (2, None)]


def test_a_sql_products_duckdb_sql_is_rewritten_in_snowflakes_dialect_and_left_as_is_on_duckdb() -> None:
    model = "SELECT strftime(\"taken_at\", '%Y') AS \"year\" FROM t WHERE \"n\" < list_value(1)[1]"
    assert for_dialect(model, RecordingSession("duckdb")) == model  # type: ignore[arg-type]
    assert for_dialect(model, RecordingSession("snowflake")) == (  # type: ignore[arg-type]
        "SELECT TO_CHAR(\"taken_at\", 'yyyy') AS \"year\" FROM t WHERE \"n\" < [1][0]"
    )


def test_a_custom_rule_written_for_duckdb_reaches_snowflake_in_snowflakes_dialect() -> None:
    rule = SqlRule(
        type="sql", name="bad_codes", query="SELECT * FROM {{ this }} WHERE epoch_ms(\"id\") < '2020-01-01'"
    )
    session = RecordingSession("snowflake")
    outcome = CustomSqlCheck(PORT, rule).judge(session, Relation("crm", "contacts"), {})  # type: ignore[arg-type]
    assert outcome.passed
    assert session.sent == [
        'SELECT COUNT(*) FROM (SELECT * FROM "crm"."contacts" '
        "WHERE TO_TIMESTAMP(\"id\", 3) < '2020-01-01') AS bad"
    ]


# --- PII ports read by another domain: the masked secure view on Snowflake (issue 27) -------------------


def test_on_snowflake_a_consumer_reads_a_pii_port_through_its_masked_secure_view(repo_root) -> None:
    from mesh_assets.assets.builders.sql import render
    from mesh_assets.product.registry import load_registry

    registry = load_registry(repo_root)
    consumer = registry.products["diagnostics.instrument_runs"]
    model = consumer.spec.port_model(consumer.spec.output_ports[0])

    on_snowflake = render(consumer, registry, model, "snowflake").sql
    on_duckdb = render(consumer, registry, model, "duckdb").sql

    # Its domain's role holds SELECT on the view only (govern/domain_roles.py), whose masking policies
    # protect contact_email and contact_phone; on DuckDB the platform masks in the query itself.
    assert '"customers"."customer_master_v1__protected"' in on_snowflake
    assert '"customers"."customer_master_v1")' not in on_snowflake
    assert "'***'" not in on_snowflake
    assert "'***'" in on_duckdb and '"customers"."customer_master_v1"' in on_duckdb
    assert "__protected" not in on_duckdb


@pytest.mark.parametrize(
    ("handling", "kept"),
    [
        (PiiHandling.MASK, ["contact_email", "contact_phone"]),
        (PiiHandling.HASH, ["contact_email", "contact_phone"]),
        (PiiHandling.REMOVE, []),
    ],
)
def test_on_snowflake_the_protected_read_leaves_masking_to_the_view_and_drops_removed_columns(
    repo_root, handling: PiiHandling, kept: list[str]
) -> None:
    from mesh_assets.product.access import protected_select
    from mesh_assets.product.registry import load_registry

    spec = load_registry(repo_root).products["customers.customer_master"].spec
    policy = spec.access_policy.model_copy(update={"pii_handling": handling})
    producer = spec.model_copy(update={"access_policy": policy})
    port = producer.output_ports[0]

    sql = protected_select(producer, port, None, "snowflake")

    expected = ", ".join('"' + c.name + '"' for c in port.columns if not c.pii or c.name in kept)
    assert sql == f'SELECT {expected} FROM "customers"."customer_master_v1__protected"'
