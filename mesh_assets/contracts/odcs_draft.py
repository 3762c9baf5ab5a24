"""The `dataproduct.yaml` draft an import makes: what it still lacks, judged by the spec models."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

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


def _field_descriptions() -> dict[str, str]:
    """Every spec field name to its description, to say what a missing field is for."""
    from pydantic import BaseModel

    from mesh_assets.product import spec as spec_module

    found: dict[str, str] = {}
    for value in vars(spec_module).values():
        if isinstance(value, type) and issubclass(value, BaseModel) and value is not BaseModel:
            for name, info in value.model_fields.items():
                found.setdefault(info.alias or name, info.description or "")
    return found


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
        hints = _field_descriptions()
        missing, problems = [], []
        for error in exc.errors():
            where = _path(error["loc"], draft)
            if error["type"] == "missing":
                missing.append(FieldGap(where, hints.get(str(error["loc"][-1]), "")))
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
