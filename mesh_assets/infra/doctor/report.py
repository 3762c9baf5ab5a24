"""The result of one `mesh doctor` check: what was checked, its status, what was seen and the fix."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Status(StrEnum):
    """How a check ended. Only `fail` fails `mesh doctor`: `cannot-tell` is a question left open."""

    PASS = "pass"
    FAIL = "fail"
    CANNOT_TELL = "cannot-tell"


class CheckResult(BaseModel):
    """One check's verdict, with what it saw and, unless it passed, how to fix it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    check: str = Field(description="What was checked, in a few words.", examples=["warehouse usable"])
    status: Status = Field(description="pass, fail or cannot-tell.", examples=["pass"])
    detail: str = Field(
        description="What the check saw: the value read, the error returned, or why it cannot tell.",
        examples=["MESH_WH (a query ran on it)"],
    )
    fix: str = Field(
        default="",
        description="What to do when the check does not pass; empty when it passes.",
        examples=["set SNOWFLAKE_WAREHOUSE, or GRANT USAGE ON WAREHOUSE <wh> TO ROLE <role>"],
    )


def passed(check: str, detail: str) -> CheckResult:
    """A check that proved what it checks."""
    return CheckResult(check=check, status=Status.PASS, detail=detail)


def failed(check: str, detail: str, fix: str) -> CheckResult:
    """A check that found the target unfit, and the fix."""
    return CheckResult(check=check, status=Status.FAIL, detail=detail, fix=fix)


def cannot_tell(check: str, detail: str, fix: str) -> CheckResult:
    """A check whose question the target did not answer; `detail` says why, `fix` how to find out."""
    return CheckResult(check=check, status=Status.CANNOT_TELL, detail=detail, fix=fix)


def exit_code(results: Iterable[CheckResult]) -> int:
    """1 if any check failed, else 0 (`cannot-tell` alone does not fail)."""
    return 1 if any(result.status is Status.FAIL for result in results) else 0


def to_json(results: Iterable[CheckResult]) -> list[dict[str, str]]:
    """The results as JSON-ready records `{check, status, detail, fix}`, in check order."""
    return [result.model_dump(mode="json") for result in results]
