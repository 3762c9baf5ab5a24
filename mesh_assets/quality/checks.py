"""Contract checks on output ports: the rules of a port (`contract_rules`), their Dagster asset checks
(`check_specs`), and the audit of a staged batch (`audit`).

The rules themselves are in `rules` (what a rule is, and those derived from the contract's shape) and
`quality_rules` (those a spec lists under `quality.rules`). Adding a kind of rule means adding a `Rule`
subclass and listing it in `contract_rules` - the asset-check specs, the audit and the UI metadata follow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dagster as dg

from mesh_assets.infra.warehouse.base import WarehouseSession
from mesh_assets.product.addressing import Relation
from mesh_assets.product.spec import OutputPort, Severity
from mesh_assets.quality.quality_rules import (
    AcceptedValuesCheck,
    CustomSqlCheck,
    ExpectationCheck,
    LengthCheck,
    PatternCheck,
    RangeCheck,
    ReferencesCheck,
)
from mesh_assets.quality.rules import (
    AuditContext,
    NotNullRule,
    Outcome,
    PrimaryKeyRule,
    RowCountRule,
    Rule,
    SchemaRule,
    TimelinessRule,
    UniqueRule,
    VolumeChangeRule,
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
    """One Dagster asset check per rule, then one per learned monitor; error-severity ones are blocking."""
    from mesh_assets.quality.monitors import monitor_specs

    return [
        dg.AssetCheckSpec(
            name=rule.name,
            asset=asset_key,
            description=f"{rule.description} Severity: {rule.severity.value}.",
            blocking=rule.severity == Severity.ERROR,
        )
        for rule in contract_rules(port, freshness_max_age)
    ] + monitor_specs(port, asset_key)


def answer(session: WarehouseSession, batch: Relation, aggregates: dict[str, str]) -> dict[str, Any]:
    """The rules' aggregates (alias -> SQL) over the whole batch, in one scan."""
    if not aggregates:
        return {}
    select = ", ".join(f'{sql} AS "{alias}"' for alias, sql in aggregates.items())
    row = session.query(f"SELECT {select} FROM {batch.sql}")[0]
    return dict(zip(aggregates, row, strict=True))


def audit(
    session: WarehouseSession,
    batch: Relation,
    port: OutputPort,
    context: AuditContext | None = None,
    freshness_max_age: str | None = None,
    scan: Callable[[dict[str, str]], dict[str, Any]] | None = None,
) -> list[Outcome]:
    """Evaluate every rule of a port on a batch. The schema rule gates the others.

    All aggregate rules are answered by one scan of the batch - `scan` (given the aggregates, alias ->
    SQL, it returns their values) lets the learned monitors' profile ride on that same scan;
    referential-integrity and custom SQL rules need their own query each; great-expectations rules
    share one GX validation of just the columns they name. When the schema is wrong the data rules are
    not run (their columns may not exist); they are reported failed, saying so, rather than passed.
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
    values: dict[str, Any] | None = None
    if scan is not None:
        try:
            values = scan(expressions)
        except Exception as exc:  # what rides on the scan (the monitors' profile) must never stop the audit:
            # the rules get a scan of their own; the monitors profile again and say why. Logged, with the
            # traceback, so the operator sees why the batch was scanned twice.
            dg.get_dagster_logger().warning(
                f"the audit's shared scan of {batch.sql} failed ({type(exc).__name__}: {exc}); "
                "the contract rules scan the batch on their own",
                exc_info=True,
            )
            values = None
    if values is None:
        values = answer(session, batch, expressions)
    # Expectations with a SQL form were counted in the scan; GX (imported only here) judges the rest.
    expectations = [r for r in data_rules if isinstance(r, ExpectationCheck) and r.compiled(session) is None]
    if expectations:
        from mesh_assets.quality.expectations import run_expectations

        values.update(run_expectations(session, batch, [(r.name, r.rule) for r in expectations]))
    return [schema] + [rule.judge(session, batch, values, context) for rule in data_rules]
