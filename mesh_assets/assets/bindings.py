"""Publishing a port's bindings: the audited batch, as the table now holds it, in every declared format.

Called by write-audit-publish (`publish.py`) right after the table was published, in the same step: the
table is the source of truth and is published first, whatever the bindings do. Each binding is then
written from the rows the table holds (PII protected as a reader without the privilege sees it, unless
the binding is declared `pii: clear`), each atomically (an Iceberg commit; a Parquet snapshot folder, then
the `latest` switch). A binding whose write fails keeps its last good snapshot, fails its parity check
(non-blocking: the table's guarantees are unchanged, consumers of the table are refreshed) naming the
binding and the error, and is written again at the next publish, since every publish writes every binding.

Parity: per binding, an asset check that the binding, read back from where consumers read it, has the
table's rows, schema and content checksum (order-independent: the sum of DuckDB's row hashes, computed in
an in-memory DuckDB over Arrow, so both sides are hashed by the same engine whatever the warehouse is).

Cost: the rows are fetched once as Arrow per PII treatment, written with pyarrow/pyiceberg and read back
once for parity; benchmarks/bindings.py measures it against the port's build.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from mesh_assets.assets import binding_files, binding_iceberg
from mesh_assets.product import addressing
from mesh_assets.product.bindings import FILE_KINDS, BindingPii, IcebergBinding, ParquetBinding, ShareBinding
from mesh_assets.product.spec import DataProductSpec, OutputPort

if TYPE_CHECKING:
    import pyarrow as pa

    from mesh_assets.infra.environment import Environment
    from mesh_assets.infra.warehouse.base import WarehouseSession

BINDINGS_KEY = "mesh/bindings"
"""Materialization metadata: per binding, its snapshot, rows, checksum, location, or why it failed."""


def parity_check_name(kind: str) -> str:
    """The name of a binding's parity check."""
    return f"{kind}_binding_parity"


def binding_check_specs(port: OutputPort, key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    """One non-blocking parity check per binding the platform writes (the table is already published)."""
    return [
        dg.AssetCheckSpec(
            name=parity_check_name(b.kind),
            asset=key,
            description=f"The {b.kind} binding holds the table's rows, schema and content checksum for "
            "the same publish. Severity: warn (the table is published either way).",
            blocking=False,
        )
        for b in port.bindings
        if b.kind in FILE_KINDS
    ]


def new_publish_id(run_id: str, now: datetime | None = None) -> str:
    """A publish's id: UTC time to the microsecond (so ids sort by time) and the run's first 8 characters."""
    now = now or datetime.now(UTC)
    return f"{now.strftime('%Y%m%dT%H%M%S%fZ')}-{run_id[:8]}"


@dataclass(frozen=True)
class Fingerprint:
    """What parity compares: row count, schema (DuckDB types) and the content checksum."""

    rows: int
    checksum: str
    schema: list[tuple[str, str]]


def fingerprint(table: pa.Table) -> Fingerprint:
    """Rows, schema and order-independent checksum of an Arrow table (hashed by an in-memory DuckDB)."""
    return _fingerprint("batch", table=table)


def files_fingerprint(files: list[Path], columns: list[str], hive_types: dict[str, str]) -> Fingerprint:
    """The fingerprint of Parquet files as DuckDB reads them (`hive_types`: the partition columns' types).

    Parity reads the binding's own files with DuckDB's multi-threaded reader rather than through pyarrow
    or pyiceberg: at 1M rows that is 0.1 s instead of 0.3-0.5 s per binding.
    """
    listed = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
    options = ""
    if hive_types:
        types = ", ".join(f"'{name}': '{kind}'" for name, kind in hive_types.items())
        options = f", hive_partitioning = true, hive_types = {{{types}}}"
    projection = ", ".join(_quote(c) for c in columns)
    return _fingerprint(f"(SELECT {projection} FROM read_parquet([{listed}]{options}))")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _fingerprint(relation: str, table: pa.Table | None = None) -> Fingerprint:
    import duckdb

    # Its own in-memory database: never the warehouse's (whose isolated session refuses new settings).
    connection = duckdb.connect(":memory:")
    try:
        if table is not None:
            connection.register("batch", table)
        schema = [(row[0], row[1]) for row in connection.execute(f"DESCRIBE {relation}").fetchall()]
        columns = ", ".join(_quote(name) for name, _ in schema)
        rows, total = connection.execute(
            f"SELECT count(*), coalesce(sum(hash({columns})::HUGEINT), 0) FROM {relation}"
        ).fetchone()
    finally:
        connection.close()
    return Fingerprint(int(rows), str(total), schema)


@dataclass
class BindingOutcome:
    """What one publish did to one binding."""

    kind: str
    written: bool
    facts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    parity: list[str] = field(default_factory=list)
    """What differs from the table (empty: in parity)."""
    seconds: float = 0.0


@dataclass(frozen=True)
class Places:
    """Where a port version's bindings are in an environment."""

    parquet: Path
    iceberg: binding_iceberg.IcebergPlace


def places(env: Environment, spec: DataProductSpec, port: OutputPort) -> Places:
    """The Parquet folder and the Iceberg table of a port version in `env` (prod: where consumers read)."""
    return Places(
        parquet=binding_files.parquet_dir(env.data_dir, spec.domain, spec.name, port.major),
        iceberg=binding_iceberg.place(
            env.data_dir, env.name, env.is_prod, spec.domain, spec.name, port.major, env.iceberg_catalog
        ),
    )


def _fetch(session: WarehouseSession, sql: str) -> pa.Table:
    connection = session.connection  # type: ignore[attr-defined]
    if hasattr(connection, "cursor") and not hasattr(connection, "sql"):  # Snowflake
        import pyarrow as pa

        with connection.cursor() as cursor:
            cursor.execute(sql)
            if hasattr(cursor, "fetch_arrow_all"):
                return cursor.fetch_arrow_all(force_return_table=True)
            # An emulator without Arrow results (fakesnow): through pandas, as `query_df` reads.
            return pa.Table.from_pandas(cursor.fetch_pandas_all(), preserve_index=False)
    return connection.sql(sql).to_arrow_table()


def _select(spec: DataProductSpec, port: OutputPort, pii: BindingPii, dialect: str) -> str:
    from mesh_assets.product.access import protected_select

    protected = protected_select(spec, port, None, dialect) if pii == BindingPii.PROTECTED else None
    relation = addressing.published(spec, port)
    return protected or f"SELECT * FROM {relation.sql}"


def write_bindings(
    session: WarehouseSession,
    spec: DataProductSpec,
    port: OutputPort,
    env: Environment,
    publish_id: str,
    log: Any = None,
) -> list[BindingOutcome]:
    """Write every binding of the port from its published table; never raises for a binding's failure.

    The table is read once per PII treatment (the session is not shared across threads); then the file
    bindings are written side by side, one thread each: DuckDB's writer and pyiceberg's (pyarrow) release
    the GIL, so on 2 cores the two overlap instead of queueing.
    """
    from concurrent.futures import ThreadPoolExecutor

    where = places(env, spec, port)
    batches: dict[BindingPii, tuple[pa.Table, Fingerprint] | BaseException] = {}
    started = time.perf_counter()
    for binding in port.bindings:
        if binding.kind in FILE_KINDS and binding.pii not in batches:
            try:
                table = _fetch(session, _select(spec, port, binding.pii, env.target))
                batches[binding.pii] = (table, fingerprint(table))
            except Exception as exc:  # every binding reading this batch fails, each saying why
                batches[binding.pii] = exc
    # The shared read is part of every file binding's cost; it is counted once, in the first's seconds.
    fetched = time.perf_counter() - started

    def write(binding: IcebergBinding | ParquetBinding) -> BindingOutcome:
        started = time.perf_counter()
        outcome = BindingOutcome(binding.kind, written=False)
        try:
            batch = batches[binding.pii]
            if isinstance(batch, BaseException):
                raise batch
            table, expected = batch
            facts = {"rows": expected.rows, "checksum": expected.checksum}
            if isinstance(binding, IcebergBinding):
                outcome.facts = _write_iceberg(where.iceberg, binding, table, publish_id, facts)
            else:
                outcome.facts = _write_parquet(where.parquet, binding, table, publish_id, facts)
            outcome.written = True
            outcome.parity = parity(expected, binding_fingerprint(where, binding, expected))
        except Exception as exc:  # any failure of a binding leaves it at its last good snapshot
            outcome.error = f"{type(exc).__name__}: {exc}"
            if log is not None:
                log.error(
                    f"{spec.key} v{port.major}: the {binding.kind} binding was not written "
                    f"({outcome.error}); it keeps its last good snapshot and is written again next publish"
                )
        outcome.seconds = round(time.perf_counter() - started, 3)
        return outcome

    files = [b for b in port.bindings if isinstance(b, IcebergBinding | ParquetBinding)]
    with ThreadPoolExecutor(max_workers=max(1, len(files)), thread_name_prefix="mesh-binding") as pool:
        written = dict(zip([id(b) for b in files], pool.map(write, files), strict=True))
    outcomes = []
    for binding in port.bindings:
        if isinstance(binding, ShareBinding):
            outcomes.append(_share(session, spec, port, binding, env, log))
        else:
            outcome = written[id(binding)]
            if binding is files[0]:
                outcome.seconds = round(outcome.seconds + fetched, 3)
            outcomes.append(outcome)
    return outcomes


def _write_iceberg(
    where: binding_iceberg.IcebergPlace,
    binding: IcebergBinding,
    table: pa.Table,
    publish_id: str,
    facts: dict[str, Any],
) -> dict[str, Any]:
    snapshot_id = binding_iceberg.write(where, table, publish_id, facts)
    expired = binding_iceberg.expire(where, binding.keep_snapshots)
    return {
        "publish_id": publish_id,
        "snapshot_id": str(snapshot_id),
        "table": where.identifier,
        "catalog": where.catalog_name,
        "expired_snapshots": expired,
        **facts,
    }


def _write_parquet(
    folder: Path, binding: ParquetBinding, table: pa.Table, publish_id: str, facts: dict[str, Any]
) -> dict[str, Any]:
    snapshot = binding_files.write_snapshot(folder, publish_id, table, binding.partition_by, facts)
    binding_files.switch_latest(folder, snapshot)
    expired = binding_files.expire(folder, binding.keep_snapshots)
    return {
        "publish_id": publish_id,
        "folder": str(snapshot.folder),
        "latest": str(folder / binding_files.LATEST),
        "files": len(snapshot.files),
        "expired_snapshots": len(expired),
        **facts,
    }


def binding_fingerprint(
    where: Places, binding: IcebergBinding | ParquetBinding, expected: Fingerprint
) -> Fingerprint:
    """The fingerprint of a binding's current snapshot, read from its own files."""
    columns = [name for name, _ in expected.schema]
    if isinstance(binding, ParquetBinding):
        latest = (where.parquet / binding_files.LATEST).resolve()
        types = dict(expected.schema)
        hive = {c: types[c] for c in binding.partition_by if c in types}
        return files_fingerprint(sorted(latest.rglob("*.parquet")), columns, hive)
    files = binding_iceberg.data_files(where.iceberg)
    if files is None:  # not on a local disk (a REST catalog's object store): read through pyiceberg
        return fingerprint(binding_iceberg.read(where.iceberg))
    return files_fingerprint(files, columns, {})


def read_binding(where: Places, kind: str, publish_id: str | None = None) -> pa.Table:
    """A binding's rows as its consumers read them: now, or as publish `publish_id` left them."""
    if kind == "iceberg":
        return binding_iceberg.read(where.iceberg, publish_id)
    return binding_files.read(where.parquet, publish_id)


def parity(expected: Fingerprint, actual: Fingerprint) -> list[str]:
    """What differs between the table's fingerprint and a binding's; empty when they agree."""
    differences = []
    if actual.rows != expected.rows:
        differences.append(f"rows {actual.rows:,} (table: {expected.rows:,})")
    if actual.schema != expected.schema:
        differences.append(f"schema {actual.schema} (table: {expected.schema})")
    if actual.checksum != expected.checksum:
        differences.append(f"checksum {actual.checksum} (table: {expected.checksum})")
    return differences


def _share(
    session: WarehouseSession,
    spec: DataProductSpec,
    port: OutputPort,
    binding: ShareBinding,
    env: Environment,
    log: Any,
) -> BindingOutcome:
    from mesh_assets.assets.binding_share import share_sql

    statements = share_sql(spec, port, binding, env.database)
    outcome = BindingOutcome("share", written=False, facts={"plan": statements})
    if env.target != "snowflake" or not env.is_prod:
        # Only prod's shares reach other accounts; elsewhere the plan is shown, not applied.
        outcome.facts["applied"] = False
        return outcome
    try:
        for statement in statements:
            session.execute(statement)
        outcome.written, outcome.facts["applied"] = True, True
    except Exception as exc:  # the table is published; the share is retried next publish
        outcome.error = f"{type(exc).__name__}: {exc}"
        if log is not None:
            log.error(f"{spec.key} v{port.major}: the share binding failed ({outcome.error})")
    return outcome


def check_results(outcomes: list[BindingOutcome], key: dg.AssetKey) -> list[dg.AssetCheckResult]:
    """The parity check result of every binding the platform writes."""
    results = []
    for outcome in outcomes:
        if outcome.kind not in FILE_KINDS:
            continue
        if outcome.error is not None:
            description = (
                f"The {outcome.kind} binding failed to write: {outcome.error}. It keeps its last good "
                "snapshot and is written again at the next publish."
            )
        elif outcome.parity:
            description = f"The {outcome.kind} binding differs from the table: {'; '.join(outcome.parity)}."
        else:
            description = f"The {outcome.kind} binding holds the table's rows, schema and checksum."
        results.append(
            dg.AssetCheckResult(
                asset_key=key,
                check_name=parity_check_name(outcome.kind),
                passed=outcome.error is None and not outcome.parity,
                severity=dg.AssetCheckSeverity.WARN,
                description=description,
                metadata={
                    "rows": outcome.facts.get("rows", -1),
                    "checksum": str(outcome.facts.get("checksum", "")),
                    "publish_id": str(outcome.facts.get("publish_id", "")),
                },
            )
        )
    return results


def metadata(outcomes: list[BindingOutcome], seconds: float | None = None) -> dict[str, Any]:
    """The port's materialization metadata about its bindings (`seconds`: their wall time, if measured;
    the file bindings are written side by side, so it is less than the sum of theirs)."""
    summary = {
        o.kind: {
            "status": "written" if o.written else ("failed" if o.error else "planned"),
            **({"error": o.error} if o.error else {}),
            **o.facts,
            "seconds": o.seconds,
        }
        for o in outcomes
    }
    return {
        BINDINGS_KEY: dg.MetadataValue.json(summary),
        "mesh/binding_seconds": round(
            seconds if seconds is not None else sum(o.seconds for o in outcomes), 3
        ),
    }
