"""The alert sensors' cursors: small versioned JSON, read back, or started afresh with a word in the log.

Each cursor is one JSON object stored by Dagster with every tick, its format version under `"v"`. A
sensor must tick whatever its stored cursor says: one written by another version of the code (the format
changed), or garbled (edited by hand, cut short), is dropped and the sensor starts afresh, and the tick's
log says which and what that costs (`ON_RESET`: e.g. alerts may repeat), rather than the tick failing
until someone clears the cursor.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar, Self


class CursorError(ValueError):
    """A stored cursor this code cannot read: not JSON, not an object, another version or a bad field."""

    def __init__(self, reason: str, *, garbled: bool = True) -> None:
        super().__init__(reason)
        self.garbled = garbled
        """False for a well-formed cursor of another format version (expected after an upgrade)."""


class VersionedCursor(ABC):
    """Base of a sensor cursor stored as compact JSON with its format version under `"v"`.

    A subclass (a dataclass whose defaults are the fresh cursor) sets `VERSION` (bumped when its shape
    changes, so an older cursor starts afresh), `ON_RESET`, and maps its fields to and from the stored
    object (`to_payload`, `from_payload`; the `"v"` key is handled here).
    """

    VERSION: ClassVar[int] = 1
    """The format this code writes and reads."""
    ON_RESET: ClassVar[str] = "alerts may repeat"
    """What starting afresh costs, said in the log when it happens."""
    SORT_KEYS: ClassVar[bool] = True
    """Whether the JSON keys are sorted; a cursor keeps the byte layout it was first written with."""

    @classmethod
    @abstractmethod
    def from_payload(cls, data: Mapping[str, Any]) -> Self:
        """The cursor held by a stored object of this `VERSION` (may raise on a field of the wrong type)."""

    @abstractmethod
    def to_payload(self) -> dict[str, Any]:
        """The object to store, without `"v"`, keys in the order they are written."""

    @classmethod
    def parse(cls, text: str | None) -> Self:
        """The cursor stored as `text`; a fresh one when there is none yet (the sensor's first tick).

        Raises `CursorError` for text this code cannot read, saying why.
        """
        if not text:
            return cls()
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise CursorError(f"is not JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise CursorError(f"is a JSON {type(data).__name__}, not an object")
        if data.get("v") != cls.VERSION:
            raise CursorError(
                f"has format version {data.get('v')!r}; this code reads version {cls.VERSION}", garbled=False
            )
        try:
            return cls.from_payload(data)
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            raise CursorError(f"has a field this code cannot read ({type(exc).__name__}: {exc})") from exc

    @classmethod
    def load(cls, text: str | None, log: logging.Logger, what: str) -> Self:
        """The cursor stored as `text`, or a fresh one (logged, naming `what` sensor) if it is unreadable."""
        try:
            return cls.parse(text)
        except CursorError as exc:
            # Garbled is a fault someone should look at; another version is what an upgrade leaves behind.
            level = logging.ERROR if exc.garbled else logging.WARNING
            log.log(level, f"the {what} cursor {exc}; starting afresh ({cls.ON_RESET})")
            return cls()

    def dumps(self) -> str:
        """The cursor as compact JSON (it is stored with every tick)."""
        return json.dumps(
            {"v": self.VERSION, **self.to_payload()}, separators=(",", ":"), sort_keys=self.SORT_KEYS
        )
