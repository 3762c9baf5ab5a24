"""The environments of a mesh: create, list and drop them (`mesh env`), on DuckDB and on Snowflake.

The model (names, where each environment's storage lives, the prod guard) is `environment`; this module
manages the storage itself.

- DuckDB: an environment is its folder `<data>/envs/<name>/` (warehouse file, catalog, contracts, dbt
  artifacts, and `environment.json`: name, base, creation time) plus its Dagster instance
  `<root>/.dagster_home/<name>`. `create` makes both (empty: no copy of prod's data in this step);
  `drop` deletes both. `dev`'s folder is the data root, which holds every other environment: it is listed
  but never dropped (`make clean` resets it).
- Snowflake: an environment is the database `<SNOWFLAKE_DATABASE>_<NAME>`. `create` is a zero-copy clone of
  prod's database (`CREATE DATABASE IF NOT EXISTS ... CLONE ...`): privileges granted on prod's database
  itself are not cloned, privileges on its schemas and tables are, and masking and row access policies
  come along with the database (a clone's policies are copies, still attached to the same columns).
  `drop` is `DROP DATABASE`. The statements are built by `snowflake_statements` and run by `run_sql`.

`prod` is never dropped here: retiring production is not a cleanup.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mesh_assets.infra.environment import (
    DEFAULT_ENV,
    ENV_NAME,
    ENVS_DIR,
    MARKER,
    PROD,
    Environment,
    MeshEnvironmentError,
    check_env_name,
    resolve,
    snowflake_database_of,
)

# dev's folder is the data root: only these entries of it are dev's own (the rest is shared or other envs).
_DEV_OUTPUTS = ("mesh.duckdb", "mesh.duckdb.wal", "catalog", "contracts", "dbt", "scorecard.html", MARKER)
_AGE = re.compile(r"^(\d+)([mhdw])$")
_AGE_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

Clock = Callable[[], datetime]
SqlRunner = Callable[[Sequence[str]], list[list[tuple[Any, ...]]]]


@dataclass(frozen=True)
class EnvironmentInfo:
    """One environment as `mesh env list` shows it."""

    name: str
    target: str
    """`duckdb` or `snowflake`."""
    location: str
    """Its storage: the DuckDB file or the Snowflake database."""
    base: str | None
    """The environment it was created from (`prod` for Snowflake clones), if known."""
    created: datetime | None
    size_bytes: int | None
    """Bytes on disk (DuckDB: folder and Dagster instance; Snowflake: what its tables own); None: unknown."""

    def to_json(self) -> dict[str, Any]:
        """JSON-ready: the creation time as ISO 8601."""
        data = asdict(self)
        data["created"] = self.created.isoformat() if self.created else None
        return data


def _now() -> datetime:
    return datetime.now(UTC)


def parse_age(text: str) -> timedelta:
    """`7d`, `12h`, `30m`, `2w` as a duration; `MeshEnvironmentError` otherwise."""
    match = _AGE.match(text.strip())
    if not match:
        raise MeshEnvironmentError(
            f"--older-than {text!r} is not an age: use a number and m, h, d or w, e.g. 7d"
        )
    return timedelta(**{_AGE_UNITS[match.group(2)]: int(match.group(1))})


# --- DuckDB -------------------------------------------------------------------------------------------------


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def _duckdb_info(env: Environment) -> EnvironmentInfo:
    folder = env.data_dir
    marker = folder / MARKER
    meta: dict[str, Any] = {}
    if marker.is_file():
        try:
            meta = json.loads(marker.read_text())
        except ValueError:
            meta = {}
    created = datetime.fromisoformat(meta["created"]) if meta.get("created") else None
    if created is None and folder.exists():
        created = datetime.fromtimestamp(folder.stat().st_mtime, UTC)
    own = [folder / entry for entry in _DEV_OUTPUTS] if env.name == DEFAULT_ENV else [folder]
    return EnvironmentInfo(
        name=env.name,
        target="duckdb",
        location=str(env.duckdb_path),
        base=meta.get("base"),
        created=created,
        size_bytes=sum(_size(p) for p in own) + _size(env.dagster_home),
    )


def _write_marker(env: Environment, base: str | None, now: datetime) -> None:
    env.data_dir.mkdir(parents=True, exist_ok=True)
    marker = {"name": env.name, "base": base, "created": now.isoformat(), "target": env.target}
    (env.data_dir / MARKER).write_text(json.dumps(marker, indent=2) + "\n")


def _make_instance(env: Environment) -> None:
    """The environment's Dagster instance folder, set up from the repository's `dagster.yaml` as `make`."""
    env.dagster_home.mkdir(parents=True, exist_ok=True)
    config = env.root / "dagster.yaml"
    if config.exists() and not (env.dagster_home / "dagster.yaml").exists():
        shutil.copy(config, env.dagster_home / "dagster.yaml")


# --- Snowflake ----------------------------------------------------------------------------------------------


def snowflake_statements(action: str, name: str, base_database: str) -> list[str]:
    """The exact SQL `mesh env create/drop/list` runs on Snowflake for environment `name`.

    `base_database` is prod's (`SNOWFLAKE_DATABASE`). Create clones prod zero-copy; the database-level
    grants of prod are not cloned (grant them on the clone), grants on its schemas and tables are.
    """
    database = snowflake_database_of(base_database, name)
    if action == "create":
        return [f"CREATE DATABASE IF NOT EXISTS {database} CLONE {base_database}"]
    if action == "drop":
        return [f"DROP DATABASE IF EXISTS {database}"]
    if action == "list":
        # `_` is a wildcard here too: the names are filtered exactly afterwards.
        return [f"SHOW DATABASES LIKE '{base_database.upper()}_%'"]
    if action == "size":
        # Bytes the database's tables own: a fresh clone owns none (it shares prod's micro-partitions)
        # and grows with what the environment writes: what the environment costs.
        return [
            f"SELECT COALESCE(SUM(ACTIVE_BYTES + TIME_TRAVEL_BYTES + FAILSAFE_BYTES), 0) "
            f"FROM {database}.INFORMATION_SCHEMA.TABLE_STORAGE_METRICS WHERE NOT DELETED"
        ]
    raise ValueError(f"unknown action {action!r}")


def run_sql(statements: Sequence[str]) -> list[list[tuple[Any, ...]]]:
    """Run `statements` on Snowflake, signed in by the `SNOWFLAKE_*` variables; the rows of each."""
    from mesh_assets.infra.warehouse.snowflake_sign_in import SnowflakeSignIn, snowflake_connection

    results = []
    with (
        snowflake_connection(SnowflakeSignIn.from_environ(os.environ)) as connection,
        connection.cursor() as cursor,
    ):
        for statement in statements:
            cursor.execute(statement)
            results.append(list(cursor.fetchall()) if cursor.description else [])
    return results


def _base_database() -> str:
    return resolve().snowflake_base


def _snowflake_list(run: SqlRunner) -> list[EnvironmentInfo]:
    base = _base_database()
    (rows,) = run(snowflake_statements("list", "x", base))
    prefix = f"{base.upper()}_"
    found = []
    for row in rows:
        # SHOW DATABASES: created_on, name, ... (Snowflake's documented column order).
        created, db_name = row[0], str(row[1])
        if not db_name.upper().startswith(prefix):
            continue
        name = db_name[len(prefix) :].lower()
        if not ENV_NAME.match(name):
            continue
        when = created if isinstance(created, datetime) else None
        if when is not None and when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        found.append(
            EnvironmentInfo(name, "snowflake", db_name.upper(), PROD, when, _snowflake_size(run, name))
        )
    prod = EnvironmentInfo(PROD, "snowflake", base, None, None, None)
    return [prod, *sorted(found, key=lambda e: e.name)]


def _snowflake_size(run: SqlRunner, name: str) -> int | None:
    """Bytes environment `name`'s database owns; None when the role may not read its storage metrics."""
    try:
        (rows,) = run(snowflake_statements("size", name, _base_database()))
        return int(rows[0][0]) if rows and rows[0][0] is not None else None
    except (
        Exception
    ):  # a missing privilege or an emulator without the view: the size is unknown, said as such
        return None


# --- the verbs ----------------------------------------------------------------------------------------------


def create(
    name: str, base: str = PROD, *, clock: Clock = _now, run: SqlRunner | None = None
) -> EnvironmentInfo:
    """Create environment `name` (idempotent) from `base` (only `prod` today); its info."""
    name = check_env_name(name, source="NAME")
    if base != PROD:
        raise MeshEnvironmentError(f"--from {base!r}: environments are created from prod only (for now)")
    here = resolve()
    if name == PROD and not here.is_prod:
        raise MeshEnvironmentError("only a process with MESH_ENV=prod may create prod's storage")
    env = here.sibling(name)
    if here.target == "snowflake":
        if name == PROD:
            raise MeshEnvironmentError("prod is SNOWFLAKE_DATABASE itself: there is nothing to create")
        (run or run_sql)(snowflake_statements("create", name, _base_database()))
        # The local side of the environment (catalog, dbt artifacts, Dagster instance) and its marker,
        # whose base makes its builds defer to prod (`Environment.defers_to_prod`).
        if not (env.data_dir / MARKER).exists():
            _write_marker(env, base, clock())
        _make_instance(env)
        return EnvironmentInfo(name, "snowflake", env.database, PROD, clock(), None)
    if not (env.data_dir / MARKER).exists():
        _write_marker(env, None if name == PROD else base, clock())
    _make_instance(env)
    return _duckdb_info(env)


def list_environments(*, run: SqlRunner | None = None) -> list[EnvironmentInfo]:
    """Every environment of this data root (DuckDB) or Snowflake account (databases `<DB>_*`)."""
    here = resolve()
    if here.target == "snowflake":
        return _snowflake_list(run or run_sql)
    names = {DEFAULT_ENV}
    envs = here.data_root / ENVS_DIR
    if envs.is_dir():
        # Only folders named like an environment: anything else there is not `mesh env`'s to list or drop.
        names |= {p.name for p in envs.iterdir() if p.is_dir() and ENV_NAME.match(p.name)}
    return [_duckdb_info(here.sibling(n)) for n in sorted(names, key=lambda n: (n != DEFAULT_ENV, n))]


def drop(name: str, *, run: SqlRunner | None = None) -> EnvironmentInfo:
    """Delete environment `name`'s storage and Dagster instance; refuses `prod` (and `dev` on DuckDB)."""
    name = check_env_name(name, source="NAME")
    if name == PROD:
        raise MeshEnvironmentError(
            "refusing to drop prod: production is retired by hand, never by `mesh env`"
        )
    here = resolve()
    env = here.sibling(name)
    if here.target == "snowflake":
        (run or run_sql)(snowflake_statements("drop", name, _base_database()))
        return EnvironmentInfo(name, "snowflake", env.database, PROD, None, None)
    if name == DEFAULT_ENV:
        raise MeshEnvironmentError(
            "refusing to drop dev on DuckDB: its folder is the data root, which holds every environment "
            "(`make clean` resets it)"
        )
    info = _duckdb_info(env)
    if here.name == name:
        raise MeshEnvironmentError(f"refusing to drop {name}: it is this process's environment (MESH_ENV)")
    shutil.rmtree(env.data_dir, ignore_errors=True)
    shutil.rmtree(env.dagster_home, ignore_errors=True)
    return info


def drop_older_than(
    age: timedelta, *, clock: Clock = _now, run: SqlRunner | None = None
) -> list[EnvironmentInfo]:
    """Drop every environment created more than `age` ago, except prod and (on DuckDB) dev; the dropped."""
    cutoff = clock() - age
    here = resolve()
    keep = {PROD, here.name} | ({DEFAULT_ENV} if here.target == "duckdb" else set())
    dropped = []
    for info in list_environments(run=run):
        if info.name in keep or info.created is None or info.created > cutoff:
            continue
        drop(info.name, run=run)
        dropped.append(info)
    return dropped
