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


def _bound_port(repo_root: Path):
    from mesh_assets.product.registry import load_registry

    spec = load_registry(repo_root).products["sales.sales"].spec
    return spec, next(p for p in spec.output_ports if p.major == 2)


def test_each_binding_of_a_port_is_one_more_server_that_says_where_and_how_to_read_it(
    env, repo_root: Path
) -> None:
    from mesh_assets.contracts.odcs_servers import binding_servers
    from mesh_assets.product.bindings import ShareBinding

    env.setenv("MESH_ENV", "prod")
    spec, port = _bound_port(repo_root)
    port = port.model_copy(update={"bindings": [*port.bindings, ShareBinding(kind="share")]})
    found = {
        s["id"]: s for s in binding_servers(spec, port, Deployment.from_environment(environment.resolve()))
    }

    assert sorted(found) == ["iceberg", "parquet", "share"]
    assert (found["iceberg"]["type"], found["iceberg"]["namespace"]) == ("iceberg", "sales")
    assert found["iceberg"]["catalogUrl"] == "sqlite:///data/envs/prod/bindings/iceberg/catalog.db"
    assert found["iceberg"]["customProperties"] == [{"property": "table", "value": "sales_v2"}]
    assert (found["parquet"]["type"], found["parquet"]["format"]) == ("local", "parquet")
    assert found["parquet"]["path"] == "data/envs/prod/bindings/sales/sales/v2/parquet/latest/**/*.parquet"
    assert (found["share"]["type"], found["share"]["database"]) == ("snowflake", "SALES_SALES_V2")


def test_a_contract_with_bindings_still_validates_against_the_odcs_json_schema(env, repo_root: Path) -> None:
    import jsonschema

    from mesh_assets.contracts import odcs
    from mesh_assets.contracts.odcs_export import contract
    from mesh_assets.product.bindings import ShareBinding
    from mesh_assets.product.registry import load_registry

    registry = load_registry(repo_root)
    product = registry.products["sales.sales"]
    _, port = _bound_port(repo_root)
    port = port.model_copy(
        update={"bindings": [*port.bindings, ShareBinding(kind="share", accounts=["A.B"])]}
    )
    document = contract(product, port, registry, Deployment.from_environment(environment.resolve()))
    assert [s["type"] for s in document["servers"]] == [
        "duckdb",
        "snowflake",
        "iceberg",
        "local",
        "snowflake",
    ]
    jsonschema.validators.validator_for(odcs.json_schema())(odcs.json_schema()).validate(document)
