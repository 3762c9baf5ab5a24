"""What every spec model shares: the base model (unknown keys refused), identifiers, durations, severities."""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

IDENTIFIER = r"^[a-z][a-z0-9_]*$"


# No named groups: JSON Schema patterns follow JavaScript regex rules, and editors compile them.
_DURATION = re.compile(r"^(\d+)\s*([mhd])$")


Identifier = Annotated[str, Field(pattern=IDENTIFIER, max_length=63)]


class SpecModel(BaseModel):
    """Base of every spec model: unknown keys are refused and values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def parse_duration(text: str) -> timedelta:
    """Parse `30m`, `6h` or `2d` into a timedelta; raise ValueError with the accepted forms."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"'{text}' is not a duration; write a number and a unit m, h or d, e.g. '24h'")
    n, unit = int(match[1]), match[2]
    return {"m": timedelta(minutes=n), "h": timedelta(hours=n), "d": timedelta(days=n)}[unit]


Duration = Annotated[str, Field(pattern=_DURATION.pattern, examples=["24h", "30m", "2d"])]


class Severity(StrEnum):
    """What a failing check does: `error` blocks the publish, `warn` informs."""

    ERROR = "error"
    WARN = "warn"
