"""The access audit trail: every request, decision and grant change, appended and tamper-evident.

Where: one log per product, `domains/<d>/products/<p>/access/audit.jsonl`, beside the agreement files it
records, so the entry and the change it records arrive in the same pull request and are reviewed together
(a mesh-wide log would make every access pull request conflict with every other). Grant changes are facts
of one environment's warehouse, not of the repository: `mesh access sync` appends them to the
environment's own log, `<data dir>/access/grants.audit.jsonl`, in the same format.

Tamper-evident, not tamper-proof: each entry carries the SHA-256 of the entry before it (`prev`) and of
itself (`hash`, over its canonical JSON), so editing, removing or reordering an entry breaks the chain at
that entry, and `verify` names it. Rewriting the whole tail consistently is still possible for someone
with write access; git history and review are what catch that.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

GENESIS = "0" * 64
"""The `prev` of a log's first entry."""
GRANTS_LOG = Path("access") / "grants.audit.jsonl"
"""An environment's grant-change log, relative to its data folder."""


def _digest(entry: dict) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _last_hash(path: Path) -> tuple[str, int]:
    """The hash and sequence number of a log's last entry (genesis for a missing or empty log)."""
    if not path.exists():
        return GENESIS, 0
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if not lines:
        return GENESIS, 0
    last = json.loads(lines[-1])
    return str(last.get("hash", GENESIS)), int(last.get("seq", len(lines)))


def append(
    path: Path, *, by: str, action: str, agreement: str, what: str, why: str, at: datetime | None = None
) -> dict:
    """Append one entry (who, when, what, why) chained to the log's last one; returns the entry."""
    previous, seq = _last_hash(path)
    moment = (at or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    entry = {
        "seq": seq + 1,
        "at": moment.isoformat().replace("+00:00", "Z"),
        "by": by,
        "action": action,
        "agreement": agreement,
        "what": what,
        "why": why,
        "prev": previous,
    }
    entry["hash"] = _digest(entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(json.dumps(entry, sort_keys=False) + "\n")
    return entry


@dataclass(frozen=True)
class Verification:
    """The outcome of checking one log's chain."""

    path: Path
    entries: int
    problem: str | None
    """None when intact; else the first broken entry, named by line and sequence number."""

    @property
    def intact(self) -> bool:
        """Whether every entry is chained to the one before and unedited."""
        return self.problem is None


def verify(path: Path) -> Verification:
    """Check a log's chain from the start; name the first entry edited, removed or out of order."""
    previous = GENESIS
    count = 0
    for line_number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        count += 1
        try:
            entry = json.loads(line)
        except ValueError:
            return Verification(path, count, f"line {line_number} is not JSON (edited by hand?)")
        seq = entry.get("seq")
        if entry.get("prev") != previous:
            return Verification(
                path,
                count,
                f"line {line_number} (entry {seq}) does not follow the entry before it: an entry before it "
                "was removed, reordered or edited",
            )
        if entry.get("hash") != _digest(entry):
            return Verification(
                path,
                count,
                f"line {line_number} (entry {seq}, {entry.get('action')}) was edited after it was written",
            )
        previous = entry["hash"]
    return Verification(path, count, None)


def read(path: Path) -> list[dict]:
    """Every entry of a log, in order (none when there is no log)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
