"""The ODCS part of interoperability: a served port's contract validates against the official JSON Schema.

Validity is decided by `jsonschema_rs` (the schema is draft 2019-09 with `unevaluatedProperties` and many
conditionals: `jsonschema` takes tens of milliseconds per contract, a thousand ports would take a minute).
Only a refused contract is validated again with `jsonschema` (`odcs.schema_errors`), so the reasons are
word for word those of `mesh contract validate`.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from mesh_assets.product.registry import Product, Registry
from mesh_assets.product.spec import OutputPort

_validated = [0]
"""Contracts validated in this process (`odcs_validations`)."""


@cache
def _validator() -> Any:
    import jsonschema_rs

    from mesh_assets.contracts import odcs

    return jsonschema_rs.validator_for(odcs.json_schema())


def odcs_errors(document: dict[str, Any]) -> list[str]:
    """Where the document breaks the ODCS JSON Schema (`path: message`), empty when valid."""
    from mesh_assets.contracts import odcs

    _validated[0] += 1
    if _validator().is_valid(document):
        return []
    return odcs.schema_errors(document)


def contract_errors(product: Product, port: OutputPort, registry: Registry | None = None) -> list[str]:
    """Why the port's ODCS contract cannot be exported, empty when it builds and validates."""
    from mesh_assets.contracts import odcs

    try:
        document = odcs.contract(product, port, registry)
    except Exception as exc:  # a spec the exporter cannot translate: that is the finding
        return [f"the contract cannot be built: {exc}"]
    return odcs_errors(document)


def odcs_validations() -> int:
    """How many contracts the ODCS check has validated in this process."""
    return _validated[0]
