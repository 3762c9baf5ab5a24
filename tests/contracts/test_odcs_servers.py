"""A contract names the servers of the environment it is exported from."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesh_assets.contracts.odcs_servers import Deployment, servers
from mesh_assets.infra import environment


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "domains").mkdir()
    monkeypatch.setenv("MESH_ROOT", str(tmp_path))
    monkeypatch.setenv("MESH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SNOWFLAKE_DATABASE", "MESH")
    for name in ("MESH_DUCKDB_PATH", "MESH_DEFER"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _by_id(domain: str, deployment: Deployment) -> dict[str, dict]:
    return {server["id"]: server for server in servers(domain, deployment)}


def test_a_branch_on_snowflake_serves_its_own_database_beside_production(env) -> None:
    env.setenv("MESH_TARGET", "snowflake")
    env.setenv("MESH_ENV", "feature_x")

    found = _by_id("sales", Deployment.from_environment(environment.resolve()))

    assert found["feature_x"]["database"] == "MESH_FEATURE_X"
    assert found["feature_x"]["environment"] == "feature_x"
    assert found["production"]["database"] == "${SNOWFLAKE_DATABASE:-MESH}"
    assert found["production"]["environment"] == "prod"


def test_prod_and_duckdb_environments_keep_the_two_servers(env) -> None:
    env.setenv("MESH_TARGET", "snowflake")
    env.setenv("MESH_ENV", "prod")
    assert set(_by_id("sales", Deployment.from_environment(environment.resolve()))) == {"local", "production"}
    env.setenv("MESH_TARGET", "duckdb")
    env.setenv("MESH_ENV", "feature_x")
    local = _by_id("sales", Deployment.from_environment(environment.resolve()))["local"]
    assert local["environment"] == "feature_x"
    assert local["database"].endswith("envs/feature_x/mesh.duckdb}")
