"""The `dataproduct.yaml` draft an import makes: what it still lacks, judged by the spec models."""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Tag
from pydantic.fields import FieldInfo

from mesh_assets.product.spec import DataProductSpec


@dataclass(frozen=True)
class FieldGap:
    """A mandatory spec field the contract does not provide."""

    field: str
    hint: str

    def render(self) -> str:
        """`field: hint`."""
        return f"{self.field}: {self.hint}" if self.hint else self.field


@dataclass
class ImportResult:
    """A `dataproduct.yaml` draft from an ODCS contract, and what it still lacks."""

    draft: dict[str, Any]
    missing: list[FieldGap] = field(default_factory=list)
    """Mandatory fields left out because the contract does not say; `mesh validate` names them too."""
    problems: list[str] = field(default_factory=list)
    """Values the contract gives that the spec models refuse (`field: message`)."""
    notes: list[str] = field(default_factory=list)
    """What the import could not carry over, or inferred."""

    @property
    def complete(self) -> bool:
        """True when the draft is a valid spec as it stands."""
        return not self.missing and not self.problems

    @property
    def name(self) -> str | None:
        """The product name of the draft, if known."""
        return self.draft.get("name")

    @property
    def domain(self) -> str | None:
        """The domain of the draft, if known."""
        return self.draft.get("domain")


def _models_in(annotation: Any) -> list[tuple[type[BaseModel], tuple[str, ...]]]:
    """The spec models a field's type can hold (through `| None`, lists, dicts, `Annotated` and unions),
    each with the union tags (`Tag("source")`) it is chosen by."""
    found: list[tuple[type[BaseModel], tuple[str, ...]]] = []
    pending: list[tuple[Any, tuple[str, ...]]] = [(annotation, ())]
    while pending:
        current, tags = pending.pop(0)
        if isinstance(current, type) and issubclass(current, BaseModel):
            found.append((current, tags))
            continue
        args = typing.get_args(current)
        if typing.get_origin(current) is typing.Annotated:
            marks = tuple(str(mark.tag) for mark in args[1:] if isinstance(mark, Tag))
            pending.append((args[0], tags + marks))
        else:
            pending.extend((arg, tags) for arg in args)
    return found


def _field_of(model: type[BaseModel], name: str) -> FieldInfo | None:
    """The field `name` of a model, by its name or its alias (`$schema`)."""
    for field_name, info in model.model_fields.items():
        if name in (field_name, info.alias):
            return info
    return None


def _tagged(model: type[BaseModel], tags: tuple[str, ...], part: str) -> bool:
    """Is `part` the union branch tag of `model`: its `Tag`, or the value of its `Literal` field (`kind`)?"""
    if part in tags or part == model.__name__:  # a union without a discriminator is tagged by class name
        return True
    return any(
        typing.get_origin(info.annotation) is typing.Literal and part in typing.get_args(info.annotation)
        for info in model.model_fields.values()
    )


def field_description(loc: Sequence[Any]) -> str:
    """The description of the spec field at a pydantic error location, resolved through the models
    (`DataProductSpec` -> `output_ports` -> `OutputPort` -> `columns` -> `Column` -> `type`), so a field
    is described by its own model, never by a namesake of another one; "" when the path leads nowhere."""
    candidates: list[tuple[type[BaseModel], tuple[str, ...]]] = [(DataProductSpec, ())]
    description = ""
    for part in loc:
        if isinstance(part, int):
            continue  # a list's position: the same model
        tagged = [(model, tags) for model, tags in candidates if _tagged(model, tags, str(part))]
        if len(candidates) > 1 and tagged:
            # A union's branch tag, which pydantic puts in the location (`input_ports[0].product.version`
            # names ProductInput's `version`, though `product` is also one of its fields).
            candidates, description = tagged, ""
            continue
        holders = [(model, _field_of(model, str(part))) for model, _ in candidates]
        held = [(model, info) for model, info in holders if info is not None]
        if not held:
            return ""
        description = held[0][1].description or ""
        candidates = [found for _, info in held for found in _models_in(info.annotation)]
    return description


def _path(loc: Sequence[Any], draft: Mapping[str, Any]) -> str:
    """`output_ports[0].columns[2].description` from a pydantic error location (union tags skipped)."""
    parts: list[str] = []
    node: Any = draft
    for part in loc:
        if isinstance(part, int):
            if parts:
                parts[-1] = f"{parts[-1]}[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
        elif isinstance(node, Mapping) and part not in node and parts and len(loc) > 1 and part != loc[-1]:
            continue  # a discriminated union's branch tag: not a field the user writes
        else:
            parts.append(str(part))
            node = node.get(part) if isinstance(node, Mapping) else None
    return ".".join(parts)


def check_draft(draft: Mapping[str, Any]) -> tuple[list[FieldGap], list[str]]:
    """Validate a draft with the spec models: the mandatory fields it lacks, and its other errors."""
    from pydantic import ValidationError

    try:
        DataProductSpec.model_validate(dict(draft))
    except ValidationError as exc:
        missing, problems = [], []
        for error in exc.errors():
            where = _path(error["loc"], draft)
            if error["type"] == "missing":
                missing.append(FieldGap(where, field_description(error["loc"])))
            else:
                problems.append(f"{where}: {error['msg'].removeprefix('Value error, ')}")
        return missing, problems
    return [], []


def draft_yaml(result: ImportResult, source: str, schema_ref: str | None = None) -> str:
    """The draft as `dataproduct.yaml` text, headed by what is still to fill."""
    import yaml

    header = []
    if schema_ref:
        header.append(f"# yaml-language-server: $schema={schema_ref}")
    header.append(f"# Draft imported from the ODCS contract {source} by `mesh contract import`.")
    if result.missing or result.problems:
        header.append("# Still to fill or fix before `mesh validate` passes:")
        header += [f"#   - {gap.field}" for gap in result.missing]
        header += [f"#   - {problem}" for problem in result.problems]
    body = yaml.safe_dump(result.draft, sort_keys=False, allow_unicode=True, width=110)
    return "\n".join(header) + "\n" + body
