"""The rules a spec lists under `quality.rules`: accepted values, range, pattern, length (predicates
counted in the shared scan), references (an anti-join against another product's port), custom SQL, and
great-expectations expectations (run together in one GX validation). Failing rows are sampled with PII
masked.
"""

from __future__ import annotations

import abc
from typing import Any

from mesh_assets.infra.warehouse.base import NotAQueryError, WarehouseSession
from mesh_assets.infra.warehouse.isolation import undeclared_reads
from mesh_assets.product import spec as specs
from mesh_assets.product.addressing import Relation
from mesh_assets.product.spec import OutputPort
from mesh_assets.product.sql_text import quote_literal
from mesh_assets.quality.expectations_sql import CompiledExpectation, compile_expectation
from mesh_assets.quality.rules import AuditContext, Outcome, Rule


def _literal(value: object) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return quote_literal(value)


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
        # A rule is product code too: it may read the batch, the port as published and the ports rules
        # reference, as the engine binds it (nothing runs otherwise, so no sample shows what it read).
        context = context or AuditContext()
        allowed = [batch, *([context.published] if context.published else []), *context.references.values()]
        try:
            extra = undeclared_reads(session, query, allowed)
        except NotAQueryError as exc:
            return self.outcome(False, f"refused at run time: {exc}", "one query over {{ this }}")
        if extra:
            observed = f"refused at run time: reads {', '.join(extra)}, not the batch or a declared port"
            return self.outcome(False, observed, "a query over {{ this }}", undeclared_reads=extra)
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


class ExpectationCheck(Rule):
    """A great-expectations expectation. Those SQL answers exactly as GX does (`expectations_sql`) are
    counted in the shared scan; the others run together in one GX validation of the batch."""

    def __init__(self, port: OutputPort, rule: specs.ExpectationRule) -> None:
        self.port, self.rule = port, rule
        self.severity = rule.severity
        self.name = rule.check_name
        args = ", ".join(f"{k}={v}" for k, v in rule.kwargs.items())
        self.description = rule.description or f"great-expectations: {rule.expectation}({args})."

    def compiled(self, session: WarehouseSession) -> CompiledExpectation | None:
        """This expectation as SQL for the session's warehouse, or None if only GX can judge it."""
        types = {c.name: c.type for c in self.port.columns}
        return compile_expectation(self.rule.expectation, self.rule.kwargs, types, session.dialect)

    def aggregates(self, session: WarehouseSession) -> dict[str, str]:
        compiled = self.compiled(session)
        return compiled.aggregates(self.name) if compiled else {}

    def judge(
        self,
        session: WarehouseSession,
        batch: Relation,
        values: dict[str, Any],
        context: AuditContext | None = None,
    ) -> Outcome:
        compiled = self.compiled(session)
        if compiled is not None:
            return self._judge_in_sql(session, batch, values, compiled)
        result = values[self.name]
        unexpected = int(result.get("unexpected_count") or 0)
        counted = {} if result.get("unexpected_count") is None else {"unexpected_count": unexpected}
        return self.outcome(
            bool(result["success"]),
            result.get("observed", f"{unexpected:,} unexpected"),
            "success",
            unexpected or (0 if result["success"] else 1),
            sample_failing_values=result.get("partial_unexpected_list", [])[:5],
            engine="great_expectations",
            **counted,
        )

    def _judge_in_sql(
        self,
        session: WarehouseSession,
        batch: Relation,
        values: dict[str, Any],
        compiled: CompiledExpectation,
    ) -> Outcome:
        # SUM over an empty batch is NULL.
        considered = int(values[f"{self.name}__considered"] or 0)
        unexpected = int(values[f"{self.name}__unexpected"] or 0)
        where = compiled.where(batch.sql)
        if unexpected and not compiled.exact_in_scan:
            unexpected = int(session.query(f"SELECT COUNT(*) FROM {batch.sql} WHERE {where}")[0][0])
        success = compiled.success(considered, unexpected)
        samples: list[str] = []
        if not success:
            for row in sample_rows(session, batch, where, self.port):
                texts = [row[c] for c in compiled.columns]
                samples.append(texts[0] if len(texts) == 1 else f"({', '.join(texts)})")  # a pair: (a, b)
        return self.outcome(
            success,
            f"{unexpected:,} unexpected",
            "success",
            unexpected or (0 if success else 1),
            sample_failing_values=samples,
            engine="sql",
            unexpected_count=unexpected,
        )
