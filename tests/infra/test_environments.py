"""Environments: named, isolated copies of the mesh (`MESH_ENV`); only `prod` publishes to prod's storage."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mesh_assets.cli.app import app
from mesh_assets.infra import environment, environments
from mesh_assets.infra.environment import MeshEnvironmentError

OUTPUT_VARIABLES = ("MESH_DATA_DIR", "MESH_DUCKDB_PATH", "MESH_SOURCES_DIR", "MESH_CATALOG_DIR", "MESH_ENV")


@pytest.fixture
def data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, repo_root: Path) -> Path:
    """A fresh shell with its data root in the test's temp dir and no environment chosen."""
    for name in OUTPUT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("MESH_TARGET", raising=False)
    monkeypatch.setenv("MESH_ROOT", str(repo_root))
    monkeypatch.setenv("MESH_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_the_default_environment_is_dev_and_keeps_todays_layout(data: Path) -> None:
    env = environment.resolve()

    assert env.name == "dev" and not env.is_prod
    assert env.data_dir == data
    assert env.duckdb_path == data / "mesh.duckdb"
    assert env.catalog_dir == data / "catalog"
    assert env.dagster_home == env.root / ".dagster_home" / "dev"


def test_every_other_environment_is_its_own_folder_and_reads_the_shared_sources(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESH_ENV", "Feature_X")  # names are case-insensitive: folders and databases agree

    env = environment.resolve()

    assert env.name == "feature_x"
    own = data / "envs" / "feature_x"
    assert env.data_dir == own
    assert env.duckdb_path == own / "mesh.duckdb"
    assert env.catalog_dir == own / "catalog"
    assert env.contracts_dir == own / "contracts"
    assert env.dbt_artifacts_dir("sales") == own / "dbt" / "sales"
    assert env.sources_dir == data / "sources"


def test_prod_is_a_folder_of_its_own_so_dev_never_shares_its_file(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESH_ENV", "prod")

    env = environment.resolve()

    assert env.is_prod
    assert env.duckdb_path == data / "envs" / "prod" / "mesh.duckdb"


@pytest.mark.parametrize("bad", ["1st", "a-b", "my env", "x" * 41, "ünï"])
def test_an_invalid_name_fails_naming_the_variable_and_the_fix(
    data: Path, monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    monkeypatch.setenv("MESH_ENV", bad)

    with pytest.raises(MeshEnvironmentError, match=r"MESH_ENV=.*is not an environment name.*MESH_ENV=dev"):
        environment.resolve()


@pytest.mark.parametrize("name", [None, "dev", "feature_x"])
def test_a_non_prod_process_pointed_at_prods_file_is_refused(
    data: Path, monkeypatch: pytest.MonkeyPatch, name: str | None
) -> None:
    if name:
        monkeypatch.setenv("MESH_ENV", name)
    monkeypatch.setenv("MESH_DUCKDB_PATH", str(data / "envs" / "prod" / "mesh.duckdb"))

    with pytest.raises(MeshEnvironmentError, match=r"MESH_ENV=\w+ but MESH_DUCKDB_PATH.*only MESH_ENV=prod"):
        environment.resolve()


def test_a_non_prod_process_whose_data_root_is_prods_folder_is_refused_by_its_marker(
    sandbox: Path, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESH_ENV", "prod")
    environments.create("prod")
    monkeypatch.delenv("MESH_ENV")
    # Pointing the data root at prod's folder would make prod's file dev's: the folder's marker says prod.
    monkeypatch.setenv("MESH_DATA_DIR", str(data / "envs" / "prod"))

    with pytest.raises(MeshEnvironmentError, match="only MESH_ENV=prod may write there"):
        environment.resolve()


def test_prod_may_write_its_own_file(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESH_ENV", "prod")
    monkeypatch.setenv("MESH_DUCKDB_PATH", str(data / "envs" / "prod" / "mesh.duckdb"))

    assert environment.resolve().is_prod


@pytest.mark.parametrize(
    ("name", "base", "database"),
    [
        ("prod", "MESH", "MESH"),
        ("dev", "MESH", "MESH_DEV"),
        ("feature_x", "analytics", "ANALYTICS_FEATURE_X"),
    ],
)
def test_on_snowflake_each_environment_is_its_own_database_and_only_prod_is_snowflake_database(
    data: Path, monkeypatch: pytest.MonkeyPatch, name: str, base: str, database: str
) -> None:
    monkeypatch.setenv("MESH_TARGET", "snowflake")
    monkeypatch.setenv("MESH_ENV", name)
    monkeypatch.setenv("SNOWFLAKE_DATABASE", base)

    env = environment.resolve()

    assert env.database == database
    # dbt's profile reads SNOWFLAKE_DATABASE: each invocation's profile names the environment's database.
    assert env.warehouse().dbt_output_overrides() == {"database": database}


def test_nothing_but_mesh_env_selects_the_environment(data: Path) -> None:
    assert "MESH_ENV" not in os.environ
    assert environment.resolve().name == "dev"


# --- mesh env create / list / drop -------------------------------------------------------------------------

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def sandbox(data: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, repo_root: Path) -> Path:
    """A repository of its own (so Dagster instances land under tmp, not in the real `.dagster_home`)."""
    root = tmp_path / "repo"
    (root / "domains").mkdir(parents=True)
    shutil.copy(repo_root / "dagster.yaml", root / "dagster.yaml")
    monkeypatch.setenv("MESH_ROOT", str(root))
    return root


def test_create_makes_the_folder_its_marker_and_its_dagster_instance(sandbox: Path, data: Path) -> None:
    info = environments.create("feature_x", clock=lambda: T0)

    folder = data / "envs" / "feature_x"
    assert json.loads((folder / "environment.json").read_text()) == {
        "name": "feature_x",
        "base": "prod",
        "created": T0.isoformat(),
        "target": "duckdb",
    }
    assert (sandbox / ".dagster_home" / "feature_x" / "dagster.yaml").is_file()
    assert (info.name, info.target, info.location, info.base, info.created) == (
        "feature_x",
        "duckdb",
        str(folder / "mesh.duckdb"),
        "prod",
        T0,
    )
    # Idempotent: a second create keeps the first creation time.
    assert environments.create("feature_x", clock=lambda: T0 + timedelta(days=3)).created == T0


def test_list_gives_each_environment_with_its_storage_base_creation_time_and_size(
    sandbox: Path, data: Path
) -> None:
    environments.create("a", clock=lambda: T0)
    (data / "envs" / "a" / "mesh.duckdb").write_bytes(b"x" * 1000)

    listed = {info.name: info.to_json() for info in environments.list_environments()}

    assert list(listed) == ["dev", "a"]
    a = listed["a"]
    assert a["location"] == str(data / "envs" / "a" / "mesh.duckdb") and a["base"] == "prod"
    assert a["created"] == T0.isoformat()
    assert a["size_bytes"] >= 1000  # the file, the marker and the instance's dagster.yaml
    assert listed["dev"]["location"] == str(data / "mesh.duckdb")


def test_mesh_env_list_json_on_the_command_line(sandbox: Path) -> None:
    environments.create("a", clock=lambda: T0)

    result = CliRunner().invoke(app, ["env", "list", "--json"])

    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [row["name"] for row in rows] == ["dev", "a"]
    assert set(rows[1]) == {"name", "target", "location", "base", "created", "size_bytes"}


def test_drop_deletes_the_folder_and_the_instance_and_never_prod_or_dev(
    sandbox: Path, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    environments.create("a", clock=lambda: T0)

    environments.drop("a")

    assert not (data / "envs" / "a").exists()
    assert not (sandbox / ".dagster_home" / "a").exists()
    with pytest.raises(MeshEnvironmentError, match="refusing to drop prod"):
        environments.drop("prod")
    with pytest.raises(MeshEnvironmentError, match="refusing to drop dev"):
        environments.drop("dev")
    result = CliRunner().invoke(app, ["env", "drop", "prod"])
    assert result.exit_code == 1 and "refusing to drop prod" in result.output


def test_drop_older_than_drops_only_the_old_ones_with_a_pinned_clock(
    sandbox: Path, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESH_ENV", "prod")
    environments.create("prod", clock=lambda: T0 - timedelta(days=30))
    monkeypatch.delenv("MESH_ENV")
    environments.create("old", clock=lambda: T0 - timedelta(days=8))
    environments.create("young", clock=lambda: T0 - timedelta(days=6))

    dropped = environments.drop_older_than(environments.parse_age("7d"), clock=lambda: T0)

    assert [info.name for info in dropped] == ["old"]
    assert [info.name for info in environments.list_environments()] == ["dev", "prod", "young"]


def test_only_prod_may_create_prods_storage(sandbox: Path) -> None:
    with pytest.raises(MeshEnvironmentError, match="only a process with MESH_ENV=prod"):
        environments.create("prod")


@pytest.mark.parametrize("bad", ["7", "7 days", "d7", "-1d"])
def test_an_age_that_is_not_one_fails_with_the_expected_format(bad: str) -> None:
    with pytest.raises(MeshEnvironmentError, match=r"e\.g\. 7d"):
        environments.parse_age(bad)


# --- Snowflake ---------------------------------------------------------------------------------------------


def test_the_snowflake_statements_are_a_zero_copy_clone_of_prod_and_a_drop() -> None:
    assert environments.snowflake_statements("create", "feature_x", "MESH") == [
        "CREATE DATABASE IF NOT EXISTS MESH_FEATURE_X CLONE MESH"
    ]
    assert environments.snowflake_statements("drop", "feature_x", "MESH") == [
        "DROP DATABASE IF EXISTS MESH_FEATURE_X"
    ]
    assert environments.snowflake_statements("list", "x", "mesh") == ["SHOW DATABASES LIKE 'MESH_%'"]


def test_a_snowflake_environments_size_is_what_its_tables_own_and_unknown_without_the_privilege(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fakesnow has no TABLE_STORAGE_METRICS: the statement is checked as sent, the value as returned."""
    monkeypatch.setenv("MESH_TARGET", "snowflake")
    monkeypatch.setenv("SNOWFLAKE_DATABASE", "MESH")
    sent: list[str] = []

    def run(statements):
        sent.extend(statements)
        if statements[0].startswith("SHOW"):
            return [[(T0, "MESH_FEATURE_X"), (T0, "MESH_BROKEN")]]
        if "MESH_BROKEN" in statements[0]:
            raise RuntimeError("Insufficient privileges")
        return [[(123_456,)]]

    listed = {e.name: e.size_bytes for e in environments.list_environments(run=run)}

    assert listed == {"prod": None, "feature_x": 123_456, "broken": None}
    assert (
        "SELECT COALESCE(SUM(ACTIVE_BYTES + TIME_TRAVEL_BYTES + FAILSAFE_BYTES), 0) "
        "FROM MESH_FEATURE_X.INFORMATION_SCHEMA.TABLE_STORAGE_METRICS WHERE NOT DELETED"
    ) in sent


def test_create_and_list_run_on_fakesnow_and_drop_issues_the_exact_statement(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What fakesnow proves: the CREATE ... CLONE and SHOW DATABASES statements parse and run, and list
    reads SHOW DATABASES' columns. The gap: fakesnow creates the clone EMPTY (it ignores CLONE), so that
    the clone holds prod's tables zero-copy, and which grants and masking policies it carries, are
    Snowflake's documented behaviour, not checked here; and fakesnow cannot parse DROP DATABASE, so drop
    is checked by the exact statement it sends.
    """
    import fakesnow
    import snowflake.connector

    monkeypatch.setenv("MESH_TARGET", "snowflake")
    monkeypatch.setenv("SNOWFLAKE_DATABASE", "MESH")
    for name, value in {"ACCOUNT": "acct", "USER": "mesh_svc", "PASSWORD": "p"}.items():
        monkeypatch.setenv(f"SNOWFLAKE_{name}", value)
    with fakesnow.patch():
        setup = snowflake.connector.connect()
        setup.cursor().execute("CREATE DATABASE IF NOT EXISTS MESH")
        setup.close()

        info = environments.create("feature_x", clock=lambda: T0)
        listed = environments.list_environments()

    assert (info.location, info.base) == ("MESH_FEATURE_X", "prod")
    assert [(e.name, e.location) for e in listed] == [("prod", "MESH"), ("feature_x", "MESH_FEATURE_X")]
    sent: list[str] = []
    environments.drop("feature_x", run=lambda statements: sent.extend(statements) or [[]])
    assert sent == ["DROP DATABASE IF EXISTS MESH_FEATURE_X"]
    with pytest.raises(MeshEnvironmentError, match="refusing to drop prod"):
        environments.drop("prod", run=lambda statements: pytest.fail("must not run"))


# --- two environments at once ------------------------------------------------------------------------------


@pytest.mark.slow  # two builds at once: `make test`, not `make check`
def test_two_environments_build_the_same_product_at_once_without_blocking_each_other(
    isolated: Path, repo_root: Path
) -> None:
    """Two developers (MESH_ENV=a and b, one data root) run `mesh run --domain customers` at the same time."""
    import duckdb

    data = isolated / "data"
    procs, logs = {}, {}
    for name in ["a", "b"]:
        env = {k: v for k, v in os.environ.items() if k != "MESH_DUCKDB_PATH"}
        # As the Makefile: one Dagster instance per environment (here under tmp, not the repository's).
        env.update(MESH_ENV=name, MESH_DATA_DIR=str(data), DAGSTER_HOME=str(isolated / f"home_{name}"))
        logs[name] = isolated / f"{name}.log"
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", "mesh_assets.cli.app", "run", "--domain", "customers"],
            cwd=repo_root,
            env=env,
            stdout=logs[name].open("w"),
            stderr=subprocess.STDOUT,
        )
    codes = {name: proc.wait(timeout=600) for name, proc in procs.items()}
    outputs = {name: log.read_text() for name, log in logs.items()}

    assert codes == {"a": 0, "b": 0}, {name: text[-3000:] for name, text in outputs.items()}
    for name, text in outputs.items():
        own = data / "envs" / name / "mesh.duckdb"
        assert f"building the mesh in environment {name} on duckdb ({own})" in text
        # Each had its own file: neither waited for the other's writer lock or open file.
        assert "waiting" not in text and "waited" not in text, text
        with duckdb.connect(str(own), read_only=True) as con:
            (rows,) = con.execute("SELECT count(*) FROM customers.customer_master_v1").fetchone()
        assert rows > 0
    assert not (data / "mesh.duckdb").exists()  # dev's file untouched


# --- the environment shows ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "label"), [("feature_x", "[feature_x] "), ("dev", "[dev] "), ("prod", "")])
def test_an_alert_from_a_non_prod_environment_is_labelled_with_it(name: str, label: str) -> None:
    from mesh_assets.observe import alerts

    note = {
        "environment": name,
        "kind": "breach",
        "port": "sales/orders/v1",
        "product": "sales.orders",
        "port_version": "v1",
        "title": "Orders",
        "owner": {"team": "sales_data", "steward": "ana"},
        "consumers": [],
        "changes": [],
        "at": 0.0,
    }

    text = alerts.render(note, alerts.AlertRouting())

    assert text.startswith(f"{label}\U0001f534 SLO breach: sales.orders v1 (Orders)")


def test_port_assets_carry_their_environment_in_metadata(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mesh_assets.assets.location import build_domain

    monkeypatch.setenv("MESH_ENV", "feature_x")
    monkeypatch.delenv("MESH_DUCKDB_PATH")

    specs = {spec.key.to_user_string(): spec for spec in build_domain("customers").resolve_all_asset_specs()}

    assert specs["customers/customer_master/v1"].metadata["mesh/environment"] == "feature_x"


def test_the_catalog_names_the_environment_it_was_built_in(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, repo_root: Path
) -> None:
    from mesh_assets.catalog.site import build_site
    from mesh_assets.product.registry import load_registry

    monkeypatch.setenv("MESH_ENV", "feature_x")
    monkeypatch.delenv("MESH_DUCKDB_PATH")

    site = build_site(load_registry(repo_root), isolated / "catalog")

    assert 'class="environment non-prod">environment feature_x<' in site.index.read_text()


def test_every_command_refuses_a_non_prod_process_aimed_at_prod_with_a_clear_message(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESH_DUCKDB_PATH", str(data / "envs" / "prod" / "mesh.duckdb"))

    result = CliRunner().invoke(app, ["run", "--domain", "customers"])

    assert result.exit_code == 1
    assert "MESH_ENV=dev but MESH_DUCKDB_PATH" in " ".join(result.output.split())
    assert result.exception is None or isinstance(result.exception, SystemExit)  # no traceback
    assert not (data / "envs" / "prod").exists()


def test_a_bad_mesh_env_fails_every_command_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESH_ENV", "Bad-1")

    result = CliRunner().invoke(app, ["env", "list"])

    assert result.exit_code == 1
    assert "MESH_ENV='Bad-1' is not an environment name" in " ".join(result.output.split())


def test_list_and_drop_ignore_folders_not_named_like_an_environment(sandbox: Path, data: Path) -> None:
    (data / "envs" / "Not An Env").mkdir(parents=True)
    environments.create("old", clock=lambda: T0 - timedelta(days=30))

    assert [info.name for info in environments.list_environments()] == ["dev", "old"]
    dropped = environments.drop_older_than(timedelta(days=7), clock=lambda: T0)
    assert [info.name for info in dropped] == ["old"]
    assert (data / "envs" / "Not An Env").is_dir()
