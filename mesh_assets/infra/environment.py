"""The one place the environment is resolved: its name, which warehouse, where the repo and data live.

An environment is a named, isolated copy of the mesh (`MESH_ENV`, default `dev`): its own warehouse
storage, data folder and Dagster instance. `prod` is the only one that publishes where consumers read,
and only a process started with `MESH_ENV=prod` may write there (`resolve` refuses otherwise).
Storage layout (see docs/environments.md):

- DuckDB: `dev` keeps the data root itself (`<data>/mesh.duckdb`, `<data>/catalog`, ...: what `make run`
  always wrote); every other environment, `prod` included, is the folder `<data>/envs/<name>/`. The source
  extracts (`<data>/sources`) are input, shared by all environments.
- Snowflake: `prod` is `SNOWFLAKE_DATABASE` (default `MESH`); any other is `<SNOWFLAKE_DATABASE>_<NAME>`.
- Dagster instance: `<root>/.dagster_home/<name>` (what the Makefile exports as `DAGSTER_HOME`).

Nothing here runs at import time. Code locations call these functions when Dagster loads their
definitions; the dbt profile's targets use the same vocabulary (`local` on DuckDB, `prod` on Snowflake).
Secrets are passed to resources as `dg.EnvVar`, so definitions load without credentials.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from mesh_assets.infra.errors import MeshEnvironmentError
from mesh_assets.infra.warehouse.base import Warehouse
from mesh_assets.infra.warehouse.snowflake_names import DEFAULT_DATABASE, DEFAULT_ROLE_PREFIX

if TYPE_CHECKING:
    from mesh_assets.product.registry import Product
    from mesh_assets.product.spec import OutputPort

TARGETS = {"duckdb": "local", "snowflake": "prod"}
"""Warehouse target -> the dbt target of the same environment."""


DEFAULT_ENV = "dev"
"""The environment of a process that sets no `MESH_ENV`: one per working copy."""
PROD = "prod"
"""The only environment that publishes where consumers read."""
ENVS_DIR = "envs"
"""Under the data root: one folder per environment other than `dev`."""
MARKER = "environment.json"
"""In an environment's folder: its name, base and creation time (written by `mesh env create`)."""

# Lowercase identifier: it becomes a folder name and, uppercased, a Snowflake database-name suffix.
ENV_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
"""What an environment name looks like."""


class EnvironmentRefused(MeshEnvironmentError):
    """`MESH_ENV` is not a name, or the process would write to storage that is not its environment's."""


def check_env_name(name: str, source: str = "MESH_ENV") -> str:
    """`name`, lowercased, if it is an environment name; else `EnvironmentRefused` naming `source`, fix."""
    if not ENV_NAME.match(name.strip().lower()):
        raise EnvironmentRefused(
            f"{source}={name!r} is not an environment name: use a lowercase letter then letters, digits or _ "
            f"(at most 40), e.g. {source}=dev or {source}=feature_x (default: {DEFAULT_ENV})"
        )
    return name.strip().lower()


def env_name() -> str:
    """The environment this process runs in: `MESH_ENV`, default `dev` (case-insensitive)."""
    return check_env_name(os.environ.get("MESH_ENV", "").strip() or DEFAULT_ENV)


def env_dir_of(data_root: Path, name: str) -> Path:
    """The folder of environment `name` under the data root (`dev` is the data root itself)."""
    return data_root if name == DEFAULT_ENV else data_root / ENVS_DIR / name


def snowflake_database_of(base: str, name: str) -> str:
    """The Snowflake database of environment `name`: `base` for prod, else `<BASE>_<NAME>` (uppercase)."""
    return base if name == PROD else f"{base}_{name}".upper()


@dataclass(frozen=True)
class Environment:
    """The resolved environment of this process: every setting read once, by `resolve`, never again.

    Nothing here reads `os.environ`: a value that changed the process environment after resolution (a
    library, a test, a dbt step) cannot change which database or file this environment means.
    """

    target: str
    """`duckdb` (default, embedded) or `snowflake` (production)."""
    root: Path
    """The repository root: holds `domains/`, `dbt_projects/` and (by default) `data/`."""
    duckdb_path: Path
    """The local DuckDB file (used when target is duckdb)."""
    name: str = DEFAULT_ENV
    """The environment's name (`MESH_ENV`, default `dev`); only `prod` publishes where consumers read."""
    data_root_dir: Path | None = None
    """`MESH_DATA_DIR` as resolved; None means `<root>/data`."""
    snowflake_base: str = DEFAULT_DATABASE
    """`SNOWFLAKE_DATABASE`: prod's database, and the stem of every other environment's."""
    defer: str = ""
    """`MESH_DEFER` as given (`prod`, `none` or empty: from the environment's base)."""
    catalog_override: Path | None = None
    """`MESH_CATALOG_DIR`, if set."""
    sources_override: Path | None = None
    """`MESH_SOURCES_DIR`, if set."""
    dagster_home_override: Path | None = None
    """`DAGSTER_HOME`, if set (the Makefile exports the environment's own)."""
    duckdb_lock_timeout_s: float = 900.0
    """`MESH_DUCKDB_LOCK_TIMEOUT`: how long a writer waits for the DuckDB file before saying who holds it."""
    parallel_stages: int | None = None
    """`MESH_PARALLEL_STAGES`, if set: most stages built at once on Snowflake."""
    snowflake_sign_in: frozenset[str] = frozenset()
    """Which Snowflake sign-in fields have their variable set (values reach resources as `dg.EnvVar`)."""
    domain_roles: bool = True
    """`MESH_SNOWFLAKE_DOMAIN_ROLES` (default on): each domain's steps run as its own Snowflake role."""
    snowflake_warehouse: str | None = None
    """`SNOWFLAKE_WAREHOUSE`, if set: the virtual warehouse (not a secret; `mesh grants` names it)."""
    role_prefix: str = DEFAULT_ROLE_PREFIX
    """`MESH_ROLE_PREFIX`: prefix of every Snowflake role the mesh creates (`mesh grants`) and uses."""
    iceberg_catalog: str | None = None
    """`MESH_ICEBERG_CATALOG`, if set: the pyiceberg catalog (configured the pyiceberg way, e.g. a REST
    catalog) the Iceberg bindings are written to; unset, a SQLite catalog under `<data_dir>/bindings`."""

    @property
    def dbt_target(self) -> str:
        """The dbt profile target for this environment."""
        return TARGETS[self.target]

    @property
    def database(self) -> str:
        """The database name in fully qualified table names."""
        if self.target == "snowflake":
            return snowflake_database_of(self.snowflake_base, self.name)
        return self.duckdb_path.stem

    @property
    def is_prod(self) -> bool:
        """Whether this environment publishes where consumers read."""
        return self.name == PROD

    def sibling(self, name: str) -> Environment:
        """Environment `name` of the same repository, data root, target and settings as this one."""
        folder = env_dir_of(self.data_root, name)
        return replace(
            self,
            name=name,
            duckdb_path=folder / "mesh.duckdb",
            # Another environment's instance is its own folder, whatever this process's DAGSTER_HOME is.
            dagster_home_override=None,
        )

    @property
    def defers_to_prod(self) -> bool:
        """Whether ports this environment does not build are read from prod (dbt's `--defer`).

        A non-prod environment created from prod (`mesh env create`, `mesh ci`) defers; `dev` (one per
        working copy, built whole by `make run`) does not. `MESH_DEFER=prod|none` overrides either way.
        """
        if self.is_prod:
            return False
        chosen = self.defer.strip().lower()
        if chosen in {"prod", "none"}:
            return chosen == "prod"
        if chosen:
            raise MeshEnvironmentError(
                f"MESH_DEFER={chosen!r}: use prod or none (default: from the environment)"
            )
        return self.base == PROD

    @property
    def base(self) -> str | None:
        """The environment this one was created from (its `environment.json`), if any."""
        marker = self.data_dir / MARKER
        if not marker.is_file():
            return None
        import json

        try:
            return json.loads(marker.read_text()).get("base")
        except (ValueError, AttributeError):
            return None

    @property
    def prod_duckdb_path(self) -> Path:
        """Prod's DuckDB file, which a deferring environment attaches read-only."""
        return env_dir_of(self.data_root, PROD) / "mesh.duckdb"

    @property
    def prod_database(self) -> str:
        """Prod's Snowflake database (`SNOWFLAKE_DATABASE`), read by fully qualified names when deferring."""
        return self.snowflake_base

    @property
    def data_root(self) -> Path:
        """The folder of every environment's outputs (`MESH_DATA_DIR`, default `<root>/data`)."""
        return self.data_root_dir or (self.root / "data").resolve()

    @property
    def data_dir(self) -> Path:
        """Where this environment writes what it builds: the data root for `dev`, else `<root>/envs/<name>`.

        Holds its warehouse file, catalog, contracts and dbt run artifacts.
        """
        return env_dir_of(self.data_root, self.name)

    @property
    def dagster_home(self) -> Path:
        """This environment's Dagster instance folder: `DAGSTER_HOME` if set (the Makefile sets it), else
        `<root>/.dagster_home/<name>`."""
        return self.dagster_home_override or self.root / ".dagster_home" / self.name

    @property
    def catalog_dir(self) -> Path:
        """Where the static catalog is written (`MESH_CATALOG_DIR`, default `<data_dir>/catalog`)."""
        return (self.catalog_override or self.data_dir / "catalog").resolve()

    @property
    def sources_dir(self) -> Path:
        """Where source-system extracts are read from (`MESH_SOURCES_DIR`, default `<data root>/sources`).

        Input, not output: every environment reads the same extracts.
        """
        return self.sources_override or self.data_root / "sources"

    @property
    def contracts_dir(self) -> Path:
        """Where `mesh contract export` writes contracts by default: `<data_dir>/contracts`."""
        return self.data_dir / "contracts"

    def dbt_artifacts_dir(self, project: str) -> Path:
        """Where the dbt runs of `project` write their artifacts and logs: `<data_dir>/dbt/<project>`.

        Run output, like the warehouse file, so it lives with the data and never in the project folder,
        which keeps only what `mesh prepare` parses (`target/manifest.json`).
        """
        return self.data_dir / "dbt" / project

    def warehouse(self, domain: str | None = None) -> Warehouse:
        """The `warehouse` resource for this environment; for `domain`'s code location on Snowflake, one
        whose sessions run as the domain's own role (never the platform's) unless domain roles are off."""
        if self.target == "snowflake":
            from mesh_assets.infra.warehouse.snowflake import SnowflakeWarehouse, domain_role
            from mesh_assets.infra.warehouse.snowflake_sign_in import env_vars

            # Only the variables that were set become `dg.EnvVar`s: an unset one would fail the run's
            # resource set-up even where it is optional (a password when signing in by key pair).
            return SnowflakeWarehouse(
                **env_vars(self.snowflake_sign_in | {"account", "user"}),
                database=self.database,
                prod_database=self.prod_database if self.defers_to_prod else None,
                session_role=domain_role(domain, self.role_prefix) if domain and self.domain_roles else None,
            )
        from mesh_assets.infra.warehouse.duckdb import DuckDBWarehouse

        return DuckDBWarehouse(
            path=str(self.duckdb_path),
            prod_path=str(self.prod_duckdb_path) if self.defers_to_prod else None,
            lock_timeout_s=self.duckdb_lock_timeout_s,
        )


def data_dir_of(root: Path, environ: Mapping[str, str] | None = None) -> Path:
    """The folder for everything the platform builds (`MESH_DATA_DIR`, default `<root>/data`).

    Warehouse file, catalog, contracts and dbt run artifacts default to places under it, so pointing
    this one variable elsewhere (as the tests do) keeps every build output out of the repository.
    """
    environ = os.environ if environ is None else environ
    return Path(environ.get("MESH_DATA_DIR", root / "data")).resolve()


def find_root(start: Path | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """The repository root: `MESH_ROOT`, else the nearest folder above `start` holding `domains/`."""
    environ = os.environ if environ is None else environ
    if "MESH_ROOT" in environ:
        return Path(environ["MESH_ROOT"]).resolve()
    here = (start or Path.cwd()).resolve()
    for folder in [here, *here.parents]:
        if (folder / "domains").is_dir():
            return folder
    # Installed package next to its repo (editable install): fall back to the package's parent.
    package_root = Path(__file__).resolve().parents[2]
    if (package_root / "domains").is_dir():
        return package_root
    raise MeshEnvironmentError(
        f"no mesh repository found from {here}: expected a folder with 'domains/'. Run from the repo or "
        "set MESH_ROOT."
    )


def resolve(start: Path | None = None, environ: Mapping[str, str] | None = None) -> Environment:
    """The environment, every setting read from `environ` (default: this process's) now and only now.

    Reads `MESH_ENV`, `MESH_TARGET`, `MESH_ROOT`, `MESH_DATA_DIR`, `MESH_DUCKDB_PATH`, `MESH_DEFER`,
    `MESH_CATALOG_DIR`, `MESH_SOURCES_DIR`, `MESH_DUCKDB_LOCK_TIMEOUT`, `MESH_PARALLEL_STAGES`,
    `MESH_SNOWFLAKE_DOMAIN_ROLES`, `MESH_ROLE_PREFIX`, `MESH_ICEBERG_CATALOG`, `DAGSTER_HOME`,
    `SNOWFLAKE_DATABASE` and which Snowflake sign-in variables are set. Refuses
    (`MeshEnvironmentError`) a process that is not `prod` but would write to prod's storage.
    """
    from mesh_assets.infra.warehouse.snowflake_sign_in import sign_in_variables

    environ = dict(os.environ if environ is None else environ)
    name = check_env_name(environ.get("MESH_ENV", "").strip() or DEFAULT_ENV)
    target = environ.get("MESH_TARGET", "duckdb").strip().lower()
    if target not in TARGETS:
        raise MeshEnvironmentError(
            f"MESH_TARGET={target!r} is not a target; use one of {sorted(TARGETS)} (default: duckdb)"
        )
    root = find_root(start, environ)
    data_root = data_dir_of(root, environ)
    own_file = env_dir_of(data_root, name) / "mesh.duckdb"
    duckdb_path = Path(environ.get("MESH_DUCKDB_PATH", own_file)).resolve()
    env = Environment(
        target=target,
        name=name,
        root=root,
        duckdb_path=duckdb_path,
        data_root_dir=data_root,
        snowflake_base=environ.get("SNOWFLAKE_DATABASE") or DEFAULT_DATABASE,
        defer=environ.get("MESH_DEFER", ""),
        catalog_override=_path(environ, "MESH_CATALOG_DIR"),
        sources_override=_path(environ, "MESH_SOURCES_DIR"),
        dagster_home_override=_path(environ, "DAGSTER_HOME"),
        duckdb_lock_timeout_s=_number(environ, "MESH_DUCKDB_LOCK_TIMEOUT", 900.0),
        parallel_stages=int(_number(environ, "MESH_PARALLEL_STAGES", 0)) or None,
        snowflake_sign_in=sign_in_variables(environ),
        domain_roles=_switch(environ, "MESH_SNOWFLAKE_DOMAIN_ROLES", default=True),
        role_prefix=environ.get("MESH_ROLE_PREFIX", "").strip() or DEFAULT_ROLE_PREFIX,
        snowflake_warehouse=environ.get("SNOWFLAKE_WAREHOUSE", "").strip() or None,
        iceberg_catalog=environ.get("MESH_ICEBERG_CATALOG", "").strip() or None,
    )
    if not env.is_prod and target == "duckdb":
        _refuse_prod_file(env)
    return env


def _path(environ: Mapping[str, str], name: str) -> Path | None:
    value = environ.get(name, "").strip()
    return Path(value) if value else None


def _switch(environ: Mapping[str, str], name: str, default: bool) -> bool:
    value = environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in {"on", "true", "1", "yes"}:
        return True
    if value in {"off", "false", "0", "no"}:
        return False
    raise MeshEnvironmentError(f"{name}={value!r}: use on or off (default: {'on' if default else 'off'})")


def _number(environ: Mapping[str, str], name: str, default: float) -> float:
    value = environ.get(name, "").strip()
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise MeshEnvironmentError(f"{name}={value!r} is not a number: set a number or unset it") from None


def _refuse_prod_file(env: Environment) -> None:
    """Refuse a non-prod process whose DuckDB file is prod's: by place, or by the folder's marker."""
    prod_file = (env_dir_of(env.data_root, PROD) / "mesh.duckdb").resolve()
    marker = env.duckdb_path.parent / MARKER
    marked_prod = False
    if marker.is_file():
        import json

        try:
            marked_prod = json.loads(marker.read_text()).get("name") == PROD
        except (ValueError, AttributeError):
            marked_prod = False
    if env.duckdb_path == prod_file or marked_prod:
        raise EnvironmentRefused(
            f"MESH_ENV={env.name} but MESH_DUCKDB_PATH/MESH_DATA_DIR point at prod's warehouse file "
            f"{env.duckdb_path}: only MESH_ENV=prod may write there. Unset MESH_DUCKDB_PATH (each "
            "environment has its own file) or, to publish to prod, set MESH_ENV=prod explicitly."
        )


def contract_path(product: Product, port: OutputPort, out_dir: Path | None = None) -> Path:
    """Where `mesh contract export` writes the port's contract (default: the environment's `contracts/`)."""
    from mesh_assets.product.addressing import contract_file_name, repo_root_of

    if out_dir is None:
        out_dir = env_dir_of(data_dir_of(repo_root_of(product)), env_name()) / "contracts"
    return out_dir / contract_file_name(product.spec.domain, product.spec.name, port.major)
