"""The one place the environment is resolved: which warehouse, where the repo and data live.

Nothing here runs at import time. Code locations call these functions when Dagster loads their
definitions; the dbt profile's targets use the same vocabulary (`local` on DuckDB, `prod` on Snowflake).
Secrets are passed to resources as `dg.EnvVar`, so definitions load without credentials.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from mesh_assets.infra.warehouse.base import Warehouse

if TYPE_CHECKING:
    from mesh_assets.product.registry import Product
    from mesh_assets.product.spec import OutputPort

TARGETS = {"duckdb": "local", "snowflake": "prod"}
"""Warehouse target -> the dbt target of the same environment."""


class MeshEnvironmentError(ValueError):
    """The environment asks for something the platform cannot do."""


@dataclass(frozen=True)
class Environment:
    """The resolved environment of this process."""

    target: str
    """`duckdb` (default, embedded) or `snowflake` (production)."""
    root: Path
    """The repository root: holds `domains/`, `dbt_projects/` and (by default) `data/`."""
    duckdb_path: Path
    """The local DuckDB file (used when target is duckdb)."""

    @property
    def dbt_target(self) -> str:
        """The dbt profile target for this environment."""
        return TARGETS[self.target]

    @property
    def database(self) -> str:
        """The database name in fully qualified table names."""
        if self.target == "snowflake":
            return os.environ.get("SNOWFLAKE_DATABASE", "MESH")
        return self.duckdb_path.stem

    @property
    def data_dir(self) -> Path:
        """Where the platform writes what it builds (`MESH_DATA_DIR`, default `<root>/data`)."""
        return data_dir_of(self.root)

    @property
    def catalog_dir(self) -> Path:
        """Where the static catalog is written (`MESH_CATALOG_DIR`, default `<data_dir>/catalog`)."""
        return Path(os.environ.get("MESH_CATALOG_DIR", self.data_dir / "catalog")).resolve()

    @property
    def sources_dir(self) -> Path:
        """Where source-system extracts are read from (`MESH_SOURCES_DIR`, default `<data_dir>/sources`)."""
        return Path(os.environ.get("MESH_SOURCES_DIR", self.data_dir / "sources"))

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

    def warehouse(self) -> Warehouse:
        """The `warehouse` resource for this environment."""
        if self.target == "snowflake":
            from mesh_assets.infra.warehouse.snowflake import SnowflakeWarehouse

            return SnowflakeWarehouse(
                account=dg.EnvVar("SNOWFLAKE_ACCOUNT"),
                user=dg.EnvVar("SNOWFLAKE_USER"),
                password=dg.EnvVar("SNOWFLAKE_PASSWORD"),
                role=dg.EnvVar("SNOWFLAKE_ROLE"),
                warehouse=dg.EnvVar("SNOWFLAKE_WAREHOUSE"),
                database=self.database,
            )
        from mesh_assets.infra.warehouse.duckdb import DuckDBWarehouse

        return DuckDBWarehouse(
            path=str(self.duckdb_path),
            lock_timeout_s=float(os.environ.get("MESH_DUCKDB_LOCK_TIMEOUT", "900")),
        )


def data_dir_of(root: Path) -> Path:
    """The folder for everything the platform builds (`MESH_DATA_DIR`, default `<root>/data`).

    Warehouse file, catalog, contracts and dbt run artifacts default to places under it, so pointing
    this one variable elsewhere (as the tests do) keeps every build output out of the repository.
    """
    return Path(os.environ.get("MESH_DATA_DIR", root / "data")).resolve()


def find_root(start: Path | None = None) -> Path:
    """The repository root: `MESH_ROOT`, else the nearest folder above `start` holding `domains/`."""
    if "MESH_ROOT" in os.environ:
        return Path(os.environ["MESH_ROOT"]).resolve()
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


def resolve(start: Path | None = None) -> Environment:
    """Resolve the environment from `MESH_TARGET`, `MESH_ROOT`, `MESH_DATA_DIR` and `MESH_DUCKDB_PATH`."""
    target = os.environ.get("MESH_TARGET", "duckdb").strip().lower()
    if target not in TARGETS:
        raise MeshEnvironmentError(
            f"MESH_TARGET={target!r} is not a target; use one of {sorted(TARGETS)} (default: duckdb)"
        )
    root = find_root(start)
    duckdb_path = Path(os.environ.get("MESH_DUCKDB_PATH", data_dir_of(root) / "mesh.duckdb")).resolve()
    return Environment(target=target, root=root, duckdb_path=duckdb_path)


def contract_path(product: Product, port: OutputPort, out_dir: Path | None = None) -> Path:
    """Where `mesh contract export` writes the port's contract (default `<data_dir>/contracts`)."""
    from mesh_assets.product.addressing import contract_file_name, repo_root_of

    if out_dir is None:
        out_dir = data_dir_of(repo_root_of(product)) / "contracts"
    return out_dir / contract_file_name(product.spec.domain, product.spec.name, port.major)
