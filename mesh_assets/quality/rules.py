"""Contract rules: what a rule is (`Rule`, its `Outcome`, the `AuditContext` it judges in), and the rules
every port gets from its contract's shape: schema, primary key, row count, not-null and unique columns,
volume change against the previous publish, data timeliness.

A `Rule` contributes SQL aggregate expressions; all rules of a port are answered by one scan of the
staged batch (`checks.audit`), then each rule judges its own values. The rules a spec lists under
`quality.rules` are in `quality_rules`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg

from mesh_assets.infra.warehouse.base import WarehouseSession
from mesh_assets.product.addressing import Relation
from mesh_assets.product.spec import Column, OutputPort, Severity, parse_duration


@dataclass(frozen=True)
class AuditContext:
    """What an audit knows beyond the batch: the previous publish, referenced ports, the clock."""

    published: Relation | None = None
    """The port as published now (the previous batch), if any."""
    references: dict[str, Relation] = field(default_factory=dict)
    """`<domain>.<product>` of each input port a rule may reference, to its published relation."""
    freshness_max_age: timedelta | None = None
    """The freshness SLO's window, the default limit on data age."""
    now: datetime = field(default_factory=lambda: datetime.now(UTC).replace(tzinfo=None))
    """The audit's clock (UTC, naive like warehouse timestamps)."""


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
    def judge(
        self,
        session: WarehouseSession,
        batch: Relation,
        values: dict[str, Any],
        context: AuditContext | None = None,
    ) -> Outcome:
        """Decide pass/fail from the scanned values (and, on failure, fetch samples)."""

    def outcome(
        self, passed: bool, observed: Any, threshold: Any, failing: int = 0, **details: Any
    ) -> Outcome:
        """This rule's verdict."""
        return Outcome(
            self.name, passed, self.severity, self.description, observed, threshold, failing, details
        )


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

    def judge(
        self,
        session: WarehouseSession,
        batch: Relation,
        values: dict[str, Any],
        context: AuditContext | None = None,
    ) -> Outcome:
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

    def judge(
        self,
        session: WarehouseSession,
        batch: Relation,
        values: dict[str, Any],
        context: AuditContext | None = None,
    ) -> Outcome:
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

    def judge(
        self,
        session: WarehouseSession,
        batch: Relation,
        values: dict[str, Any],
        context: AuditContext | None = None,
    ) -> Outcome:
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

    def judge(
        self,
        session: WarehouseSession,
        batch: Relation,
        values: dict[str, Any],
        context: AuditContext | None = None,
    ) -> Outcome:
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


class VolumeChangeRule(Rule):
    """The row count does not collapse (or explode) against the previous publish."""

    name = "volume_change"

    def __init__(self, port: OutputPort) -> None:
        assert port.quality.volume_change is not None
        self.limits = port.quality.volume_change
        self.severity = self.limits.severity
        growth = f", grows at most {self.limits.max_growth:.0%}" if self.limits.max_growth is not None else ""
        self.description = (
            f"Row count falls at most {self.limits.max_drop:.0%} from the previous publish{growth}."
        )

    def aggregates(self, session: WarehouseSession) -> dict[str, str]:
        return {"row_count": "COUNT(*)"}

    def judge(
        self,
        session: WarehouseSession,
        batch: Relation,
        values: dict[str, Any],
        context: AuditContext | None = None,
    ) -> Outcome:
        rows = int(values["row_count"])
        published = (context or AuditContext()).published
        if published is None or not session.exists(published):
            return self.outcome(
                True, f"{rows:,} rows (first publish)", "no previous publish", previous_rows=None
            )
        previous = session.row_count(published)
        change = (rows - previous) / previous if previous else 0.0
        passed = change >= -self.limits.max_drop and (
            self.limits.max_growth is None or change <= self.limits.max_growth
        )
        return self.outcome(
            passed,
            f"{change:+.1%} ({previous:,} -> {rows:,})",
            f"-{self.limits.max_drop:.0%} .. "
            + (f"+{self.limits.max_growth:.0%}" if self.limits.max_growth is not None else "any"),
            0 if passed else abs(rows - previous),
            previous_rows=previous,
            rows=rows,
        )


class TimelinessRule(Rule):
    """The newest data (max of the event-time column) is recent enough: data time, not run time."""

    name = "data_timeliness"

    def __init__(self, port: OutputPort, freshness_max_age: str | None) -> None:
        assert port.event_time is not None and port.quality.timeliness is not None
        self.column = port.event_time
        self.severity = port.quality.timeliness.severity
        self.max_age = port.quality.timeliness.max_age or freshness_max_age
        self.description = f"The newest {self.column} is at most {self.max_age} old when published."

    def aggregates(self, session: WarehouseSession) -> dict[str, str]:
        return {"max_event_time": f'MAX("{self.column}")'}

    def judge(
        self,
        session: WarehouseSession,
        batch: Relation,
        values: dict[str, Any],
        context: AuditContext | None = None,
    ) -> Outcome:
        now = (context or AuditContext()).now
        newest = values["max_event_time"]
        if newest is None:
            return self.outcome(False, "no event time", f"newer than {self.max_age}", 1)
        if isinstance(newest, str):
            newest = datetime.fromisoformat(newest)
        if isinstance(newest, date) and not isinstance(newest, datetime):
            newest = datetime.combine(newest, datetime.min.time())
        age = now - newest.replace(tzinfo=None)
        limit = parse_duration(self.max_age) if self.max_age else timedelta.max
        return self.outcome(
            age <= limit,
            f"{newest.isoformat(sep=' ')} ({age.days}d {age.seconds // 3600}h old)",
            f"at most {self.max_age}",
            0 if age <= limit else 1,
            data_age_hours=round(age.total_seconds() / 3600, 1),
        )
