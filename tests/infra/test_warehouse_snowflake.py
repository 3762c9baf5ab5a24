"""The Snowflake backend, run for real against fakesnow (an in-process Snowflake emulator on DuckDB).

Offline: `fakesnow.patch()` replaces `snowflake.connector.connect` and `pandas_tools.write_pandas`, so the
production code runs unchanged against an in-memory emulator.

What runs for real on fakesnow: connecting and creating/using the database, `execute`/`query` with `%s`
parameters, `query_df` via `fetch_pandas_all`, `write_dataframe` (our CREATE TABLE, then the rows), the
whole `load_extract` path (CREATE TEMPORARY STAGE, PUT, COPY INTO, for CSV and Parquet), `columns` against
`information_schema.columns` (with its uppercase `TEXT`/`NUMBER`/`FLOAT`/`TIMESTAMP_NTZ` names),
`create_table_as` + `cast_to_contract`, and the `CREATE SCHEMA` that `publish` issues first.

What fakesnow cannot check:
- `publish`'s `CREATE OR REPLACE TABLE <port> CLONE <staging> COPY GRANTS`: fakesnow fails to parse it
  (its sqlglot keeps the statement as raw text because of the trailing COPY GRANTS, and DuckDB then
  rejects CLONE). Plain `CLONE` does run, but fakesnow's rewrite drops `OR REPLACE`, so a second publish
  would fail. The publish tests therefore record the exact statement issued, parse it with sqlglot minus
  the `COPY GRANTS` suffix (that clause is checked only as text, against Snowflake's documented CLONE
  grammar), and have the recorder carry out its effect with `CREATE OR REPLACE TABLE <port> AS SELECT *
  FROM <staging>` (test code only). So the rows and column types of the port and of staging after a
  publish are checked; that the clone is atomic and zero-copy, and that COPY GRANTS keeps the privileges
  granted on the port, are Snowflake's behaviour and are not.
- `write_pandas`: fakesnow substitutes its own, which inserts the frame directly; the real one's Parquet
  upload and `COPY INTO ... FROM (SELECT $1:"col" ...)` (and `use_logical_type`) are not exercised.
- `PUT` copies into a local directory instead of uploading (and gzips whatever it is given, where
  Snowflake leaves Parquet as is). `COPY INTO` is emulated with DuckDB's readers: the CSV options we use
  (SKIP_HEADER, FIELD_OPTIONALLY_ENCLOSED_BY, EMPTY_FIELD_AS_NULL, NULL_IF) are honoured, but Parquet
  options are ignored, so `USE_LOGICAL_TYPE` is unchecked and Parquet types are DuckDB's reading of the
  file. `MATCH_BY_COLUMN_NAME = CASE_SENSITIVE` does not work on fakesnow at all (it uppercases the
  table's column names), which is one reason the code uses CASE_INSENSITIVE.
- Authentication (password, key pair), roles, warehouses and QUERY_TAG: accepted but ignored; only the
  arguments passed to `connect` are checked. Creating the database without privilege, and the fallback of
  `query_df` for non-Arrow results (SHOW/DESCRIBE), are not reproducible.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import fakesnow
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import snowflake.connector
import sqlglot
import yaml
from snowflake.connector.errors import ProgrammingError
from sqlglot import exp

from mesh_assets.infra.warehouse.base import Warehouse, WarehouseSession
from mesh_assets.infra.warehouse.snowflake import (
    SnowflakeSession,
    SnowflakeWarehouse,
    canonical_type,
    copy_into_sql,
    extract_columns,
    frame_column_type,
    put_sql,
)
from mesh_assets.product.addressing import Relation
from mesh_assets.product.spec import Column, LogicalType

STAGING = Relation("sales_internal", "orders_v1__staging")
PORT = Relation("sales", "orders_v1")


def _warehouse(**overrides: Any) -> SnowflakeWarehouse:
    config: dict[str, Any] = {
        "account": "acct",
        "user": "u",
        "password": "p",
        "warehouse": "wh",
        "database": "MESH",
    }
    return SnowflakeWarehouse(**{**config, **overrides})


def _column(
    name: str, logical: LogicalType, precision: int | None = None, scale: int | None = None
) -> Column:
    return Column(name=name, type=logical, precision=precision, scale=scale, description=f"the {name}")


CONTRACT = [
    _column("order_id", LogicalType.INTEGER),
    _column("customer", LogicalType.STRING),
    _column("line_count", LogicalType.BIGINT),
    _column("weight", LogicalType.DOUBLE),
    _column("amount", LogicalType.DECIMAL, precision=18, scale=2),
    _column("paid", LogicalType.BOOLEAN),
    _column("order_date", LogicalType.DATE),
    _column("ordered_at", LogicalType.TIMESTAMP),
]


@pytest.fixture
def warehouse() -> SnowflakeWarehouse:
    return _warehouse()


@pytest.fixture
def session(warehouse: SnowflakeWarehouse) -> Iterator[SnowflakeSession]:
    with fakesnow.patch(), warehouse.session() as session:
        yield session


@pytest.fixture
def orders() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "order_id": [1, 2, 3],
            "customer": ["ana", None, "bo"],
            "amount": [10.5, 20.0, 0.25],
            "paid": [True, False, True],
            "order_date": [dt.date(2024, 1, 1), dt.date(2024, 1, 2), None],
            "ordered_at": pd.to_datetime(["2024-01-01 10:00", "2024-01-02 11:30", "2024-01-03 00:00"]),
        }
    )


COPY_GRANTS = " COPY GRANTS"


def _parse_clone(sql: str) -> exp.Create | None:
    """The `CREATE TABLE ... CLONE ... COPY GRANTS` in `sql`, parsed by sqlglot without its suffix.

    sqlglot's Snowflake dialect does not parse COPY GRANTS after CLONE (it keeps the whole statement as
    raw text), so the suffix is checked as text and the rest parsed.
    """
    if not sql.endswith(COPY_GRANTS):
        return None
    tree = sqlglot.parse_one(sql.removesuffix(COPY_GRANTS), read="snowflake")
    if isinstance(tree, exp.Create) and tree.args.get("clone") is not None:
        return tree
    return None


class Recorder:
    """Wraps a session's `execute` to record every statement, carrying out a CLONE itself (fakesnow can't)."""

    def __init__(self, session: SnowflakeSession) -> None:
        self.statements: list[str] = []
        self._execute: Callable[..., None] = session.execute

    def __call__(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self.statements.append(sql)
        clone = _parse_clone(sql)
        if clone is None:
            self._execute(sql, params)
            return
        port, staging = clone.this.sql(dialect="snowflake"), clone.args["clone"].this.sql(dialect="snowflake")
        # The clone's rows and columns, spelled out for fakesnow: a copy, neither zero-copy nor keeping
        # grants, and test code only.
        self._execute(f"CREATE OR REPLACE TABLE {port} AS SELECT * FROM {staging}")


@pytest.fixture
def recorder(session: SnowflakeSession, monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder(session)
    monkeypatch.setattr(session, "execute", recorder)
    return recorder


def _parse_snowflake(statements: Sequence[str]) -> list[exp.Expr]:
    """Parse with sqlglot's Snowflake dialect; a statement it only keeps as raw text fails the test."""
    parsed = [sqlglot.parse_one(statement, read="snowflake") for statement in statements]
    for statement, tree in zip(statements, parsed, strict=True):
        assert not isinstance(tree, exp.Command), f"sqlglot did not parse: {statement}"
    return parsed


# -- the resource ----------------------------------------------------------------------------------------


def test_module_does_not_import_snowflake_pandas_or_pyarrow_at_import_time() -> None:
    # Compared with what dagster and the interface already import, so only this module is judged.
    script = (
        "import sys, dagster, mesh_assets.infra.warehouse.base\n"
        "before = set(sys.modules)\n"
        "import mesh_assets.infra.warehouse.snowflake\n"
        "new = set(sys.modules) - before\n"
        "heavy = sorted(m for m in new if m.split('.')[0] in {'pandas', 'pyarrow'} "
        "or m.startswith('snowflake.'))\n"
        "assert 'snowflake.connector' not in sys.modules, 'snowflake.connector imported'\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_the_resource_implements_the_whole_interface(warehouse: SnowflakeWarehouse) -> None:
    assert isinstance(warehouse, Warehouse)
    assert warehouse.target == "snowflake"
    assert not SnowflakeSession.__abstractmethods__
    assert issubclass(SnowflakeSession, WarehouseSession)
    assert SnowflakeSession.dialect == "snowflake"


def test_each_dbt_invocation_profile_names_the_environments_database_and_no_secret(
    tmp_path: Path, repo_root: Path
) -> None:
    # The project's profile reads SNOWFLAKE_DATABASE, which names prod's: a non-prod dbt run gets its own
    # database from its invocation's profile, never by changing the process environment.
    warehouse = _warehouse(database="MESH_DEV", password="s3cret-value")
    before = dict(os.environ)

    folder = warehouse.dbt_profiles_dir(repo_root / "dbt_projects" / "sales", tmp_path / "profile")

    text = (folder / "profiles.yml").read_text()
    prod = yaml.safe_load(text)["sales"]["outputs"]["prod"]
    assert prod["database"] == "MESH_DEV"
    assert prod["password"] == "{{ env_var('SNOWFLAKE_PASSWORD', '') }}"
    assert prod["private_key_path"] == "{{ env_var('SNOWFLAKE_PRIVATE_KEY_PATH', '') }}"
    assert "s3cret-value" not in text
    assert dict(os.environ) == before


def test_secrets_can_be_passed_as_env_vars(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNOWFLAKE_PASSWORD", "from-env")
    monkeypatch.setenv("SNOWFLAKE_PRIVATE_KEY_PATH", "/keys/env.p8")
    warehouse = _warehouse(
        password=dg.EnvVar("SNOWFLAKE_PASSWORD"), private_key_path=dg.EnvVar("SNOWFLAKE_PRIVATE_KEY_PATH")
    )

    resolved = warehouse.process_config_and_initialize()

    assert (resolved.password, resolved.private_key_path) == ("from-env", "/keys/env.p8")


def test_session_connects_through_dagster_snowflake_with_password_role_warehouse_and_query_tag() -> None:
    with fakesnow.patch(), _warehouse(role="transformer", query_tag="mesh-prod").session():
        kwargs = snowflake.connector.connect.call_args.kwargs  # type: ignore[attr-defined]
    assert kwargs == {
        "account": "acct",
        "user": "u",
        "password": "p",
        "role": "transformer",
        "warehouse": "wh",
        "session_parameters": {"QUERY_TAG": "mesh-prod"},
        # dagster-snowflake's `SnowflakeResource` opened it: the one connection factory of the platform.
        "application": "DagsterLabs_Dagster",
    }


def _private_key(passphrase: bytes | None) -> tuple[str, bytes]:
    """A fresh RSA key as PEM text (encrypted with `passphrase`) and as the DER bytes the connector takes."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    encryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem.decode(), der


def test_session_signs_in_with_an_encrypted_key_file_and_its_passphrase(tmp_path: Path) -> None:
    pem, der = _private_key(b"s3cret")
    key_file = tmp_path / "mesh.p8"
    key_file.write_text(pem)
    warehouse = _warehouse(password=None, private_key_path=str(key_file), private_key_passphrase="s3cret")
    with fakesnow.patch(), warehouse.session():
        kwargs = snowflake.connector.connect.call_args.kwargs  # type: ignore[attr-defined]
    assert "password" not in kwargs
    assert kwargs["private_key"] == der


def test_session_signs_in_with_a_private_key_given_as_text() -> None:
    pem, der = _private_key(None)
    with fakesnow.patch(), _warehouse(password=None, private_key=pem).session():
        kwargs = snowflake.connector.connect.call_args.kwargs  # type: ignore[attr-defined]
    assert kwargs["private_key"] == der and "password" not in kwargs


def test_session_signs_in_with_an_authenticator_instead_of_a_secret() -> None:
    with fakesnow.patch(), _warehouse(password=None, authenticator="externalbrowser").session():
        kwargs = snowflake.connector.connect.call_args.kwargs  # type: ignore[attr-defined]
    assert kwargs["authenticator"] == "externalbrowser" and "password" not in kwargs


def test_session_creates_and_uses_the_mesh_database(session: SnowflakeSession) -> None:
    assert session.query("SELECT CURRENT_DATABASE()") == [("MESH",)]


def test_session_closes_its_connection_afterwards(warehouse: SnowflakeWarehouse) -> None:
    with fakesnow.patch():
        with warehouse.session() as session:
            connection = session.connection
        assert connection.is_closed()


def test_a_database_name_that_is_not_a_plain_identifier_is_refused() -> None:
    warehouse = _warehouse(database='MESH"; DROP DATABASE PROD; --')
    with fakesnow.patch(), pytest.raises(ValueError, match="plain identifier"), warehouse.session():
        pass


# -- reading and writing ---------------------------------------------------------------------------------


def test_query_binds_percent_s_parameters(session: SnowflakeSession) -> None:
    assert session.query("SELECT %s, %s", ["a", 2]) == [("a", 2)]


def test_written_frame_round_trips_through_columns_row_count_and_query(
    session: SnowflakeSession, orders: pd.DataFrame
) -> None:
    session.write_dataframe(STAGING, orders)

    assert session.columns(STAGING) == [
        ("order_id", "NUMBER(38,0)"),
        ("customer", "TEXT"),
        ("amount", "FLOAT"),
        ("paid", "BOOLEAN"),
        ("order_date", "DATE"),
        ("ordered_at", "TIMESTAMP_NTZ"),
    ]
    assert session.exists(STAGING)
    assert session.row_count(STAGING) == 3
    assert session.query(f'SELECT "customer" FROM {STAGING.sql} WHERE "order_id" = %s', [1]) == [("ana",)]
    frame = session.query_df(f'SELECT * FROM {STAGING.sql} ORDER BY "order_id"')
    assert list(frame.columns) == list(orders.columns)
    assert frame["customer"].tolist() == ["ana", None, "bo"]
    assert frame["ordered_at"].tolist() == orders["ordered_at"].tolist()


def test_writing_again_replaces_the_table(session: SnowflakeSession, orders: pd.DataFrame) -> None:
    session.write_dataframe(STAGING, orders)
    session.write_dataframe(STAGING, pd.DataFrame({"other": ["x"]}))

    assert session.columns(STAGING) == [("other", "TEXT")]
    assert session.query(f"SELECT * FROM {STAGING.sql}") == [("x",)]


def test_writing_an_empty_frame_leaves_an_empty_table_with_its_columns(session: SnowflakeSession) -> None:
    session.write_dataframe(STAGING, pd.DataFrame({"order_id": pd.Series([], dtype="int64")}))

    assert session.columns(STAGING) == [("order_id", "NUMBER(38,0)")]
    assert session.row_count(STAGING) == 0


def test_a_missing_relation_has_no_columns_and_does_not_exist(session: SnowflakeSession) -> None:
    assert session.columns(Relation("nowhere", "nothing")) == []
    assert not session.exists(Relation("nowhere", "nothing"))


def test_columns_are_matched_exactly_not_case_folded(session: SnowflakeSession) -> None:
    # An unquoted name is folded to uppercase by Snowflake, so it is a different table from ours.
    session.ensure_schema("sales")
    session.execute("CREATE TABLE sales.ORDERS_V1 (ID INTEGER)")

    assert session.columns(PORT) == []


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (pd.Series([1, None], dtype="Int64"), "NUMBER(38,0)"),
        (pd.Series([True, None], dtype="boolean"), "BOOLEAN"),
        (pd.Series(["a", "b"], dtype="category"), "VARCHAR"),
        (pd.Series(["a", None], dtype="string"), "VARCHAR"),
        (pd.Series([Decimal("1.5"), Decimal("2.25")]), "NUMBER(38,2)"),
        (pd.Series([dt.date(2024, 1, 1), None]), "DATE"),
        (pd.Series(pd.to_datetime(["2024-01-01"]).tz_localize("UTC")), "TIMESTAMP_TZ"),
        (pd.Series([None, None]), "VARCHAR"),
    ],
)
def test_frame_columns_get_the_snowflake_type_of_their_values(values: pd.Series, expected: str) -> None:
    assert frame_column_type(values) == expected


def test_a_timedelta_column_is_refused_rather_than_loaded_wrongly() -> None:
    with pytest.raises(TypeError, match="interval"):
        frame_column_type(pd.Series(pd.to_timedelta(["1h"]), name="wait"))


# -- contracts -------------------------------------------------------------------------------------------


def test_create_table_as_with_cast_to_contract_projects_and_casts_columns(session: SnowflakeSession) -> None:
    raw = pd.DataFrame(
        {
            "ordered_at": ["2024-01-01 10:00:00"],
            "order_date": ["2024-01-01"],
            "paid": ["true"],
            "amount": ["12.345"],
            "weight": ["1.5"],
            "line_count": ["3"],
            "customer": ["ana"],
            "order_id": ["7"],
            "not_in_contract": ["dropped"],
        }
    )
    session.write_dataframe(STAGING, raw)
    target = Relation("sales_internal", "orders__typed")

    session.create_table_as(target, session.cast_to_contract(STAGING, CONTRACT))

    columns = session.columns(target)
    assert [name for name, _ in columns] == [c.name for c in CONTRACT]
    assert [physical for _, physical in columns] == [
        "NUMBER(38,0)",
        "TEXT",
        "NUMBER(38,0)",
        "FLOAT",
        "NUMBER(18,2)",
        "BOOLEAN",
        "DATE",
        "TIMESTAMP_NTZ",
    ]
    assert all(session.type_matches(c, physical) for c, (_, physical) in zip(CONTRACT, columns, strict=True))
    assert session.query(f"SELECT * FROM {target.sql}") == [
        (7, "ana", 3, 1.5, Decimal("12.35"), True, dt.date(2024, 1, 1), dt.datetime(2024, 1, 1, 10, 0)),
    ]


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        (CONTRACT[0], "INTEGER"),
        (CONTRACT[1], "VARCHAR"),
        (CONTRACT[2], "BIGINT"),
        (CONTRACT[3], "DOUBLE"),
        (CONTRACT[4], "NUMBER(18,2)"),
        (CONTRACT[5], "BOOLEAN"),
        (CONTRACT[6], "DATE"),
        (CONTRACT[7], "TIMESTAMP_NTZ"),
    ],
)
def test_physical_type_maps_each_logical_type(
    session: SnowflakeSession, column: Column, expected: str
) -> None:
    assert session.physical_type(column) == expected
    # The DDL spelling is accepted too, not only what information_schema reports back.
    assert session.type_matches(column, expected)


@pytest.mark.parametrize(
    ("column", "reported"),
    [
        (CONTRACT[0], "NUMBER(38,0)"),
        (CONTRACT[0], "NUMBER(9,0)"),
        (CONTRACT[1], "TEXT"),
        (CONTRACT[1], "VARCHAR(16777216)"),
        (CONTRACT[2], "NUMBER(38,0)"),
        (CONTRACT[2], "NUMBER(9,0)"),
        (CONTRACT[3], "FLOAT"),
        (CONTRACT[3], "NUMBER(38,0)"),
        (CONTRACT[3], "NUMBER(18,2)"),
        (CONTRACT[4], "NUMBER(18,2)"),
        (CONTRACT[4], "NUMBER(38,0)"),
        (CONTRACT[4], "NUMBER(10,4)"),
        (CONTRACT[5], "BOOLEAN"),
        (CONTRACT[6], "DATE"),
        (CONTRACT[7], "TIMESTAMP_NTZ"),
        (CONTRACT[7], "TIMESTAMP_LTZ"),
        (CONTRACT[7], "TIMESTAMP_TZ"),
    ],
)
def test_type_matches_accepts_any_type_of_the_same_family_since_publish_casts_to_the_contract(
    session: SnowflakeSession, column: Column, reported: str
) -> None:
    assert session.type_matches(column, reported)


@pytest.mark.parametrize(
    ("column", "reported"),
    [
        (CONTRACT[0], "FLOAT"),
        (CONTRACT[0], "NUMBER(18,2)"),
        (CONTRACT[0], "TEXT"),
        (CONTRACT[1], "NUMBER(38,0)"),
        (CONTRACT[2], "FLOAT"),
        (CONTRACT[2], "NUMBER(38,2)"),
        (CONTRACT[3], "TEXT"),
        (CONTRACT[4], "FLOAT"),
        (CONTRACT[4], "TEXT"),
        (CONTRACT[5], "TEXT"),
        (CONTRACT[5], "NUMBER(38,0)"),
        (CONTRACT[6], "TIMESTAMP_NTZ"),
        (CONTRACT[7], "DATE"),
        (CONTRACT[7], "TEXT"),
    ],
)
def test_type_matches_refuses_a_type_that_could_lose_values(
    session: SnowflakeSession, column: Column, reported: str
) -> None:
    assert not session.type_matches(column, reported)


@pytest.mark.parametrize(
    ("physical", "canonical"),
    [
        ("bigint", "NUMBER(38,0)"),
        ("NUMBER", "NUMBER(38,0)"),
        ("decimal(18, 2)", "NUMBER(18,2)"),
        ("VARCHAR(16777216)", "TEXT"),
        ("double precision", "FLOAT"),
        ("TIMESTAMP", "TIMESTAMP_NTZ"),
        ("TIMESTAMP_NTZ(9)", "TIMESTAMP_NTZ"),
        ("variant", "VARIANT"),
    ],
)
def test_canonical_type_folds_synonyms_onto_information_schema_names(physical: str, canonical: str) -> None:
    assert canonical_type(physical) == canonical


# -- publishing ------------------------------------------------------------------------------------------


PUBLISH_CLONE = (
    'CREATE OR REPLACE TABLE "sales"."orders_v1" CLONE "sales_internal"."orders_v1__staging" COPY GRANTS'
)


def test_publish_creates_the_port_schema_then_clones_staging_onto_the_port_with_copy_grants(
    session: SnowflakeSession, recorder: Recorder, orders: pd.DataFrame
) -> None:
    session.write_dataframe(STAGING, orders)
    recorder.statements.clear()

    session.publish(STAGING, PORT)

    assert recorder.statements == ['CREATE SCHEMA IF NOT EXISTS "sales"', PUBLISH_CLONE]
    (schema,) = _parse_snowflake(recorder.statements[:1])
    assert isinstance(schema, exp.Create)
    assert schema.kind == "SCHEMA"
    clone = _parse_clone(PUBLISH_CLONE)
    assert clone is not None
    assert clone.kind == "TABLE"
    assert clone.args["replace"]
    assert clone.this.sql(dialect="snowflake") == PORT.sql
    assert clone.args["clone"].this.sql(dialect="snowflake") == STAGING.sql


def test_sqlglot_cannot_parse_copy_grants_after_clone_which_is_why_that_suffix_is_checked_as_text() -> None:
    # If this starts failing, sqlglot learnt the clause: parse PUBLISH_CLONE whole and drop _parse_clone.
    assert isinstance(sqlglot.parse_one(PUBLISH_CLONE, read="snowflake"), exp.Command)


def test_published_port_is_readable_with_the_new_rows_and_staging_keeps_them(
    session: SnowflakeSession, recorder: Recorder, orders: pd.DataFrame
) -> None:
    session.write_dataframe(STAGING, orders)

    session.publish(STAGING, PORT)

    assert session.columns(PORT) == session.columns(STAGING)
    assert session.row_count(PORT) == 3
    assert session.query(f'SELECT "customer" FROM {PORT.sql} WHERE "order_id" = %s', [1]) == [("ana",)]
    assert session.row_count(STAGING) == 3


def test_a_second_publish_replaces_the_port_and_staging_still_holds_the_new_batch(
    session: SnowflakeSession, recorder: Recorder, orders: pd.DataFrame
) -> None:
    session.write_dataframe(STAGING, orders)
    session.publish(STAGING, PORT)
    session.write_dataframe(STAGING, orders.tail(1))

    session.publish(STAGING, PORT)

    assert session.query(f'SELECT "order_id", "customer" FROM {PORT.sql}') == [(3, "bo")]
    assert session.query(f'SELECT "order_id", "customer" FROM {STAGING.sql}') == [(3, "bo")]


def test_fakesnow_cannot_run_the_clone_which_is_why_the_publish_tests_carry_it_out(
    session: SnowflakeSession, orders: pd.DataFrame
) -> None:
    # If this starts passing through, fakesnow learnt CLONE ... COPY GRANTS and the Recorder can go.
    session.write_dataframe(STAGING, orders)
    with pytest.raises(ProgrammingError, match="CLONE"):
        session.publish(STAGING, PORT)
    # The CREATE SCHEMA before the clone did run for real.
    schemata = "SELECT schema_name FROM information_schema.schemata WHERE schema_name = %s"
    assert session.query(schemata, [PORT.schema]) == [(PORT.schema,)]
    assert not session.exists(PORT)


# -- loading extracts ------------------------------------------------------------------------------------


def test_a_csv_extract_lands_as_text_with_empty_fields_as_null(
    session: SnowflakeSession, tmp_path: Path
) -> None:
    extract = tmp_path / "crm orders.csv"
    # \\N is not NULL (Snowflake's default NULL_IF is cleared), as in DuckDB's read_csv.
    extract.write_text('\ufeffid,customer,note\n1,ana,"a, quoted"\n2,,\n3,\\N,x\n', encoding="utf-8")
    relation = Relation("sales_internal", "src_crm__orders")

    session.load_extract(relation, extract, "csv")

    assert session.columns(relation) == [("id", "TEXT"), ("customer", "TEXT"), ("note", "TEXT")]
    assert session.query(f'SELECT * FROM {relation.sql} ORDER BY "id"') == [
        ("1", "ana", "a, quoted"),
        ("2", None, None),
        ("3", "\\N", "x"),
    ]


def test_loading_an_extract_again_replaces_the_rows(session: SnowflakeSession, tmp_path: Path) -> None:
    relation = Relation("sales_internal", "src_crm__orders")
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text("id\n1\n2\n")
    second.write_text("id\n3\n")

    session.load_extract(relation, first, "csv")
    session.load_extract(relation, second, "csv")

    assert session.query(f"SELECT * FROM {relation.sql}") == [("3",)]


def test_a_parquet_extract_keeps_its_column_types(session: SnowflakeSession, tmp_path: Path) -> None:
    extract = tmp_path / "orders.parquet"
    table = pa.table(
        {
            "id": pa.array([1, 2], pa.int64()),
            "customer": ["ana", None],
            "amount": pa.array([1.5, 2.25]),
            "order_date": pa.array([dt.date(2024, 1, 1), None]),
            "ordered_at": pa.array([dt.datetime(2024, 1, 1, 10), None], pa.timestamp("us")),
        }
    )
    pq.write_table(table, extract)
    relation = Relation("sales_internal", "src_erp__orders")

    session.load_extract(relation, extract, "parquet")

    assert session.columns(relation) == [
        ("id", "NUMBER(38,0)"),
        ("customer", "TEXT"),
        ("amount", "FLOAT"),
        ("order_date", "DATE"),
        ("ordered_at", "TIMESTAMP_NTZ"),
    ]
    assert session.query(f'SELECT * FROM {relation.sql} ORDER BY "id"') == [
        (1, "ana", 1.5, dt.date(2024, 1, 1), dt.datetime(2024, 1, 1, 10)),
        (2, None, 2.25, None, None),
    ]


def test_extract_columns_reads_the_csv_header_without_its_byte_order_mark(tmp_path: Path) -> None:
    extract = tmp_path / "x.csv"
    extract.write_text('\ufeffid,"full name"\n1,ana\n', encoding="utf-8")

    assert extract_columns(extract, "csv") == [("id", "VARCHAR"), ("full name", "VARCHAR")]


def test_an_unsupported_extract_format_is_refused(session: SnowflakeSession, tmp_path: Path) -> None:
    extract = tmp_path / "x.json"
    extract.write_text("{}")
    with pytest.raises(ValueError, match="unsupported extract format 'json'"):
        session.load_extract(Relation("sales_internal", "src_x"), extract, "json")


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_copy_into_sql_parses_as_snowflake_sql(file_format: str) -> None:
    relation = Relation("sales_internal", "src_crm__orders")
    columns = [("id", "VARCHAR"), ('odd "name"', "VARCHAR")]

    statements = copy_into_sql(relation, '@"sales_internal"."mesh_extract_1"', file_format, columns)

    create, copy = _parse_snowflake(statements)
    assert isinstance(create, exp.Create)
    assert [c.name for c in create.find_all(exp.ColumnDef)] == ["id", 'odd "name"']
    assert isinstance(copy, exp.Copy)
    assert copy.this.sql(dialect="snowflake") == relation.sql
    options = copy.sql(dialect="snowflake")
    if file_format == "csv":
        assert "TYPE=CSV SKIP_HEADER=1" in options
        assert "EMPTY_FIELD_AS_NULL=TRUE" in options
    else:
        assert "TYPE=PARQUET" in options
        assert "MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE" in options


def test_put_sql_parses_as_snowflake_sql_and_quotes_the_path(tmp_path: Path) -> None:
    extract = tmp_path / "it's here.csv"

    (put,) = _parse_snowflake([put_sql(extract, '@"s"."stage"', "csv")])

    assert isinstance(put, exp.Put)
    assert put.this.name == f"file://{extract.as_posix()}"


# --- each domain runs as its own role (issue 27) -----------------------------------------------------------


class _Recorder:
    """A connection that records each statement; `refuse` maps a statement prefix to the error it raises."""

    def __init__(self, refuse: dict[str, Exception] | None = None) -> None:
        self.sent: list[str] = []
        self.refuse = refuse or {}

    def cursor(self) -> _Recorder:
        return self

    def __enter__(self) -> _Recorder:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def execute(self, sql: str, params: Any = None) -> None:
        self.sent.append(sql)
        for prefix, error in self.refuse.items():
            if sql.startswith(prefix):
                raise error

    def close(self) -> None:
        return None


def _recording(monkeypatch: pytest.MonkeyPatch, recorder: _Recorder) -> None:
    from contextlib import contextmanager

    from mesh_assets.infra.warehouse import snowflake_sign_in

    @contextmanager
    def connection(*_: Any, **__: Any) -> Iterator[_Recorder]:
        yield recorder

    monkeypatch.setattr(snowflake_sign_in, "snowflake_connection", connection)


def test_a_domains_session_switches_to_its_own_role_with_secondary_roles_off_before_anything_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # fakesnow cannot parse USE SECONDARY ROLES: the exact statements are asserted instead.
    recorder = _Recorder()
    _recording(monkeypatch, recorder)

    with _warehouse(session_role="MESH_DOMAIN_SALES").session() as session:
        session.execute('SELECT 1 FROM "sales"."orders_v1"')

    assert recorder.sent == [
        "USE ROLE MESH_DOMAIN_SALES",
        "USE SECONDARY ROLES NONE",
        "USE DATABASE MESH",
        'SELECT 1 FROM "sales"."orders_v1"',
    ]


def test_the_platforms_own_session_keeps_the_sign_in_role(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = _Recorder()
    _recording(monkeypatch, recorder)

    with _warehouse().session():
        pass

    assert recorder.sent == ["USE DATABASE MESH"]


def test_a_domain_role_that_does_not_exist_yet_says_to_run_mesh_grants(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refused = ProgrammingError(msg="Role 'MESH_DOMAIN_SALES' specified in the connect string does not exist")
    _recording(monkeypatch, _Recorder({"USE ROLE": refused}))

    with (
        pytest.raises(RuntimeError, match=r"MESH_DOMAIN_SALES.*mesh grants --target snowflake"),
        _warehouse(session_role="MESH_DOMAIN_SALES").session(),
    ):
        pass


def test_each_domains_location_runs_as_its_role_and_dbt_too_unless_domain_roles_are_off(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from mesh_assets.infra import environment

    monkeypatch.setenv("MESH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MESH_TARGET", "snowflake")
    monkeypatch.delenv("MESH_SNOWFLAKE_DOMAIN_ROLES", raising=False)
    env = environment.resolve()

    sales = env.warehouse("sales")
    assert sales.session_role == "MESH_DOMAIN_SALES"  # type: ignore[attr-defined]
    assert sales.dbt_output_overrides()["role"] == "MESH_DOMAIN_SALES"
    assert env.warehouse().session_role is None  # type: ignore[attr-defined]  (governance, deferral)

    monkeypatch.setenv("MESH_SNOWFLAKE_DOMAIN_ROLES", "off")
    assert environment.resolve().warehouse("sales").session_role is None  # type: ignore[attr-defined]
    monkeypatch.setenv("MESH_ROLE_PREFIX", "DP_")
    monkeypatch.setenv("MESH_SNOWFLAKE_DOMAIN_ROLES", "on")
    assert environment.resolve().warehouse("sales").session_role == "DP_DOMAIN_SALES"  # type: ignore[attr-defined]


def test_a_domains_code_location_gets_the_domains_warehouse(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from mesh_assets.assets.location import build_domain

    monkeypatch.setenv("MESH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MESH_TARGET", "snowflake")

    defs = build_domain("customers")

    assert defs.resources["warehouse"].session_role == "MESH_DOMAIN_CUSTOMERS"
