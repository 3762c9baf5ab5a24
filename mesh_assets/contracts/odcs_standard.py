"""The installed Open Data Contract Standard as the judge of every contract: JSON Schema and models.

Both are loaded from the `open-data-contract-standard` package at first use, never copied, so a contract
is valid exactly when the installed standard says so. jsonschema and the ODCS models are imported lazily:
code locations link ports to contracts without paying for them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import Any


@cache
def json_schema() -> dict[str, Any]:
    """The official ODCS JSON Schema, read from the installed `open-data-contract-standard` package."""
    from importlib.resources import files

    return json.loads(files("open_data_contract_standard").joinpath("schema.json").read_text("utf-8"))


@cache
def _validator() -> Any:
    import jsonschema

    schema = json_schema()
    return jsonschema.validators.validator_for(schema)(schema)


@cache
def _fast_validator() -> Any:
    import jsonschema_rs

    return jsonschema_rs.validator_for(json_schema())


def schema_errors(document: Mapping[str, Any]) -> list[str]:
    """Where `document` breaks the official JSON Schema: `path: message`, empty when valid.

    Validity is decided by `jsonschema_rs` (0.5 ms a contract where `jsonschema` takes ~35 ms: the
    governance run exports every contract, each checked); only a refused document is walked by
    `jsonschema`, whose messages `mesh contract validate` has always shown (as fitness does).
    """
    if _fast_validator().is_valid(dict(document)):
        return []
    validator = _validator()
    found = []
    for error in sorted(validator.iter_errors(dict(document)), key=lambda e: list(map(str, e.path))):
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        found.append(f"{where}: {error.message}")
    return found


def model_errors(document: Mapping[str, Any]) -> list[str]:
    """Where `document` fails to load into the package's pydantic models, empty when it loads."""
    from open_data_contract_standard.model import OpenDataContractStandard
    from pydantic import ValidationError

    try:
        OpenDataContractStandard.model_validate(dict(document))
    except ValidationError as exc:
        return [f"{'/'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors()]
    return []


def validation_errors(document: Mapping[str, Any]) -> list[str]:
    """Everything wrong with an ODCS document per the installed standard (schema, then models)."""
    return schema_errors(document) + model_errors(document)


class ContractError(ValueError):
    """An exported contract breaks the standard (a platform bug), or an imported one cannot be read."""
