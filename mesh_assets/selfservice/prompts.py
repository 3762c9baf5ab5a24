"""Names and answers: flags first, then the person at the terminal, then a default; each one checked.

A bad flag value is refused with the flag's name; a bad answer at the terminal is asked again.
"""

from __future__ import annotations

import difflib
import keyword
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from mesh_assets.product.spec import IDENTIFIER, parse_duration
from mesh_assets.selfservice.errors import ScaffoldError

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Asker(Protocol):
    """How a command talks to the person running it (only when stdin is a terminal)."""

    def ask(self, label: str, default: str | None) -> str:
        """Ask for a value, offering `default`."""

    def tell(self, message: str) -> None:
        """Say something (e.g. why an answer was refused)."""


def suggest_identifier(text: str) -> str:
    """The nearest valid identifier to `text` (lowercase, `_` for anything else, starting with a letter)."""
    slug = re.sub(r"[^a-z0-9]+", "_", text.strip().lower()).strip("_")
    slug = re.sub(r"^[^a-z]+", "", slug)
    return (slug or "my_name")[:63]


def check_identifier(what: str, name: str) -> None:
    """Refuse a domain or product name that is not a lowercase identifier (or is a Python keyword)."""
    if not re.fullmatch(IDENTIFIER, name) or len(name) > 63:
        raise ScaffoldError(
            f"'{name}' is not a valid {what} name: use lowercase letters, digits and '_', starting with a "
            f"letter, at most 63 characters, e.g. '{suggest_identifier(name)}'"
        )
    if keyword.iskeyword(name):
        # Domains are Python packages (`domains.<name>.definitions`); a keyword cannot be imported.
        raise ScaffoldError(f"'{name}' is a Python keyword and cannot name a {what}; e.g. '{name}_data'")


def check_email(value: str) -> None:
    """Refuse a steward that is not an email address."""
    if not _EMAIL.match(value):
        raise ScaffoldError(
            f"'{value}' is not an email address; the steward is a person, e.g. ana@example.com"
        )


def check_team(value: str) -> None:
    """Refuse a team name that is not a lowercase identifier."""
    if not re.fullmatch(IDENTIFIER, value) or len(value) > 63:
        raise ScaffoldError(
            f"'{value}' is not a valid team name: lowercase letters, digits and '_', e.g. "
            f"'{suggest_identifier(value)}'"
        )


def check_choice(allowed: list[str]) -> Callable[[str], None]:
    """A check refusing a value not in `allowed`, suggesting the closest one."""

    def check(value: str) -> None:
        if value not in allowed:
            close = difflib.get_close_matches(value, allowed, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ScaffoldError(f"'{value}' is not one of {', '.join(allowed)}{hint}")

    return check


def check_duration(value: str) -> None:
    """Refuse a duration the spec cannot parse (e.g. `24h`, `30m`, `2d` are fine)."""
    try:
        parse_duration(value)
    except ValueError as exc:
        raise ScaffoldError(str(exc)) from exc


def check_text(minimum: int) -> Callable[[str], None]:
    """A check refusing a text shorter than `minimum` characters."""

    def check(value: str) -> None:
        if len(value.strip()) < minimum:
            raise ScaffoldError(f"'{value}' is too short: write at least {minimum} characters")

    return check


def answer(
    value: str | None,
    *,
    label: str,
    flag: str,
    default: str | None,
    asker: Asker | None,
    check: Callable[[str], None] | None = None,
) -> str:
    """A flag's value, else the person's answer (only with a terminal), else the default.

    A bad flag value is refused; a bad answer is asked again. Without a default and without a terminal
    the flag is required, and the refusal names it so CI logs say exactly what to add.
    """
    if value is not None:
        if check is not None:
            try:
                check(value)
            except ScaffoldError as exc:
                raise ScaffoldError(f"{flag}: {exc}") from exc
        return value
    if asker is not None:
        while True:
            got = asker.ask(label, default).strip()
            try:
                if check is not None:
                    check(got)
                return got
            except ScaffoldError as exc:
                asker.tell(str(exc))
    if default is None:
        raise ScaffoldError(f"{label} is required: pass {flag}")
    return default


def git_email(root: Path) -> str | None:
    """The person's `git config user.email`, if git knows it."""
    git = shutil.which("git")
    if git is None:
        return None
    try:
        result = subprocess.run(
            [git, "config", "--get", "user.email"], cwd=root, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    email = result.stdout.strip()
    return email if result.returncode == 0 and _EMAIL.match(email) else None
