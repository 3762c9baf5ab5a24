"""Where a contract says the data is: the deployment it is written for, its servers and physical types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mesh_assets.infra.warehouse.snowflake_names import DEFAULT_DATABASE
from mesh_assets.product.spec import Column, DataProductSpec, OutputPort

if TYPE_CHECKING:
    from mesh_assets.infra.environment import Environment


@dataclass(frozen=True)
class Deployment:
    """The warehouse the contract's physical types are written for, and the values behind its servers.

    Server fields use ODCS v3.2.0 variables (`${VAR:-default}`) with the platform's own environment
    variables, so one contract serves every environment and holds no account-specific value.
    """

    target: str = "duckdb"
    """`duckdb` or `snowflake`: whose physical types `physicalType` shows."""
    duckdb_path: str = "data/mesh.duckdb"
    """The DuckDB file as shown to people (relative to the repository when inside it)."""
    snowflake_database: str = DEFAULT_DATABASE
    """The Snowflake database (default of `SnowflakeWarehouse`)."""
    environment: str = "dev"
    """The environment the contract is exported from (`MESH_ENV`): a branch's servers are its own."""
    branch_database: str | None = None
    """On Snowflake, a non-prod environment's own database (`<DB>_<ENV>`), served beside production's."""
    data_dir: str = "data"
    """The environment's data folder as shown to people: where its Parquet and Iceberg bindings are."""
    iceberg_catalog: str | None = None
    """`MESH_ICEBERG_CATALOG`, if the Iceberg bindings go to a catalog configured outside the mesh."""
    is_prod: bool = False
    """Whether the environment is prod (its bindings are where consumers read)."""

    @classmethod
    def from_environment(cls, env: Environment) -> Deployment:
        """The deployment of the resolved environment."""
        try:
            shown = env.duckdb_path.resolve().relative_to(env.root.resolve()).as_posix()
        except ValueError:  # a file outside the repository is shown in full
            shown = str(env.duckdb_path)
        try:
            data = env.data_dir.resolve().relative_to(env.root.resolve()).as_posix()
        except ValueError:
            data = str(env.data_dir)
        snowflake = env.target == "snowflake"
        return cls(
            target=env.target,
            duckdb_path=shown,
            snowflake_database=env.prod_database if snowflake else cls.snowflake_database,
            environment=env.name,
            branch_database=env.database if snowflake and not env.is_prod else None,
            data_dir=data,
            iceberg_catalog=env.iceberg_catalog,
            is_prod=env.is_prod,
        )


def physical_types(column: Column) -> dict[str, str]:
    """The column's physical type on each warehouse, from the backends' own mappings."""
    # The mappings are pure methods of the session classes; no connection is opened.
    from mesh_assets.infra.warehouse.duckdb import DuckDBSession
    from mesh_assets.infra.warehouse.snowflake import SnowflakeSession

    return {
        "duckdb": DuckDBSession(None).physical_type(column),  # type: ignore[arg-type]
        "snowflake": SnowflakeSession(None).physical_type(column),  # type: ignore[arg-type]
    }


def servers(domain: str, deployment: Deployment) -> list[dict[str, Any]]:
    """The DuckDB server (local, the default) and the Snowflake server (production) of a domain's ports.

    Exported from a non-prod environment on Snowflake, the environment's own database is a third server
    (`environment: <name>`), so a branch's contract points at the branch's data, never passes it for prod's.
    """
    branch = []
    if deployment.branch_database:
        branch.append(
            {
                "id": deployment.environment,
                "server": deployment.environment,
                "type": "snowflake",
                "environment": deployment.environment,
                "description": f"The environment {deployment.environment}: its own database, which "
                "reads the ports it does not build from production (deferral).",
                "account": "${SNOWFLAKE_ACCOUNT}",
                "database": deployment.branch_database,
                "schema": domain,
                "warehouse": "${SNOWFLAKE_WAREHOUSE}",
            }
        )
    return [
        {
            "id": "local",
            "server": "local",
            "type": "duckdb",
            "environment": "dev" if deployment.environment == "prod" else deployment.environment,
            "description": "The embedded DuckDB file every laptop and CI run builds. Open it read-only: "
            "DuckDB allows one writer per file.",
            "database": "${MESH_DUCKDB_PATH:-" + deployment.duckdb_path + "}",
            "schema": domain,
        },
        {
            "id": "production",
            "server": "production",
            "type": "snowflake",
            "environment": "prod",
            "description": "The production warehouse. Schema, table and column names are lowercase and "
            f'must be quoted, e.g. {deployment.snowflake_database}."{domain}"."<table>".',
            "account": "${SNOWFLAKE_ACCOUNT}",
            "database": "${SNOWFLAKE_DATABASE:-" + deployment.snowflake_database + "}",
            "schema": domain,
            "warehouse": "${SNOWFLAKE_WAREHOUSE}",
        },
        *branch,
    ]


def binding_servers(spec: DataProductSpec, port: OutputPort, deployment: Deployment) -> list[dict[str, Any]]:
    """One server per binding of the port beyond its table: Iceberg, local Parquet, a Snowflake share.

    Paths are the exporting environment's (prod's, in the contracts consumers read): a branch's contract
    names the branch's own folder and namespace, and says so in `environment`.
    """
    from pathlib import Path

    from mesh_assets.assets.binding_files import parquet_dir
    from mesh_assets.assets.binding_iceberg import place
    from mesh_assets.assets.binding_share import share_name
    from mesh_assets.product.bindings import IcebergBinding, ParquetBinding, ShareBinding

    data = Path(deployment.data_dir)
    environment = deployment.environment
    found: list[dict[str, Any]] = []
    for binding in port.bindings:
        server: dict[str, Any] = {
            "id": f"{binding.kind}",
            "server": f"{binding.kind}",
            "environment": environment,
        }
        if isinstance(binding, ParquetBinding):
            folder = parquet_dir(data, spec.domain, spec.name, port.major)
            partitions = ", ".join(binding.partition_by) or "none"
            server |= {
                "type": "local",
                "description": f"Parquet files of the latest publish (Hive partitions: {partitions}); "
                f"every kept publish under {folder.as_posix()}/snapshots/<publish id>/.",
                "path": f"{folder.as_posix()}/latest/**/*.parquet",
                "format": "parquet",
            }
        elif isinstance(binding, IcebergBinding):
            where = place(
                data,
                environment,
                deployment.is_prod,
                spec.domain,
                spec.name,
                port.major,
                deployment.iceberg_catalog,
            )
            server |= {
                "type": "iceberg",
                "description": f"The Iceberg table {where.identifier}: one commit per publish, time travel "
                "by the snapshot summary's mesh.publish_id.",
                "catalog": where.catalog_name,
                "catalogUrl": where.properties.get("uri")
                or "${PYICEBERG_CATALOG__" + where.catalog_name.upper() + "__URI}",
                "namespace": where.namespace,
                "customProperties": [{"property": "table", "value": where.table}],
            }
            if "warehouse" in where.properties:
                server["warehouse"] = where.properties["warehouse"]
        elif isinstance(binding, ShareBinding):
            name = share_name(spec, port, binding)
            server |= {
                "type": "snowflake",
                "environment": "prod",
                "description": f"The secure share {name} of the published table, for other Snowflake "
                "accounts: CREATE DATABASE <name> FROM SHARE <provider account>." + name + ".",
                "account": "${SNOWFLAKE_ACCOUNT}",
                "database": name,
                "schema": spec.domain,
            }
        found.append(server)
    return found
