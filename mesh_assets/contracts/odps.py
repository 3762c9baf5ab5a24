"""Open Data Product Standard (ODPS v1.0.0): one descriptor per data product.

A descriptor lists the product's input ports (the producers' ports it reads, each with the id and version
of that port's ODCS contract) and its output ports (one per major version, each with its own contract and
the input contracts it depends on), plus the team, support channels and a management port. Mesh
attributes ODPS has no field for go in `customProperties`.

No ODPS schema package exists; `tests/contracts/test_odps.py` checks the descriptors against the v1.0.0
field names and required keys (see `docs/catalog.md`). Source-system extracts have no data contract, and
a v1.0.0 input port requires a `contractId`, so they are listed in the `sourceInputs` custom property
instead of being given invented contract ids.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mesh_assets.contracts.odcs_vocabulary import governance_properties, spec_file_of, support_url, to_yaml
from mesh_assets.product import addressing
from mesh_assets.product.versions import Semver

if TYPE_CHECKING:
    from mesh_assets.product.registry import Product, Registry
    from mesh_assets.product.spec import DataProductSpec

API_VERSION = "v1.0.0"
KIND = "DataProduct"
SUFFIX = ".odps.yaml"


def descriptor_file_name(domain: str, product: str) -> str:
    """`<domain>.<product>.odps.yaml`."""
    return f"{domain}.{product}{SUFFIX}"


def _custom(values: dict[str, Any]) -> list[dict[str, Any]]:
    # ODPS v1.0.0 custom properties have no `vendor` key (added in v1.1.0).
    return [{"property": key, "value": value} for key, value in values.items() if value is not None]


def _input_ports(product: Product, registry: Registry) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """The producers' ports the product reads, and their contracts (id and version) for each output port."""
    inputs: list[dict[str, Any]] = []
    input_contracts: list[dict[str, str]] = []
    for declared in product.spec.product_inputs:
        resolved = registry.resolve(product, declared)
        if resolved is None:  # an invalid mesh; `mesh validate` reports it
            continue
        producer, port = resolved.producer.spec, resolved.port
        ident = addressing.contract_id(producer.domain, producer.name, port.major)
        inputs.append(
            {
                "name": producer.key,
                "version": port.version,
                "contractId": ident,
                "customProperties": _custom(
                    {
                        "versionRange": declared.version,
                        "purpose": declared.purpose or None,
                        "preview": True if declared.preview else None,
                        "contractFile": addressing.contract_file_name(
                            producer.domain, producer.name, port.major
                        ),
                        "portStatus": producer.port_status(port).value,
                    }
                ),
            }
        )
        input_contracts.append({"id": ident, "version": port.version})
    return inputs, input_contracts


def _output_ports(
    product: Product, registry: Registry, input_contracts: list[dict[str, str]]
) -> list[dict[str, Any]]:
    """One output port per major version, newest first, each with its contract and its readers."""
    spec = product.spec
    consumers = registry.consumers_of(product.key)
    outputs = []
    for port in sorted(spec.output_ports, key=lambda p: -p.major):
        relation = addressing.published(spec, port)
        readers = sorted(c.consumer.key for c in consumers if c.port.major == port.major)
        status = spec.port_status(port).value
        outputs.append(
            {
                "name": relation.name,
                "description": port.description or f"{spec.title}, major version {port.major}.",
                "type": "table",
                "version": port.version,
                "contractId": addressing.contract_id(spec.domain, spec.name, port.major),
                **({"inputContracts": list(input_contracts)} if input_contracts else {}),
                "tags": [status],
                "customProperties": _custom(
                    {
                        "status": status,
                        "uri": addressing.port_uri(spec.domain, spec.name, port.major),
                        "table": relation.dotted,
                        "assetKey": addressing.port_key(spec.domain, spec.name, port.major).to_user_string(),
                        "contractFile": addressing.contract_file_name(spec.domain, spec.name, port.major),
                        "deprecation": port.deprecation.model_dump(mode="json") if port.deprecation else None,
                        "consumers": readers or None,
                    }
                ),
            }
        )
    return outputs


def _support(spec: DataProductSpec) -> list[dict[str, Any]]:
    """The support channel (when it has a URL, as ODPS v1.0.0 needs) and the steward's mailbox."""
    support = []
    url = support_url(spec.support.channel, spec.support.kind)
    if url:
        support.append(
            {
                "channel": spec.support.channel,
                "url": url,
                "description": "Questions about the product; SLO breach alerts are posted here.",
                "tool": {"slack": "slack", "email": "email"}.get(spec.support.kind, "other"),
                "scope": "interactive",
            }
        )
    support.append(
        {
            "channel": spec.owner.steward,
            "url": f"mailto:{spec.owner.steward}",
            "description": "The data steward: access requests, contract changes and incidents.",
            "tool": "email",
            "scope": "issues",
        }
    )
    return support


def _management_port(spec: DataProductSpec) -> dict[str, str]:
    """Where the product is observed: its Dagster asset group."""
    return {
        "name": "dagster",
        "content": "observability",
        "type": "rest",
        "description": f"Dagster asset group `{spec.name}` in code location `{spec.domain}`: "
        "materializations, contract check results and freshness of every port.",
    }


def _custom_properties(product: Product) -> list[dict[str, Any]]:
    """The mesh attributes ODPS has no field for: governance, SLOs, source inputs, transformation, spec."""
    spec = product.spec
    return _custom(
        {
            **governance_properties(spec),
            "slos": spec.slos.model_dump(mode="json"),
            "sourceInputs": [s.model_dump(mode="json") for s in spec.source_inputs] or None,
            "transformation": spec.transformation.model_dump(mode="json", exclude_defaults=True),
            "spec": spec_file_of(product),
        }
    )


def descriptor(product: Product, registry: Registry) -> dict[str, Any]:
    """The ODPS v1.0.0 descriptor of a product (a plain dict, in the standard's key order)."""
    spec = product.spec
    inputs, input_contracts = _input_ports(product, registry)
    live = [p for p in spec.output_ports if spec.port_status(p).value != "retired"] or spec.output_ports
    document: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "id": spec.key,
        "name": spec.title,
        "version": max((p.version for p in live), key=Semver.parse),
        "status": spec.status.value,
        "domain": spec.domain,
        "description": {
            "purpose": spec.description.purpose,
            "limitations": spec.description.limitations,
            "usage": spec.description.usage,
        },
        "tags": list(spec.tags),
        "inputPorts": inputs,
        "outputPorts": _output_ports(product, registry, input_contracts),
        "managementPorts": [_management_port(spec)],
        "support": _support(spec),
        "team": {
            "name": spec.owner.team,
            "description": f"Owns {spec.key}.",
            "members": [{"username": spec.owner.steward, "role": "data steward"}],
        },
        "customProperties": _custom_properties(product),
    }
    if not document["tags"]:
        del document["tags"]
    if not document["inputPorts"]:
        del document["inputPorts"]  # a source-aligned product reads extracts only (see sourceInputs)
    return document


def export_descriptors(
    registry: Registry, out_dir: Path, products: Iterable[str] | None = None
) -> list[Path]:
    """Write the descriptor of every product (of `products`, if given) to `out_dir`; return the files."""
    wanted = set(products) if products is not None else None
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for key in sorted(registry.products):
        if wanted is not None and key not in wanted:
            continue
        product = registry.products[key]
        document = descriptor(product, registry)
        path = out_dir / descriptor_file_name(product.spec.domain, product.spec.name)
        header = (
            f"ODPS {API_VERSION} descriptor of {key}, generated by `mesh contract export` from "
            f"{spec_file_of(product)}.\nEdit the spec, not this file."
        )
        path.write_text(to_yaml(document, header))
        written.append(path)
    return written
