"""Write-audit-publish: how every output port is published, whatever builds it.

The transformation writes a *candidate* batch into the domain's private schema. The platform audits it
there with the port's contract rules; only if no blocking rule fails is it cast onto the contract and
atomically swapped into the published port, and the candidate and staging copies are dropped. A failed
audit leaves the published port untouched (its consumers keep the last good data), fails the step naming
the rules (so downstream products in other domains are not refreshed from it), and keeps the failed
candidate in place for inspection.
"""

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from mesh_assets.assets.bindings import binding_check_specs
from mesh_assets.assets.ports import PortContext, port_spec
from mesh_assets.infra.reclaim import POOL as WAREHOUSE_POOL
from mesh_assets.infra.warehouse.base import Warehouse, WarehouseSession
from mesh_assets.product import addressing
from mesh_assets.product.registry import Product
from mesh_assets.product.spec import OutputPort, parse_duration
from mesh_assets.quality.checks import AuditContext, audit, check_specs
from mesh_assets.quality.monitors import PortMonitors
from mesh_assets.quality.profile import PROFILE_KEY

BuildCandidate = Callable[[dg.AssetExecutionContext, WarehouseSession, addressing.Relation], None]
"""Writes a port's next batch to the given candidate relation."""


def candidate_relation(product: Product, port: OutputPort) -> addressing.Relation:
    """Where the transformation writes a port's unaudited batch (kept after a failed audit)."""
    staging = addressing.staging_relation(product.spec.domain, product.spec.name, port.major)
    return addressing.Relation(staging.schema, staging.name.replace("__staging", "__candidate"))


COLUMN_LINEAGE = "dagster/column_lineage"
"""Dagster's metadata key for column lineage (`dg.TableColumnLineage`)."""


def audit_and_publish(
    context: dg.AssetExecutionContext,
    session: WarehouseSession,
    product: Product,
    port: OutputPort,
    candidate: addressing.Relation,
    references: dict[str, addressing.Relation] | None = None,
) -> Iterator[dg.AssetCheckResult | dg.MaterializeResult]:
    """Audit `candidate` against the port's contract; publish it only if no blocking rule fails."""
    spec = product.spec
    key = addressing.port_key(spec.domain, spec.name, port.major)
    published = addressing.published(spec, port)
    staging = addressing.staging_relation(spec.domain, spec.name, port.major)

    audit_context = AuditContext(
        published=published,
        references=references or {},
        freshness_max_age=parse_duration(spec.slos.freshness.max_age)
        if spec.slos.freshness.max_age
        else None,
    )
    started = time.perf_counter()
    # The monitors' profile rides on the audit's one scan of the batch (no second pass).
    monitors = PortMonitors(session, candidate, port, context.instance, key, audit_context.now)
    outcomes = audit(session, candidate, port, audit_context, spec.slos.freshness.max_age, monitors.scan)
    audit_seconds = time.perf_counter() - started
    # Learned monitors judge the same staged batch, so an error-severity anomaly blocks like a rule.
    started = time.perf_counter()
    monitored, profile = monitors.run()
    monitor_seconds = time.perf_counter() - started
    for outcome in outcomes + monitored:
        yield outcome.to_result(key)
    blocking = [o for o in outcomes + monitored if o.blocks]
    if blocking:
        reasons = "; ".join(f"{o.rule} (observed {o.observed}, expected {o.threshold})" for o in blocking)
        raise dg.Failure(
            description=(
                f"{spec.key} v{port.major} was not published: blocking contract check(s) failed: {reasons}. "
                f"The published port {published.dotted} keeps its last good data; the failed batch is "
                f"kept for inspection in {candidate.dotted}."
            ),
            metadata={"failed_rules": [o.rule for o in blocking], "candidate": candidate.dotted},
            allow_retries=False,
        )

    started = time.perf_counter()
    session.stage(staging, session.cast_to_contract(candidate, port.columns))
    session.publish(staging, published)
    rows = session.row_count(published)
    # The batch now lives in the port: leave no staging or candidate copy behind (a dbt model is the
    # producer's own internal table, not ours to drop).
    session.unstage(staging)
    if candidate == candidate_relation(product, port):
        session.drop_table(candidate)
    publish_seconds = time.perf_counter() - started
    context.log.info(f"published {rows:,} rows to {published.dotted}")
    bound = []
    if port.bindings:
        # The table is published; its other formats follow from the same batch (docs/bindings.md).
        from mesh_assets.assets import bindings
        from mesh_assets.infra import environment

        publish_id = bindings.new_publish_id(context.run_id)
        started = time.perf_counter()
        bound = bindings.write_bindings(session, spec, port, environment.resolve(), publish_id, context.log)
        binding_seconds = time.perf_counter() - started
        yield from bindings.check_results(bound, key)
    metadata: dict[str, Any] = {
        "dagster/row_count": rows,
        "mesh/published_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mesh/version": port.version,
        "mesh/checks_passed": sum(o.passed for o in outcomes),
        "mesh/checks_failed": sum(not o.passed for o in outcomes),
        "mesh/monitor_anomalies": sum(not o.passed for o in monitored),
        # What profiling and judging cost this publish (benchmarks/monitors.py reads it).
        "mesh/monitor_seconds": round(monitor_seconds, 3),
        # The contract checks' and the publish's own cost (benchmarks/wap_split.py reads them).
        "mesh/audit_seconds": round(audit_seconds, 3),
        "mesh/publish_seconds": round(publish_seconds, 3),
    }
    if bound:
        metadata.update(bindings.metadata(bound, binding_seconds))
    if profile is not None:
        # The profile trains the next publishes' monitors; its flat figures are what the UI plots.
        metadata[PROFILE_KEY] = dg.MetadataValue.json(profile.to_json())
        metadata.update(profile.plots())
    # Dagster's UI reads column lineage from the latest materialization (drawn in Dagster+; the OSS UI
    # keeps it for features only): the definition's lineage rides along with each publish.
    lineage = context.assets_def.metadata_by_key.get(key, {}).get(COLUMN_LINEAGE)
    if lineage is not None:
        metadata[COLUMN_LINEAGE] = lineage
    yield dg.MaterializeResult(asset_key=key, metadata=metadata)


def port_asset(
    product: Product,
    port: OutputPort,
    where: PortContext,
    deps: list[dg.AssetKey],
    tool: str,
    build_candidate: BuildCandidate | None,
    automation: dg.AutomationCondition | None,
    references: dict[str, addressing.Relation] | None = None,
    candidates: dict[dg.AssetKey, dg.AssetKey] | None = None,
) -> dg.AssetsDefinition:
    """The port's asset: build the candidate (unless an upstream dbt model did), audit, publish.

    `references` maps each port a referential-integrity rule reads to its published relation.
    `candidates` maps each producer port whose candidate the dbt models may have read in the same run
    (`dbt_contracts.candidate_reads`) to the producer's port model: the port publishes only after them.
    """
    spec = product.spec
    asset_spec = port_spec(product, port, where, deps, tool, automation)
    candidate = candidate_relation(product, port)

    @dg.multi_asset(
        name=f"{spec.domain}__{spec.name}__v{port.major}",
        specs=[asset_spec],
        check_specs=check_specs(port, asset_spec.key, spec.slos.freshness.max_age)
        + binding_check_specs(port, asset_spec.key),
        pool=WAREHOUSE_POOL,
    )
    def _publish(context: dg.AssetExecutionContext, warehouse: dg.ResourceParam[Warehouse]):
        # Isolated: the transformation, and the audit scanning what it wrote (a custom SQL rule is product
        # code too), reach no file, URL or other database; the publish itself needs none.
        with warehouse.isolated_session() as session:
            source = candidate
            if build_candidate is not None:
                session.ensure_schema(candidate.schema)
                build_candidate(context, session, candidate)
            else:
                refuse_failed_dbt_tests(context, product, port)
                refuse_unpublished_candidates(context, product, port, candidates or {})
                source = dbt_candidate(product, port)
            yield from audit_and_publish(context, session, product, port, source, references)

    return _publish


def dbt_candidate(product: Product, port: OutputPort) -> addressing.Relation:
    """The relation a dbt model builds for a port: `<domain>_internal.<model>`."""
    return addressing.Relation(
        product.spec.domain + addressing.INTERNAL_SCHEMA_SUFFIX, product.spec.port_model(port)
    )


def refuse_failed_dbt_tests(context: dg.AssetExecutionContext, product: Product, port: OutputPort) -> None:
    """Refuse to publish a dbt port whose own models failed a blocking dbt test in this run.

    dbt's tests are not blocking in Dagster (a blocking check would fail the whole dbt step and every
    other product's port with it): dbt skips what depends on a failed test, and this port, whose model
    dbt built but whose own tests failed, refuses here with dbt's test names. Another product's failed
    test does not concern it.
    """
    spec = product.spec
    records = context.instance.get_records_for_run(
        run_id=context.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION, limit=100_000
    ).records
    failed = []
    for record in records:
        event = record.event_log_entry.dagster_event
        evaluation = event.event_specific_data if event is not None else None
        key = getattr(evaluation, "asset_key", None)
        if (
            key is not None
            and key.path[:3] == [spec.domain, spec.name, "internal"]
            and not evaluation.passed
            and evaluation.severity == dg.AssetCheckSeverity.ERROR
        ):
            failed.append(f"{evaluation.check_name} on {key.path[-1]}")
    if failed:
        published = addressing.published(spec, port)
        raise dg.Failure(
            description=(
                f"{spec.key} v{port.major} was not published: dbt test(s) of its models failed: "
                f"{', '.join(sorted(set(failed)))}. The published port {published.dotted} keeps its last "
                "good data."
            ),
            metadata={"failed_dbt_tests": sorted(set(failed))},
            allow_retries=False,
        )


def refuse_unpublished_candidates(
    context: dg.AssetExecutionContext,
    product: Product,
    port: OutputPort,
    candidates: dict[dg.AssetKey, dg.AssetKey],
) -> None:
    """Refuse to publish a dbt port built from a producer's candidate this run did not publish.

    When one dbt invocation builds a producer's port model and its consumer's models, the consumer read
    the unaudited candidate. Its port depends on the producer's port, so Dagster runs it after that
    publish and skips it when the audit fails; a run that built the producer's model without its port
    (a hand-picked selection) would publish unaudited data, and is refused here instead.
    """
    if not candidates:
        return
    records = context.instance.get_records_for_run(
        run_id=context.run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION, limit=100_000
    ).records
    materialized = {
        record.event_log_entry.dagster_event.asset_key
        for record in records
        if record.event_log_entry.dagster_event is not None
    }
    unpublished = sorted(
        producer.to_user_string()
        for producer, model in candidates.items()
        if model in materialized and producer not in materialized
    )
    if unpublished:
        spec = product.spec
        raise dg.Failure(
            description=(
                f"{spec.key} v{port.major} was not published: its dbt models read the candidate of "
                f"{', '.join(unpublished)}, which this run built but did not publish. Materialize those "
                f"ports in the same run. The published port {addressing.published(spec, port).dotted} "
                "keeps its last good data."
            ),
            metadata={"unpublished_inputs": unpublished},
            allow_retries=False,
        )
