"""The Snowflake backend: the production warehouse.

Relations keep the quoted lowercase identifiers of `Relation.sql` (`"sales"."orders_v1"`), exactly as on
DuckDB, so one spec addresses the same names on every backend. Snowflake folds *unquoted* identifiers to
uppercase, so every schema, table and column name this module emits is quoted, and catalog lookups
compare names exactly. The database name alone is left unquoted, as the connector and dbt treat it.

The connector is imported inside `session()`, never at module import: definitions load (and the DuckDB
environment runs) without `snowflake-connector-python` being imported, and secrets are passed in by the
environment module as `dg.EnvVar`s, never read here.

Statements are written in Snowflake's own syntax; the pure functions `put_sql` and `copy_into_sql` build
the bulk-load statements so they can be checked without a Snowflake account.
"""

from __future__ import annotations

import csv
import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import dagster as dg
from pydantic import Field

from mesh_assets.infra.warehouse.base import Warehouse, WarehouseSession
from mesh_assets.infra.warehouse.snowflake_names import DEFAULT_DATABASE, DEFAULT_ROLE_PREFIX
from mesh_assets.product.addressing import Relation
from mesh_assets.product.spec import Column, LogicalType
from mesh_assets.product.sql_text import qualified, quote_identifier
from mesh_assets.product.sql_types import fixed_point

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from snowflake.connector import SnowflakeConnection

EXTRACT_FORMATS = ("csv", "parquet")
"""File formats `load_extract` accepts."""

_TYPES = {
    LogicalType.STRING: "VARCHAR",
    LogicalType.INTEGER: "INTEGER",
    LogicalType.BIGINT: "BIGINT",
    LogicalType.DOUBLE: "DOUBLE",
    LogicalType.BOOLEAN: "BOOLEAN",
    LogicalType.DATE: "DATE",
    LogicalType.TIMESTAMP: "TIMESTAMP_NTZ",
}

# Canonical physical types (see `canonical_type`) a logical type accepts without losing values. Snowflake
# has a single fixed-point type, so INTEGER and BIGINT are both any NUMBER of scale 0 (checked in
# `type_matches`); TIMESTAMP accepts the zoned variants as the DuckDB backend accepts TIMESTAMPTZ.
_COMPATIBLE = {
    LogicalType.STRING: {"TEXT"},
    LogicalType.DOUBLE: {"FLOAT"},
    LogicalType.BOOLEAN: {"BOOLEAN"},
    LogicalType.DATE: {"DATE"},
    LogicalType.TIMESTAMP: {"TIMESTAMP_NTZ", "TIMESTAMP_LTZ", "TIMESTAMP_TZ"},
}

# Synonyms Snowflake accepts in DDL, folded onto the name information_schema reports for them.
_INTEGER_SYNONYMS = {"INT", "INTEGER", "BIGINT", "SMALLINT", "TINYINT", "BYTEINT"}
_FIXED_SYNONYMS = {"NUMBER", "DECIMAL", "NUMERIC"}
_FLOAT_SYNONYMS = {"FLOAT", "FLOAT4", "FLOAT8", "DOUBLE", "DOUBLE PRECISION", "REAL"}
_TEXT_SYNONYMS = {"TEXT", "VARCHAR", "STRING", "CHAR", "CHARACTER", "CHAR VARYING", "NCHAR", "NVARCHAR"}
_TIMESTAMP_SYNONYMS = {"TIMESTAMP", "DATETIME"}

# The database name goes into SQL unquoted (so `mesh` and `MESH` are one database, as for dbt's profile);
# anything that is not a plain identifier would need quoting, so it is refused instead.
_UNQUOTED_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


def domain_role(domain: str, prefix: str = DEFAULT_ROLE_PREFIX) -> str:
    """The role a domain's transformations run as on Snowflake, e.g. `MESH_DOMAIN_SALES` (`mesh grants`)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", f"{prefix}DOMAIN_{domain}").upper()


def canonical_type(physical: str) -> str:
    """The name Snowflake's information_schema reports for a type, with NUMBER's precision and scale.

    `BIGINT` → `NUMBER(38,0)`, `DECIMAL(18,2)` → `NUMBER(18,2)`, `VARCHAR(10)` → `TEXT`, `DOUBLE` →
    `FLOAT`, `TIMESTAMP` → `TIMESTAMP_NTZ` (Snowflake's default `TIMESTAMP_TYPE_MAPPING`), `TIMESTAMP_NTZ(9)`
    → `TIMESTAMP_NTZ`. Other names are returned uppercased.
    """
    text = " ".join(physical.upper().split())
    base = text.partition("(")[0]
    base = base.strip()
    if base in _INTEGER_SYNONYMS:
        return "NUMBER(38,0)"
    if base in _FIXED_SYNONYMS:
        precision, scale = fixed_point(text, "snowflake") or (None, None)
        # A bare NUMBER is NUMBER(38,0) in Snowflake.
        return f"NUMBER({38 if precision is None else precision},{scale or 0})"
    if base in _FLOAT_SYNONYMS:
        return "FLOAT"
    if base in _TEXT_SYNONYMS:
        return "TEXT"
    if base in _TIMESTAMP_SYNONYMS:
        return "TIMESTAMP_NTZ"
    return base


def put_sql(path: Path, stage_path: str, file_format: str) -> str:
    """The `PUT` that uploads a local extract to an internal stage (`stage_path` starts with `@`)."""
    # The connector parses the quoted path itself: backslashes and quotes are escaped as write_pandas does.
    location = path.resolve().as_posix().replace("\\", "\\\\").replace("'", "\\'")
    # Parquet is compressed internally; Snowflake stages it as is, and saying so keeps the staged name.
    compress = "TRUE" if file_format == "csv" else "FALSE"
    return f"PUT 'file://{location}' {stage_path} AUTO_COMPRESS = {compress}"


def copy_into_sql(
    relation: Relation, stage_path: str, file_format: str, columns: Sequence[tuple[str, str]]
) -> list[str]:
    """The statements that replace `relation` with the extract staged at `stage_path`.

    `columns` are the extract's `(name, Snowflake type)` pairs, in file order (see `extract_columns`).
    CSV loads by position with the header skipped, every column VARCHAR, an empty unquoted field as NULL and
    nothing else as NULL (as DuckDB's `read_csv(all_varchar = true)`). Parquet loads by column name.
    """
    if file_format not in EXTRACT_FORMATS:
        raise ValueError(f"unsupported extract format {file_format!r}; expected one of {EXTRACT_FORMATS}")
    if not columns:
        raise ValueError(f"the extract for {relation.dotted} has no columns")
    definition = ", ".join(f"{quote_identifier(name)} {physical}" for name, physical in columns)
    if file_format == "csv":
        options = (
            "FILE_FORMAT = (TYPE = CSV SKIP_HEADER = 1 FIELD_OPTIONALLY_ENCLOSED_BY = '\"' "
            "EMPTY_FIELD_AS_NULL = TRUE NULL_IF = ())"
        )
    else:
        # CASE_INSENSITIVE rather than CASE_SENSITIVE: the table is created from the file's own names, so
        # both match the same columns on Snowflake, and fakesnow only implements the insensitive mode.
        options = (
            "FILE_FORMAT = (TYPE = PARQUET USE_LOGICAL_TYPE = TRUE) MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE"
        )
    return [
        f"CREATE OR REPLACE TABLE {relation.sql} ({definition})",
        # ABORT_STATEMENT: a bad row fails the landing instead of being skipped silently. PURGE: the staged
        # copy is not needed once loaded.
        f"COPY INTO {relation.sql} FROM {stage_path} {options} ON_ERROR = ABORT_STATEMENT PURGE = TRUE",
    ]


def extract_columns(path: Path, file_format: str) -> list[tuple[str, str]]:
    """`(name, Snowflake type)` of each column of a CSV (header, all VARCHAR) or Parquet extract."""
    if file_format == "csv":
        # utf-8-sig: a byte-order mark must not become part of the first column's name.
        with path.open(newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), [])
        return [(name, "VARCHAR") for name in header]
    if file_format == "parquet":
        import pyarrow.parquet as pq

        # Parquet columns keep their types, as DuckDB's `read_parquet` keeps them.
        return [(field.name, _arrow_type(field.type)) for field in pq.read_schema(path)]
    raise ValueError(f"unsupported extract format {file_format!r}; expected one of {EXTRACT_FORMATS}")


def _arrow_type(arrow_type: pa.DataType) -> str:
    import pyarrow as pa

    if pa.types.is_boolean(arrow_type):
        return "BOOLEAN"
    if pa.types.is_integer(arrow_type):
        return "NUMBER(38,0)"
    if pa.types.is_floating(arrow_type):
        return "FLOAT"
    if pa.types.is_decimal(arrow_type):
        return f"NUMBER({min(arrow_type.precision, 38)},{arrow_type.scale})"
    if pa.types.is_date(arrow_type):
        return "DATE"
    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMP_TZ" if arrow_type.tz else "TIMESTAMP_NTZ"
    if pa.types.is_time(arrow_type):
        return "TIME"
    if pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type):
        return "BINARY"
    if pa.types.is_nested(arrow_type):
        return "VARIANT"
    return "VARCHAR"


def frame_column_type(series: pd.Series) -> str:
    """The Snowflake type `write_dataframe` gives a DataFrame column (pandas dtype, or values if object)."""
    import pandas as pd

    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return frame_column_type(series.astype(dtype.categories.dtype))
    if pd.api.types.is_bool_dtype(dtype):
        return "BOOLEAN"
    if pd.api.types.is_integer_dtype(dtype):
        return "NUMBER(38,0)"
    if pd.api.types.is_float_dtype(dtype):
        return "FLOAT"
    if isinstance(dtype, pd.DatetimeTZDtype):
        return "TIMESTAMP_TZ"
    if pd.api.types.is_datetime64_dtype(dtype):
        return "TIMESTAMP_NTZ"
    if pd.api.types.is_timedelta64_dtype(dtype):
        raise TypeError(f"column {series.name!r}: Snowflake has no interval type; convert it first")
    kind = pd.api.types.infer_dtype(series, skipna=True)
    if kind == "decimal":
        scales = [-value.as_tuple().exponent for value in series.dropna()]
        return f"NUMBER(38,{min(max([0, *scales]), 37)})"
    return {
        "boolean": "BOOLEAN",
        "integer": "NUMBER(38,0)",
        "floating": "FLOAT",
        "mixed-integer-float": "FLOAT",
        "date": "DATE",
        "datetime": "TIMESTAMP_NTZ",
        "datetime64": "TIMESTAMP_NTZ",
        "bytes": "BINARY",
    }.get(kind, "VARCHAR")


class SnowflakeSession(WarehouseSession):
    """A session on one Snowflake connection, with the mesh database in use.

    Parameters use the connector's default `pyformat` style: `%s` placeholders.
    """

    dialect = "snowflake"

    def __init__(self, connection: SnowflakeConnection) -> None:
        self.connection = connection

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, list(params) if params is not None else None)

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, list(params) if params is not None else None)
            return [tuple(row) for row in cursor.fetchall()]

    def query_df(self, sql: str) -> pd.DataFrame:
        from snowflake.connector.errors import NotSupportedError

        with self.connection.cursor() as cursor:
            cursor.execute(sql)
            try:
                return cursor.fetch_pandas_all()
            except NotSupportedError:
                # Raised before any row is consumed when the result is not Arrow (SHOW, DESCRIBE, ...).
                import pandas as pd

                return pd.DataFrame(cursor.fetchall(), columns=[c[0] for c in cursor.description])

    def write_dataframe(self, relation: Relation, df: pd.DataFrame) -> None:
        """Replace `relation` with the rows of `df`: the table is created here, rows bulk-load via a stage.

        The table is created by this method, not by `write_pandas(auto_create_table=True)`, for two reasons:
        column types are then decided by `frame_column_type` (deterministic, not Snowflake's schema
        inference), and fakesnow's stand-in for `write_pandas` ignores `quote_identifiers` when it creates
        tables (it makes `ORDERS`/`ID`, not `"orders"`/`"id"`), so the auto-created path could not be tested.
        Not atomic: a failed load leaves the table empty. Use it for staging and internal tables, and
        `publish` to replace a port.
        """
        if df.columns.empty:
            raise ValueError(f"cannot write a DataFrame without columns to {relation.dotted}")
        definition = ", ".join(
            f"{quote_identifier(str(name))} {frame_column_type(df[name])}" for name in df.columns
        )
        self.ensure_schema(relation.schema)
        self.execute(f"CREATE OR REPLACE TABLE {relation.sql} ({definition})")
        if df.empty:
            return
        # Imported as a module attribute at call time so fakesnow's patch of it takes effect in tests.
        from snowflake.connector import pandas_tools

        success, _, rows, _ = pandas_tools.write_pandas(
            self.connection,
            df,
            table_name=relation.name,
            schema=relation.schema,
            quote_identifiers=True,
            # Without Parquet logical types, pandas datetimes can load as invalid timestamps.
            use_logical_type=True,
        )
        if not success or rows != len(df):
            raise RuntimeError(f"write_pandas loaded {rows} of {len(df)} rows into {relation.dotted}")

    def load_extract(self, relation: Relation, path: Path, file_format: str) -> None:
        """Replace `relation` with a CSV or Parquet extract: `PUT` to a temporary stage, then `COPY INTO`.

        CSV columns land as VARCHAR (typing is the product's job); Parquet columns keep their types, as
        DuckDB's `read_parquet` keeps them. The stage has a unique name and is temporary, so Snowflake drops
        it when the session ends; the staged file itself is purged by the COPY. Not atomic: a failed COPY
        leaves the table empty. The upload is exercised only against real Snowflake (fakesnow's PUT copies
        into a local directory).
        """
        columns = extract_columns(path, file_format)
        self.ensure_schema(relation.schema)
        stage = qualified(relation.schema, "mesh_extract_" + uuid.uuid4().hex)
        self.execute(f"CREATE TEMPORARY STAGE {stage}")
        self.execute(put_sql(path, f"@{stage}", file_format))
        for statement in copy_into_sql(relation, f"@{stage}", file_format, columns):
            self.execute(statement)

    def columns(self, relation: Relation) -> list[tuple[str, str]]:
        """`(name, type)` of each column; NUMBER carries its precision and scale, e.g. `NUMBER(38,0)`.

        information_schema reports `NUMBER` for every integer and decimal, so without precision and scale
        an INTEGER contract could not be told from a DECIMAL(18,2) one. Other types are reported as Snowflake
        names them: `TEXT`, `FLOAT`, `BOOLEAN`, `DATE`, `TIMESTAMP_NTZ`, ...
        """
        # Exact comparison: our identifiers are quoted lowercase, stored as such in the catalog.
        rows = self.query(
            "SELECT column_name, data_type, numeric_precision, numeric_scale FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            [relation.schema, relation.name],
        )
        return [
            (name, f"NUMBER({precision},{scale})" if dtype == "NUMBER" else dtype)
            for name, dtype, precision, scale in rows
        ]

    def publish(self, staging: Relation, port: Relation) -> None:
        """Replace `port` with a zero-copy clone of the audited `staging` table, atomically.

        `CREATE OR REPLACE TABLE ... CLONE` is one metadata operation: readers of `port` see the previous
        batch or the new one, never a partial one. `COPY GRANTS` keeps the privileges granted on the port
        (consumers' access), which `ALTER TABLE ... SWAP WITH` would move onto the staging table instead.
        `staging` keeps the new batch, as on DuckDB.
        """
        self.ensure_schema(port.schema)
        self.execute(f"CREATE OR REPLACE TABLE {port.sql} CLONE {staging.sql} COPY GRANTS")

    def physical_type(self, column: Column) -> str:
        if column.type == LogicalType.DECIMAL:
            return f"NUMBER({column.precision},{column.scale})"
        return _TYPES[column.type]

    def type_matches(self, column: Column, physical: str) -> bool:
        """Whether `physical` (as `columns` reports it, or any Snowflake synonym) meets the contract.

        Same type family, as on DuckDB; the publish casts to the contract's exact type. INTEGER and BIGINT
        accept any NUMBER of scale 0 (Snowflake's integers are all NUMBER(38,0)); DECIMAL and DOUBLE accept
        any NUMBER (DOUBLE also FLOAT); STRING accepts TEXT; TIMESTAMP accepts TIMESTAMP_NTZ and the zoned
        variants. A FLOAT where an integer or decimal is promised is refused: it may have lost values.
        """
        canonical = canonical_type(physical)
        if column.type == LogicalType.DECIMAL:
            return canonical.startswith("NUMBER(")
        if column.type == LogicalType.DOUBLE and canonical.startswith("NUMBER("):
            return True
        if column.type in (LogicalType.INTEGER, LogicalType.BIGINT):
            return canonical.startswith("NUMBER(") and canonical.endswith(",0)")
        return canonical in _COMPATIBLE[column.type]


class SnowflakeWarehouse(dg.ConfigurableResource, Warehouse):
    """The production warehouse: a Snowflake account, all products in one database (default `MESH`)."""

    target: ClassVar[str] = "snowflake"

    account: str = Field(description="Snowflake account identifier, e.g. `myorg-myaccount`.")
    user: str = Field(description="User the platform connects as.")
    password: str | None = Field(default=None, description="Password of `user` (`SNOWFLAKE_PASSWORD`).")
    private_key: str | None = Field(
        default=None, description="PEM private key for key-pair sign-in (`SNOWFLAKE_PRIVATE_KEY`)."
    )
    private_key_path: str | None = Field(
        default=None,
        description="Path of a PEM private key for key-pair sign-in (`SNOWFLAKE_PRIVATE_KEY_PATH`).",
    )
    private_key_passphrase: str | None = Field(
        default=None, description="Passphrase of the private key, if it is encrypted."
    )
    authenticator: str | None = Field(
        default=None, description="Connector authenticator instead of a secret (`SNOWFLAKE_AUTHENTICATOR`)."
    )
    role: str | None = Field(default=None, description="Role to use; the user's default role if unset.")
    warehouse: str | None = Field(
        default=None, description="Virtual warehouse that runs the queries; the user's default if unset."
    )
    database: str = Field(
        default=DEFAULT_DATABASE,
        description="Database holding every domain's schemas; created if it does not exist.",
    )
    query_tag: str = Field(
        default="mesh", description="QUERY_TAG set on every session, to find the platform's queries."
    )
    prod_database: str | None = Field(
        default=None,
        description="Prod's database, read by fully qualified names for the ports this environment does "
        "not build (deferral); unset in prod and in environments that build everything.",
    )
    session_role: str | None = Field(
        default=None,
        description="The role every session switches to, with secondary roles off: a domain's own role "
        "(`MESH_DOMAIN_<DOMAIN>`) in its code location; unset for the platform's own work.",
    )

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # Runs launched by the daemon or the UI record their owner here, so a killed one is reclaimed.
        from mesh_assets.infra.reclaim import record_owner

        if context.instance is not None:
            record_owner(context.instance, context.run)

    @contextmanager
    def session(self) -> Iterator[SnowflakeSession]:
        """Connect, use (creating if needed) the mesh database, and close the connection afterwards."""
        from snowflake.connector.errors import ProgrammingError

        from mesh_assets.infra.warehouse.snowflake_sign_in import snowflake_connection

        if not _UNQUOTED_IDENTIFIER.match(self.database):
            raise ValueError(f"database {self.database!r} must be a plain identifier (letters, digits, _, $)")
        with snowflake_connection(self.sign_in_fields(), query_tag=self.query_tag) as connection:
            if self.session_role:
                _use_role(connection, self.session_role)
            with connection.cursor() as cursor:
                # Try USE first: creating needs an account-level privilege that production roles often lack,
                # and Snowflake checks it even when the database already exists.
                try:
                    cursor.execute(f"USE DATABASE {self.database}")
                except ProgrammingError:
                    cursor.execute(f"CREATE DATABASE IF NOT EXISTS {self.database}")
                    cursor.execute(f"USE DATABASE {self.database}")
            yield SnowflakeSession(connection)

    def sign_in_fields(self) -> dict[str, Any]:
        """The sign-in part of this resource's config (values as Dagster resolved them)."""
        from mesh_assets.infra.warehouse.snowflake_sign_in import VARIABLES

        return {name: getattr(self, name) for name in VARIABLES if getattr(self, name)}

    def prod_sql(self, relation: Relation) -> str | None:
        """`<PROD_DB>."schema"."name"` when deferring: the same account reads prod by its full name."""
        if not self.prod_database:
            return None
        return f"{self.prod_database}.{qualified(relation.schema, relation.name)}"

    def dbt_output_overrides(self) -> dict[str, Any]:
        """The environment's database: a dbt product of a non-prod environment builds into `<DB>_<ENV>`,
        never into prod; and the domain's role, as every other step of the domain. Sign-in stays the
        profile's `env_var(...)` references (the `SNOWFLAKE_*` variables `snowflake_sign_in` reads), so no
        secret is written to the invocation's profile."""
        overrides: dict[str, Any] = {"database": self.database}
        if self.session_role:
            overrides["role"] = self.session_role
        return overrides


def _use_role(connection: SnowflakeConnection, role: str) -> None:
    """Switch the session to `role` alone (no secondary roles), or say what to run to make it possible."""
    from snowflake.connector.errors import ProgrammingError

    if not re.fullmatch(r"[A-Z_][A-Z0-9_$]*", role):
        raise ValueError(f"role {role!r} must be a plain upper-case identifier")
    with connection.cursor() as cursor:
        try:
            cursor.execute(f"USE ROLE {role}")
            # Without this a user whose DEFAULT_SECONDARY_ROLES is ('ALL') would keep every other role's
            # privileges, and the domain could read what it did not declare.
            cursor.execute("USE SECONDARY ROLES NONE")
        except ProgrammingError as exc:
            raise RuntimeError(
                f"cannot run as the domain's role {role}: {exc.msg if hasattr(exc, 'msg') else exc}. Create "
                "and grant the domain roles with `mesh grants --target snowflake` (run its SQL as an admin), "
                "or run every domain as the platform role with MESH_SNOWFLAKE_DOMAIN_ROLES=off"
            ) from exc
