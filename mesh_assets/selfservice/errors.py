"""The refusals of `mesh new` and of onboarding: what is wrong, how to fix it, and an exit code."""

from __future__ import annotations


class ScaffoldError(Exception):
    """A refusal: bad input or a failed step. The message says what is wrong and how to fix it."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class OnboardError(ScaffoldError):
    """A refusal to onboard a dbt project, saying why and how to fix it."""
