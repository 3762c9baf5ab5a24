"""ODPS descriptors: one Open Data Product Standard v1.0.0 descriptor per product, pointing at the contracts.

No ODPS schema package exists, so the descriptors are checked against the v1.0.0 structure written out
below from the published standard (bitol-io/open-data-product-standard, v1.0.0, 2025-09-24): every object
uses only the field names the standard defines there and has its required fields. Not checked offline:
string formats (`uri`, `date-time`), which the standard's schema only annotates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mesh_assets.contracts import odcs, odps
from mesh_assets.product.registry import Registry, load_registry

TAGS = "tags"
CUSTOM = {"fields": {"property", "value", "description"}, "required": {"property", "value"}}
AUTHORITATIVE = {"fields": {"type", "url", "description"}, "required": {"type", "url"}}
BLOCKS = {"customProperties": CUSTOM, "authoritativeDefinitions": AUTHORITATIVE}
ODPS_V1 = {
    "root": {
        "fields": {
            "apiVersion",
            "kind",
            "id",
            "name",
            "version",
            "status",
            "domain",
            "tenant",
            "authoritativeDefinitions",
            "description",
            "customProperties",
            TAGS,
            "inputPorts",
            "outputPorts",
            "managementPorts",
            "support",
            "team",
            "productCreatedTs",
        },
        "required": {"apiVersion", "kind", "id", "status"},
    },
    "description": {
        "fields": {"purpose", "limitations", "usage", "authoritativeDefinitions", "customProperties"},
        "required": set(),
    },
    "inputPorts": {
        "fields": {"name", "version", "contractId", TAGS, "customProperties", "authoritativeDefinitions"},
        "required": {"name", "version", "contractId"},
    },
    "outputPorts": {
        "fields": {
            "name",
            "description",
            "type",
            "version",
            "contractId",
            "sbom",
            "inputContracts",
            TAGS,
            "customProperties",
            "authoritativeDefinitions",
        },
        "required": {"name", "version"},
    },
    "inputContracts": {"fields": {"id", "version"}, "required": {"id", "version"}},
    "sbom": {"fields": {"type", "url"}, "required": {"url"}},
    "managementPorts": {
        "fields": {
            "name",
            "content",
            "type",
            "url",
            "channel",
            "description",
            TAGS,
            "customProperties",
            "authoritativeDefinitions",
        },
        "required": {"name", "content"},
    },
    "support": {
        "fields": {
            "channel",
            "url",
            "description",
            "tool",
            "scope",
            "invitationUrl",
            TAGS,
            "customProperties",
            "authoritativeDefinitions",
        },
        "required": {"channel", "url"},
    },
    "team": {
        "fields": {"name", "description", "members", TAGS, "customProperties", "authoritativeDefinitions"},
        "required": set(),
    },
    "members": {
        "fields": {
            "username",
            "name",
            "description",
            "role",
            "dateIn",
            "dateOut",
            "replacedByUsername",
            TAGS,
            "customProperties",
            "authoritativeDefinitions",
        },
        "required": {"username"},
    },
    **BLOCKS,
}
LISTS = {
    "inputPorts",
    "outputPorts",
    "inputContracts",
    "sbom",
    "managementPorts",
    "support",
    "members",
    *BLOCKS,
}


def structure_errors(value: Any, kind: str = "root", where: str = "") -> list[str]:
    """Where a descriptor departs from the ODPS v1.0.0 field names and required fields."""
    rule = ODPS_V1[kind]
    if not isinstance(value, dict):
        return [f"{where or kind}: expected an object"]
    errors = [f"{where}.{key}: not an ODPS v1.0.0 field" for key in sorted(set(value) - rule["fields"])]
    errors += [f"{where}.{key}: required" for key in sorted(rule["required"] - set(value))]
    for key, child in value.items():
        path = f"{where}.{key}"
        if key == TAGS:
            if not (isinstance(child, list) and all(isinstance(t, str) for t in child)):
                errors.append(f"{path}: tags are a list of strings")
        elif key in LISTS:
            if not isinstance(child, list):
                errors.append(f"{path}: expected a list")
                continue
            for index, item in enumerate(child):
                errors += structure_errors(item, key, f"{path}[{index}]")
        elif kind == "root" and key in ("description", "team"):  # the only nested objects
            errors += structure_errors(child, key, path)
    return errors


@pytest.fixture(scope="module")
def registry(repo_root: Path) -> Registry:
    registry = load_registry(repo_root)
    registry.raise_for_errors()
    return registry


@pytest.fixture(scope="module")
def exported(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("descriptors")
    odps.export_descriptors(registry, out)
    odcs.export_contracts(registry, out)
    return out


@pytest.fixture(scope="module")
def descriptors(exported: Path) -> dict[str, dict[str, Any]]:
    """Every descriptor, read back from its file, by product."""
    return {
        doc["id"]: doc
        for doc in (yaml.safe_load(p.read_text()) for p in sorted(exported.glob("*.odps.yaml")))
    }


def test_every_product_has_one_descriptor_named_after_domain_and_product(
    registry: Registry, exported: Path
) -> None:
    assert sorted(p.name for p in exported.glob("*.odps.yaml")) == sorted(
        f"{key}.odps.yaml" for key in registry.products
    )


def test_the_structure_check_catches_unknown_and_missing_fields() -> None:
    bad = {
        "apiVersion": "v1.0.0",
        "kind": "DataProduct",
        "id": "x",
        "outputPorts": [{"name": "p", "extra": 1}],
    }
    assert structure_errors(bad) == [
        ".status: required",
        ".outputPorts[0].extra: not an ODPS v1.0.0 field",
        ".outputPorts[0].version: required",
    ]


@pytest.mark.parametrize(
    "product",
    [
        "commercial_analytics.customer_360",
        "commercial_analytics.sales_forecast",
        "customers.customer_master",
        "diagnostics.instrument_runs",
        "sales.orders",
        "sales.sales",
    ],
)
def test_each_descriptor_uses_only_odps_v1_fields_and_has_the_required_ones(
    registry: Registry, descriptors: dict[str, dict[str, Any]], product: str
) -> None:
    document = descriptors[product]
    assert structure_errors(document) == []
    assert (document["apiVersion"], document["kind"]) == ("v1.0.0", "DataProduct")
    # ODPS statuses are free text (examples: proposed, draft, active, deprecated, retired); mesh adds beta.
    assert document["status"] == registry.products[product].spec.status.value


def test_output_ports_reference_their_odcs_contracts_by_id_and_version(
    descriptors: dict[str, dict[str, Any]], exported: Path
) -> None:
    contracts = {
        doc["id"]: doc for doc in (yaml.safe_load(p.read_text()) for p in exported.glob("*.odcs.yaml"))
    }
    ports = [port for doc in descriptors.values() for port in doc["outputPorts"]]
    assert len(ports) == len(contracts) == 7
    for port in ports:
        contract = contracts[port["contractId"]]
        assert port["version"] == contract["version"]
        files = {c["property"]: c["value"] for c in port["customProperties"]}
        assert (exported / files["contractFile"]).exists()
    sales = {p["name"]: p for p in descriptors["sales.sales"]["outputPorts"]}
    assert (sales["sales_v2"]["contractId"], sales["sales_v1"]["contractId"]) == (
        "sales.sales.v2",
        "sales.sales.v1",
    )


def test_input_ports_reference_the_producers_contracts(descriptors: dict[str, dict[str, Any]]) -> None:
    inputs = {p["name"]: p for p in descriptors["commercial_analytics.customer_360"]["inputPorts"]}
    assert sorted(inputs) == ["customers.customer_master", "diagnostics.instrument_runs", "sales.sales"]
    assert (inputs["sales.sales"]["contractId"], inputs["sales.sales"]["version"]) == (
        "sales.sales.v1",
        "1.4.0",
    )
    assert inputs["customers.customer_master"]["contractId"] == "customers.customer_master.v1"
    ranged = {c["property"]: c["value"] for c in inputs["sales.sales"]["customProperties"]}
    assert ranged["versionRange"] == ">=1.0.0,<2.0.0" and ranged["portStatus"] == "deprecated"
    forecast = {p["name"]: p for p in descriptors["commercial_analytics.sales_forecast"]["inputPorts"]}
    assert forecast["sales.sales"]["contractId"] == "sales.sales.v2"


def test_output_ports_list_the_input_contracts_they_depend_on(descriptors: dict[str, dict[str, Any]]) -> None:
    (port,) = descriptors["diagnostics.instrument_runs"]["outputPorts"]
    assert port["inputContracts"] == [{"id": "customers.customer_master.v1", "version": "1.0.0"}]


def test_source_extracts_are_listed_without_inventing_contract_ids(
    descriptors: dict[str, dict[str, Any]],
) -> None:
    master = descriptors["customers.customer_master"]
    assert "inputPorts" not in master
    custom = {c["property"]: c["value"] for c in master["customProperties"]}
    assert custom["sourceInputs"] == [
        {
            "source": "crm.customers",
            "format": "csv",
            "description": "Customer records exported nightly from the CRM, one row per CRM update.",
        }
    ]


def test_the_descriptor_carries_team_support_status_and_deprecations(
    descriptors: dict[str, dict[str, Any]],
) -> None:
    sales = descriptors["sales.sales"]
    assert sales["team"]["name"] == "sales_data"
    assert sales["team"]["members"][0]["username"] == "ana.lopez@example.com"
    assert {s["url"] for s in sales["support"]} == {
        "https://slack.com/app_redirect?channel=sales-data",
        "mailto:ana.lopez@example.com",
    }
    assert sales["version"] == "2.0.0" and sales["status"] == "active"
    v1 = next(p for p in sales["outputPorts"] if p["name"] == "sales_v1")
    custom = {c["property"]: c["value"] for c in v1["customProperties"]}
    assert v1["tags"] == ["deprecated"] and custom["deprecation"]["sunset"] == "2027-03-31"
    assert custom["consumers"] == ["commercial_analytics.customer_360"]
