"""Deferral: a branch environment reads the ports it does not build from prod, read-only, by views.

DuckDB runs for real on two files (prod attached READ_ONLY). Snowflake runs on fakesnow, which executes
the information_schema lookups, the DROP TABLE of a clone's copy and the CREATE VIEW over prod's fully
qualified name (and reading through it); the gap: fakesnow keeps every database in one DuckDB process, so
that a real Snowflake role may read prod's database (a grant) is not checked here, only documented.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import fakesnow
import pytest
import yaml

from mesh_assets.infra import deferral, environment, environments
from mesh_assets.infra.environment import MeshEnvironmentError
from mesh_assets.infra.warehouse.duckdb import DuckDBWarehouse
from mesh_assets.infra.warehouse.snowflake import SnowflakeWarehouse
from mesh_assets.product.registry import load_registry


@pytest.fixture(scope="module")
def registry(repo_root: Path):
    return load_registry(repo_root)


def _make_prod(path: Path, tables: dict[str, int]) -> None:
    """A prod file holding the given port tables (`schema.name` → one row with that value)."""
    with duckdb.connect(str(path)) as connection:
        for dotted, value in tables.items():
            schema, name = dotted.split(".")
            connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            connection.execute(f'CREATE TABLE "{schema}"."{name}" AS SELECT {value} AS v')


def _kinds(path: Path) -> dict[str, str]:
    with duckdb.connect(str(path), read_only=True) as connection:
        rows = connection.execute(
            "select table_schema || '.' || table_name, table_type from information_schema.tables "
            "where table_catalog = current_database()"
        ).fetchall()
    return dict(rows)


def test_unbuilt_ports_become_read_only_views_of_prod_and_built_ones_lose_their_view(
    tmp_path: Path, registry
) -> None:
    prod = tmp_path / "prod.duckdb"
    _make_prod(prod, {"sales.orders_v1": 1, "customers.customer_master_v1": 2, "sales.sales_v1": 3})
    warehouse = DuckDBWarehouse(path=str(tmp_path / "branch.duckdb"), prod_path=str(prod))
    with warehouse.session() as session:
        # A view left by an earlier deferring run of a product this run builds.
        session.execute('CREATE SCHEMA "sales"')
        session.execute('CREATE VIEW "sales"."sales_v1" AS SELECT * FROM "mesh_prod"."sales"."sales_v1"')
        plan = deferral.sync(session, warehouse, registry, {"sales.sales"})
        (orders,) = session.query('SELECT v FROM "sales"."orders_v1"')[0]

    assert orders == 1  # read through the view, from prod's file
    assert plan.deferred == ["customers.customer_master v1", "sales.orders v1"]
    assert sorted(plan.built) == ["sales.sales v1", "sales.sales v2"]
    assert "commercial_analytics.customer_360 v1" in plan.missing
    kinds = _kinds(tmp_path / "branch.duckdb")
    assert kinds["sales.orders_v1"] == "VIEW"
    assert "sales.sales_v1" not in kinds  # its view dropped: the publish writes a real table
    assert "2 read from prod" in plan.summary()


def test_prod_is_never_written_and_a_port_built_here_earlier_is_kept_when_prod_lacks_it(
    tmp_path: Path, registry
) -> None:
    prod = tmp_path / "prod.duckdb"
    _make_prod(prod, {"sales.orders_v1": 1})
    before = prod.read_bytes()
    branch = tmp_path / "branch.duckdb"
    _make_prod(branch, {"diagnostics.instrument_runs_v1": 7})  # built in this environment before
    warehouse = DuckDBWarehouse(path=str(branch), prod_path=str(prod))
    with warehouse.session() as session:
        plan = deferral.sync(session, warehouse, registry, {"commercial_analytics.customer_360"})
        with pytest.raises(duckdb.Error, match=r"read-only|read only"):
            session.execute('CREATE TABLE "mesh_prod"."sales"."x" AS SELECT 1 AS v')

    assert plan.local == ["diagnostics.instrument_runs v1"]
    assert prod.read_bytes() == before


def test_a_build_reading_a_port_nobody_has_is_refused_naming_reader_port_and_the_fix(
    tmp_path: Path, registry
) -> None:
    prod = tmp_path / "prod.duckdb"
    _make_prod(prod, {"sales.orders_v1": 1})
    warehouse = DuckDBWarehouse(path=str(tmp_path / "branch.duckdb"), prod_path=str(prod))
    selected = {"commercial_analytics.customer_360"}
    with warehouse.session() as session:
        plan = deferral.sync(session, warehouse, registry, selected)

    with pytest.raises(MeshEnvironmentError) as refused:
        deferral.refuse_missing(plan, registry, selected, str(prod))
    message = str(refused.value)
    assert "commercial_analytics.customer_360 reads customers.customer_master v1" in message
    assert "MESH_ENV=prod mesh run" in message


def test_a_deferring_dbt_profile_attaches_prod_read_only_and_the_project_profile_is_untouched(
    tmp_path: Path, repo_root: Path
) -> None:
    project = repo_root / "dbt_projects" / "sales"
    original = (project / "profiles.yml").read_text()
    prod = tmp_path / "prod.duckdb"
    _make_prod(prod, {"sales.orders_v1": 1})
    deferring = DuckDBWarehouse(path=str(tmp_path / "branch.duckdb"), prod_path=str(prod))

    folder = deferring.dbt_profiles_dir(project, tmp_path / "profile")

    local = yaml.safe_load((folder / "profiles.yml").read_text())["sales"]["outputs"]["local"]
    assert local["attach"] == [{"path": str(prod.resolve()), "alias": "mesh_prod", "read_only": True}]
    # The environment's own file is in the profile itself: nothing reaches dbt through os.environ.
    assert local["path"] == str((tmp_path / "branch.duckdb").resolve())
    assert (project / "profiles.yml").read_text() == original
    plain = DuckDBWarehouse(path=str(tmp_path / "dev.duckdb"))
    plain_folder = plain.dbt_profiles_dir(project, tmp_path / "other")
    plain_local = yaml.safe_load((plain_folder / "profiles.yml").read_text())
    assert "attach" not in plain_local["sales"]["outputs"]["local"]
    assert plain_local["sales"]["outputs"]["local"]["path"] == str((tmp_path / "dev.duckdb").resolve())


def test_on_snowflake_a_deferred_port_is_a_view_over_prods_fully_qualified_table(registry) -> None:
    config = {"account": "a", "user": "u", "password": "p", "warehouse": "w"}
    sent: list[str] = []
    with fakesnow.patch():
        with SnowflakeWarehouse(**config, database="MESH").session() as prod:
            prod.execute('CREATE SCHEMA IF NOT EXISTS "sales"')
            prod.execute('CREATE TABLE "sales"."orders_v1" AS SELECT 1 AS "v"')
        branch = SnowflakeWarehouse(**config, database="MESH_FEATURE_X", prod_database="MESH")
        with branch.session() as session:
            # The zero-copy clone's copy of prod's table, as it was at clone time.
            session.execute('CREATE SCHEMA IF NOT EXISTS "sales"')
            session.execute('CREATE TABLE "sales"."orders_v1" AS SELECT 0 AS "v"')
            execute = session.execute
            session.execute = lambda sql, params=None: (sent.append(sql), execute(sql, params))[1]  # type: ignore[method-assign]
            plan = deferral.sync(session, branch, registry, {"sales.sales"})
            (value,) = session.query('SELECT "v" FROM "sales"."orders_v1"')[0]

    assert value == 1  # prod as it is now, not the clone's snapshot
    assert plan.deferred == ["sales.orders v1"]
    assert 'DROP TABLE "sales"."orders_v1"' in sent
    assert 'CREATE VIEW "sales"."orders_v1" AS SELECT * FROM MESH."sales"."orders_v1"' in sent
    assert (
        branch.prod_sql(deferral.addressing.port_relation("sales", "orders", 1)) == 'MESH."sales"."orders_v1"'
    )


# --- which environments defer -------------------------------------------------------------------------------


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, repo_root: Path) -> Path:
    monkeypatch.setenv("MESH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MESH_ROOT", str(tmp_path))
    (tmp_path / "domains").mkdir()
    for name in ("MESH_ENV", "MESH_DUCKDB_PATH", "MESH_DEFER", "MESH_TARGET"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "data"


def test_dev_builds_everything_itself_and_an_environment_created_from_prod_defers(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not environment.resolve().defers_to_prod  # `make run`'s dev: no prod to read
    environments.create("feature_x")
    monkeypatch.setenv("MESH_ENV", "feature_x")
    env = environment.resolve()
    assert env.defers_to_prod
    assert env.warehouse().prod_path == str(data / "envs" / "prod" / "mesh.duckdb")
    monkeypatch.setenv("MESH_DEFER", "none")
    assert environment.resolve().warehouse().prod_path is None
    monkeypatch.setenv("MESH_DEFER", "maybe")
    with pytest.raises(MeshEnvironmentError, match="MESH_DEFER='maybe': use prod or none"):
        environment.resolve().defers_to_prod  # noqa: B018
    monkeypatch.setenv("MESH_ENV", "prod")
    monkeypatch.setenv("MESH_DEFER", "prod")
    assert not environment.resolve().defers_to_prod  # prod reads only itself
    assert os.environ["MESH_ENV"] == "prod"
