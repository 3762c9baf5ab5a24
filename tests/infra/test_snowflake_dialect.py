"""Every place the platform writes SQL differently for Snowflake has a test that fails if the Snowflake
branch is changed: by its exact statement where fakesnow cannot tell (fakesnow transpiles Snowflake SQL to
DuckDB, so DuckDB's own spelling would run there too), and by running it on fakesnow where it can.

Other Snowflake branches are covered where they live: grants' masking policies (tests/govern/test_grants.py),
the deferral's parameter style (tests/infra/test_deferral.py), data diff's qualified names
(tests/contracts/test_data_diff.py), expectations' string escapes (tests/build/test_expectations_sql.py).
"""

from __future__ import annotations

import hashlib
from typing import Any

import fakesnow
import pytest

from mesh_assets.build.builders.sql import for_dialect
from mesh_assets.build.quality_rules import CustomSqlCheck
from mesh_assets.infra.warehouse.snowflake import SnowflakeWarehouse
from mesh_assets.product.access import PiiHandling, protected_projection
from mesh_assets.product.addressing import Relation
from mesh_assets.product.quality import SqlRule
from mesh_assets.product.spec import OutputPort

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
