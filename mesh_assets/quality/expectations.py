"""great-expectations rules: run by the great-expectations library itself, lazily, on a pandas batch.

Only the expectations without a SQL form come here: the well-known ones are compiled to SQL with GX's own
semantics and counted in the audit's single scan (`expectations_sql`), so most ports never import GX.

Why pandas and not GX's SQL data source: in GX 1.x the DuckDB/SQLAlchemy path is unreliable (dialect
detection and type reflection break on DuckDB's types), and Snowflake would need another driver stack.
So the platform fetches only the columns the expectations name, once per port, as a DataFrame (Arrow
transfer) and validates one suite against it. Everything else in the contract runs as SQL in the
warehouse; `benchmarks/checks.py` measures the difference. GX is imported only here, only when a port
that declares expectations is audited: code-location load never pays for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mesh_assets.infra.warehouse.base import WarehouseSession
from mesh_assets.product.addressing import Relation

if TYPE_CHECKING:
    from mesh_assets.product.spec import ExpectationRule


def class_name(expectation: str) -> str:
    """`expect_column_values_to_be_between` -> `ExpectColumnValuesToBeBetween`."""
    return "".join(part.capitalize() for part in expectation.split("_"))


def expectation_class(expectation: str) -> type | None:
    """The GX class of an expectation name, or None if GX has no such expectation."""
    import great_expectations as gx

    return getattr(gx.expectations, class_name(expectation), None)


def columns_named(kwargs: dict[str, Any]) -> list[str]:
    """The columns an expectation's arguments refer to (`column`, `column_A`, `column_list`, ...)."""
    names: list[str] = []
    for key, value in kwargs.items():
        if "column" in key:
            names += [value] if isinstance(value, str) else [v for v in value or [] if isinstance(v, str)]
    return names


def run_expectations(
    session: WarehouseSession, batch: Relation, rules: list[tuple[str, ExpectationRule]]
) -> dict[str, dict[str, Any]]:
    """Validate all `(check name, rule)` pairs in one GX suite; results keyed by check name."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    columns = sorted({c for _, rule in rules for c in columns_named(rule.kwargs)})
    select = ", ".join(f'"{c}"' for c in columns) or "*"
    frame = session.query_df(f"SELECT {select} FROM {batch.sql}")

    # Analytics off in the context's own config: the platform never writes GX_ANALYTICS_ENABLED into
    # the process environment.
    config = DataContextConfig(analytics_enabled=False, store_backend_defaults=InMemoryStoreBackendDefaults())
    context = gx.get_context(mode="ephemeral", project_config=config)
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas("mesh")
    batch_of_frame = (
        source.add_dataframe_asset("batch")
        .add_batch_definition_whole_dataframe("whole")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    results: dict[str, dict[str, Any]] = {
        name: {"success": False, "observed": f"unknown expectation {rule.expectation}"}
        for name, rule in rules
    }
    # A suite keeps one of equal expectations (two rules differing only in name, `2` vs `2.0`, a default
    # spelled out): the ones it dropped run in another round, so every rule gets its own result.
    pending = [(name, rule) for name, rule in rules if expectation_class(rule.expectation) is not None]
    while pending:
        judged = _validate_once(batch_of_frame, pending, suite_name=f"port_{len(rules) - len(pending)}")
        results |= judged
        pending = [(name, rule) for name, rule in pending if name not in judged]
        if not judged:  # cannot happen with a working GX; never loop on it
            break
    return results


def _validate_once(
    batch: Any, rules: list[tuple[str, ExpectationRule]], suite_name: str
) -> dict[str, dict[str, Any]]:
    """One GX suite over the batch; results keyed by check name, for the rules the suite kept."""
    import great_expectations as gx

    suite = gx.ExpectationSuite(name=suite_name)
    for name, rule in rules:
        cls = expectation_class(rule.expectation)
        assert cls is not None
        suite.add_expectation(cls(**rule.kwargs, meta={"mesh_rule": name}))
    results: dict[str, dict[str, Any]] = {}
    for result in batch.validate(suite).results:
        name = result.expectation_config.meta["mesh_rule"]
        detail = result.result or {}
        results[name] = {
            "success": bool(result.success),
            "unexpected_count": detail.get("unexpected_count"),
            "partial_unexpected_list": [str(v) for v in detail.get("partial_unexpected_list") or []],
            "observed": str(detail["observed_value"]) if detail.get("observed_value") is not None else None,
        }
        if results[name]["observed"] is None:
            results[name]["observed"] = f"{int(detail.get('unexpected_count') or 0):,} unexpected"
    return results
