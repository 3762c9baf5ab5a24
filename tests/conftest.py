"""Shared fixtures: a private copy of the mesh, a private DuckDB file and Dagster instance per test.

Tests never touch the developer's `data/` or `.dagster_home`: every test that builds anything gets its
own warehouse file, source extracts, data folder (`MESH_DATA_DIR`: catalog, scorecard, contracts, dbt
run artifacts) and DAGSTER_HOME under pytest's tmp_path. The worktree guard (`worktree_guard.py`) fails
the session if the tests changed the repository anyway, naming the files.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import worktree_guard

REPO = Path(__file__).resolve().parent.parent

# The alert harness's fixtures (`home`, `receiver`) serve tests in several wings.
pytest_plugins = ["alert_harness"]
TEST_SCALE = 2_000


def pytest_configure(config: pytest.Config) -> None:
    """Watch the repository for the whole session (in the xdist controller, not in each worker)."""
    # Refreshing the definition snapshots is the one deliberate write into the repository.
    refreshing = os.environ.get("MESH_UPDATE_SNAPSHOTS") == "1"
    worktree_guard.install(config, REPO, allowed=("tests/snapshots/",) if refreshing else ())


# The files that take minutes (measured with --durations), heaviest first. xdist (--dist loadfile, with
# --no-loadscope-reorder so its own count-based reordering does not undo this) hands out files in collection
# order as workers free up, so starting these first keeps one long file from
# running alone at the end: the longest-first schedule.
HEAVY_FILES = (
    "test_production_topology_postgres.py",
    "test_crash_recovery.py",
    "test_production_topology.py",
    "test_ci_gate.py",
    "test_run_mesh.py",
    "test_calendar.py",
    "test_stages.py",
    "test_onboard.py",
    "test_dbt_partial_parse.py",
    "test_scaffold.py",
    "test_tutorial.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Heavy files first (see `HEAVY_FILES`), and slow: `make check` (`-m "not slow"`) leaves them to
    `make test`. The order within each file is kept (a stable sort)."""
    rank = {name: index for index, name in enumerate(HEAVY_FILES)}
    for item in items:
        if item.path.name in rank:
            item.add_marker(pytest.mark.slow)
    items.sort(key=lambda item: rank.get(item.path.name, len(HEAVY_FILES)))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository under test."""
    return REPO


@pytest.fixture(scope="session")
def small_sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Source extracts at a small scale, generated once per test session.

    Pinned to `generate.AS_OF`, not today: every test sees the same bytes on any day it runs.
    """
    from mesh_assets.selfservice.generate import AS_OF, generate_sources

    out = tmp_path_factory.mktemp("sources")
    generate_sources(out, scale=TEST_SCALE, as_of=AS_OF)
    return out


def mesh_command_dir() -> Path:
    """The folder holding the installed `mesh` command (the venv's `bin`), to put first on a PATH."""
    folder = Path(sys.executable).parent
    assert (folder / "mesh").exists(), f"no `mesh` beside {sys.executable}: run `make setup`"
    return folder


def copy_mesh(destination: Path) -> Path:
    """A copy of the repository's mesh (domains, dbt projects, dagster.yaml) that a test may change."""
    destination.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "domains", destination / "domains", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(
        REPO / "dbt_projects",
        destination / "dbt_projects",
        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"),
    )
    shutil.copy(REPO / "dagster.yaml", destination / "dagster.yaml")
    return destination


@pytest.fixture
def mesh_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the mesh, which the platform resolves as its root (MESH_ROOT)."""
    root = copy_mesh(tmp_path / "repo")
    monkeypatch.setenv("MESH_ROOT", str(root))
    return root


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_sources: Path) -> Iterator[Path]:
    """A private DuckDB file, data folder and Dagster instance, and (shared, read-only) source extracts.

    `MESH_DATA_DIR` sends everything else the platform writes (catalog, scorecard page, exported contracts,
    dbt run artifacts) to `<tmp_path>/data`, never to the repository's `data/`.
    """
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("MESH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MESH_DUCKDB_PATH", str(tmp_path / "mesh.duckdb"))
    monkeypatch.setenv("MESH_SOURCES_DIR", str(small_sources))
    monkeypatch.delenv("MESH_TARGET", raising=False)
    monkeypatch.delenv("MESH_ENV", raising=False)  # the default environment, `dev`, whatever the shell says
    yield tmp_path
