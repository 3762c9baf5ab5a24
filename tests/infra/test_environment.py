"""Where the platform writes: one data folder (`MESH_DATA_DIR`) holds every build output by default."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesh_assets.govern import scorecard
from mesh_assets.infra import environment
from mesh_assets.infra.environment import contract_path
from mesh_assets.product.registry import load_registry

OUTPUT_VARIABLES = ("MESH_DATA_DIR", "MESH_DUCKDB_PATH", "MESH_SOURCES_DIR", "MESH_CATALOG_DIR")


@pytest.fixture
def plain(monkeypatch: pytest.MonkeyPatch, repo_root: Path) -> pytest.MonkeyPatch:
    """The environment of a fresh shell in the repository: no output variable set."""
    for name in OUTPUT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("MESH_TARGET", raising=False)
    monkeypatch.delenv("MESH_ENV", raising=False)
    monkeypatch.setenv("MESH_ROOT", str(repo_root))
    return monkeypatch


def test_without_variables_every_output_defaults_under_the_repositorys_data_folder(
    plain: pytest.MonkeyPatch, repo_root: Path
) -> None:
    env = environment.resolve()

    data = repo_root / "data"
    assert env.data_dir == data
    assert env.duckdb_path == data / "mesh.duckdb"
    assert env.sources_dir == data / "sources"
    assert env.catalog_dir == data / "catalog"
    assert env.contracts_dir == data / "contracts"
    assert env.dbt_artifacts_dir("sales") == data / "dbt" / "sales"
    assert scorecard.scorecard_path(env) == data / "scorecard.html"


def test_mesh_data_dir_moves_every_output_out_of_the_repository(
    plain: pytest.MonkeyPatch, tmp_path: Path, repo_root: Path
) -> None:
    plain.setenv("MESH_DATA_DIR", str(tmp_path / "elsewhere"))

    env = environment.resolve()

    data = tmp_path / "elsewhere"
    outputs = [
        env.duckdb_path,
        env.sources_dir,
        env.catalog_dir,
        env.contracts_dir,
        env.dbt_artifacts_dir("sales"),
        scorecard.scorecard_path(env),
    ]
    assert all(path.is_relative_to(data) for path in outputs), outputs
    sales = load_registry(repo_root).products["sales.sales"]
    assert contract_path(sales, sales.spec.output_ports[0]).parent == data / "contracts"


def test_a_specific_variable_still_wins_over_the_data_folder(
    plain: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    plain.setenv("MESH_DATA_DIR", str(tmp_path / "data"))
    plain.setenv("MESH_DUCKDB_PATH", str(tmp_path / "own.duckdb"))
    plain.setenv("MESH_CATALOG_DIR", str(tmp_path / "site"))

    env = environment.resolve()

    assert env.duckdb_path == tmp_path / "own.duckdb"
    assert env.catalog_dir == tmp_path / "site"
    assert env.sources_dir == tmp_path / "data" / "sources"


def test_the_isolated_fixture_sends_every_output_to_the_tests_temp_dir(isolated: Path) -> None:
    env = environment.resolve()

    assert env.data_dir == isolated / "data"
    assert env.duckdb_path == isolated / "mesh.duckdb"
    assert env.catalog_dir.is_relative_to(isolated) and env.contracts_dir.is_relative_to(isolated)
    assert env.dbt_artifacts_dir("sales").is_relative_to(isolated)
