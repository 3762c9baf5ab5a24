"""The words ODCS export and import share: the version written, the check ids, mesh custom properties.

A contract the platform exported imports back to the same spec because both directions name things here
once: the quality ids (the Dagster check names of a port), the `customProperties` the mesh writes under
its own vendor, the spec's type as one string, and identifiers made from free text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mesh_assets.product.spec import Column, DataProductSpec, LogicalType

if TYPE_CHECKING:
    from mesh_assets.product.registry import Product


API_VERSION = "v3.2.0"
"""The ODCS version contracts are written in (the installed package's schema accepts it)."""
KIND = "DataContract"
VENDOR = "mesh"
"""`vendor` of every custom property the platform writes."""
DEFAULT_DIR = Path("data") / "contracts"
"""Where `mesh contract export` writes, relative to the repository root."""

# Quality ids are the Dagster check names of the port; these are the baseline rules of checks.py.
SCHEMA_CHECK = "contract_schema"
KEY_CHECK = "primary_key_unique_not_null"
ROW_COUNT_CHECK = "row_count_within_bounds"
NOT_NULL_CHECK = "not_null_columns"
UNIQUE_CHECK = "unique_columns"
VOLUME_CHECK = "volume_change"
TIMELINESS_CHECK = "data_timeliness"


def spec_file_of(product: Product) -> str:
    """The product's spec as a path relative to its repository (shown in contracts and descriptors)."""
    # Addressing loads dagster; the contract diff shares this vocabulary and loads none.
    from mesh_assets.product.addressing import repo_root_of

    try:
        return product.path.resolve().relative_to(repo_root_of(product)).as_posix()
    except ValueError:  # a spec outside a mesh repository layout is shown in full
        return str(product.path)


def governance_properties(spec: DataProductSpec) -> dict[str, Any]:
    """The product's governance attributes as custom properties (shared by ODCS contracts and ODPS)."""
    return {
        "productType": spec.product_type.value,
        "businessCapability": spec.business_capability,
        "classification": spec.classification.value,
        "access": spec.access.model_dump(mode="json"),
        "accessPolicy": spec.access_policy.model_dump(mode="json"),
        "distributionRights": spec.distribution_rights.model_dump(mode="json"),
        "dataSharingAgreement": spec.data_sharing_agreement.model_dump(mode="json"),
    }


def support_url(channel: str, kind: str) -> str | None:
    """A URL for a support channel, when one can be derived from it."""
    if re.match(r"^[a-z]+://", channel) or channel.startswith("mailto:"):
        return channel
    if kind == "email" and "@" in channel:
        return f"mailto:{channel}"
    if kind == "slack" and channel.startswith("#"):
        # Slack's redirect opens the channel by name in the reader's own workspace.
        return f"https://slack.com/app_redirect?channel={channel[1:]}"
    return None


def custom_properties(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """ODCS custom properties (vendor `mesh`) from a mapping; `None` values are left out."""
    return [
        {"property": key, "value": value, "vendor": VENDOR}
        for key, value in values.items()
        if value is not None
    ]


def custom_values(items: Any) -> dict[str, Any]:
    """A custom-properties block read back as `{property: value}` (malformed entries are skipped)."""
    found: dict[str, Any] = {}
    for item in items or []:
        if isinstance(item, Mapping) and isinstance(item.get("property"), str):
            found[item["property"]] = item.get("value")
    return found


def mesh_type(column: Column) -> str:
    """The spec's logical type as one string, e.g. `bigint` or `decimal(12,2)` (exact round trips)."""
    if column.type == LogicalType.DECIMAL:
        return f"decimal({column.precision},{column.scale})"
    return column.type.value


def identifier_of(text: Any) -> str | None:
    """An identifier from free text (`Sales Orders` -> `sales_orders`), or None when nothing is left."""
    if not isinstance(text, str):
        return None
    slug = re.sub(r"[^a-z0-9]+", "_", text.strip().lower()).strip("_")
    slug = re.sub(r"^[^a-z]+", "", slug)
    return slug[:63] or None


def to_yaml(document: Mapping[str, Any], header: str = "") -> str:
    """A document as YAML in its own key order, with an optional comment header."""
    import yaml

    # libyaml's emitter when PyYAML has it: the same text (the example's contracts compared byte for byte)
    # in a fifth of the time; every governance run writes every port's contract.
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    text = yaml.dump(dict(document), Dumper=dumper, sort_keys=False, allow_unicode=True, width=110)
    lines = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return lines + text
