"""A port's contract rules in ODCS's quality vocabulary: the same rules its asset checks run.

Each entry's `id` is the Dagster check name. Baseline rules (schema, key, row count, nulls, uniqueness,
volume, timeliness) become ODCS metrics; the spec's own `quality.rules` carry themselves in a custom
property as well, so an import rebuilds exactly the rules the checks run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mesh_assets.contracts.odcs_vocabulary import (
    KEY_CHECK,
    NOT_NULL_CHECK,
    ROW_COUNT_CHECK,
    SCHEMA_CHECK,
    TIMELINESS_CHECK,
    UNIQUE_CHECK,
    VOLUME_CHECK,
    custom_properties,
)
from mesh_assets.product.addressing import contract_file_name
from mesh_assets.product.spec import DataProductSpec, OutputPort
from mesh_assets.product.sql_text import quote_literal

if TYPE_CHECKING:
    from mesh_assets.product.registry import Product, Registry


_SEVERITY_OUT = {"error": "error", "warn": "warning"}


def port_rules(spec: DataProductSpec, port: OutputPort) -> list[Any]:
    """The port's contract rules, exactly as its asset checks run them."""
    import inspect

    from mesh_assets.quality import checks

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
    return quote_literal(value)


def _row_count_operator(low: int, high: int | None) -> dict[str, Any]:
    if high is None:
        return {"mustBeGreaterOrEqualTo": low}
    if high == low:
        return {"mustBe": low}
    return {"mustBeBetween": [low, high]}


@dataclass
class PortQuality:
    """Quality entries of one port: schema-level, per column, and property relationships."""

    schema: list[dict[str, Any]] = field(default_factory=list)
    columns: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    relationships: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def on(self, column: str, entry: dict[str, Any]) -> None:
        self.columns.setdefault(column, []).append(entry)


def port_quality(
    spec: DataProductSpec, port: OutputPort, registry: Registry | None, product: Product | None
) -> PortQuality:
    """The port's contract rules in ODCS's quality vocabulary; each `id` is the Dagster check name."""
    found = PortQuality()
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
                    "customProperties": custom_properties(
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
                    "customProperties": custom_properties(
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
    found: PortQuality,
    registry: Registry | None,
    product: Product | None,
) -> None:
    """One validity/custom rule of the spec's `quality.rules` as ODCS quality (and relationships)."""
    kind = getattr(rule, "type", "")
    # The spec's own rule (and its place in the spec) travels with it, so an import rebuilds exactly the
    # rules the checks run, in order.
    dumped = rule.model_dump(mode="json", exclude_defaults=True)
    carried = {"customProperties": custom_properties({"rule": dumped, "rulePosition": position})}
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
    table = resolved.relation.name
    file = contract_file_name(producer.domain, producer.name, resolved.port.major)
    return f"{file}#/schema/{table}/properties/{rule.to_column}"
