"""Agreement files on disk: where one lives, reading a product's agreements, and errors in its terms.

Read with the specs, so they must stay cheap: the registry scans each product's `access/` folder once
(`stamped_files`) and parses at load only the files of consumer products; the others (people, teams,
service principals) when first asked for (`Registry.agreements`).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from mesh_assets.product.agreement import ACCESS_FOLDER, AccessAgreement, Consumer, State
from mesh_assets.product.errors import SpecIssue

SCHEMA_HEADER = "# yaml-language-server: $schema=../../../../../mesh_assets/schemas/agreement.schema.json\n"
"""First line of a written agreement: editors validate and complete it against the shipped schema."""


@dataclass(frozen=True)
class LoadedAgreement:
    """An agreement, the file it was read from and the product whose port it is for."""

    agreement: AccessAgreement
    path: Path
    producer: str
    """`<domain>.<product>` of the provider."""

    @property
    def id(self) -> str:
        """`<producer>/<file stem>`: how commands name it, e.g. `sales.sales/ana@example.com`."""
        return f"{self.producer}/{self.path.stem}"

    def state(self, today: date) -> State:
        """The agreement's state on `today`."""
        return self.agreement.state(today)


def agreement_path(product_folder: Path, consumer: Consumer, major: int, taken: Iterable[Path] = ()) -> Path:
    """Where a new agreement of `consumer` on `major` is written: `<consumer>.yaml`, or `@v<major>` when
    that name already holds another version's agreement."""
    folder = product_folder / ACCESS_FOLDER
    plain = folder / f"{consumer.slug}.yaml"
    return plain if plain not in set(taken) else folder / f"{consumer.slug}@v{major}.yaml"


def stamped_files(product_folder: Path) -> list[tuple[str, int]]:
    """`(path, modification time)` of a product's agreement files, sorted: the registry's cache key.

    `os.scandir` rather than `Path.glob`: on a mesh of 1,000 products this runs for every load, and a
    scan is a third of a glob's cost (`benchmarks/access.py`).
    """
    try:
        with os.scandir(product_folder / ACCESS_FOLDER) as entries:
            found = [(e.path, e.stat().st_mtime_ns) for e in entries if e.name.endswith(".yaml")]
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(found)


def read_agreement(
    path: Path, producer: str, parse: Callable[[str], Any], issues: list[SpecIssue]
) -> LoadedAgreement | None:
    """One agreement file, or None (with issues) when it does not validate."""
    try:
        data = parse(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        issues.append(SpecIssue(path, where, "not valid YAML", "fix the YAML syntax at that position"))
        return None
    if not isinstance(data, dict):
        issues.append(
            SpecIssue(path, "", "the file is not a mapping of fields", "write it with `mesh access request`")
        )
        return None
    try:
        agreement = AccessAgreement.model_validate(data)
    except ValidationError as exc:
        issues.extend(_issue(path, error) for error in exc.errors())
        return None
    stem = path.stem
    expected = {agreement.consumer.slug, f"{agreement.consumer.slug}@v{agreement.major}"}
    if stem not in expected:
        issues.append(
            SpecIssue(
                path,
                "consumer.id",
                f"the file is named '{stem}' but is the agreement of {agreement.consumer}",
                f"rename it to {agreement.consumer.slug}.yaml (one file per consumer and port version)",
            )
        )
        return None
    return LoadedAgreement(agreement, path, producer)


def _field_path(loc: tuple) -> str:
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            parts[-1] = f"{parts[-1]}[{part}]" if parts else f"[{part}]"
        else:
            parts.append(str(part))
    return ".".join(parts)


def _issue(path: Path, error: dict) -> SpecIssue:
    """A pydantic error of an agreement file, told with its field and a fix drawn from the model."""
    loc = tuple(error["loc"])
    where = _field_path(loc)
    name = str(loc[-1]) if loc else ""
    model = Consumer if loc[:1] == ("consumer",) else AccessAgreement
    known = {info.alias or field: info.description or "" for field, info in model.model_fields.items()}
    kind = error["type"]
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(name, known, n=1)
        fix = f"did you mean '{close[0]}'? Otherwise remove it" if close else "remove it"
        return SpecIssue(path, where, f"unknown field '{name}'", fix)
    if kind == "missing":
        return SpecIssue(path, where, "required field is missing", f"add '{name}': {known.get(name, '')}")
    message = error["msg"].removeprefix("Value error, ")
    got = error.get("input")
    if not isinstance(got, dict | list) and got is not None:
        message = f"{message} (got {got!r})"
    fix = (
        "use one of the allowed values above"
        if kind in {"enum", "literal_error"}
        else (f"give '{name}' the expected value: {known.get(name) or 'see the message'}")
    )
    return SpecIssue(path, where, message, fix)


def dump(agreement: AccessAgreement) -> str:
    """An agreement as the YAML file it is kept in (the schema header first, fields in model order)."""
    data = agreement.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"schema_ref"})
    if not data.get("decisions"):
        data.pop("decisions", None)
    return SCHEMA_HEADER + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110)


def without_legacy_approvals(path: Path, data: dict, issues: list[SpecIssue]) -> dict:
    """Refuse `access.approved_consumers` (approvals are agreement files now), naming the migration.

    Refused rather than read with a warning: an approval in the spec has no purpose category, requester,
    decision or dates, so reading it would grant access nobody can audit. The rest of the spec is still
    validated (a copy: the parsed data may be shared through the spec cache).
    """
    access_section = data.get("access")
    if not isinstance(access_section, dict) or "approved_consumers" not in access_section:
        return data
    listed = access_section.get("approved_consumers") or []
    issues.append(
        SpecIssue(
            path,
            "access.approved_consumers",
            "approvals moved out of the spec into access agreement files (access/<consumer>.yaml beside it)"
            + (f"; {len(listed)} approval(s) listed here are not read" if listed else ""),
            "run `mesh access migrate`, which writes one agreement per approval and removes the field",
        )
    )
    return {**data, "access": {k: v for k, v in access_section.items() if k != "approved_consumers"}}
