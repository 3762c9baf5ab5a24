"""The error type of the product model: one problem in one spec, and the exception listing them all.

A leaf module, so anything can report a problem in a spec without importing the registry.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SpecIssue:
    """One problem in one spec file: where it is, what is wrong, and how to fix it."""

    file: Path
    field: str
    message: str
    fix: str
    severity: str = "error"

    def render(self, root: Path | None = None) -> str:
        """`file: field: message. Fix: ...`, with the file relative to `root`."""
        shown = self.file
        if root is not None:
            with contextlib.suppress(ValueError):  # a file outside the root is shown in full
                shown = self.file.resolve().relative_to(root.resolve())
        where = f"{shown}: {self.field}" if self.field else f"{shown}"
        return f"{where}: {self.message}. Fix: {self.fix}"


class MeshSpecError(Exception):
    """Raised when specs are invalid; the message lists every issue, each with file, field and fix."""

    def __init__(self, issues: list[SpecIssue], root: Path | None = None) -> None:
        self.issues = issues
        lines = [f"{len(issues)} problem(s) in data product specs:"]
        lines += [f"  - {issue.render(root)}" for issue in issues]
        super().__init__("\n".join(lines))
