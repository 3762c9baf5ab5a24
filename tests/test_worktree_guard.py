"""The worktree guard can fail: a pytest session in a throwaway git repository whose test writes into it.

Each case runs a real pytest in a subprocess (with and without pytest-xdist, as `make test` runs) on a
tiny repository with the guard installed the way `tests/conftest.py` installs it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

CONFTEST = textwrap.dedent(
    f"""
    import sys
    from pathlib import Path

    sys.path.insert(0, {str(TESTS)!r})
    import worktree_guard


    def pytest_configure(config):
        worktree_guard.install(config, Path(__file__).resolve().parent)
    """
)

LEAKY = textwrap.dedent(
    """
    from pathlib import Path

    ROOT = Path(__file__).resolve().parent


    def test_writes_a_build_output_into_the_repository():
        (ROOT / "data" / "catalog").mkdir(parents=True)
        (ROOT / "data" / "catalog" / "index.html").write_text("a page in the repository")


    def test_edits_a_tracked_file_and_leaves_a_stray_file():
        (ROOT / "notes.txt").write_text("changed by a test")
        (ROOT / "stray.txt").write_text("left behind")


    def test_rewrites_an_ignored_build_output():
        (ROOT / "build" / "manifest.json").write_text('{"rebuilt": true}')
    """
)

TIDY = textwrap.dedent(
    """
    def test_writes_only_under_its_temp_dir(tmp_path):
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "out.txt").write_text("fine")


    def test_reads_the_repository():
        from pathlib import Path

        assert (Path(__file__).resolve().parent / "notes.txt").read_text() == "tracked"
    """
)


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=guard", "-c", "user.email=guard@example.test", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def throwaway_repo(folder: Path, test_file: str) -> Path:
    """A committed git repository with the guard, one test file, a tracked file and an ignored output."""
    folder.mkdir()
    (folder / "pytest.ini").write_text("[pytest]\n")
    (folder / ".gitignore").write_text("data/\nbuild/\n__pycache__/\n.pytest_cache/\n")
    (folder / "conftest.py").write_text(CONFTEST)
    (folder / "test_it.py").write_text(test_file)
    (folder / "notes.txt").write_text("tracked")
    (folder / "build").mkdir()
    (folder / "build" / "manifest.json").write_text('{"rebuilt": false}')
    git(folder, "init", "-q")
    git(folder, "add", ".")
    git(folder, "commit", "-q", "-m", "a repository under test")
    return folder


def run_pytest(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "MESH_"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,  # a hang guard only: each session takes seconds
    )


@pytest.mark.parametrize("xdist", [[], ["-n", "2", "--dist", "loadfile"]], ids=["serial", "xdist"])
def test_the_guard_fails_a_session_whose_tests_write_into_the_repository_and_names_the_files(
    tmp_path: Path, xdist: list[str]
) -> None:
    repo = throwaway_repo(tmp_path / "repo", LEAKY)

    result = run_pytest(repo, *xdist)

    output = result.stdout + result.stderr
    assert "3 passed" in output, output  # the tests themselves pass: only the guard fails the session
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, output
    assert "the tests changed the repository's working tree" in output
    assert "created  data/catalog/index.html" in output
    assert "git status, new entry:  M notes.txt" in output
    assert "git status, new entry: ?? stray.txt" in output
    assert "modified build/manifest.json" in output
    # Reported once, by the controller, not by each xdist worker.
    assert output.count("the tests changed the repository's working tree") == 1


@pytest.mark.parametrize("xdist", [[], ["-n", "2", "--dist", "loadfile"]], ids=["serial", "xdist"])
def test_the_guard_passes_a_session_whose_tests_write_only_under_their_temp_dirs(
    tmp_path: Path, xdist: list[str]
) -> None:
    repo = throwaway_repo(tmp_path / "repo", TIDY)

    result = run_pytest(repo, *xdist)

    output = result.stdout + result.stderr
    assert result.returncode == pytest.ExitCode.OK, output
    assert "2 passed" in output
    assert "changed the repository's working tree" not in output


def test_only_a_deliberate_write_under_an_allowed_prefix_goes_unreported() -> None:
    from worktree_guard import TreeState, differences

    before = TreeState(git=True, status=frozenset(), files={"data/mesh.duckdb": (1, 10)})
    after = TreeState(
        git=True,
        status=frozenset({" M tests/snapshots/mesh.json", "?? stray.txt"}),
        files={"data/mesh.duckdb": (2, 10), "tests/snapshots/new.json": (3, 1)},
    )

    assert differences(before, after, allowed=("tests/snapshots/",)) == [
        "git status, new entry: ?? stray.txt",
        "modified data/mesh.duckdb",
    ]
    assert len(differences(before, after)) == 4


def test_a_whole_folder_written_into_the_repository_is_one_finding_with_its_file_count() -> None:
    from worktree_guard import TreeState, differences

    before = TreeState(git=True, files={"data/mesh.duckdb": (1, 10)})
    run = "data/dbt/sales/run-1"
    after = TreeState(
        git=True,
        files={
            "data/mesh.duckdb": (1, 10),
            "data/scorecard.html": (2, 5),
            **{f"{run}/compiled/m{i}.sql": (2, 1) for i in range(3)},
        },
    )

    assert differences(before, after) == [
        f"created  data/dbt/ (3 files, e.g. {run}/compiled/m0.sql)",
        "created  data/scorecard.html",
    ]
    assert differences(after, before) == [
        f"deleted  data/dbt/ (3 files, e.g. {run}/compiled/m0.sql)",
        "deleted  data/scorecard.html",
    ]
