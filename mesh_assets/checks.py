"""Contract checks on output ports: rules derived from the spec, evaluated where the data lives.

A `Rule` contributes SQL aggregate expressions; all rules of a port are answered by one scan of the
staged batch, then each rule judges its own values. Adding a kind of rule means adding a `Rule` subclass
and listing it in `contract_rules` - the asset-check specs, the audit and the UI metadata follow.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from mesh_assets.addressing import Relation
from mesh_assets.spec import Column, OutputPort, Severity
from mesh_assets.warehouse.base import WarehouseSession


@dataclass(frozen=True)
class Outcome:
    """A rule's verdict on one batch, with what a person needs to act on it."""

    rule: str
    passed: bool
    severity: Severity
    description: str
    observed: Any
    threshold: Any
    failing_count: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def blocks(self) -> bool:
        """A failed error-severity rule stops the publish."""
        return not self.passed and self.severity == Severity.ERROR

    def to_result(self, asset_key: dg.AssetKey) -> dg.AssetCheckResult:
        """The Dagster check result, with actionable metadata."""
        metadata: dict[str, Any] = {
            "observed": dg.MetadataValue.text(str(self.observed)),
            "threshold": dg.MetadataValue.text(str(self.threshold)),
            "failing_count": self.failing_count,
            "rule": dg.MetadataValue.text(self.description),
        }
        for key, value in self.details.items():
            metadata[key] = dg.MetadataValue.json(value) if isinstance(value, list | dict) else value
        return dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=self.rule,
            passed=self.passed,
            severity=dg.AssetCheckSeverity.ERROR
            if self.severity == Severity.ERROR
            else dg.AssetCheckSeverity.WARN,
            metadata=metadata,
        )


class Rule(abc.ABC):
    """One contract rule of a port."""

    name: str
    severity: Severity
    description: str

    def aggregates(self, session: WarehouseSession) -> dict[str, str]:
        """SQL aggregate expressions this rule needs, by alias (answered in the shared scan)."""
        return {}

    @abc.abstractmethod
    def judge(self, session: WarehouseSession, batch: Relation, values: dict[str, Any]) -> Outcome:
        """Decide pass/fail from the scanned values (and, on failure, fetch samples)."""


class SchemaRule(Rule):
    """Every contract column present with a compatible type, and no undeclared columns."""

    name = "contract_schema"

    def __init__(self, port: OutputPort) -> None:
        self.port = port
        self.severity = port.quality.schema_severity
        self.description = (
            "The port has exactly the contract's columns ("
            + ", ".join(c.name for c in port.columns)
            + "), each with a compatible type."
        )

    def judge(self, session: WarehouseSession, batch: Relation, values: dict[str, Any]) -> Outcome:
        actual = dict(session.columns(batch))
        missing = [c.name for c in self.port.columns if c.name not in actual]
        wrong = [
            f"{c.name}: {actual[c.name]} (contract: {session.physical_type(c)})"
            for c in self.port.columns
            if c.name in actual and not session.type_matches(c, actual[c.name])
        ]
        declared = {c.name for c in self.port.columns}
        extra = [name for name in actual if name not in declared]
        problems = len(missing) + len(wrong) + len(extra)
        return Outcome(
            rule=self.name,
            passed=problems == 0,
            severity=self.severity,
            description=self.description,
            observed=f"{len(actual)} columns",
            threshold=f"{len(self.port.columns)} contract columns",
            failing_count=problems,
            details={"missing_columns": missing, "type_mismatches": wrong, "undeclared_columns": extra},
        )


class PrimaryKeyRule(Rule):
    """The primary key is unique and never null."""

    def __init__(self, port: OutputPort) -> None:
        self.keys = port.primary_key
        self.severity = port.quality.key_severity
        self.name = "primary_key_unique_not_null"
        self.description = f"({', '.join(self.keys)}) identifies each row: unique and not null."

    def aggregates(self, session: WarehouseSession) -> dict[str, str]:
        any_null = " OR ".join(f'"{k}" IS NULL' for k in self.keys)
        return {
            "pk_null_rows": f"SUM(CASE WHEN {any_null} THEN 1 ELSE 0 END)",
            "pk_keyed_rows": f"SUM(CASE WHEN {any_null} THEN 0 ELSE 1 END)",
            "pk_distinct": session.distinct_keys_sql(self.keys),
        }

    def judge(self, session: WarehouseSession, batch: Relation, values: dict[str, Any]) -> Outcome:
        # SUM over an empty batch is NULL.
        nulls = int(values["pk_null_rows"] or 0)
        duplicates = int(values["pk_keyed_rows"] or 0) - int(values["pk_distinct"] or 0)
        details: dict[str, Any] = {"null_key_rows": nulls, "duplicate_key_rows": duplicates}
        if duplicates:
            cols = ", ".join(f'"{k}"' for k in self.keys)
            any_null = " OR ".join(f'"{k}" IS NULL' for k in self.keys)
            # Null keys are reported as null_key_rows, not as duplicates of each other.
            rows = session.query(
                f"SELECT {cols}, COUNT(*) AS n FROM {batch.sql} WHERE NOT ({any_null}) "
                f"GROUP BY {cols} HAVING COUNT(*) > 1 ORDER BY n DESC LIMIT 5"
            )
            details["sample_duplicate_keys"] = [[str(v) for v in row] for row in rows]
        return Outcome(
            rule=self.name,
            passed=nulls == 0 and duplicates == 0,
            severity=self.severity,
            description=self.description,
            observed=f"{duplicates} duplicate, {nulls} null",
            threshold="0 duplicate, 0 null",
            failing_count=nulls + duplicates,
            details=details,
        )


class RowCountRule(Rule):
    """The batch holds a plausible number of rows."""

    name = "row_count_within_bounds"

    def __init__(self, port: OutputPort) -> None:
        self.bounds = port.quality.row_count
        self.severity = Severity.ERROR
        upper = f"at most {self.bounds.max:,}" if self.bounds.max else "no upper bound"
        self.description = f"Row count is at least {self.bounds.min:,} ({upper})."

    def aggregates(self, session: WarehouseSession) -> dict[str, str]:
        return {"row_count": "COUNT(*)"}

    def judge(self, session: WarehouseSession, batch: Relation, values: dict[str, Any]) -> Outcome:
        rows = int(values["row_count"])
        low, high = self.bounds.min, self.bounds.max
        passed = rows >= low and (high is None or rows <= high)
        return Outcome(
            rule=self.name,
            passed=passed,
            severity=self.severity,
            description=self.description,
            observed=rows,
            threshold=f"[{low}, {high if high is not None else 'inf'}]",
            failing_count=0 if passed else 1,
            details={"row_count": rows},
        )


class ColumnCountRule(Rule):
    """A rule counting offending values per contract column, answered in the shared scan."""

    unit: str
    """What is counted, e.g. `nulls`."""
    detail_key: str
    """Metadata key of the per-column counts."""

    def __init__(self, port: OutputPort) -> None:
        self.columns = [c.name for c in port.columns if self.applies(c, port)]
        self.severity = Severity.ERROR

    @abc.abstractmethod
    def applies(self, column: Column, port: OutputPort) -> bool:
        """Whether the rule covers a column."""

    @abc.abstractmethod
    def count_sql(self, column: str) -> str:
        """Aggregate counting the offending values of one column."""

    def aggregates(self, session: WarehouseSession) -> dict[str, str]:
        return {f"{self.name}__{c}": self.count_sql(c) for c in self.columns}

    def judge(self, session: WarehouseSession, batch: Relation, values: dict[str, Any]) -> Outcome:
        counts = {c: int(values[f"{self.name}__{c}"] or 0) for c in self.columns}
        failing = {c: n for c, n in counts.items() if n}
        return Outcome(
            rule=self.name,
            passed=not failing,
            severity=self.severity,
            description=self.description,
            observed=", ".join(f"{c}: {n}" for c, n in failing.items()) or f"no {self.unit}",
            threshold=f"0 {self.unit} per column",
            failing_count=sum(failing.values()),
            details={self.detail_key: counts},
        )


class NotNullRule(ColumnCountRule):
    """Columns the contract declares `nullable: false` (beyond the key) hold no nulls."""

    name = "not_null_columns"
    unit = "nulls"
    detail_key = "null_counts"

    def applies(self, column: Column, port: OutputPort) -> bool:
        return not column.nullable and column.name not in port.primary_key

    def count_sql(self, column: str) -> str:
        return f'SUM(CASE WHEN "{column}" IS NULL THEN 1 ELSE 0 END)'

    @property
    def description(self) -> str:
        return f"No nulls in {', '.join(self.columns)}."


class UniqueRule(ColumnCountRule):
    """Columns the contract declares `unique: true` (beyond a single-column key) hold no duplicates."""

    name = "unique_columns"
    unit = "duplicate values"
    detail_key = "duplicate_counts"

    def applies(self, column: Column, port: OutputPort) -> bool:
        return column.unique and port.primary_key != [column.name]

    def count_sql(self, column: str) -> str:
        return f'COUNT("{column}") - COUNT(DISTINCT "{column}")'

    @property
    def description(self) -> str:
        return f"Values of {', '.join(self.columns)} are unique (nulls aside)."


def contract_rules(port: OutputPort) -> list[Rule]:
    """The rules every publish of a port must pass, derived from its contract.

    The schema rule comes first: it gates the others. Column rules exist only where the contract asks
    for them, so every check a port shows can fail.
    """
    rules: list[Rule] = [SchemaRule(port), PrimaryKeyRule(port), RowCountRule(port)]
    if NotNullRule(port).columns:
        rules.append(NotNullRule(port))
    if UniqueRule(port).columns:
        rules.append(UniqueRule(port))
    return rules


def check_specs(port: OutputPort, asset_key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    """One Dagster asset check per rule; error-severity rules are blocking."""
    return [
        dg.AssetCheckSpec(
            name=rule.name,
            asset=asset_key,
            description=f"{rule.description} Severity: {rule.severity.value}.",
            blocking=rule.severity == Severity.ERROR,
        )
        for rule in contract_rules(port)
    ]


def audit(session: WarehouseSession, batch: Relation, port: OutputPort) -> list[Outcome]:
    """Evaluate every rule of a port on a batch with one scan. The schema rule gates the others.

    When the schema is wrong the data rules are not run (their columns may not exist); they are
    reported failed, saying so, rather than passed.
    """
    rules = contract_rules(port)
    schema_rule, data_rules = rules[0], rules[1:]
    schema = schema_rule.judge(session, batch, {})
    # Data rules name contract columns: with any missing they cannot run, whatever the schema's severity.
    if not schema.passed and (schema.severity == Severity.ERROR or schema.details["missing_columns"]):
        return [schema] + [
            Outcome(
                rule.name,
                False,
                rule.severity,
                rule.description,
                "not evaluated",
                "schema must pass first",
                details={"skipped_because": "contract_schema failed"},
            )
            for rule in data_rules
        ]
    expressions: dict[str, str] = {}
    for rule in data_rules:
        expressions.update(rule.aggregates(session))
    values: dict[str, Any] = {}
    if expressions:
        select = ", ".join(f"{sql} AS {alias}" for alias, sql in expressions.items())
        row = session.query(f"SELECT {select} FROM {batch.sql}")[0]
        values = dict(zip(expressions, row, strict=True))
    return [schema] + [rule.judge(session, batch, values) for rule in data_rules]
