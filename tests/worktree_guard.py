"""A pytest plugin that fails the session when the tests changed the repository they test.

Tests must write under their own temp dirs (the `isolated` and `mesh_copy` fixtures point every output
there). This guard proves it for the whole session: at the start it records what git reports
(`git status --porcelain --untracked-files=all`: tracked edits and new files) and a listing (path,
mtime, size) of `data/` and of every other gitignored build output (e.g. `dbt_projects/*/target`),
which git status cannot see. At the end it takes the same snapshot again; any difference fails the
session, naming the files.

Only the caches that pytest, Python, ruff, the venv and the developer's Dagster instance keep beside the
code are left out (`CACHES`). Under pytest-xdist the check runs once, in the controller, before and
after all workers; workers install nothing. `install(config, root)` is called from `pytest_configure`.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CACHES = frozenset({".venv", ".dagster_home", "__pycache__", ".pytest_cache", ".ruff_cache", ".git"})
"""Folder names never watched: caches outside the repository's tracked and untracked state."""

ALWAYS_WATCHED = ("data",)
"""Folders listed even when git does not report them as ignored (or the tree is not a git checkout)."""

SHOWN = 40
"""At most this many paths per kind of change in the report; the rest is counted."""


def _is_cache(path: str) -> bool:
    return any(part in CACHES for part in Path(path).parts)


def _git(root: Path, *args: str) -> list[str] | None:
    """NUL-separated output of a read-only git command, or None when `root` is not a git checkout."""
    try:
        done = subprocess.run(
            # No optional locks: the guard must never take `.git/index.lock` from someone committing.
            ["git", "--no-optional-locks", "-C", str(root), *args, "-z"],
            capture_output=True,
            check=False,
        )
    except FileNotFoundError:
        return None
    if done.returncode != 0:
        return None
    return [entry for entry in done.stdout.decode("utf-8", "surrogateescape").split("\0") if entry]


def _walk(root: Path, relative: str) -> Iterator[tuple[str, tuple[int, int]]]:
    top = root / relative
    if top.is_file() or top.is_symlink():
        info = top.lstat()
        yield relative.rstrip("/"), (info.st_mtime_ns, info.st_size)
        return
    for folder, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if d not in CACHES)
        for name in files:
            path = Path(folder) / name
            try:
                info = path.lstat()
            except FileNotFoundError:  # removed while we looked: it is not there
                continue
            yield path.relative_to(root).as_posix(), (info.st_mtime_ns, info.st_size)


@dataclass(frozen=True)
class TreeState:
    """What the guard compares: git's view of the tree, and the files of the ignored build outputs."""

    git: bool
    """Whether the tree is a git checkout (else only `ALWAYS_WATCHED` is listed)."""
    status: frozenset[str] = frozenset()
    """`git status --porcelain` entries, e.g. ` M README.md`, `?? notes.txt`."""
    files: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Path -> (mtime_ns, size) of every file under `data/` and the other ignored build outputs."""


def snapshot(root: Path) -> TreeState:
    """The state of the working tree at `root` now."""
    status = _git(root, "status", "--porcelain", "--untracked-files=all")
    ignored = _git(root, "ls-files", "--others", "--ignored", "--exclude-standard", "--directory")
    watched = {*ALWAYS_WATCHED, *(p.rstrip("/") for p in ignored or [] if not _is_cache(p))}
    files = dict(item for top in sorted(watched) if (root / top).exists() for item in _walk(root, top))
    if status is None:
        return TreeState(git=False, files=files)
    # With -z a rename is two entries, "R  new" then "old": the pair stays two entries, both shown.
    return TreeState(git=True, status=frozenset(e for e in status if not _is_cache(e[3:])), files=files)


def differences(before: TreeState, after: TreeState, allowed: tuple[str, ...] = ()) -> list[str]:
    """Every change between two snapshots, one line per file: what happened and where.

    Paths starting with one of `allowed` (a deliberate write, e.g. refreshing snapshots) are left out.
    """
    if allowed:
        before, after = (
            TreeState(
                git=state.git,
                status=frozenset(e for e in state.status if not e[3:].startswith(allowed)),
                files={p: v for p, v in state.files.items() if not p.startswith(allowed)},
            )
            for state in (before, after)
        )
    lines = [f"git status, new entry: {entry}" for entry in sorted(after.status - before.status)]
    lines += [f"git status, entry gone: {entry}" for entry in sorted(before.status - after.status)]
    lines += _by_folder("created ", after.files.keys() - before.files.keys(), before.files.keys())
    lines += _by_folder("deleted ", before.files.keys() - after.files.keys(), after.files.keys())
    lines += [
        f"modified {path}"
        for path in sorted(before.files.keys() & after.files.keys())
        if before.files[path] != after.files[path]
    ]
    return lines


def _by_folder(what: str, paths: set[str], other: Iterable[str]) -> list[str]:
    """One line per path, except that a whole folder that appeared (or vanished) is one line with its
    file count and first file, so a leaked build output reads as one finding, not hundreds."""
    occupied = {parent for path in other for parent in Path(path).parents}
    groups: dict[str, list[str]] = {}
    for path in sorted(paths):
        # The outermost folder of `path` that held nothing on the other side, else the file itself.
        fresh = [str(d) for d in reversed(Path(path).parents) if d != Path(".") and d not in occupied]
        groups.setdefault(fresh[0] if fresh else path, []).append(path)
    return [
        f"{what} {members[0]}"
        if len(members) == 1
        else f"{what} {folder}/ ({len(members)} files, e.g. {members[0]})"
        for folder, members in groups.items()
    ]


def _shortened(lines: list[str]) -> Iterable[str]:
    yield from lines[:SHOWN]
    if len(lines) > SHOWN:
        yield f"... and {len(lines) - SHOWN} more"


class WorktreeGuard:
    """The plugin: snapshot at session start, compare at session finish, fail the session on a change."""

    def __init__(self, root: Path, allowed: tuple[str, ...] = ()) -> None:
        self.root = root
        self.allowed = allowed
        self.before: TreeState | None = None
        self.changed: list[str] = []

    @pytest.hookimpl(tryfirst=True)  # before pytest-xdist starts its workers
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.before = snapshot(self.root)

    @pytest.hookimpl(trylast=True)  # after pytest-xdist has shut its workers down
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.before is None:
            return
        self.changed = differences(self.before, snapshot(self.root), self.allowed)
        if self.changed and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.allowed:
            terminalreporter.write_line(f"worktree guard: writes allowed under {', '.join(self.allowed)}")
        if self.before is not None and not self.before.git:
            terminalreporter.write_sep(
                "!", f"worktree guard: {self.root} is not a git checkout; only data/ is watched", yellow=True
            )
        if not self.changed:
            return
        terminalreporter.write_sep(
            "!", "the tests changed the repository's working tree", red=True, bold=True
        )
        terminalreporter.write_line(
            f"Files under {self.root} changed during this session (tests must write under their temp dirs; "
            "see the `isolated` fixture and MESH_DATA_DIR):",
            red=True,
        )
        for line in _shortened(self.changed):
            terminalreporter.write_line(f"  {line}", red=True)
        terminalreporter.write_line(
            "If someone else edited these files while the tests ran, rerun on a quiet tree.", yellow=True
        )


def install(config: pytest.Config, root: Path, allowed: tuple[str, ...] = ()) -> None:
    """Register the guard for `root`, in the controlling process only (never in an xdist worker).

    `allowed`: path prefixes (relative to `root`) the session is meant to write, e.g. `tests/snapshots/`
    while snapshots are deliberately refreshed.
    """
    if hasattr(config, "workerinput"):
        return
    if not config.pluginmanager.has_plugin("mesh-worktree-guard"):
        config.pluginmanager.register(WorktreeGuard(root, allowed), "mesh-worktree-guard")
