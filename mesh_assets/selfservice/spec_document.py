"""A complete `dataproduct.yaml`: every metamodel attribute present, validated before it is written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mesh_assets.product.spec import DataProductSpec
from mesh_assets.selfservice.errors import ScaffoldError
from mesh_assets.selfservice.governance_defaults import Governance, half_duration
from mesh_assets.selfservice.yaml_style import Flow, dump_yaml

SCHEMA_HEADER = "# yaml-language-server: $schema=../../../../mesh_assets/schemas/dataproduct.schema.json\n"

_TERMS = {
    "public": "Free to use and to share, also outside the company, with attribution to the owner team.",
    "internal": "Internal use only; ask the owner team before sharing it outside the company.",
    "confidential": "Internal use on a need-to-know basis; never shared outside the company.",
    "restricted": "Approved consumers only, for their stated purpose; never copied or shared further.",
}


def spec_document(
    *,
    name: str,
    domain: str,
    title: str,
    purpose: str,
    usage: str,
    limitations: str,
    governance: Governance,
    product_type: str,
    tags: list[str],
    input_ports: list[dict[str, Any]],
    transformation: dict[str, Any],
    output_ports: list[dict[str, Any]],
) -> dict[str, Any]:
    """A complete `dataproduct.yaml` document: every metamodel attribute present."""
    return {
        "name": name,
        "domain": domain,
        "title": title,
        "description": {"purpose": purpose, "usage": usage, "limitations": limitations},
        "owner": {"team": governance.team, "steward": governance.steward},
        "product_type": product_type,
        "status": governance.status,
        "business_capability": governance.business_capability,
        "classification": governance.classification,
        "access": {"mode": "open"},
        "access_policy": {
            "allowed_roles": Flow(governance.allowed_roles),
            "denied_roles": Flow([]),
            "pii_handling": "mask",
        },
        "distribution_rights": {
            "redistribute_unmodified": governance.classification == "public",
            "redistribute_modified": governance.classification in {"public", "internal"},
        },
        "data_sharing_agreement": {
            "reference": f"{governance.classification}-data-terms",
            "terms": _TERMS[governance.classification],
        },
        "support": {"channel": governance.support_channel, "kind": "slack"},
        "slos": {
            "freshness": {"max_age": governance.freshness, "warn_after": half_duration(governance.freshness)},
            "availability": 0.99,
            "quality_pass_rate": 0.99,
            "window": "30d",
        },
        "tags": Flow(tags),
        "input_ports": input_ports,
        "transformation": transformation,
        "output_ports": output_ports,
    }


def render_spec(document: dict[str, Any], folder: Path) -> str:
    """The spec file's text, validated against the spec models first (a refusal names the field)."""
    from pydantic import ValidationError

    try:
        DataProductSpec.model_validate(document)
    except ValidationError as exc:
        from mesh_assets.product.spec_issues import issue_from_pydantic

        problems = [issue_from_pydantic(folder / "dataproduct.yaml", e) for e in exc.errors()]
        raise ScaffoldError(
            "the product would not be valid:\n"
            + "\n".join(f"  - {p.field}: {p.message}. Fix: {p.fix}" for p in problems)
        ) from exc
    return SCHEMA_HEADER + dump_yaml(document)
