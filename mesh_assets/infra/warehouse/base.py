"""The warehouse interface every backend implements, and the SQL the platform needs from it.

Assets talk to a `WarehouseSession`; they never know which backend they run on. Backends differ only in
how they connect, load files, map logical types and publish atomically.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from mesh_assets.product.addressing import Relation
from mesh_assets.product.sql_text import quote_literal

if TYPE_CHECKING:
    import pandas as pd

    from mesh_assets.product.spec import Column


class NotAQueryError(ValueError):
    """Product SQL that is not exactly one query (an `ATTACH`, a `COPY`, a second statement)."""


class WarehouseSession(abc.ABC):
    """One connection to the warehouse, used for the length of a step."""

    dialect: str
    """The sqlglot dialect of the backend's SQL."""

    @abc.abstractmethod
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        """Run a statement."""

    @abc.abstractmethod
    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        """Run a query and return its rows."""

    @abc.abstractmethod
    def query_df(self, sql: str) -> pd.DataFrame:
        """Run a query and return a DataFrame."""

    @abc.abstractmethod
    def write_dataframe(self, relation: Relation, df: pd.DataFrame) -> None:
        """Replace `relation` with the rows of `df`."""

    @abc.abstractmethod
    def load_extract(self, relation: Relation, path: Path, file_format: str) -> None:
        """Replace `relation` with the rows of a CSV or Parquet extract (all columns as text)."""

    @abc.abstractmethod
    def columns(self, relation: Relation) -> list[tuple[str, str]]:
        """`(name, physical type)` of each column of `relation`, in order; empty if it does not exist."""

    @abc.abstractmethod
    def publish(self, staging: Relation, port: Relation) -> None:
        """Atomically replace the published `port` with the audited `staging` batch."""

    @abc.abstractmethod
    def physical_type(self, column: Column) -> str:
        """The backend's type for a contract column."""

    @abc.abstractmethod
    def type_matches(self, column: Column, physical: str) -> bool:
        """Whether a physical column type satisfies the contract column's logical type."""

    def distinct_keys_sql(self, keys: Sequence[str]) -> str:
        """Aggregate counting distinct non-null key tuples (Snowflake and ANSI: multi-column DISTINCT)."""
        return "COUNT(DISTINCT " + ", ".join(f'"{k}"' for k in keys) + ")"

    def regex_sql(self, column: str, regex: str) -> str:
        """Predicate: the column contains a match of `regex` (anchor it for a full match)."""
        # Snowflake's REGEXP_LIKE matches the whole string; REGEXP_INSTR keeps search semantics, as DuckDB.
        return f"REGEXP_INSTR(\"{column}\", {quote_literal(regex)}) > 0"

    def relations_read(self, sql: str) -> set[tuple[str, str]] | None:
        """`(schema, table)` of every table a query would scan, as the engine binds it (views expanded);
        None when the backend cannot tell, so the caller's own checks are all there is."""
        return None

    def query_columns(self, sql: str) -> list[str]:
        """Column names a query returns (without fetching its rows)."""
        return [str(c) for c in self.query_df(f"SELECT * FROM ({sql}) AS q LIMIT 0").columns]

    def ensure_schema(self, schema: str) -> None:
        """Create `schema` if it does not exist."""
        self.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')

    def create_table_as(self, relation: Relation, select_sql: str) -> None:
        """Replace `relation` with the result of a query."""
        self.ensure_schema(relation.schema)
        self.execute(f"CREATE OR REPLACE TABLE {relation.sql} AS {select_sql}")

    def stage(self, staging: Relation, select_sql: str) -> None:
        """Prepare the audited batch (`select_sql`: the candidate cast onto its contract) as `staging`, which
        `publish` turns into the port. Here a table: the publish clones it."""
        self.create_table_as(staging, select_sql)

    def unstage(self, staging: Relation) -> None:
        """Remove what `stage` prepared, once the port is published."""
        self.drop_table(staging)

    def drop_table(self, relation: Relation) -> None:
        """Drop `relation` if it exists."""
        self.execute(f"DROP TABLE IF EXISTS {relation.sql}")

    def exists(self, relation: Relation) -> bool:
        """Whether `relation` exists."""
        return bool(self.columns(relation))

    def row_count(self, relation: Relation) -> int:
        """Number of rows in `relation`."""
        return int(self.query(f"SELECT COUNT(*) FROM {relation.sql}")[0][0])

    def cast_to_contract(self, source: Relation, columns: Sequence[Column]) -> str:
        """A SELECT that projects `source` onto the contract: its columns, in order, cast to their types."""
        projection = ",\n  ".join(
            f'CAST("{c.name}" AS {self.physical_type(c)}) AS "{c.name}"' for c in columns
        )
        return f"SELECT\n  {projection}\nFROM {source.sql}"


class Warehouse(abc.ABC):
    """A warehouse backend: opens sessions. Mixed into the `warehouse` resource of each environment.

    The same resource key serves every environment; only the implementation differs (see `environment`).
    """

    target: ClassVar[str]
    """`duckdb` or `snowflake`; also the dbt adapter and the asset kind."""

    @abc.abstractmethod
    def session(self) -> AbstractContextManager[WarehouseSession]:
        """Open a session for the length of a `with` block."""

    def isolated_session(self) -> AbstractContextManager[WarehouseSession]:
        """A session for product code: it cannot reach files, URLs or other databases.

        Product transformations and the checks that scan their batches run in one; landing extracts and
        the platform's own work use `session`. Backends that cannot isolate a session (Snowflake: its
        role's grants are the boundary) return an ordinary one.
        """
        return self.session()

    def dbt_output_overrides(self) -> dict[str, Any]:
        """What this environment decides in the dbt profile's output for this backend: where it writes.

        The project's `profiles.yml` keeps defaults for people running dbt by hand; the platform runs dbt
        on a copy with these keys set (`dbt_profiles_dir`), so it never passes settings through the
        process environment.
        """
        return {}

    def prod_sql(self, relation: Relation) -> str | None:
        """`relation` in prod, fully qualified as this environment's sessions read it; None unless deferring.

        A branch environment reads the ports it does not build from prod, read-only (dbt's `--defer`).
        """
        return None

    def dbt_profiles_dir(self, project_dir: Path, scratch: Path) -> Path:
        """The `--profiles-dir` for a dbt invocation: the project's profile with this environment's storage.

        Every output of this backend's type gets `dbt_output_overrides()`; the copy is written to `scratch`
        (the invocation's own folder). Secrets stay `env_var(...)` references: only the environment's own
        storage is written literally, so the copy holds nothing that is not already in the repository.
        """
        import yaml

        overrides = self.dbt_output_overrides()
        if not overrides:
            return project_dir
        profiles = yaml.safe_load((project_dir / "profiles.yml").read_text()) or {}
        for profile in profiles.values():
            if not isinstance(profile, dict):
                continue  # `config:` and other top-level keys
            for output in (profile.get("outputs") or {}).values():
                if output.get("type") == self.target:
                    output.update(overrides)
        scratch.mkdir(parents=True, exist_ok=True)
        (scratch / "profiles.yml").write_text(yaml.safe_dump(profiles, sort_keys=False))
        return scratch

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold whatever lock a writer outside the platform (the dbt CLI) needs; none by default."""
        yield
