"""Publishing a port's bindings: the audited batch, as the table now holds it, in every declared format.

Called by write-audit-publish (`publish.py`) right after the table was published, in the same step: the
table is the source of truth and is published first, whatever the bindings do. Each binding is then
written from the rows the table holds (PII protected as a reader without the privilege sees it, unless
the binding is declared `pii: clear`), each atomically (an Iceberg commit; a Parquet snapshot folder, then
the `latest` switch). A binding whose write fails keeps its last good snapshot, fails its parity check
(non-blocking: the table's guarantees are unchanged, consumers of the table are refreshed) naming the
binding and the error, and is written again at the next publish, since every publish writes every binding.

Parity: per binding, an asset check that the binding, read back from where consumers read it, has the
table's rows, schema and content checksum (order-independent: the sum of DuckDB's row hashes; the table's
side hashed by the warehouse on DuckDB, by an in-memory DuckDB over the fetched Arrow on Snowflake, the
binding's files by an in-memory DuckDB: the same engine on both sides whatever the warehouse is).

Cost: the rows are fetched once as Arrow per PII treatment and hashed by the warehouse (DuckDB), written
by pyarrow's Parquet writers (`binding_files.copy_to_parquet`; Iceberg registers the files of a Parquet
binding of the same rows, or one file of its own) and read back once per binding for parity;
benchmarks/bindings.py measures it against the port's build.
"""

from __future__ import annotations

import dataclasses
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
from mesh_assets.product.sql_text import quote_identifier, quote_literal

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
    problems: tuple[str, ...] = ()
    """What the binding's metadata gets wrong beyond its files' content (a partition record)."""


def fingerprint(table: pa.Table) -> Fingerprint:
    """Rows, schema and order-independent checksum of an Arrow table (hashed by an in-memory DuckDB)."""
    return _fingerprint("batch", table=table)


def files_fingerprint(files: list[Path], columns: list[str], hive_types: dict[str, str]) -> Fingerprint:
    """The fingerprint of Parquet files as DuckDB reads them (`hive_types`: the partition columns' types).

    Parity reads the binding's own files with DuckDB's multi-threaded reader rather than through pyarrow
    or pyiceberg: at 1M rows that is 0.1 s instead of 0.3-0.5 s per binding.
    """
    listed = ", ".join(quote_literal(f) for f in files)
    options = ""
    if hive_types:
        types = ", ".join(f"'{name}': '{kind}'" for name, kind in hive_types.items())
        options = f", hive_partitioning = true, hive_types = {{{types}}}"
    projection = ", ".join(quote_identifier(c) for c in columns)
    return _fingerprint(f"(SELECT {projection} FROM read_parquet([{listed}]{options}))")


def _fingerprint(relation: str, table: pa.Table | None = None) -> Fingerprint:
    import duckdb

    # Its own in-memory database: never the warehouse's (whose isolated session refuses new settings).
    connection = duckdb.connect(":memory:")
    try:
        if table is not None:
            connection.register("batch", table)
        schema = [(row[0], row[1]) for row in connection.execute(f"DESCRIBE {relation}").fetchall()]
        columns = ", ".join(quote_identifier(name) for name, _ in schema)
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


def _is_snowflake(connection: Any) -> bool:
    return hasattr(connection, "cursor") and not hasattr(connection, "sql")


def _fetch(session: WarehouseSession, sql: str) -> pa.Table:
    connection = session.connection  # type: ignore[attr-defined]
    if _is_snowflake(connection):
        import pyarrow as pa

        with connection.cursor() as cursor:
            cursor.execute(sql)
            if hasattr(cursor, "fetch_arrow_all"):
                return cursor.fetch_arrow_all(force_return_table=True)
            # An emulator without Arrow results (fakesnow): through pandas, as `query_df` reads.
            return pa.Table.from_pandas(cursor.fetch_pandas_all(), preserve_index=False)
    return connection.sql(sql).to_arrow_table()


def source_fingerprint(session: WarehouseSession, sql: str, table: pa.Table) -> Fingerprint:
    """The fingerprint of the rows `sql` selects, which `table` holds as fetched.

    On DuckDB the warehouse hashes its own rows in one aggregate query (1M rows: 0.015 s, where hashing
    the fetched Arrow again took 0.06 s): the same engine and types the parity's read-back of the files
    uses. Snowflake's `HASH` is not DuckDB's, so there the fetched Arrow is hashed by an in-memory DuckDB.
    """
    connection = session.connection  # type: ignore[attr-defined]
    if _is_snowflake(connection):
        return fingerprint(table)
    schema = [(row[0], row[1]) for row in connection.execute(f"DESCRIBE {sql}").fetchall()]
    columns = ", ".join(quote_identifier(name) for name, _ in schema)
    rows, total = connection.execute(
        f"SELECT count(*), coalesce(sum(hash({columns})::HUGEINT), 0) FROM ({sql}) AS batch"
    ).fetchone()
    return Fingerprint(int(rows), str(total), schema)


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
    bindings are written side by side, one thread each (pyarrow's writers release the GIL). An Iceberg
    binding beside a Parquet binding of the same rows is written after it, in its thread, and registers
    the Parquet snapshot's files (hard-linked, partitioned alike) instead of writing the rows again.
    """
    from concurrent.futures import ThreadPoolExecutor

    where = places(env, spec, port)
    batches: dict[BindingPii, tuple[pa.Table, Fingerprint] | BaseException] = {}
    started = time.perf_counter()
    for binding in port.bindings:
        if binding.kind in FILE_KINDS and binding.pii not in batches:
            try:
                sql = _select(spec, port, binding.pii, env.target)
                table = _fetch(session, sql)
                batches[binding.pii] = (table, source_fingerprint(session, sql, table))
            except Exception as exc:  # every binding reading this batch fails, each saying why
                batches[binding.pii] = exc
    # The shared read is part of every file binding's cost; it is counted once, in the first's seconds.
    fetched = time.perf_counter() - started

    def failed(binding: IcebergBinding | ParquetBinding, outcome: BindingOutcome, exc: Exception) -> None:
        outcome.error = f"{type(exc).__name__}: {exc}"
        if log is not None:
            log.error(
                f"{spec.key} v{port.major}: the {binding.kind} binding was not written "
                f"({outcome.error}); it keeps its last good snapshot and is written again next publish"
            )

    def write(
        binding: IcebergBinding | ParquetBinding, shared: binding_iceberg.Shared | None = None
    ) -> BindingOutcome:
        started = time.perf_counter()
        outcome = BindingOutcome(binding.kind, written=False)
        try:
            batch = batches[binding.pii]
            if isinstance(batch, BaseException):
                raise batch
            table, expected = batch
            facts = {"rows": expected.rows, "checksum": expected.checksum}
            if isinstance(binding, IcebergBinding):
                outcome.facts = _write_iceberg(where.iceberg, binding, table, publish_id, facts, shared)
            else:
                outcome.facts = _write_parquet(where.parquet, binding, table, publish_id, facts)
            outcome.written = True
        except Exception as exc:  # any failure of a binding leaves it at its last good snapshot
            failed(binding, outcome, exc)
        outcome.seconds = round(time.perf_counter() - started, 3)
        return outcome

    def check(
        binding: IcebergBinding | ParquetBinding,
        outcome: BindingOutcome,
        shared: binding_iceberg.Shared | None = None,
    ) -> None:
        if not outcome.written:
            return
        started = time.perf_counter()
        try:
            _, expected = batches[binding.pii]  # type: ignore[misc]  # written: the batch was read
            found = shared_fingerprint(where, shared, expected) if shared is not None else None
            outcome.parity = parity(expected, found or binding_fingerprint(where, binding, expected))
        except Exception as exc:
            failed(binding, outcome, exc)
        outcome.seconds = round(outcome.seconds + time.perf_counter() - started, 3)

    files = [b for b in port.bindings if isinstance(b, IcebergBinding | ParquetBinding)]
    pairs = _pairs(files)
    written: dict[int, BindingOutcome] = {}

    def write_pair(pair: list[IcebergBinding | ParquetBinding]) -> None:
        first = written[id(pair[0])] = write(pair[0])
        if len(pair) == 1:
            check(pair[0], first)
            return
        # Iceberg registers the Parquet snapshot's files while they are read back for the Parquet parity;
        # if that passes, Iceberg's parity needs only its metadata (`shared_fingerprint`).
        shared = _shared(pair[0], pair[1], first, batches[pair[0].pii])
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mesh-binding-parity") as side:
            parquet_parity = side.submit(check, pair[0], first)
            second = written[id(pair[1])] = write(pair[1], shared)
            parquet_parity.result()
        in_parity = first.error is None and not first.parity and "shares_file_of" in second.facts
        check(pair[1], second, shared if in_parity else None)

    with ThreadPoolExecutor(max_workers=max(1, len(pairs)), thread_name_prefix="mesh-binding") as pool:
        list(pool.map(write_pair, pairs))
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


def _pairs(files: list[IcebergBinding | ParquetBinding]) -> list[list[IcebergBinding | ParquetBinding]]:
    """The file bindings grouped by thread: a Parquet binding and an Iceberg binding of the same rows
    together (Parquet first, so Iceberg can share its files), every other binding alone."""
    iceberg = next((b for b in files if isinstance(b, IcebergBinding)), None)
    parquet = next(
        (b for b in files if isinstance(b, ParquetBinding) and iceberg is not None and b.pii == iceberg.pii),
        None,
    )
    if parquet is None or iceberg is None:
        return [[b] for b in files]
    return [[parquet, iceberg]] + [[b] for b in files if b is not parquet and b is not iceberg]


def _shared(
    parquet: IcebergBinding | ParquetBinding,
    iceberg: IcebergBinding | ParquetBinding,
    outcome: BindingOutcome,
    batch: tuple[pa.Table, Fingerprint] | BaseException,
) -> binding_iceberg.Shared | None:
    """The Parquet snapshot the Iceberg binding registers: one just written of the same rows, partitioned
    by columns whose values a path gives back exactly, unless the Iceberg binding declares
    `share_partitioned_files: false` (else Iceberg writes its own file)."""
    if not isinstance(parquet, ParquetBinding) or not isinstance(iceberg, IcebergBinding):
        return None
    if not outcome.written or isinstance(batch, BaseException):
        return None
    if parquet.partition_by and not iceberg.share_partitioned_files:
        return None
    if not binding_iceberg.shareable(batch[0].schema, parquet.partition_by):
        return None
    snapshot = binding_files.snapshot_at(Path(outcome.facts["folder"]))
    if snapshot is None or not snapshot.files:  # an empty publish writes no file to share
        return None
    return binding_iceberg.Shared(snapshot.folder, snapshot.files, list(parquet.partition_by))


def _write_iceberg(
    where: binding_iceberg.IcebergPlace,
    binding: IcebergBinding,
    table: pa.Table,
    publish_id: str,
    facts: dict[str, Any],
    shared: binding_iceberg.Shared | None = None,
) -> dict[str, Any]:
    written = binding_iceberg.write(where, table, publish_id, facts, shared)
    expired = binding_iceberg.expire(where, binding.keep_snapshots)
    return {
        "publish_id": publish_id,
        "snapshot_id": str(written.snapshot_id),
        "table": where.identifier,
        "catalog": where.catalog_name,
        "expired_snapshots": expired,
        **({"shares_file_of": "parquet"} if written.linked else {}),
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
    types = dict(expected.schema)
    if isinstance(binding, ParquetBinding):
        latest = (where.parquet / binding_files.LATEST).resolve()
        hive = {c: types[c] for c in binding.partition_by if c in types}
        files = sorted(latest.rglob("*.parquet"))
        if not files:  # an empty publish partitioned writes no file: its manifest's schema, no rows
            return fingerprint(binding_files.read(where.parquet))
        return files_fingerprint(files, list(types), hive)
    layout = binding_iceberg.layout(where.iceberg)
    if layout is None or not layout.files:
        # Not on a local disk (a REST catalog's object store), or an empty publish (a scan plans no empty
        # file, and DuckDB reads no empty list): read through pyiceberg.
        return fingerprint(binding_iceberg.read(where.iceberg))
    # The files, projected as the table's schema says (its order; a column it lacks is not read), so a
    # table whose schema went astray from its files fails on the schema. Files shared with a partitioned
    # Parquet binding hold no partition column: DuckDB reads it from the Hive path, and the partition
    # records Iceberg's readers take it from are checked against that path.
    hive = {c: types[c] for c in layout.partition_by if c in types}
    found = files_fingerprint(layout.files, layout.columns, hive)
    return dataclasses.replace(found, problems=tuple(layout.mismatches))


def shared_fingerprint(
    where: Places, shared: binding_iceberg.Shared, expected: Fingerprint
) -> Fingerprint | None:
    """The Iceberg binding's fingerprint from its metadata, when it registers the very files (the same
    inodes: one set of bytes under two names) of a Parquet snapshot that was just read back in parity
    with the table; None when it does not (then its files are read).

    What Iceberg adds to those bytes is checked from its metadata: the snapshot's file list, each file's
    partition record against its path, the rows its manifests count, the columns in the port's order.
    """
    layout = binding_iceberg.layout(where.iceberg)
    if layout is None:
        return None
    listed = sorted(_inode(f) for f in layout.files)
    if listed != sorted(_inode(shared.folder / f) for f in shared.files):
        return None
    if layout.columns != [name for name, _ in expected.schema]:
        return None
    return Fingerprint(layout.rows, expected.checksum, expected.schema, tuple(layout.mismatches))


def _inode(path: Path) -> tuple[int, int]:
    found = path.stat()
    return found.st_dev, found.st_ino


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
    return differences + list(actual.problems)


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
