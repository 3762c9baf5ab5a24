"""Contract checks on output ports: rules derived from the spec, evaluated where the data lives.

A `Rule` contributes SQL aggregate expressions; all rules of a port are answered by one scan of the
staged batch, then each rule judges its own values. Adding a kind of rule means adding a `Rule` subclass
and listing it in `contract_rules` - the asset-check specs, the audit and the UI metadata follow.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg

from mesh_assets.product import spec as specs
from mesh_assets.product.addressing import Relation
from mesh_assets.product.spec import Column, OutputPort, Severity, parse_duration
from mesh_assets.infra.warehouse.base import WarehouseSession


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


def _literal(value: object) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def sample_rows(
    session: WarehouseSession, relation: Relation, where: str, port: OutputPort, limit: int = 5
) -> list[dict[str, str]]:
    """A few rows matching `where`, with PII columns masked: what an on-call person may see."""
    pii = {c.name for c in port.columns if c.pii}
    present = [name for name, _ in session.columns(relation)]
    select = ", ".join(
        f"'***' AS \"{c}\"" if c in pii else f'CAST("{c}" AS VARCHAR) AS "{c}"' for c in present
    )
    rows = session.query(f"SELECT {select} FROM {relation.sql} WHERE {where} LIMIT {limit}")
    return [dict(zip(present, ("" if v is None else str(v) for v in row), strict=True)) for row in rows]


class PredicateRule(Rule):
    """A validity rule defined by a predicate a bad row satisfies; counted in the shared scan."""

    def __init__(self, port: OutputPort, rule: specs.RuleBase, column: str) -> None:
        self.port = port
        self.column = column
        self.severity = rule.severity
        self.name = rule.check_name
        self.description = rule.description or self.explain()

    kind: str

    @abc.abstractmethod
    def explain(self) -> str:
        """What the rule promises, in words."""

    @abc.abstractmethod
    def bad_sql(self, session: WarehouseSession) -> str:
        """Predicate true for a row that breaks the rule (nulls never do)."""

    def aggregates(self, session: WarehouseSession) -> dict[str, str]:
        return {self.name: f"SUM(CASE WHEN {self.bad_sql(session)} THEN 1 ELSE 0 END)"}

    def judge(
        self,
        session: WarehouseSession,
        batch: Relation,
        values: dict[str, Any],
        context: AuditContext | None = None,
    ) -> Outcome:
        bad = int(values[self.name] or 0)
        samples = sample_rows(session, batch, self.bad_sql(session), self.port) if bad else []
        return self.outcome(bad == 0, f"{bad:,} bad rows", "0 bad rows", bad, sample_failing_rows=samples)


class AcceptedValuesCheck(PredicateRule):
    """Only the listed values."""

    kind = "accepted_values"

    def __init__(self, port: OutputPort, rule: specs.AcceptedValuesRule) -> None:
        self.values = rule.values
        super().__init__(port, rule, rule.column)

    def explain(self) -> str:
        return f"{self.column} is one of {', '.join(map(str, self.values))}."

    def bad_sql(self, session: WarehouseSession) -> str:
        listed = ", ".join(_literal(v) for v in self.values)
        return f'"{self.column}" IS NOT NULL AND "{self.column}" NOT IN ({listed})'


class RangeCheck(PredicateRule):
    """Values within bounds."""

    kind = "range"

    def __init__(self, port: OutputPort, rule: specs.RangeRule) -> None:
        self.low, self.high = rule.min, rule.max
        super().__init__(port, rule, rule.column)

    def explain(self) -> str:
        return f"{self.column} lies within [{self.low if self.low is not None else '-inf'}, " + (
            f"{self.high if self.high is not None else 'inf'}]."
        )

    def bad_sql(self, session: WarehouseSession) -> str:
        parts = []
        if self.low is not None:
            parts.append(f'"{self.column}" < {_literal(self.low)}')
        if self.high is not None:
            parts.append(f'"{self.column}" > {_literal(self.high)}')
        return f"({' OR '.join(parts)})"


class PatternCheck(PredicateRule):
    """Text matching a regular expression."""

    kind = "pattern"

    def __init__(self, port: OutputPort, rule: specs.PatternRule) -> None:
        self.regex = rule.regex
        super().__init__(port, rule, rule.column)

    def explain(self) -> str:
        return f"{self.column} matches /{self.regex}/."

    def bad_sql(self, session: WarehouseSession) -> str:
        return f'"{self.column}" IS NOT NULL AND NOT {session.regex_sql(self.column, self.regex)}'


class LengthCheck(PredicateRule):
    """Text length within bounds."""

    kind = "length"

    def __init__(self, port: OutputPort, rule: specs.LengthRule) -> None:
        self.low, self.high = rule.min, rule.max
        super().__init__(port, rule, rule.column)

    def explain(self) -> str:
        return f"{self.column} is {self.low or 0} to {self.high or 'any'} characters long."

    def bad_sql(self, session: WarehouseSession) -> str:
        parts = []
        if self.low is not None:
            parts.append(f'LENGTH("{self.column}") < {self.low}')
        if self.high is not None:
            parts.append(f'LENGTH("{self.column}") > {self.high}')
        return f"({' OR '.join(parts) or 'FALSE'})"


class ReferencesCheck(Rule):
    """Referential integrity against another product's published port (an anti-join: its own scan)."""

    def __init__(self, port: OutputPort, rule: specs.ReferencesRule) -> None:
        self.port, self.rule = port, rule
        self.severity = rule.severity
        self.name = rule.check_name
        self.description = rule.description or (
            f"Every {rule.column} exists as {rule.to_column} in {rule.port}'s published port."
        )

    def _missing(self, batch: Relation, target: Relation) -> str:
        col, to = self.rule.column, self.rule.to_column
        return (
            f'"{col}" IS NOT NULL AND "{col}" NOT IN '
            f'(SELECT "{to}" FROM {target.sql} WHERE "{to}" IS NOT NULL)'
        )

    def judge(
        self,
        session: WarehouseSession,
        batch: Relation,
        values: dict[str, Any],
        context: AuditContext | None = None,
    ) -> Outcome:
        target = (context or AuditContext()).references.get(self.rule.port)
        if target is None or not session.exists(target):
            return self.outcome(
                False,
                f"{self.rule.port} is not published",
                "referenced port published",
                skipped_because=f"the referenced port {self.rule.port} has no published data",
            )
        where = self._missing(batch, target)
        bad = int(session.query(f"SELECT COUNT(*) FROM {batch.sql} WHERE {where}")[0][0])
        samples = sample_rows(session, batch, where, self.port) if bad else []
        return self.outcome(
            bad == 0, f"{bad:,} orphan rows", "0 orphan rows", bad, sample_failing_rows=samples
        )


class CustomSqlCheck(Rule):
    """A custom rule: its query returns the bad rows (`{{ this }}` is the audited batch)."""

    def __init__(self, port: OutputPort, rule: specs.SqlRule) -> None:
        self.port, self.query = port, rule.query
        self.severity = rule.severity
        self.name = rule.name
        self.description = rule.description or f"Custom rule {rule.name}: its query returns no rows."

    def judge(
        self,
        session: WarehouseSession,
        batch: Relation,
        values: dict[str, Any],
        context: AuditContext | None = None,
    ) -> Outcome:
        query = render_rule_sql(self.query, batch)
        if session.dialect != "duckdb":
            import sqlglot

            query = sqlglot.transpile(query, read="duckdb", write=session.dialect)[0]
        bad = int(session.query(f"SELECT COUNT(*) FROM ({query}) AS bad")[0][0])
        samples: list[dict[str, str]] = []
        if bad:
            rows = session.query(f"SELECT * FROM ({query}) AS bad LIMIT 5")
            pii = {c.name for c in self.port.columns if c.pii}
            names = session.query_columns(query)
            samples = [
                {
                    n: "***" if n in pii else ("" if v is None else str(v))
                    for n, v in zip(names, row, strict=True)
                }
                for row in rows
            ]
        return self.outcome(bad == 0, f"{bad:,} bad rows", "0 bad rows", bad, sample_failing_rows=samples)


def render_rule_sql(query: str, batch: Relation) -> str:
    """A custom rule's query with `{{ this }}` replaced by the audited batch."""
    import re

    return re.sub(r"\{\{\s*this\s*\}\}", batch.sql, query).strip().rstrip(";")


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


class ExpectationCheck(Rule):
    """A great-expectations expectation; all of a port's expectations run in one GX validation."""

    def __init__(self, port: OutputPort, rule: specs.ExpectationRule) -> None:
        self.port, self.rule = port, rule
        self.severity = rule.severity
        self.name = rule.check_name
        args = ", ".join(f"{k}={v}" for k, v in rule.kwargs.items())
        self.description = rule.description or f"great-expectations: {rule.expectation}({args})."

    def judge(
        self,
        session: WarehouseSession,
        batch: Relation,
        values: dict[str, Any],
        context: AuditContext | None = None,
    ) -> Outcome:
        result = values[self.name]
        unexpected = int(result.get("unexpected_count") or 0)
        return self.outcome(
            bool(result["success"]),
            result.get("observed", f"{unexpected:,} unexpected"),
            "success",
            unexpected or (0 if result["success"] else 1),
            sample_failing_values=result.get("partial_unexpected_list", [])[:5],
        )


def contract_rules(port: OutputPort, freshness_max_age: str | None = None) -> list[Rule]:
    """The rules every publish of a port must pass, derived from its contract.

    The schema rule comes first: it gates the others. Rules exist only where the contract asks for
    them, so every check a port shows can fail.
    """
    rules: list[Rule] = [SchemaRule(port), PrimaryKeyRule(port), RowCountRule(port)]
    if NotNullRule(port).columns:
        rules.append(NotNullRule(port))
    if UniqueRule(port).columns:
        rules.append(UniqueRule(port))
    if port.quality.volume_change is not None:
        rules.append(VolumeChangeRule(port))
    if port.event_time is not None and port.quality.timeliness is not None:
        rules.append(TimelinessRule(port, freshness_max_age))
    by_type = {
        "accepted_values": AcceptedValuesCheck,
        "range": RangeCheck,
        "pattern": PatternCheck,
        "length": LengthCheck,
        "references": ReferencesCheck,
        "sql": CustomSqlCheck,
        "expectation": ExpectationCheck,
    }
    rules += [by_type[rule.type](port, rule) for rule in port.quality.rules]
    return rules


def check_specs(
    port: OutputPort, asset_key: dg.AssetKey, freshness_max_age: str | None = None
) -> list[dg.AssetCheckSpec]:
    """One Dagster asset check per rule; error-severity rules are blocking."""
    return [
        dg.AssetCheckSpec(
            name=rule.name,
            asset=asset_key,
            description=f"{rule.description} Severity: {rule.severity.value}.",
            blocking=rule.severity == Severity.ERROR,
        )
        for rule in contract_rules(port, freshness_max_age)
    ]


def audit(
    session: WarehouseSession,
    batch: Relation,
    port: OutputPort,
    context: AuditContext | None = None,
    freshness_max_age: str | None = None,
) -> list[Outcome]:
    """Evaluate every rule of a port on a batch. The schema rule gates the others.

    All aggregate rules are answered by one scan of the batch; referential-integrity and custom SQL
    rules need their own query each; great-expectations rules share one GX validation of just the
    columns they name. When the schema is wrong the data rules are not run (their columns may not
    exist); they are reported failed, saying so, rather than passed.
    """
    context = context or AuditContext()
    rules = contract_rules(port, freshness_max_age)
    schema_rule, data_rules = rules[0], rules[1:]
    schema = schema_rule.judge(session, batch, {}, context)
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
        select = ", ".join(f'{sql} AS "{alias}"' for alias, sql in expressions.items())
        row = session.query(f"SELECT {select} FROM {batch.sql}")[0]
        values = dict(zip(expressions, row, strict=True))
    expectations = [r for r in data_rules if isinstance(r, ExpectationCheck)]
    if expectations:
        from mesh_assets.build.expectations import run_expectations

        values.update(run_expectations(session, batch, [(r.name, r.rule) for r in expectations]))
    return [schema] + [rule.judge(session, batch, values, context) for rule in data_rules]
