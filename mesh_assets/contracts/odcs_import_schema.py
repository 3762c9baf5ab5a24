"""An ODCS schema object read back as a port's columns, primary key and quality.

Types come from the mesh type the export keeps, else the physical type, else the logical one; quality
entries map to the spec's nullability, uniqueness, row count and rules where the spec has an equivalent,
and are named in the import's notes where it has none.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mesh_assets.contracts.odcs_vocabulary import (
    KEY_CHECK,
    SCHEMA_CHECK,
    TIMELINESS_CHECK,
    VOLUME_CHECK,
    custom_values,
    identifier_of,
)
from mesh_assets.product.spec import LogicalType
from mesh_assets.product.sql_types import fixed_point

_SEVERITY_IN = {"error": "error", "critical": "error", "warning": "warn", "warn": "warn", "info": "warn"}

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
        written = fixed_point(declared)
        if written and None not in written:
            return {"type": "decimal", "precision": written[0], "scale": written[1]}
        if declared in {t.value for t in LogicalType}:
            return {"type": declared}
    physical = str(prop.get("physicalType") or "").strip().upper()
    fixed = fixed_point(physical) if physical else None
    if fixed:
        precision = 38 if fixed[0] is None else fixed[0]  # Snowflake's defaults for a bare NUMBER
        scale = 0 if fixed[1] is None else fixed[1]
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


def columns_in(obj: Mapping[str, Any], notes: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Spec columns of a schema object, and its primary key (by position)."""
    columns: list[dict[str, Any]] = []
    keyed: list[tuple[int, int, str]] = []
    for index, prop in enumerate(obj.get("properties") or []):
        if not isinstance(prop, Mapping):
            continue
        custom = custom_values(prop.get("customProperties"))
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


_Entry = tuple[str | None, Mapping[str, Any]]
"""An ODCS quality entry and the column it is on (None: on the table)."""


def _quality_entries(obj: Mapping[str, Any]) -> list[_Entry]:
    """The table's quality entries, then each property's."""
    entries: list[_Entry] = [(None, e) for e in obj.get("quality") or [] if isinstance(e, Mapping)]
    for prop in obj.get("properties") or []:
        if isinstance(prop, Mapping):
            entries += [(prop.get("name"), e) for e in prop.get("quality") or [] if isinstance(e, Mapping)]
    return entries


def _key_in(
    entry: Mapping[str, Any],
    column: str | None,
    severity: str | None,
    port: dict[str, Any],
    quality: dict[str, Any],
    notes: list[str],
) -> None:
    """The key check's severity; its columns as the primary key when the schema named none."""
    if severity and column is None:
        quality["key_severity"] = severity
    listed = (entry.get("arguments") or {}).get("properties")
    if column is None and listed and not port.get("primary_key"):
        port["primary_key"] = [str(p) for p in listed]
        notes.append(f"primary key taken from the uniqueness rule on ({', '.join(map(str, listed))})")


def _column_promise_in(
    entry: Mapping[str, Any], metric: str, column: str, port: dict[str, Any], notes: list[str]
) -> None:
    """No nulls / no duplicates (`mustBe: 0`): what the spec's `nullable: false` / `unique: true` promise."""
    if not (
        entry.get("mustBe") == 0 or (entry.get("mustBeLessThan") == 1 and entry.get("unit") != "percent")
    ):
        notes.append(f"quality rule {metric} on {column} not imported: only 'mustBe: 0' maps to the spec")
        return
    for spec_column in port.get("columns", []):
        if spec_column.get("name") == column:
            if metric == "nullValues":
                spec_column["nullable"] = False
            elif column not in port.get("primary_key", []):
                spec_column["unique"] = True


def _values_rule_in(
    entry: Mapping[str, Any], ident: Any, metric: Any, column: str, severity: str | None, notes: list[str]
) -> dict[str, Any] | None:
    """An `invalidValues` entry as an `accepted_values` or `pattern` rule, if it gives values or a pattern."""
    arguments = entry.get("arguments") or {}
    rule = {
        "type": None,
        "column": column,
        **({"name": identifier_of(ident)} if identifier_of(ident) else {}),
    }
    if arguments.get("validValues"):
        rule.update(type="accepted_values", values=list(arguments["validValues"]))
    elif arguments.get("pattern"):
        rule.update(type="pattern", regex=str(arguments["pattern"]))
    if rule["type"] is None:
        notes.append(f"quality rule {ident or metric} on {column} not imported: no valid values or pattern")
        return None
    if severity:
        rule["severity"] = severity
    return {k: v for k, v in rule.items() if v is not None}


def quality_in(obj: Mapping[str, Any], port: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    """The spec's `quality` block from ODCS quality entries (schema- and property-level)."""
    quality: dict[str, Any] = {}
    rules: list[dict[str, Any]] = []
    entries = _quality_entries(obj)
    seen_rules: set[str] = set()
    ordered: list[tuple[int, int, dict[str, Any]]] = []  # rules carried from a mesh export, by position
    for column, entry in entries:
        severity = _SEVERITY_IN.get(str(entry.get("severity", "")).lower())
        ident = entry.get("id") or entry.get("name")
        metric = entry.get("metric") or entry.get("rule")
        carried = custom_values(entry.get("customProperties"))
        if isinstance(carried.get("rule"), Mapping):
            rule = dict(carried["rule"])
            key = str(rule.get("name") or ident)
            if key not in seen_rules:
                seen_rules.add(key)
                position = carried.get("rulePosition")
                ordered.append((position if isinstance(position, int) else len(entries), len(ordered), rule))
        elif ident == SCHEMA_CHECK:
            if severity:
                quality["schema_severity"] = severity
        elif ident == KEY_CHECK or (column is None and metric == "duplicateValues"):
            _key_in(entry, column, severity, port, quality, notes)
        elif metric == "rowCount":
            bounds = _row_count_in(entry)
            if bounds:
                quality["row_count"] = bounds
        elif ident == VOLUME_CHECK and isinstance(carried.get("volumeChange"), Mapping):
            quality["volume_change"] = dict(carried["volumeChange"])
        elif ident == TIMELINESS_CHECK and isinstance(carried.get("timeliness"), Mapping):
            quality["timeliness"] = dict(carried["timeliness"])
        elif metric in ("nullValues", "duplicateValues") and column is not None:
            _column_promise_in(entry, metric, column, port, notes)
        elif metric == "invalidValues" and column is not None:
            found = _values_rule_in(entry, ident, metric, column, severity, notes)
            rules += [found] if found else []
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
