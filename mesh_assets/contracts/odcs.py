"""Open Data Contract Standard (ODCS v3.2.0): every output port as a data contract, and back.

`contract()` turns one output port into an ODCS document: its schema with logical and physical types,
classification and PII per column, the port's contract rules (the same rules `checks.py` runs as asset
checks, in ODCS's quality vocabulary, each `id` being the Dagster check name), SLA properties, team,
roles, support channels and the DuckDB and Snowflake servers. Mesh attributes ODCS has no field for go in
`customProperties` (vendor `mesh`): the ODCS root allows no other keys. Every exported document is checked
against the official JSON Schema and pydantic models shipped in `open-data-contract-standard`, loaded
from the installed package at runtime, never copied.

`import_contract()` goes the other way: an ODCS contract written elsewhere becomes a `dataproduct.yaml`
draft. What the contract does not say is left out, never invented, so `mesh validate` names it; the
import reports those fields as the ones to fill.

Nothing heavy is imported at module import (YAML, JSON Schema and the ODCS models load on first use), so
`ports.py` can link each port to its contract file without slowing code-location loads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mesh_assets.infra.environment import contract_path
from mesh_assets.product import addressing
from mesh_assets.product.addressing import contract_file_name, contract_id, repo_root_of
from mesh_assets.product.spec import Column, DataProductSpec, LogicalType, OutputPort

if TYPE_CHECKING:
    from mesh_assets.infra.environment import Environment
    from mesh_assets.product.registry import Product, Registry

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

_SEVERITY_OUT = {"error": "error", "warn": "warning"}
_SEVERITY_IN = {"error": "error", "critical": "error", "warning": "warn", "warn": "warn", "info": "warn"}
_UNIT_OUT = {"m": "min", "h": "h", "d": "d"}
_UNIT_IN = {
    "m": "m",
    "min": "m",
    "mins": "m",
    "minute": "m",
    "minutes": "m",
    "h": "h",
    "hr": "h",
    "hrs": "h",
    "hour": "h",
    "hours": "h",
    "d": "d",
    "day": "d",
    "days": "d",
}
_UNIT_DAYS = {"w": 7, "wk": 7, "week": 7, "weeks": 7, "y": 365, "yr": 365, "year": 365, "years": 365}


# --- names and files -------------------------------------------------------------------------------------


def spec_file_of(product: Product) -> str:
    """The product's spec as a path relative to its repository (shown in contracts and descriptors)."""
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


# --- validation against the installed standard -----------------------------------------------------------


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


def schema_errors(document: Mapping[str, Any]) -> list[str]:
    """Where `document` breaks the official JSON Schema: `path: message`, empty when valid."""
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


# --- where the contract says the data is -----------------------------------------------------------------


@dataclass(frozen=True)
class Deployment:
    """The warehouse the contract's physical types are written for, and the values behind its servers.

    Server fields use ODCS v3.2.0 variables (`${VAR:-default}`) with the platform's own environment
    variables, so one contract serves every environment and holds no account-specific value.
    """

    target: str = "duckdb"
    """`duckdb` or `snowflake`: whose physical types `physicalType` shows."""
    duckdb_path: str = "data/mesh.duckdb"
    """The DuckDB file as shown to people (relative to the repository when inside it)."""
    snowflake_database: str = "MESH"
    """The Snowflake database (default of `SnowflakeWarehouse`)."""

    @classmethod
    def from_environment(cls, env: Environment) -> Deployment:
        """The deployment of the resolved environment."""
        try:
            shown = env.duckdb_path.resolve().relative_to(env.root.resolve()).as_posix()
        except ValueError:  # a file outside the repository is shown in full
            shown = str(env.duckdb_path)
        database = env.database if env.target == "snowflake" else cls.snowflake_database
        return cls(target=env.target, duckdb_path=shown, snowflake_database=database)


def physical_types(column: Column) -> dict[str, str]:
    """The column's physical type on each warehouse, from the backends' own mappings."""
    # The mappings are pure methods of the session classes; no connection is opened.
    from mesh_assets.infra.warehouse.duckdb import DuckDBSession
    from mesh_assets.infra.warehouse.snowflake import SnowflakeSession

    return {
        "duckdb": DuckDBSession(None).physical_type(column),  # type: ignore[arg-type]
        "snowflake": SnowflakeSession(None).physical_type(column),  # type: ignore[arg-type]
    }


def servers(domain: str, deployment: Deployment) -> list[dict[str, Any]]:
    """The DuckDB server (local, the default) and the Snowflake server (production) of a domain's ports."""
    return [
        {
            "id": "local",
            "server": "local",
            "type": "duckdb",
            "environment": "dev",
            "description": "The embedded DuckDB file every laptop and CI run builds. Open it read-only: "
            "DuckDB allows one writer per file.",
            "database": "${MESH_DUCKDB_PATH:-" + deployment.duckdb_path + "}",
            "schema": domain,
        },
        {
            "id": "production",
            "server": "production",
            "type": "snowflake",
            "environment": "prod",
            "description": "The production warehouse. Schema, table and column names are lowercase and "
            f'must be quoted, e.g. {deployment.snowflake_database}."{domain}"."<table>".',
            "account": "${SNOWFLAKE_ACCOUNT}",
            "database": "${SNOWFLAKE_DATABASE:-" + deployment.snowflake_database + "}",
            "schema": domain,
            "warehouse": "${SNOWFLAKE_WAREHOUSE}",
        },
    ]


# --- export ----------------------------------------------------------------------------------------------


def _custom(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """ODCS custom properties (vendor `mesh`) from a mapping; `None` values are left out."""
    return [
        {"property": key, "value": value, "vendor": VENDOR}
        for key, value in values.items()
        if value is not None
    ]


def _custom_values(items: Any) -> dict[str, Any]:
    """A custom-properties block read back as `{property: value}` (malformed entries are skipped)."""
    found: dict[str, Any] = {}
    for item in items or []:
        if isinstance(item, Mapping) and isinstance(item.get("property"), str):
            found[item["property"]] = item.get("value")
    return found


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


def mesh_type(column: Column) -> str:
    """The spec's logical type as one string, e.g. `bigint` or `decimal(12,2)` (exact round trips)."""
    if column.type == LogicalType.DECIMAL:
        return f"decimal({column.precision},{column.scale})"
    return column.type.value


def port_rules(spec: DataProductSpec, port: OutputPort) -> list[Any]:
    """The port's contract rules, exactly as its asset checks run them."""
    import inspect

    from mesh_assets.build import checks

    # Rules that judge data time take the freshness SLO as their default age; older versions of
    # `contract_rules` take the port alone.
    if "freshness_max_age" in inspect.signature(checks.contract_rules).parameters:
        return list(checks.contract_rules(port, freshness_max_age=spec.slos.freshness.max_age))
    return list(checks.contract_rules(port))


def _literal(value: Any) -> str:
    """A SQL literal for a rule bound (numbers bare, anything else quoted)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _row_count_operator(low: int, high: int | None) -> dict[str, Any]:
    if high is None:
        return {"mustBeGreaterOrEqualTo": low}
    if high == low:
        return {"mustBe": low}
    return {"mustBeBetween": [low, high]}


@dataclass
class _Quality:
    """Quality entries of one port: schema-level, per column, and property relationships."""

    schema: list[dict[str, Any]] = field(default_factory=list)
    columns: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    relationships: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def on(self, column: str, entry: dict[str, Any]) -> None:
        self.columns.setdefault(column, []).append(entry)


def _quality(
    spec: DataProductSpec, port: OutputPort, registry: Registry | None, product: Product | None
) -> _Quality:
    """The port's contract rules in ODCS's quality vocabulary; each `id` is the Dagster check name."""
    found = _Quality()
    spec_rules = {rule.check_name: (i, rule) for i, rule in enumerate(getattr(port.quality, "rules", []))}
    for rule in port_rules(spec, port):
        base = {
            "id": rule.name,
            "name": rule.name,
            "description": rule.description,
            "severity": _SEVERITY_OUT[rule.severity.value],
        }
        if rule.name == SCHEMA_CHECK:
            found.schema.append({**base, "type": "text", "dimension": "conformity"})
        elif rule.name == KEY_CHECK:
            found.schema.append(
                {
                    **base,
                    "metric": "duplicateValues",
                    "arguments": {"properties": list(port.primary_key)},
                    "mustBe": 0,
                    "unit": "rows",
                    "dimension": "uniqueness",
                }
            )
            for key in port.primary_key:
                found.on(key, {**base, "metric": "nullValues", "mustBe": 0, "dimension": "completeness"})
        elif rule.name == ROW_COUNT_CHECK:
            bounds = port.quality.row_count
            found.schema.append(
                {
                    **base,
                    "metric": "rowCount",
                    **_row_count_operator(bounds.min, bounds.max),
                    "unit": "rows",
                    "dimension": "completeness",
                }
            )
        elif rule.name in (NOT_NULL_CHECK, UNIQUE_CHECK):
            metric, dimension = (
                ("nullValues", "completeness")
                if rule.name == NOT_NULL_CHECK
                else ("duplicateValues", "uniqueness")
            )
            what = "nulls" if rule.name == NOT_NULL_CHECK else "duplicate values (nulls aside)"
            for column in getattr(rule, "columns", []):
                # One entry per column, so each says what it checks there; the id is the shared check.
                found.on(
                    column,
                    {
                        **base,
                        "description": f"No {what} in {column}.",
                        "metric": metric,
                        "mustBe": 0,
                        "dimension": dimension,
                    },
                )
        elif rule.name == VOLUME_CHECK:
            limits = getattr(port.quality, "volume_change", None)
            found.schema.append(
                {
                    **base,
                    "type": "text",
                    "dimension": "completeness",
                    "customProperties": _custom(
                        {"volumeChange": limits.model_dump(mode="json") if limits else None}
                    ),
                }
            )
        elif rule.name == TIMELINESS_CHECK:
            timeliness = getattr(port.quality, "timeliness", None)
            found.schema.append(
                {
                    **base,
                    "type": "text",
                    "dimension": "timeliness",
                    "customProperties": _custom(
                        {"timeliness": timeliness.model_dump(mode="json") if timeliness else None}
                    ),
                }
            )
        elif rule.name in spec_rules:
            position, spec_rule = spec_rules[rule.name]
            _spec_rule(spec_rule, position, base, found, registry, product)
        else:  # a rule kind this exporter does not know yet: still listed, in words
            found.schema.append({**base, "type": "text"})
    return found


def _spec_rule(
    rule: Any,
    position: int,
    base: dict[str, Any],
    found: _Quality,
    registry: Registry | None,
    product: Product | None,
) -> None:
    """One validity/custom rule of the spec's `quality.rules` as ODCS quality (and relationships)."""
    kind = getattr(rule, "type", "")
    # The spec's own rule (and its place in the spec) travels with it, so an import rebuilds exactly the
    # rules the checks run, in order.
    dumped = rule.model_dump(mode="json", exclude_defaults=True)
    carried = {"customProperties": _custom({"rule": dumped, "rulePosition": position})}
    column = getattr(rule, "column", None)
    if kind in ("accepted_values", "pattern"):
        arguments = (
            {"validValues": list(rule.values)} if kind == "accepted_values" else {"pattern": rule.regex}
        )
        found.on(
            column,
            {
                **base,
                "metric": "invalidValues",
                "arguments": arguments,
                "mustBe": 0,
                "unit": "rows",
                "dimension": "conformity",
                **carried,
            },
        )
    elif kind in ("range", "length"):
        measure = "{property}" if kind == "range" else "LENGTH({property})"
        bounds = []
        if rule.min is not None:
            bounds.append(f"{measure} < {_literal(rule.min)}")
        if rule.max is not None:
            bounds.append(f"{measure} > {_literal(rule.max)}")
        found.on(
            column,
            {
                **base,
                "type": "sql",
                "query": "SELECT COUNT(*) FROM {object} WHERE " + " OR ".join(bounds or ["FALSE"]),
                "mustBe": 0,
                "unit": "rows",
                "dimension": "accuracy" if kind == "range" else "conformity",
                **carried,
            },
        )
    elif kind == "references":
        found.on(column, {**base, "type": "text", "dimension": "consistency", **carried})
        target = _reference_target(rule, registry, product)
        if target is not None:
            found.relationships.setdefault(column, []).append({"type": "foreignKey", "to": target})
    elif kind == "sql":
        # The spec's query returns the bad rows (`{{ this }}` is the batch); ODCS compares one value.
        query = re.sub(r"\{\{\s*this\s*\}\}", "{object}", rule.query).strip().rstrip(";")
        found.schema.append(
            {
                **base,
                "type": "sql",
                "query": f"SELECT COUNT(*) FROM ({query}) AS bad",
                "mustBe": 0,
                "unit": "rows",
                **carried,
            }
        )
    elif kind == "expectation":
        custom = {
            **base,
            "type": "custom",
            "engine": "great-expectations",
            "implementation": {"expectation_type": rule.expectation, "kwargs": dict(rule.kwargs)},
            **carried,
        }
        target_column = rule.kwargs.get("column")
        if isinstance(target_column, str):
            found.on(target_column, custom)
        else:
            found.schema.append(custom)
    else:
        found.schema.append({**base, "type": "text", **carried})


def _reference_target(rule: Any, registry: Registry | None, product: Product | None) -> str | None:
    """`<contract file>#/schema/<table>/properties/<column>` of the port a references rule points at."""
    if registry is None or product is None:
        return None
    declared = next((i for i in product.spec.product_inputs if i.product == rule.port), None)
    resolved = registry.resolve(product, declared) if declared is not None else None
    if resolved is None:
        return None
    producer = resolved.producer.spec
    table = addressing.port_relation(producer.domain, producer.name, resolved.port.major).name
    file = contract_file_name(producer.domain, producer.name, resolved.port.major)
    return f"{file}#/schema/{table}/properties/{rule.to_column}"


def _duration(text: str) -> tuple[int, str]:
    """`24h` -> (24, "h"); minutes are written `min` (ODCS units follow ISO symbols)."""
    match = re.match(r"^(\d+)\s*([mhd])$", text.strip())
    assert match is not None  # spec durations are validated
    return int(match[1]), _UNIT_OUT[match[2]]


def sla_properties(spec: DataProductSpec, port: OutputPort) -> list[dict[str, Any]]:
    """The SLOs in ODCS's SLA vocabulary: latency and freshness, availability, error rate, end of life."""
    table = addressing.port_relation(spec.domain, spec.name, port.major).name
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
                **({"customProperties": _custom({"warnAfter": freshness.warn_after})} if warn else {}),
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
                    "customProperties": _custom({"cronTimezone": freshness.cron_timezone}),
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
            "customProperties": _custom({"window": slos.window}),
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
            "customProperties": _custom({"window": slos.window, "qualityPassRate": slos.quality_pass_rate}),
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
    entry["customProperties"] = _custom({"kind": kind})
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


def _roles(spec: DataProductSpec) -> list[dict[str, Any]]:
    """Roles allowed to read, each approved by the steward; the access mode says what approval covers."""
    if spec.access.mode == "approval_required":
        what = "Read access for approved consumer products only (listed in customProperties.access)"
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
    spec: DataProductSpec, port: OutputPort, column: Column, quality: _Quality, target: str
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
    entry["customProperties"] = _custom(
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
    relation = addressing.port_relation(spec.domain, spec.name, port.major)
    quality = _quality(spec, port, registry, product)
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
        "servers": servers(spec.domain, deployment),
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
        "roles": _roles(spec),
        "slaProperties": sla_properties(spec, port),
        "authoritativeDefinitions": [
            {
                "type": "implementation",
                "url": spec_file,
                "description": "The product spec this contract is generated from (path in the mesh repo).",
            }
        ],
        "customProperties": _custom(
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
                "spec": spec_file,
            }
        ),
    }
    if not document["roles"]:
        del document["roles"]  # secure by default: no role may read yet
    if not document["tags"]:
        del document["tags"]
    return document


def to_yaml(document: Mapping[str, Any], header: str = "") -> str:
    """A document as YAML in its own key order, with an optional comment header."""
    import yaml

    text = yaml.safe_dump(dict(document), sort_keys=False, allow_unicode=True, width=110)
    lines = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return lines + text


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


# --- import ----------------------------------------------------------------------------------------------


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


def _slug(text: Any) -> str | None:
    """An identifier from free text (`Sales Orders` -> `sales_orders`), or None when nothing is left."""
    if not isinstance(text, str):
        return None
    slug = re.sub(r"[^a-z0-9]+", "_", text.strip().lower()).strip("_")
    slug = re.sub(r"^[^a-z]+", "", slug)
    return slug[:63] or None


def _semver(text: Any, notes: list[str]) -> str | None:
    if text is None:
        return None
    raw = str(text).strip()
    value = raw.removeprefix("v").removeprefix("V")
    if re.match(r"^\d+\.\d+\.\d+$", value):
        return value
    if re.match(r"^\d+(\.\d+)?$", value):
        padded = ".".join([*value.split("."), "0", "0"][:3])
        notes.append(f"version '{raw}' read as {padded}")
        return padded
    return raw  # not a version the spec accepts: kept, so validation shows it


_PHYSICAL = [
    (r"^(VAR)?CHAR|^TEXT|^STRING|^NVARCHAR|^NCHAR|^CHARACTER|^UUID", LogicalType.STRING),
    (r"^(BIGINT|INT8|LONG|HUGEINT|UBIGINT|INT64)$", LogicalType.BIGINT),
    (
        r"^(INT|INTEGER|INT4|SMALLINT|INT2|TINYINT|BYTEINT|INT32|UINTEGER|USMALLINT|UTINYINT)$",
        LogicalType.INTEGER,
    ),
    (r"^(DOUBLE( PRECISION)?|FLOAT\d*|REAL)$", LogicalType.DOUBLE),
    (r"^(BOOLEAN|BOOL)$", LogicalType.BOOLEAN),
    (r"^DATE$", LogicalType.DATE),
    (r"^(TIMESTAMP|DATETIME)", LogicalType.TIMESTAMP),
]


def _column_type(prop: Mapping[str, Any], custom: Mapping[str, Any]) -> dict[str, Any]:
    """`type` (and precision/scale) of a column from the mesh type, else the physical, else the logical."""
    declared = custom.get("meshType")
    if isinstance(declared, str):
        match = re.match(r"^decimal\((\d+),\s*(\d+)\)$", declared)
        if match:
            return {"type": "decimal", "precision": int(match[1]), "scale": int(match[2])}
        if declared in {t.value for t in LogicalType}:
            return {"type": declared}
    physical = str(prop.get("physicalType") or "").strip().upper()
    fixed = re.match(r"^(NUMBER|DECIMAL|NUMERIC)\s*(\(\s*(\d+)\s*(,\s*(\d+)\s*)?\))?$", physical)
    if fixed:
        precision = int(fixed[3]) if fixed[3] else 38
        scale = int(fixed[5]) if fixed[5] else 0
        if scale == 0:  # Snowflake's integers are NUMBER(38,0)
            return {"type": "bigint" if precision > 9 else "integer"}
        return {"type": "decimal", "precision": min(precision, 38), "scale": scale}
    for pattern, kind in _PHYSICAL:
        if physical and re.match(pattern, physical):
            return {"type": kind.value}
    logical = str(prop.get("logicalType") or "").strip().lower()
    options = prop.get("logicalTypeOptions") or {}
    if logical == "integer":
        wide = str(options.get("format", "")).lower() in {"i64", "u64", "i128", "u128", "u32"}
        return {"type": "bigint" if wide else "integer"}
    if logical == "number":
        return {"type": "double"}
    if logical in {"string", "boolean", "date", "timestamp"}:
        return {"type": logical}
    return {}  # no type the spec knows: left out, so validation names it


def _columns(obj: Mapping[str, Any], notes: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Spec columns of a schema object, and its primary key (by position)."""
    columns: list[dict[str, Any]] = []
    keyed: list[tuple[int, int, str]] = []
    for index, prop in enumerate(obj.get("properties") or []):
        if not isinstance(prop, Mapping):
            continue
        custom = _custom_values(prop.get("customProperties"))
        name = prop.get("name")
        column: dict[str, Any] = {"name": name}
        typed = _column_type(prop, custom)
        if not typed:
            notes.append(
                f"column '{name}': type {prop.get('logicalType') or prop.get('physicalType')!r} has no "
                "mesh equivalent; set 'type'"
            )
        column.update(typed)
        description = prop.get("description")
        if isinstance(description, str) and len(description.strip()) >= 3:
            column["description"] = description.strip()
        if prop.get("required"):
            column["nullable"] = False
        if prop.get("unique"):
            column["unique"] = True
        tags = [str(t).lower() for t in prop.get("tags") or []]
        if custom.get("pii") is True or "pii" in tags:
            column["pii"] = True
        examples = [e for e in prop.get("examples") or [] if isinstance(e, str | int | float | bool)]
        if examples:
            column["examples"] = examples
        if prop.get("primaryKey"):
            position = prop.get("primaryKeyPosition")
            keyed.append((position if isinstance(position, int) and position > 0 else 10_000, index, name))
        physical_name = prop.get("physicalName")
        if physical_name and physical_name != name:
            notes.append(f"column '{name}' is '{physical_name}' in the source table; the port uses '{name}'")
        if prop.get("properties") or prop.get("items"):
            notes.append(f"column '{name}' is nested; the mesh has flat columns only")
        columns.append(column)
    return columns, [name for _, _, name in sorted(keyed)]


def _parse_sla_duration(entry: Mapping[str, Any], notes: list[str]) -> str | None:
    """`value` + `unit` of an SLA property as a spec duration (`24h`), if it is one."""
    value, unit = entry.get("value"), str(entry.get("unit") or "").strip().lower()
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    if unit in _UNIT_IN:
        if value != int(value):
            minutes = value * {"m": 1, "h": 60, "d": 1440}[_UNIT_IN[unit]]
            return f"{round(minutes)}m"
        return f"{int(value)}{_UNIT_IN[unit]}"
    if unit in _UNIT_DAYS:
        days = round(value * _UNIT_DAYS[unit])
        notes.append(f"SLA {entry.get('property')} of {value} {unit} read as {days}d")
        return f"{days}d"
    return None


def _slos(document: Mapping[str, Any], notes: list[str]) -> tuple[dict[str, Any] | None, str | None]:
    """The spec's SLOs from the SLA properties, and the event-time column named as an SLA element."""
    entries = [e for e in document.get("slaProperties") or [] if isinstance(e, Mapping)]
    by_property: dict[str, Mapping[str, Any]] = {}
    for entry in entries:
        by_property.setdefault(str(entry.get("property", "")).lower(), entry)
    slos: dict[str, Any] = {}
    timing = by_property.get("latency") or by_property.get("ly") or by_property.get("freshness")
    element = None
    for entry in entries:
        if str(entry.get("property", "")).lower() in ("freshness", "latency") and entry.get("element"):
            element = str(entry["element"]).split(",")[0].strip().split(".")[-1]
            break
    if timing is not None:
        duration = _parse_sla_duration(timing, notes)
        custom = _custom_values(timing.get("customProperties"))
        if str(timing.get("scheduler", "")).lower() == "cron" and timing.get("schedule"):
            freshness: dict[str, Any] = {"cron": str(timing["schedule"])}
            if duration:
                freshness["lower_bound"] = duration
            if custom.get("cronTimezone"):
                freshness["cron_timezone"] = custom["cronTimezone"]
        else:
            freshness = {"max_age": duration} if duration else {}
            if duration and isinstance(custom.get("warnAfter"), str):
                freshness["warn_after"] = custom["warnAfter"]
        if freshness:
            slos["freshness"] = freshness
        else:
            notes.append(f"SLA {timing.get('property')} {timing.get('value')} {timing.get('unit')} not read")
    availability = by_property.get("availability") or by_property.get("av")
    if availability is not None and isinstance(availability.get("value"), int | float):
        value = float(availability["value"])
        slos["availability"] = round(
            value / 100 if value > 1 or availability.get("unit") == "percent" else value, 6
        )
        window = _custom_values(availability.get("customProperties")).get("window")
        if isinstance(window, str):
            slos["window"] = window
    known = {"latency", "ly", "freshness", "availability", "av", "errorrate", "er", "endoflife", "el"}
    skipped = sorted(
        {str(e.get("property")) for e in entries if str(e.get("property", "")).lower() not in known}
    )
    if skipped:
        notes.append(f"SLA properties without a mesh SLO, not imported: {', '.join(skipped)}")
    error_rate = by_property.get("errorrate") or by_property.get("er")
    if error_rate is not None:
        custom = _custom_values(error_rate.get("customProperties"))
        if isinstance(custom.get("qualityPassRate"), int | float):
            slos["quality_pass_rate"] = custom["qualityPassRate"]
        elif isinstance(error_rate.get("value"), int | float):
            slos["quality_pass_rate"] = round(1 - float(error_rate["value"]) / 100, 6)
    return (slos or None), element


def _quality_in(obj: Mapping[str, Any], port: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    """The spec's `quality` block from ODCS quality entries (schema- and property-level)."""
    quality: dict[str, Any] = {}
    rules: list[dict[str, Any]] = []
    entries: list[tuple[str | None, Mapping[str, Any]]] = [
        (None, e) for e in obj.get("quality") or [] if isinstance(e, Mapping)
    ]
    for prop in obj.get("properties") or []:
        if isinstance(prop, Mapping):
            entries += [(prop.get("name"), e) for e in prop.get("quality") or [] if isinstance(e, Mapping)]
    seen_rules: set[str] = set()
    ordered: list[tuple[int, int, dict[str, Any]]] = []  # rules carried from a mesh export, by position
    for column, entry in entries:
        severity = _SEVERITY_IN.get(str(entry.get("severity", "")).lower())
        ident = entry.get("id") or entry.get("name")
        metric = entry.get("metric") or entry.get("rule")
        carried = _custom_values(entry.get("customProperties"))
        if isinstance(carried.get("rule"), Mapping):
            rule = dict(carried["rule"])
            key = str(rule.get("name") or ident)
            if key not in seen_rules:
                seen_rules.add(key)
                position = carried.get("rulePosition")
                ordered.append((position if isinstance(position, int) else len(entries), len(ordered), rule))
            continue
        if ident == SCHEMA_CHECK:
            if severity:
                quality["schema_severity"] = severity
        elif ident == KEY_CHECK or (column is None and metric == "duplicateValues"):
            if severity and column is None:
                quality["key_severity"] = severity
            listed = (entry.get("arguments") or {}).get("properties")
            if column is None and listed and not port.get("primary_key"):
                port["primary_key"] = [str(p) for p in listed]
                notes.append(f"primary key taken from the uniqueness rule on ({', '.join(map(str, listed))})")
        elif metric == "rowCount":
            bounds = _row_count_in(entry)
            if bounds:
                quality["row_count"] = bounds
        elif ident == VOLUME_CHECK and isinstance(carried.get("volumeChange"), Mapping):
            quality["volume_change"] = dict(carried["volumeChange"])
        elif ident == TIMELINESS_CHECK and isinstance(carried.get("timeliness"), Mapping):
            quality["timeliness"] = dict(carried["timeliness"])
        elif metric in ("nullValues", "duplicateValues") and column is not None:
            # "No nulls" / "no duplicates" is what the spec's `nullable: false` / `unique: true` promise.
            if entry.get("mustBe") == 0 or (
                entry.get("mustBeLessThan") == 1 and entry.get("unit") != "percent"
            ):
                for spec_column in port.get("columns", []):
                    if spec_column.get("name") == column:
                        if metric == "nullValues":
                            spec_column["nullable"] = False
                        elif column not in port.get("primary_key", []):
                            spec_column["unique"] = True
            else:
                notes.append(
                    f"quality rule {metric} on {column} not imported: only 'mustBe: 0' maps to the spec"
                )
        elif metric == "invalidValues" and column is not None:
            arguments = entry.get("arguments") or {}
            rule = {"type": None, "column": column, **({"name": _slug(ident)} if _slug(ident) else {})}
            if arguments.get("validValues"):
                rule.update(type="accepted_values", values=list(arguments["validValues"]))
            elif arguments.get("pattern"):
                rule.update(type="pattern", regex=str(arguments["pattern"]))
            if rule["type"] is None:
                notes.append(
                    f"quality rule {ident or metric} on {column} not imported: no valid values or pattern"
                )
                continue
            if severity:
                rule["severity"] = severity
            rules.append({k: v for k, v in rule.items() if v is not None})
        else:
            what = ident or metric or entry.get("type") or "rule"
            where = f" on {column}" if column else ""
            notes.append(
                f"quality rule '{what}'{where} not imported: the spec has no equivalent; add it by hand"
            )
    rules = [rule for _, _, rule in sorted(ordered, key=lambda t: (t[0], t[1]))] + rules
    if rules:
        quality["rules"] = rules
    return quality


def _row_count_in(entry: Mapping[str, Any]) -> dict[str, Any] | None:
    if isinstance(entry.get("mustBeBetween"), list) and len(entry["mustBeBetween"]) == 2:
        low, high = entry["mustBeBetween"]
        return {"min": int(low), "max": int(high)}
    if isinstance(entry.get("mustBeGreaterOrEqualTo"), int | float):
        return {"min": int(entry["mustBeGreaterOrEqualTo"])}
    if isinstance(entry.get("mustBeGreaterThan"), int | float):
        return {"min": int(entry["mustBeGreaterThan"]) + 1}
    if isinstance(entry.get("mustBe"), int | float):
        return {"min": int(entry["mustBe"]), "max": int(entry["mustBe"])}
    return None


def _owner(document: Mapping[str, Any], notes: list[str]) -> dict[str, Any] | None:
    team = document.get("team")
    members: list[Mapping[str, Any]] = []
    owner: dict[str, Any] = {}
    if isinstance(team, Mapping):
        name = _slug(team.get("name"))
        if name:
            owner["team"] = name
        members = [m for m in team.get("members") or [] if isinstance(m, Mapping)]
    elif isinstance(team, list):  # the deprecated v3.0 array of members
        members = [m for m in team if isinstance(m, Mapping)]
    ranked = sorted(
        (m for m in members if m.get("username") and not m.get("dateOut")),
        key=lambda m: (
            0
            if "steward" in str(m.get("role", "")).lower()
            else 1
            if "owner" in str(m.get("role", "")).lower()
            else 2
        ),
    )
    if ranked:
        owner["steward"] = str(ranked[0]["username"])
        if "@" not in owner["steward"]:
            notes.append(f"steward '{owner['steward']}' is not an email address")
    return owner or None


def _support_in(document: Mapping[str, Any]) -> dict[str, Any] | None:
    entries = [e for e in document.get("support") or [] if isinstance(e, Mapping) and e.get("channel")]
    chosen = next((e for e in entries if e.get("id") != "steward"), None)
    if chosen is None:
        return None
    custom = _custom_values(chosen.get("customProperties"))
    tool = str(chosen.get("tool") or "").lower()
    kind = custom.get("kind") or {"slack": "slack", "email": "email"}.get(tool)
    channel = str(chosen["channel"])
    if kind is None and str(chosen.get("url", "")).startswith("http"):
        kind, channel = "webhook", str(chosen["url"])
    return {"channel": channel, **({"kind": kind} if kind else {})}


def _status_in(value: Any) -> str | None:
    status = str(value or "").strip().lower()
    if status == "proposed":
        return "draft"
    return status if status in {"draft", "beta", "active", "deprecated", "retired"} else None


def _classification_in(obj: Mapping[str, Any]) -> str | None:
    order = ["public", "internal", "confidential", "restricted"]
    found = [
        str(p.get("classification", "")).lower()
        for p in obj.get("properties") or []
        if isinstance(p, Mapping) and str(p.get("classification", "")).lower() in order
    ]
    return max(found, key=order.index) if found else None


_SPEC_ORDER = [
    "name",
    "domain",
    "title",
    "description",
    "owner",
    "product_type",
    "status",
    "business_capability",
    "classification",
    "access",
    "access_policy",
    "distribution_rights",
    "data_sharing_agreement",
    "support",
    "slos",
    "tags",
    "input_ports",
    "transformation",
    "output_ports",
]


def import_contract(document: Mapping[str, Any], domain: str | None = None) -> ImportResult:
    """A `dataproduct.yaml` draft (one output port) from an ODCS v3 contract; see `ImportResult`.

    Mesh attributes the export keeps in `customProperties` are read back, so a contract exported by the
    platform imports to the same spec. A contract from elsewhere fills what ODCS says; mandatory fields
    it cannot say (product type, access, transformation, ...) are left out and reported as `missing`.
    """
    notes: list[str] = []
    api = str(document.get("apiVersion", ""))
    if api.startswith("v2") or "dataset" in document:
        raise ContractError(
            f"ODCS {api or 'v2'} contracts are not supported; convert the contract to v3 first"
        )
    objects = [o for o in document.get("schema") or [] if isinstance(o, Mapping)]
    if not objects:
        raise ContractError("the contract has no 'schema': there is no table to build an output port from")
    invalid = schema_errors(document)
    if invalid:
        notes.append(
            f"the contract is not valid ODCS {API_VERSION} ({len(invalid)} problem(s), e.g. {invalid[0]})"
        )
    obj = objects[0]
    if len(objects) > 1:
        others = ", ".join(str(o.get("name")) for o in objects[1:])
        notes.append(f"a port is one table: imported '{obj.get('name')}', not {others}")
    custom = _custom_values(document.get("customProperties"))
    table = obj.get("name") or obj.get("physicalName")
    # The mesh export names the product; else the (deprecated) ODCS `dataProduct`, else the table.
    name = (
        _slug(custom.get("product"))
        or _slug(document.get("dataProduct"))
        or _slug(re.sub(r"_v\d+$", "", str(table or "")))
        or _slug(document.get("name"))
    )
    draft: dict[str, Any] = {}
    if name:
        draft["name"] = name
    chosen_domain = domain or _slug(document.get("domain"))
    if chosen_domain:
        draft["domain"] = chosen_domain
    title = (
        custom.get("title") or document.get("name") or document.get("dataProduct") or obj.get("businessName")
    )
    if isinstance(title, str) and len(title.strip()) >= 3:
        draft["title"] = title.strip()
    description = document.get("description")
    if isinstance(description, Mapping):
        parts = {k: description[k] for k in ("purpose", "usage", "limitations") if description.get(k)}
        if parts:
            draft["description"] = {k: str(v).strip() for k, v in parts.items()}
    elif isinstance(description, str) and description.strip():
        draft["description"] = {"purpose": description.strip()}
    owner = _owner(document, notes)
    if owner:
        draft["owner"] = owner
    for key, spec_key in (("productType", "product_type"), ("businessCapability", "business_capability")):
        if custom.get(key):
            draft[spec_key] = custom[key]
    status = _status_in(custom.get("productStatus") or document.get("status"))
    if status:
        draft["status"] = status
    elif document.get("status"):
        notes.append(f"status '{document['status']}' is not a mesh status; set one of draft, beta, active")
    classification = custom.get("classification") or _classification_in(obj)
    if classification:
        draft["classification"] = classification
    for key, spec_key in (
        ("access", "access"),
        ("accessPolicy", "access_policy"),
        ("distributionRights", "distribution_rights"),
        ("dataSharingAgreement", "data_sharing_agreement"),
    ):
        if isinstance(custom.get(key), Mapping):
            draft[spec_key] = dict(custom[key])
    if "access_policy" not in draft:
        roles = [
            str(r["role"]) for r in document.get("roles") or [] if isinstance(r, Mapping) and r.get("role")
        ]
        if roles:
            draft["access_policy"] = {"allowed_roles": roles}
            notes.append("access_policy.allowed_roles taken from the contract's roles; review them")
    support = _support_in(document)
    if support:
        draft["support"] = support
    slos, sla_element = _slos(document, notes)
    if slos:
        draft["slos"] = slos
    tags = []
    for tag in document.get("tags") or []:
        slug = re.sub(r"[^a-z0-9_-]+", "-", str(tag).strip().lower()).strip("-")
        if slug:
            tags.append(slug)
    if tags:
        draft["tags"] = list(dict.fromkeys(tags))
    if isinstance(custom.get("inputPorts"), list):
        draft["input_ports"] = list(custom["inputPorts"])
    if isinstance(custom.get("transformation"), Mapping):
        draft["transformation"] = dict(custom["transformation"])
    draft["output_ports"] = [_port_in(document, obj, custom, sla_element, notes)]
    ordered = {key: draft[key] for key in _SPEC_ORDER if key in draft}
    missing, problems = _check_draft(ordered)
    return ImportResult(draft=ordered, missing=missing, problems=problems, notes=notes)


def _port_in(
    document: Mapping[str, Any],
    obj: Mapping[str, Any],
    custom: Mapping[str, Any],
    sla_element: str | None,
    notes: list[str],
) -> dict[str, Any]:
    """The output port of the draft: version, status, schema, keys, quality, deprecation."""
    port: dict[str, Any] = {}
    version = _semver(document.get("version"), notes)
    if version:
        port["version"] = version
    if custom.get("portStatus"):
        port["status"] = custom["portStatus"]
    description = custom.get("portDescription")
    if isinstance(description, str):
        port["description"] = description
    if isinstance(custom.get("model"), str):
        port["model"] = custom["model"]
    columns, primary_key = _columns(obj, notes)
    if columns:
        port["columns"] = columns
    if primary_key:
        port["primary_key"] = primary_key
    names = {c.get("name") for c in columns}
    event_time = custom.get("eventTime")
    if not event_time:
        event_time = next(
            (
                p.get("name")
                for p in obj.get("properties") or []
                if isinstance(p, Mapping)
                and _custom_values(p.get("customProperties")).get("eventTime") is True
            ),
            None,
        ) or (sla_element if sla_element in names else None)
    if event_time in names:
        port["event_time"] = event_time
    quality = _quality_in(obj, port, notes)
    if quality:
        port["quality"] = quality
    if isinstance(custom.get("deprecation"), Mapping):
        port["deprecation"] = dict(custom["deprecation"])
    elif _status_in(document.get("status")) == "deprecated":
        end = next(
            (
                e.get("value")
                for e in document.get("slaProperties") or []
                if isinstance(e, Mapping) and str(e.get("property", "")).lower() in ("endoflife", "el")
            ),
            None,
        )
        port["status"] = "deprecated"
        port["deprecation"] = {"sunset": str(end)[:10]} if end else {}
    ordered = [
        "version",
        "status",
        "description",
        "model",
        "columns",
        "primary_key",
        "event_time",
        "quality",
        "deprecation",
    ]
    return {key: port[key] for key in ordered if key in port}


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


def _check_draft(draft: Mapping[str, Any]) -> tuple[list[FieldGap], list[str]]:
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


def read_contract(path: Path) -> dict[str, Any]:
    """An ODCS contract file (YAML or JSON) as a mapping."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ContractError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ContractError(f"{path} is not an ODCS contract: expected a mapping of fields")
    return data


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
