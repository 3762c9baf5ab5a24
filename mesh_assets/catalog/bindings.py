"""How to read each binding of a port: the snippets the catalog shows (DuckDB SQL, pandas/pyarrow, pyiceberg).

Every snippet names the environment's own paths (prod's, in production's catalog), reads the latest
publish and runs as written in a fresh Python with the mesh's pinned packages (tests/assets/
test_bindings_mesh.py runs each one on a built mesh). Paths are shown as the catalog's deployment shows
them (relative to the repository when inside it). A Snowflake share is read in the consumer's account and
has no local snippet.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mesh_assets.assets.binding_files import parquet_dir
from mesh_assets.assets.binding_iceberg import place
from mesh_assets.assets.bindings import Places
from mesh_assets.contracts.odcs_servers import Deployment
from mesh_assets.product.bindings import IcebergBinding, ParquetBinding, ShareBinding
from mesh_assets.product.spec import DataProductSpec, OutputPort, portable_sql_type
from mesh_assets.product.sql_text import quote_identifier


@dataclass(frozen=True)
class Snippet:
    """One way to read one binding."""

    binding: str
    """The binding's kind."""
    tool: str
    """`duckdb`, `pandas`, `pyarrow`, `pyiceberg` or `snowflake`."""
    language: str
    """`sql` or `python`."""
    code: str
    local: bool = True
    """Whether it runs on this machine (a share is read in another Snowflake account)."""

    def as_python(self) -> str:
        """The snippet as a Python program that prints the rows it read (how the tests run it)."""
        if self.language == "sql":
            return f"import duckdb\nrows = duckdb.sql({self.code!r}).fetchall()\nprint(len(rows))\n"
        return f"{self.code}\nprint(len(df))\n"


def deployment_places(deployment: Deployment, spec: DataProductSpec, port: OutputPort) -> Places:
    """Where the port's bindings are in the deployment a catalog is built for (paths as it shows them)."""
    data = Path(deployment.data_dir)
    return Places(
        parquet=parquet_dir(data, spec.domain, spec.name, port.major),
        iceberg=place(
            data,
            deployment.environment,
            deployment.is_prod,
            spec.domain,
            spec.name,
            port.major,
            deployment.iceberg_catalog,
        ),
    )


def binding_views(deployment: Deployment, spec: DataProductSpec, port: OutputPort) -> list[dict[str, Any]]:
    """What a port's catalog page shows per binding: the tool and the code that reads it."""
    where = deployment_places(deployment, spec, port)
    return [
        {"binding": s.binding, "tool": s.tool, "language": s.language, "code": s.code}
        for s in snippets(where, spec, port)
    ]


def snippets(where: Places, spec: DataProductSpec, port: OutputPort) -> list[Snippet]:
    """How to read each binding of the port, found at `where` (`build.bindings.places` of an environment)."""
    found: list[Snippet] = []
    for binding in port.bindings:
        if isinstance(binding, ParquetBinding):
            latest = where.parquet / "latest"
            # DuckDB puts Hive partition columns last and guesses their types: name the port's order and
            # types so the rows read are the table's.
            types = ", ".join(
                f"'{c.name}': '{portable_sql_type(c)}'"
                for c in port.columns
                if c.name in binding.partition_by
            )
            options = f", hive_partitioning = true, hive_types = {{{types}}}" if types else ""
            columns = ", ".join(quote_identifier(c.name) for c in port.columns)
            found.append(
                Snippet(
                    "parquet",
                    "duckdb",
                    "sql",
                    f"SELECT {columns} FROM read_parquet('{latest}/**/*.parquet'{options})",
                )
            )
            found.append(
                Snippet(
                    "parquet",
                    "pyarrow",
                    "python",
                    "import pyarrow.dataset as ds\n"
                    f"df = ds.dataset({str(latest)!r}, format='parquet', partitioning='hive').to_table()"
                    ".to_pandas()",
                )
            )
        elif isinstance(binding, IcebergBinding):
            iceberg = where.iceberg
            settings = ", ".join(f"{k}={v!r}" for k, v in iceberg.properties.items())
            found.append(
                Snippet(
                    "iceberg",
                    "pyiceberg",
                    "python",
                    "from pyiceberg.catalog import load_catalog\n"
                    f"catalog = load_catalog({iceberg.catalog_name!r}{', ' + settings if settings else ''})\n"
                    f"table = catalog.load_table({iceberg.identifier!r})\n"
                    "df = table.scan().to_pandas()  # a past publish: table.scan(snapshot_id=...)",
                )
            )
        elif isinstance(binding, ShareBinding):
            from mesh_assets.assets.binding_share import share_name

            found.append(
                Snippet(
                    "share",
                    "snowflake",
                    "sql",
                    f"CREATE DATABASE {share_name(spec, port, binding)} FROM SHARE <provider_account>."
                    f"{share_name(spec, port, binding)}",
                    local=False,
                )
            )
    return found
