"""Every output port as an ODCS v3.2.0 data contract.

`contract()` turns one output port into an ODCS document: its schema with logical and physical types,
classification and PII per column, the port's contract rules (`odcs_quality`), SLA properties, team,
roles, support channels and the DuckDB and Snowflake servers. Mesh attributes ODCS has no field for go in
`customProperties` (vendor `mesh`): the ODCS root allows no other keys. `export_contracts()` writes each
document only once the installed standard accepts it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mesh_assets.contracts.odcs_quality import PortQuality, port_quality
from mesh_assets.contracts.odcs_servers import Deployment, binding_servers, physical_types, servers
from mesh_assets.contracts.odcs_standard import ContractError, validation_errors
from mesh_assets.contracts.odcs_vocabulary import (
    API_VERSION,
    KIND,
    custom_properties,
    governance_properties,
    mesh_type,
    spec_file_of,
    support_url,
    to_yaml,
)
from mesh_assets.infra.environment import contract_path
from mesh_assets.product import access, addressing
from mesh_assets.product.addressing import contract_id
from mesh_assets.product.spec import Column, DataProductSpec, LogicalType, OutputPort

if TYPE_CHECKING:
    from mesh_assets.product.registry import Product, Registry


_UNIT_OUT = {"m": "min", "h": "h", "d": "d"}


def _logical(column: Column) -> tuple[str, dict[str, Any]]:
    """ODCS logical type and options of a column (bit width for integers, scale for decimals)."""
    kind = column.type
    if kind == LogicalType.INTEGER:
        return "integer", {"format": "i32"}
    if kind == LogicalType.BIGINT:
        return "integer", {"format": "i64"}
    if kind == LogicalType.DOUBLE:
        return "number", {"format": "f64"}
    if kind == LogicalType.DECIMAL:
        assert column.scale is not None  # the spec model guarantees it
        # ODCS numbers have no precision option; `multipleOf` carries the scale, the physical type both.
        return "number", {"multipleOf": 1 if column.scale == 0 else float(f"1e-{column.scale}")}
    if kind == LogicalType.TIMESTAMP:
        return "timestamp", {"timezone": False}
    return kind.value, {}


def _duration(text: str) -> tuple[int, str]:
    """`24h` -> (24, "h"); minutes are written `min` (ODCS units follow ISO symbols)."""
    match = re.match(r"^(\d+)\s*([mhd])$", text.strip())
    assert match is not None  # spec durations are validated
    return int(match[1]), _UNIT_OUT[match[2]]


def sla_properties(spec: DataProductSpec, port: OutputPort) -> list[dict[str, Any]]:
    """The SLOs in ODCS's SLA vocabulary: latency and freshness, availability, error rate, end of life."""
    table = addressing.published(spec, port).name
    freshness = spec.slos.freshness
    found: list[dict[str, Any]] = []
    data_time = f"{table}.{port.event_time}" if port.event_time else None
    if freshness.max_age is not None:
        value, unit = _duration(freshness.max_age)
        warn = f"; warn after {freshness.warn_after}" if freshness.warn_after else ""
        found.append(
            {
                "id": "latency",
                "property": "latency",
                "value": value,
                "unit": unit,
                "driver": "operational",
                "description": f"Each publish of the port is at most {freshness.max_age} old{warn}.",
                **(
                    {"customProperties": custom_properties({"warnAfter": freshness.warn_after})}
                    if warn
                    else {}
                ),
            }
        )
        timeliness = getattr(port.quality, "timeliness", None)
        data_age = (timeliness.max_age if timeliness is not None else None) or freshness.max_age
        value, unit = _duration(data_age)
        found.append(
            {
                "id": "freshness",
                "property": "freshness",
                "value": value,
                "unit": unit,
                **({"element": data_time} if data_time else {}),
                "driver": "operational",
                "description": (
                    f"The newest {port.event_time} is at most {data_age} old when published."
                    if data_time
                    else f"The port is refreshed at least every {data_age} (no event-time column)."
                ),
            }
        )
    else:
        assert freshness.cron is not None and freshness.lower_bound is not None
        value, unit = _duration(freshness.lower_bound)
        for property_name in ("latency", "freshness"):
            found.append(
                {
                    "id": property_name,
                    "property": property_name,
                    "value": value,
                    "unit": unit,
                    **({"element": data_time} if data_time and property_name == "freshness" else {}),
                    "driver": "operational",
                    "scheduler": "cron",
                    "schedule": freshness.cron,
                    "description": f"Updated within {freshness.lower_bound} before each deadline "
                    f"`{freshness.cron}` ({freshness.cron_timezone}).",
                    "customProperties": custom_properties({"cronTimezone": freshness.cron_timezone}),
                }
            )
    slos = spec.slos
    found.append(
        {
            "id": "availability",
            "property": "availability",
            "value": round(slos.availability * 100, 4),
            "unit": "percent",
            "description": f"Share of scheduled publishes that succeed, over {slos.window}.",
            "customProperties": custom_properties({"window": slos.window}),
        }
    )
    found.append(
        {
            "id": "error_rate",
            "property": "errorRate",
            "value": round((1 - slos.quality_pass_rate) * 100, 4),
            "unit": "percent",
            "description": f"Most contract checks allowed to fail, over {slos.window} "
            f"(quality pass rate {slos.quality_pass_rate:.0%}).",
            "customProperties": custom_properties(
                {"window": slos.window, "qualityPassRate": slos.quality_pass_rate}
            ),
        }
    )
    if port.deprecation is not None:
        dep = port.deprecation
        found.append(
            {
                "id": "end_of_life",
                "property": "endOfLife",
                "value": dep.sunset.isoformat(),
                "description": f"Retired after {dep.sunset.isoformat()}: move to v{dep.replacement}. "
                f"{dep.reason}",
            }
        )
    return found


def _support(spec: DataProductSpec) -> list[dict[str, Any]]:
    """The product's support channel and its steward, as ODCS support channels."""
    channel, kind = spec.support.channel, spec.support.kind
    entry: dict[str, Any] = {
        "id": "support",
        "channel": channel,
        "tool": {"slack": "slack", "email": "email"}.get(kind, "other"),
        "scope": "interactive",
        "description": "Questions about the product; SLO breach alerts are posted here.",
    }
    url = support_url(channel, kind)
    if url:
        entry["url"] = url
    entry["customProperties"] = custom_properties({"kind": kind})
    steward = spec.owner.steward
    return [
        entry,
        {
            "id": "steward",
            "channel": steward,
            "tool": "email",
            "scope": "issues",
            "url": f"mailto:{steward}",
            "description": "The data steward: access requests, contract changes and incidents.",
        },
    ]


def _agreement_roles(spec: DataProductSpec, major: int, registry: Registry | None) -> list[dict[str, Any]]:
    """One role per access agreement in force on this port version: the consumer, its purpose and dates,
    and who approved it (the policy, or the people recorded in the agreement file)."""
    if registry is not None:
        registry.agreements  # noqa: B018 (reads the deferred agreement files once per registry)
    today = registry.today if registry is not None else date.today()
    roles = []
    for loaded in sorted(access.agreements_of(spec), key=lambda a: a.id):
        agreement = loaded.agreement
        if agreement.major != major or loaded.state(today).value != "active":
            continue
        approvers = agreement.approvers()
        until = f" until {agreement.end}" if agreement.end else ""
        role: dict[str, Any] = {
            "role": f"{agreement.consumer.kind.value}:{agreement.consumer.id}",
            "access": "read",
            "description": f"Access agreement {loaded.id} ({agreement.purpose_category.value}): "
            f"{agreement.purpose} From {agreement.start}{until}"
            + ("; PII in clear." if agreement.pii_in_clear else "; PII protected."),
            "firstLevelApprovers": approvers[0] if approvers else spec.owner.steward,
        }
        if len(approvers) > 1:
            role["secondLevelApprovers"] = ", ".join(approvers[1:])
        roles.append(role)
    return roles


def _roles(spec: DataProductSpec) -> list[dict[str, Any]]:
    """Roles allowed to read, each approved by the steward; the access mode says what approval covers."""
    if spec.access.mode == "approval_required":
        what = "Read access for consumers holding an access agreement only (`mesh access request`)"
    else:
        what = "Read access: any product or person holding the role may read"
    handling = {"mask": "masked", "hash": "hashed", "remove": "removed"}[
        spec.access_policy.pii_handling.value
    ]
    return [
        {
            "role": role,
            "access": "read",
            "description": f"{what}. PII columns are {handling} for readers without the PII privilege.",
            "firstLevelApprovers": spec.owner.steward,
            "secondLevelApprovers": f"team:{spec.owner.team}",
        }
        for role in spec.access_policy.allowed_roles
    ]


def _property(
    spec: DataProductSpec, port: OutputPort, column: Column, quality: PortQuality, target: str
) -> dict[str, Any]:
    logical, options = _logical(column)
    types = physical_types(column)
    single_key = port.primary_key == [column.name]
    entry: dict[str, Any] = {
        "id": column.name,
        "name": column.name,
        "physicalName": column.name,
        "logicalType": logical,
        **({"logicalTypeOptions": options} if options else {}),
        "physicalType": types[target],
        "description": column.description,
        "required": not column.nullable,
        "unique": column.unique or single_key,
    }
    if column.name in port.primary_key:
        entry["primaryKey"] = True
        entry["primaryKeyPosition"] = port.primary_key.index(column.name) + 1
    # Per column: the product's classification, and whether the column holds personal data.
    entry["classification"] = spec.classification.value
    if column.pii:
        entry["tags"] = ["pii"]
    if column.examples:
        entry["examples"] = list(column.examples)
    if column.name in quality.relationships:
        entry["relationships"] = quality.relationships[column.name]
    if column.name in quality.columns:
        entry["quality"] = quality.columns[column.name]
    entry["customProperties"] = custom_properties(
        {
            "pii": True if column.pii else None,
            "piiHandling": spec.access_policy.pii_handling.value if column.pii else None,
            "meshType": mesh_type(column),
            "physicalTypes": types,
            "eventTime": True if port.event_time == column.name else None,
        }
    )
    return entry


def contract(
    product: Product,
    port: OutputPort,
    registry: Registry | None = None,
    deployment: Deployment | None = None,
) -> dict[str, Any]:
    """The ODCS v3.2.0 contract of one output port (a plain dict, in the standard's key order)."""
    deployment = deployment or Deployment()
    spec = product.spec
    relation = addressing.published(spec, port)
    quality = port_quality(spec, port, registry, product)
    properties = [_property(spec, port, column, quality, deployment.target) for column in port.columns]
    schema_object: dict[str, Any] = {
        "id": relation.name,
        "name": relation.name,
        "physicalName": relation.name,
        "physicalType": "table",
        "logicalType": "object",
        "businessName": f"{spec.title} v{port.major}",
        "description": port.description or spec.description.purpose,
        "dataGranularityDescription": "One row per " + ", ".join(port.primary_key) + ".",
        "properties": properties,
        "quality": quality.schema,
    }
    spec_file = spec_file_of(product)
    document: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "id": contract_id(spec.domain, spec.name, port.major),
        "name": spec.title,
        "version": port.version,
        "status": spec.port_status(port).value,
        "domain": spec.domain,
        "tags": list(spec.tags),
        "description": {
            "purpose": spec.description.purpose,
            "usage": spec.description.usage,
            "limitations": spec.description.limitations,
        },
        "schema": [schema_object],
        "servers": servers(spec.domain, deployment) + binding_servers(spec, port, deployment),
        "support": _support(spec),
        "team": {
            "name": spec.owner.team,
            "description": f"Owns {spec.key}; accountable for its contract and SLOs.",
            "members": [
                {
                    "username": spec.owner.steward,
                    "role": "data steward",
                    "description": "Accountable steward.",
                }
            ],
        },
        "roles": _roles(spec) + _agreement_roles(spec, port.major, registry),
        "slaProperties": sla_properties(spec, port),
        "authoritativeDefinitions": [
            {
                "type": "implementation",
                "url": spec_file,
                "description": "The product spec this contract is generated from (path in the mesh repo).",
            }
        ],
        "customProperties": custom_properties(
            {
                "product": spec.name,
                "title": spec.title,
                "uri": addressing.port_uri(spec.domain, spec.name, port.major),
                "assetKey": addressing.port_key(spec.domain, spec.name, port.major).to_user_string(),
                "productStatus": spec.status.value,
                "portStatus": port.status.value if port.status is not None else None,
                **governance_properties(spec),
                "inputPorts": [i.model_dump(mode="json", exclude_defaults=True) for i in spec.input_ports],
                "transformation": spec.transformation.model_dump(mode="json", exclude_defaults=True),
                "model": port.model,
                "portDescription": port.description,
                "eventTime": port.event_time,
                "deprecation": port.deprecation.model_dump(mode="json") if port.deprecation else None,
                # The learned monitors' tuning (only what differs from the defaults), so it imports back.
                "monitors": port.monitors.model_dump(mode="json", exclude_defaults=True) or None,
                # The bindings as declared (the servers say where they are), so they import back.
                "bindings": [b.model_dump(mode="json", exclude_defaults=True) for b in port.bindings] or None,
                # Declared column lineage (Python ports), so a consumer's column impact imports back.
                "lineage": (
                    port.lineage.model_dump(mode="json", exclude_defaults=True) if port.lineage else None
                ),
                "spec": spec_file,
            }
        ),
    }
    if not document["roles"]:
        del document["roles"]  # secure by default: no role may read yet
    if not document["tags"]:
        del document["tags"]
    return document


def checked_contract(
    product: Product, port: OutputPort, registry: Registry | None, deployment: Deployment
) -> dict[str, Any]:
    """`contract()`, refused with every error if it breaks the installed standard."""
    document = contract(product, port, registry, deployment)
    errors = validation_errors(document)
    if errors:
        raise ContractError(
            f"the contract of {product.key} v{port.major} breaks ODCS {API_VERSION}:\n  - "
            + "\n  - ".join(errors)
        )
    return document


def export_contracts(
    registry: Registry,
    out_dir: Path,
    deployment: Deployment | None = None,
    products: Iterable[str] | None = None,
) -> list[Path]:
    """Write the contract of every output port (of `products`, if given) to `out_dir`; return the files."""
    deployment = deployment or Deployment()
    wanted = set(products) if products is not None else None
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for key in sorted(registry.products):
        if wanted is not None and key not in wanted:
            continue
        product = registry.products[key]
        for port in sorted(product.spec.output_ports, key=lambda p: -p.major):
            document = checked_contract(product, port, registry, deployment)
            path = contract_path(product, port, out_dir)
            header = (
                f"ODCS {API_VERSION} contract of {key} v{port.major}, generated by `mesh contract export` "
                f"from {spec_file_of(product)}.\nEdit the spec, not this file."
            )
            path.write_text(to_yaml(document, header))
            written.append(path)
    return written
