"""A spec that does not validate, told in the user's terms: each pydantic error becomes a `SpecIssue` naming
the field as written in `dataproduct.yaml` (without pydantic's union branch tags) and a fix drawn from the
spec models themselves (the closest field name, the missing field's description, the expected type).
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

from pydantic import BaseModel

from mesh_assets.product import spec as spec_module
from mesh_assets.product.errors import SpecIssue
from mesh_assets.product.spec import DataProductSpec


def _field_path(loc: tuple) -> str:
    parts: list[str] = []
    for position, part in enumerate(loc):
        # pydantic inserts the union's branch tag right after `input_ports[<i>]`, `transformation` and
        # a port's `bindings[<j>]`; it is not a field the user wrote.
        if (
            (loc[:1] == ("input_ports",) and position == 2)
            or (loc[:1] == ("transformation",) and position == 1)
            or (loc[2:3] == ("bindings",) and position == 4)
        ):
            continue
        if isinstance(part, int):
            parts[-1] = f"{parts[-1]}[{part}]" if parts else f"[{part}]"
        else:
            parts.append(str(part))
    return ".".join(parts)


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The spec model that holds the field at `loc` (following nested models, lists and unions)."""
    import typing

    model: type[BaseModel] | None = DataProductSpec
    position = 0
    for part in loc[:-1]:
        position += 1
        if model is None or isinstance(part, int):
            continue
        if (
            (loc[:1] == ("input_ports",) and position == 3)
            or (loc[:1] == ("transformation",) and position == 2)
            or (loc[2:3] == ("bindings",) and position == 5)
        ):
            from mesh_assets.product import bindings

            # The branch tag of a union: pick the branch by its tag.
            branches = {
                "source": spec_module.SourceInput,
                "product": spec_module.ProductInput,
                "sql": spec_module.SqlTransformation,
                "python": spec_module.PythonTransformation,
                "dbt": spec_module.DbtTransformation,
                "iceberg": bindings.IcebergBinding,
                "parquet": bindings.ParquetBinding,
                "share": bindings.ShareBinding,
            }
            model = branches.get(str(part))
            continue
        info = model.model_fields.get(str(part))
        if info is None:
            return None
        candidates = [info.annotation]
        found = None
        while candidates:
            current = candidates.pop()
            if isinstance(current, type) and issubclass(current, BaseModel):
                found = current
                break
            candidates.extend(typing.get_args(current))
        model = found
    return model


def _all_fields() -> dict[str, str]:
    """Every spec field name (and alias) to its description, for suggestions and fixes."""
    fields: dict[str, str] = {}
    models = [v for v in vars(spec_module).values() if isinstance(v, type) and issubclass(v, BaseModel)]
    # A name several models share (`name`, `min`...) is described by the first: the spec's own models
    # (product, ports, columns), then those it imports (the quality section's), each in definition order.
    models.sort(
        key=lambda model: (
            model.__module__ != spec_module.__name__,
            list(vars(sys.modules[model.__module__])).index(model.__name__),
        )
    )
    for model in models:
        for name, info in model.model_fields.items():
            fields.setdefault(info.alias or name, info.description or "")
    return fields


def issue_from_pydantic(path: Path, error: dict) -> SpecIssue:
    """One pydantic error of the spec at `path`, told as a `SpecIssue`: the field as the user wrote it,
    and a fix (the closest known field, the missing field's description, the expected type...)."""
    loc = tuple(error["loc"])
    where = _field_path(loc)
    name = str(loc[-1]) if loc else ""
    kind = error["type"]
    holder = _model_at(loc)
    known = (
        {info.alias or field: info.description or "" for field, info in holder.model_fields.items()}
        if holder is not None
        else _all_fields()
    )
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(name, known, n=1)
        fix = f"did you mean '{close[0]}'? Otherwise remove it" if close else "remove it"
        return SpecIssue(path, where, f"unknown field '{name}'", fix)
    if kind == "missing":
        hint = known.get(name, "")
        return SpecIssue(
            path, where, "required field is missing", f"add '{name}'" + (f": {hint}" if hint else "")
        )
    message = error["msg"].removeprefix("Value error, ")
    got = error.get("input")
    if not isinstance(got, dict | list) and got is not None:
        message = f"{message} (got {got!r})"
    if kind in {"enum", "literal_error"}:
        fix = "use one of the allowed values above"
    elif kind == "string_pattern_mismatch":
        fix = (
            f"match the pattern {error.get('ctx', {}).get('pattern')}; see the field's examples in the schema"
        )
    elif kind.endswith("_type") or kind.endswith("_parsing"):
        fix = f"give '{name}' a value of the expected type: {known.get(name, '') or message}"
    else:
        fix = "change the value as the message says"
    return SpecIssue(path, where, message, fix)
