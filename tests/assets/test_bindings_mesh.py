"""sales.sales v2 served as Iceberg and Parquet beside its table, in a really built mesh (built once here).

The mesh is a private copy (its spec is edited by the last test) built by `mesh run --domain sales` in a
subprocess, with its own data folder, DuckDB file and Dagster instance.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from binding_specs import fingerprints
from conftest import REPO, copy_mesh
from spec_edits import edit_spec

from mesh_assets.assets.bindings import BINDINGS_KEY, parity_check_name, places
from mesh_assets.catalog.bindings import snippets
from mesh_assets.infra import environment
from mesh_assets.product.registry import load_registry

pytestmark = pytest.mark.slow

BOUND_S = 900  # a hang guard, not a timing assertion
PORT = dg.AssetKey(["sales", "sales", "v2"])
COLUMNS = "sales_month, customer_id, product_line, order_count, units, net_revenue_eur"


@dataclass
class Mesh:
    root: Path
    work: Path
    sources: Path

    def environ(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MESH_", "DAGSTER_"))}
        return env | {
            "MESH_ROOT": str(self.root),
            "MESH_DATA_DIR": str(self.work / "data"),
            "MESH_DUCKDB_PATH": str(self.work / "mesh.duckdb"),
            "MESH_SOURCES_DIR": str(self.sources),
            "DAGSTER_HOME": str(self.work / "dagster_home"),
        }

    def run(self, *args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-c", "from mesh_assets.cli.app import main; main()", "run", *args]
        return subprocess.run(
            command, cwd=self.root, env=self.environ(), capture_output=True, text=True, timeout=BOUND_S
        )

    def latest_bindings(self) -> dict:
        with dg.DagsterInstance.from_config(str(self.work / "dagster_home")) as instance:
            event = instance.get_latest_materialization_event(PORT)
            assert event is not None and event.asset_materialization is not None
            return event.asset_materialization.metadata[BINDINGS_KEY].data


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory, small_sources: Path) -> Mesh:
    work = tmp_path_factory.mktemp("bindings_mesh")
    (work / "dagster_home").mkdir()
    shutil.copy(REPO / "dagster.yaml", work / "dagster_home" / "dagster.yaml")
    built = Mesh(copy_mesh(work / "repo"), work, small_sources)
    result = built.run("--domain", "sales")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return built


def table_checksum(mesh: Mesh) -> tuple:
    with duckdb.connect(str(mesh.work / "mesh.duckdb"), read_only=True) as connection:
        return connection.execute(
            f"SELECT count(*), sum(hash({COLUMNS})::HUGEINT)::VARCHAR FROM sales.sales_v2"
        ).fetchone()


def test_a_fresh_python_reads_sales_v2_from_iceberg_and_parquet_and_gets_the_tables_rows(mesh: Mesh) -> None:
    env = environment.resolve(environ=mesh.environ())
    spec = load_registry(mesh.root).products["sales.sales"].spec
    port = next(p for p in spec.output_ports if p.major == 2)
    parquet_sql = next(s.code for s in snippets(places(env, spec, port), spec, port) if s.tool == "duckdb")
    place = places(env, spec, port).iceberg
    iceberg = json.dumps({"properties": place.properties, "identifier": place.identifier})
    # Only pyiceberg and DuckDB, as a consumer's notebook would read them; nothing of the mesh.
    probe = textwrap.dedent(
        f"""
        import json, duckdb
        from pyiceberg.catalog import load_catalog
        where = json.loads({iceberg!r})
        arrow = load_catalog("mesh", **where["properties"]).load_table(where["identifier"]).scan().to_arrow()
        checksum = "SELECT count(*), sum(hash({COLUMNS})::HUGEINT)::VARCHAR FROM "
        print(json.dumps({{
            "iceberg": duckdb.sql(checksum + "arrow").fetchall()[0],
            "parquet": duckdb.sql(checksum + "(" + {parquet_sql!r} + ")").fetchall()[0],
        }}))
        """
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=BOUND_S)
    assert out.returncode == 0, out.stderr
    read = json.loads(out.stdout)
    rows, checksum = table_checksum(mesh)
    assert rows > 0
    assert read == {"iceberg": [rows, checksum], "parquet": [rows, checksum]}


def test_every_local_read_snippet_of_the_catalog_runs_and_reads_the_tables_rows(mesh: Mesh) -> None:
    env = environment.resolve(environ=mesh.environ())
    spec = load_registry(mesh.root).products["sales.sales"].spec
    port = next(p for p in spec.output_ports if p.major == 2)
    local = [s for s in snippets(places(env, spec, port), spec, port) if s.local]
    assert {s.tool for s in local} == {"duckdb", "pyarrow", "pyiceberg"}
    program = "\n".join(s.as_python() for s in local)
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=BOUND_S)
    assert out.returncode == 0, out.stderr
    rows, _ = table_checksum(mesh)
    assert out.stdout.split() == [str(rows)] * len(local)


def test_each_binding_passed_its_parity_check_and_the_publish_recorded_its_snapshot(mesh: Mesh) -> None:
    bindings = mesh.latest_bindings()
    rows, _ = table_checksum(mesh)
    assert bindings["iceberg"]["status"] == bindings["parquet"]["status"] == "written"
    assert bindings["iceberg"]["rows"] == bindings["parquet"]["rows"] == rows
    assert bindings["iceberg"]["publish_id"] == bindings["parquet"]["publish_id"]
    assert bindings["iceberg"]["snapshot_id"] and bindings["parquet"]["files"] == 4  # one per product line
    with dg.DagsterInstance.from_config(str(mesh.work / "dagster_home")) as instance:
        for kind in ("iceberg", "parquet"):
            [record] = instance.event_log_storage.get_asset_check_execution_history(
                dg.AssetCheckKey(PORT, parity_check_name(kind)), limit=1
            )
            evaluation = record.event.dagster_event.event_specific_data
            assert evaluation.passed, evaluation.description
    # The dev environment writes its own folder and namespace, never prod's.
    assert bindings["iceberg"]["table"] == "dev__sales.sales_v2"
    assert str(mesh.work / "data" / "bindings") in bindings["parquet"]["folder"]


def test_a_publish_blocked_by_a_check_leaves_every_binding_at_its_last_good_snapshot(mesh: Mesh) -> None:
    before, good = mesh.latest_bindings(), fingerprints(mesh.environ())

    def block(spec: dict) -> None:
        spec["output_ports"][0]["quality"] = {"row_count": {"min": 10**9}}

    edit_spec(mesh.root, "sales.sales", block)
    result = mesh.run("--product", "sales.sales")
    assert result.returncode != 0
    assert "row_count" in result.stdout + result.stderr
    assert mesh.latest_bindings()["parquet"]["publish_id"] == before["parquet"]["publish_id"]
    assert fingerprints(mesh.environ()) == good
