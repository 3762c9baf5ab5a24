"""The change log of a command: every file and folder it wrote, to report them or to undo them all.

A refusal half-way (a dbt project that does not parse, say) rolls the log back and leaves the
repository as it was.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path


class Changes:
    """Files and folders a command created or modified, so it can report them or undo them all."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.created: list[Path] = []
        self.adopted: list[Path] = []
        self.originals: dict[Path, str] = {}

    def _mkdir(self, folder: Path) -> None:
        missing = [p for p in [folder, *folder.parents] if not p.exists()]
        for path in reversed(missing):
            path.mkdir()
            self.created.append(path)

    def mkdir(self, folder: Path) -> None:
        """Create a folder (and its parents), recording each one created."""
        self._mkdir(folder)

    def write(self, path: Path, text: str) -> None:
        """Write a file, recording whether it is new or what it held before."""
        if path not in self.originals and path not in self.created:
            if path.exists():
                self.originals[path] = path.read_text()
            else:
                self._mkdir(path.parent)
                self.created.append(path)
        path.write_text(text)

    def record(self, path: Path) -> None:
        """Record a file or folder another tool is about to write (dbt, `mesh prepare`), to undo it."""
        if path in self.originals or path in self.created:
            return
        if path.is_file():
            self.originals[path] = path.read_text()
        elif not path.exists():
            self.created.append(path)

    def adopt(self, path: Path) -> None:
        """Record a file, folder tree or link created by someone else (a copy, a symlink)."""
        self.created.append(path)
        self.adopted.append(path)

    def rollback(self) -> None:
        """Undo every change, newest first."""
        for path, text in self.originals.items():
            path.write_text(text)
        for path in reversed(self.created):
            if path.is_symlink() or path.is_file():
                path.unlink(missing_ok=True)
            elif path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
        self.created.clear()
        self.adopted.clear()
        self.originals.clear()

    def report(self) -> tuple[list[str], list[str]]:
        """Created files (not folders) and modified files, relative to the root."""

        def rel(path: Path) -> str:
            try:
                return str(path.relative_to(self.root))
            except ValueError:
                return str(path)

        created = [rel(p) + ("/" if p.is_dir() else "") for p in self.adopted]
        created += [rel(p) for p in self.created if p not in self.adopted and p.is_file()]
        return created, [rel(p) for p in self.originals]


@dataclass
class Scaffolded:
    """What a command did: files written, things worth knowing, and what to run next."""

    created: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)
