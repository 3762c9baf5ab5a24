"""What `mesh run` did to each product: one result type for the runner, `mesh run` and the CI gate.

`mesh run --summary-json` writes a list of these (`write_summary`) and `mesh ci` reads it back
(`read_summary`); the runner's child processes hand theirs back the same way (`to_record`/`from_record`).
The file is one JSON record per product:
`{"product", "status", "rows", "checks_passed", "warnings", "blocking_failed", "seconds", "error"}`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any


class RunStatus(StrEnum):
    """How a product's build ended (a `StrEnum`: it compares equal to, and is written as, its value)."""

    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"
    """Not run: a product it reads failed (or was skipped)."""
    INTERRUPTED = "interrupted"
    """Not built: Ctrl-C or SIGTERM stopped the run first."""


class SummaryError(ValueError):
    """A summary file that is not what `mesh run --summary-json` writes."""


@dataclass(frozen=True)
class ProductResult:
    """What one product's build produced."""

    product: str
    """The product's key, `<domain>.<product>`."""
    status: RunStatus
    rows: Mapping[str, int | None] = field(default_factory=dict)
    """Rows published per port (`v<major>`); None when the materialization did not say."""
    checks_passed: int = 0
    warnings: int = 0
    """Failed checks of warning severity."""
    blocking_failed: int = 0
    """Failed checks of error severity: the port was not published."""
    seconds: float = 0.0
    error: str = ""

    @property
    def domain(self) -> str:
        """The product's domain."""
        return self.product.partition(".")[0]

    @property
    def name(self) -> str:
        """The product's name inside its domain."""
        return self.product.partition(".")[2]

    @property
    def failure(self) -> str | None:
        """Why this result fails a gate (not built, or a blocking check failed); None when it passes."""
        if self.status != RunStatus.OK:
            return f"{self.status}: {self.error}"
        if self.blocking_failed:
            return f"{self.blocking_failed} blocking check(s) failed"
        return None

    def to_record(self) -> dict[str, Any]:
        """The result as one record of the summary file."""
        return {
            "product": self.product,
            "status": self.status.value,
            "rows": dict(self.rows),
            "checks_passed": self.checks_passed,
            "warnings": self.warnings,
            "blocking_failed": self.blocking_failed,
            "seconds": round(self.seconds, 2),
            "error": self.error,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ProductResult:
        """The result a record of the summary file holds; `KeyError`/`ValueError` when it is not one."""
        return cls(
            product=str(record["product"]),
            status=RunStatus(record["status"]),
            rows={str(port): rows for port, rows in dict(record.get("rows") or {}).items()},
            checks_passed=int(record.get("checks_passed", 0)),
            warnings=int(record.get("warnings", 0)),
            blocking_failed=int(record.get("blocking_failed", 0)),
            seconds=float(record.get("seconds", 0.0)),
            error=str(record.get("error") or ""),
        )


def write_summary(path: Path, results: Iterable[ProductResult]) -> None:
    """Write `results` to `path` as `mesh run --summary-json` does (folders created as needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([r.to_record() for r in results], indent=2) + "\n")


def read_summary(path: Path) -> list[ProductResult]:
    """The results a summary file written by `write_summary` holds, in its order."""
    fix = "write it with `mesh run --summary-json`"
    try:
        records = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SummaryError(f"{path}: not JSON ({exc}); {fix}") from exc
    if not isinstance(records, list):
        raise SummaryError(f"{path}: expected a list of product records; {fix}")
    results = []
    for index, record in enumerate(records):
        try:
            results.append(ProductResult.from_record(record))
        except KeyError as exc:
            raise SummaryError(f"{path}: record {index} has no field {exc}; {fix}") from exc
        except (TypeError, ValueError, AttributeError) as exc:
            raise SummaryError(f"{path}: record {index} is not a product result ({exc}); {fix}") from exc
    return results
