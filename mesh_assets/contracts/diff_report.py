"""The contract changes of the working tree against a git ref, as `mesh contract diff` reports them."""

from __future__ import annotations

import json
from dataclasses import dataclass

from mesh_assets.contracts.diff_rules import Change


@dataclass
class DiffReport:
    """The contract changes of the working tree against a git ref."""

    base: str
    commit: str
    changes: list[Change]

    @property
    def blocking(self) -> list[Change]:
        """Breaking changes without a new major (or another allowance): the command fails on these."""
        return [c for c in self.changes if c.blocking]

    @property
    def ok(self) -> bool:
        """No blocking change."""
        return not self.blocking

    def sorted(self) -> list[Change]:
        """Changes, blocking first, then by product, port and column."""
        return sorted(self.changes, key=lambda c: (c.rank, c.product, c.port or "", c.column or ""))

    def summary(self) -> str:
        """One line: how many changes of each kind."""
        if not self.changes:
            return f"no contract changes against {self.base} ({self.commit[:10]})"
        allowed = sum(1 for c in self.changes if c.breaking and not c.blocking)
        warnings = sum(1 for c in self.changes if c.warning)
        return (
            f"{len(self.changes)} contract change(s) against {self.base} ({self.commit[:10]}): "
            f"{len(self.blocking)} breaking without a new major, {allowed} breaking but allowed, "
            f"{warnings} warning(s)"
        )

    def to_json(self) -> str:
        """Machine-readable report, for CI."""
        return json.dumps(
            {
                "ok": self.ok,
                "base": self.base,
                "commit": self.commit,
                "summary": self.summary(),
                "changes": [c.to_dict() for c in self.sorted()],
            },
            indent=2,
        )
