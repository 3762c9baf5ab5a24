"""The Iceberg binding: one Iceberg table per port version, one commit per publish, through pyiceberg.

The catalog is, by default, a SQL catalog on SQLite in the environment's `bindings/iceberg/` folder
(no server, no credentials); `MESH_ICEBERG_CATALOG` names a catalog configured the way pyiceberg is
configured (`.pyiceberg.yaml` or `PYICEBERG_CATALOG__<NAME>__URI`, ...), e.g. any Iceberg REST catalog,
so its credentials never pass through the mesh. Prod's tables are in the namespace `<domain>`; any other
environment writes `<env>__<domain>`, so a branch never overwrites what consumers read even when every
environment shares one REST catalog.

Each publish is one transaction (the previous files deleted, the new files added: an overwrite): the
catalog moves the table's metadata pointer once, so a run killed before that commit leaves the table at
its previous snapshot (orphaned data files are harmless). Beside a Parquet binding of the same rows, the
table registers that binding's snapshot files (hard links, `Shared`) and takes its partitioning: Hive
folders `col=value/` whose files do not hold the partition columns, which the table declares as identity
partitions with each file's values in its manifest entry, as the Iceberg spec provides for tables
migrated from Hive ("values for field ids not present in a data file ... from partition metadata if an
identity transform exists"); one Parquet encode then serves both. Alone (or when that binding failed,
or partitions by a type this module does not read from a path), the table's rows go to one file of its
own, unpartitioned. Iceberg records the overwrite as a delete and an append snapshot; the append's
summary carries `mesh.publish_id`, `mesh.rows` and `mesh.checksum`, which is how a reader time-travels
by publish. pyiceberg is imported only here, only when a binding is written or read.
"""

from __future__ import annotations

import functools
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mesh_assets.assets.binding_files import bindings_root, copy_to_parquet

if TYPE_CHECKING:
    import pyarrow as pa

CATALOG_NAME = "mesh"
"""The default catalog's name (what `load_catalog` is called with in the catalog's read snippets)."""
PUBLISH_ID = "mesh.publish_id"
"""Snapshot summary property: the publish that wrote the snapshot."""


@dataclass(frozen=True)
class IcebergPlace:
    """Where a port version's Iceberg table is: the catalog's settings and the table's identifier."""

    catalog_name: str
    properties: dict[str, str]
    """pyiceberg catalog properties (empty: configured outside the mesh, by `catalog_name`)."""
    namespace: str
    table: str

    @property
    def identifier(self) -> str:
        """`<namespace>.<table>`, as pyiceberg and engines name it."""
        return f"{self.namespace}.{self.table}"


def place(
    data_dir: Path, env_name: str, is_prod: bool, domain: str, product: str, major: int, catalog: str | None
) -> IcebergPlace:
    """The Iceberg table of a port version in an environment."""
    namespace = domain if is_prod else f"{env_name}__{domain}"
    table = f"{product}_v{major}"
    if catalog:
        return IcebergPlace(catalog, {}, namespace, table)
    root = bindings_root(data_dir) / "iceberg"
    properties = {
        "type": "sql",
        "uri": f"sqlite:///{root / 'catalog.db'}",
        # A contract exported for people shows the folder relative to the repository: no file URI then.
        "warehouse": (root / "warehouse").as_uri() if root.is_absolute() else (root / "warehouse").as_posix(),
    }
    return IcebergPlace(CATALOG_NAME, properties, namespace, table)


def _catalog(where: IcebergPlace) -> Any:
    # One catalog object per catalog and process: loading one opens a SQLAlchemy engine and checks its
    # tables (tens of ms), and a publish asks four times (write, expire, files, parity).
    return _load_catalog(where.catalog_name, tuple(sorted(where.properties.items())))


@functools.cache
def _load_catalog(name: str, properties: tuple[tuple[str, str], ...]) -> Any:
    from pyiceberg.catalog import load_catalog

    settings = dict(properties)
    if settings:
        Path(settings["uri"].removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return load_catalog(name, **settings)


@dataclass(frozen=True)
class Shared:
    """A Parquet binding's finished snapshot of exactly the rows being published, for the table to add."""

    folder: Path
    files: list[str]
    """Paths relative to `folder`: `part-0.parquet`, or Hive folders `col=value/.../part-<i>.parquet`."""
    partition_by: list[str]


def shareable(schema: pa.Schema, partition_by: list[str]) -> bool:
    """Whether the table can register files partitioned by `partition_by`: each partition value is read
    from its path exactly (text, integers, dates, booleans; pyarrow reads no decimal from a path, and a
    float or timestamp path value need not round-trip), so the manifest holds what the rows held."""
    import pyarrow as pa

    exact = (pa.types.is_string, pa.types.is_large_string, pa.types.is_integer, pa.types.is_date32)
    return all(any(t(schema.field(c).type) for t in (*exact, pa.types.is_boolean)) for c in partition_by)


@dataclass(frozen=True)
class Written:
    """What one publish's commit made: the snapshot holding the rows, and whether its files are shared."""

    snapshot_id: int
    linked: bool
    """The data files are hard links to a Parquet binding's snapshot (one write served two bindings)."""


def write(
    where: IcebergPlace, table: pa.Table, publish_id: str, facts: dict[str, Any], shared: Shared | None = None
) -> Written:
    """Overwrite the table with `table` in one commit (see `Written`).

    When the table's data folder is a local one (the default SQL catalog), the table registers the files
    of `shared` (hard-linked under its own data folder, Hive layout kept) or, without it, one Parquet
    file of its own (`binding_files.copy_to_parquet`). The files are added in the same transaction as
    the delete of the previous publish's files: one metadata commit, as pyiceberg's `overwrite`.
    Elsewhere (an object store behind a REST catalog) pyiceberg's `overwrite` writes the rows itself.
    """
    import warnings

    properties = {PUBLISH_ID: publish_id, **{f"mesh.{k}": str(v) for k, v in facts.items()}}
    iceberg = _table(where, table.schema)
    location = iceberg.location().rstrip("/")
    folder = local_path(location)
    if folder is None:
        shared = None  # an object store's table cannot hold links to local files: it writes its own
    _partition(iceberg, shared.partition_by if shared is not None else [])
    with warnings.catch_warnings():
        # The first publish deletes from an empty table; pyiceberg warns that nothing matched.
        warnings.simplefilter("ignore", UserWarning)
        if folder is None:
            with iceberg.transaction() as tx:
                tx.overwrite(table, snapshot_properties=properties)
            return Written(iceberg.current_snapshot().snapshot_id, linked=False)
        from uuid import uuid4

        from pyiceberg.expressions import AlwaysTrue

        # A unique folder: a retried publish, or a run killed before its commit, never overwrites a file
        # that a kept snapshot references (a killed run's files are orphans no snapshot reads).
        prefix = f"data/{publish_id}-{uuid4().hex[:12]}"
        if shared is None:
            names = [f"{prefix}.parquet"]
            (folder / "data").mkdir(parents=True, exist_ok=True)
            copy_to_parquet(table, folder / names[0])
        else:
            names = [f"{prefix}/{name}" for name in shared.files]
            for name, source in zip(names, shared.files, strict=True):
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                _link(shared.folder / source, folder / name)
        with iceberg.transaction() as tx:
            tx.delete(AlwaysTrue(), snapshot_properties=properties)
            if shared is None or not shared.partition_by:
                tx.add_files([f"{location}/{n}" for n in names], properties, check_duplicate_files=False)
            else:
                _add_partitioned(tx, iceberg, [(f"{location}/{n}", folder / n, n) for n in names], properties)
    return Written(iceberg.current_snapshot().snapshot_id, linked=shared is not None)


def _add_partitioned(tx: Any, iceberg: Any, files: list[tuple[str, Path, str]], properties: dict) -> None:
    """Append Hive-partitioned files to the transaction, each with its partition values from its path.

    `add_files` infers a file's partition from the column's statistics, which a Hive file does not hold
    (its partition columns are in its path): the data files are described here the way `add_files`
    describes them (statistics from the Parquet footer, the table's name mapping for files without field
    ids), with the partition record read from the path.
    """
    import pyarrow.parquet as pq
    from pyiceberg.io.pyarrow import (
        compute_statistics_plan,
        data_file_statistics_from_parquet_metadata,
        parquet_path_to_id_mapping,
    )
    from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
    from pyiceberg.table import TableProperties
    from pyiceberg.typedef import Record

    metadata = tx.table_metadata
    schema, spec = metadata.schema(), metadata.spec()
    if metadata.name_mapping() is None:
        tx.set_properties(**{TableProperties.DEFAULT_NAME_MAPPING: schema.name_mapping.model_dump_json()})
    names = [schema.find_field(f.source_id).name for f in spec.fields]
    plan = compute_statistics_plan(schema, metadata.properties)
    mapping = parquet_path_to_id_mapping(schema)
    with tx.update_snapshot(snapshot_properties=properties).fast_append() as append:
        for uri, path, relative in files:
            values = partition_values(relative, iceberg.schema(), names)
            statistics = data_file_statistics_from_parquet_metadata(
                parquet_metadata=pq.read_metadata(path), stats_columns=plan, parquet_column_mapping=mapping
            )
            partition = Record(*_partition_record(spec, schema, values))
            append.append_data_file(
                DataFile.from_args(
                    content=DataFileContent.DATA,
                    file_path=uri,
                    file_format=FileFormat.PARQUET,
                    partition=partition,
                    file_size_in_bytes=path.stat().st_size,
                    sort_order_id=None,
                    spec_id=metadata.default_spec_id,
                    equality_ids=None,
                    key_metadata=None,
                    **statistics.to_serialized_dict(),
                )
            )


def _partition_record(spec: Any, schema: Any, values: dict[str, Any]) -> list[Any]:
    """A file's partition record, as Iceberg stores it (a date as days, ...), from its typed values."""
    from pyiceberg.partitioning import partition_record_value

    return [
        partition_record_value(f, values[schema.find_field(f.source_id).name], schema) for f in spec.fields
    ]


def partition_values(relative: str, schema: Any, names: list[str]) -> dict[str, Any]:
    """The values of partition columns `names` in a Hive path (`col=value/.../file`), typed as the
    Iceberg `schema` types them (None for `__HIVE_DEFAULT_PARTITION__`)."""
    import pyarrow as pa
    import pyarrow.dataset as ds
    from pyiceberg.io.pyarrow import schema_to_pyarrow

    arrow = schema_to_pyarrow(schema)
    fields = [arrow.field(n).remove_metadata() for n in names]
    partitioning = ds.partitioning(pa.schema(fields), flavor="hive")
    # A trailing separator: pyarrow takes the last segment of a path for the file's name.
    keys = ds.get_partition_keys(partitioning.parse("/" + str(Path(relative).parent) + "/"))
    missing = [n for n in names if n not in keys]
    if missing:
        raise ValueError(f"{relative}: no Hive folder gives the partition column(s) {missing}")
    return {n: keys[n] for n in names}


def _table(where: IcebergPlace, schema: pa.Schema) -> Any:
    catalog = _catalog(where)
    catalog.create_namespace_if_not_exists(where.namespace)
    iceberg = catalog.create_table_if_not_exists(
        where.identifier,
        schema=schema,
        # Each commit writes a new metadata file; keep a few, not one per publish forever.
        properties={
            "write.metadata.delete-after-commit.enabled": "true",
            "write.metadata.previous-versions-max": "10",
        },
    )
    if [f.name for f in iceberg.schema().fields] != schema.names:
        # A minor version added a column: evolve the table (a major version is a table of its own), then
        # put the columns in the port's order (a union appends the new ones), as its readers expect.
        with iceberg.update_schema() as update:
            update.union_by_name(schema)
        with iceberg.update_schema() as update:
            update.move_first(schema.names[0])
            for before, name in zip(schema.names, schema.names[1:], strict=False):
                update.move_after(name, before)
    return iceberg


def _partition(iceberg: Any, partition_by: list[str]) -> None:
    """Make the table identity-partitioned by `partition_by` (unpartitioned when empty), if it is not."""
    current = [iceberg.schema().find_field(f.source_id).name for f in iceberg.spec().fields]
    if current != partition_by:
        # The shared files' partitioning changed (or sharing began or stopped): evolve the spec. Every
        # publish replaces all files, so no file stays under the old spec after this commit.
        from pyiceberg.transforms import IdentityTransform

        with iceberg.update_spec() as update:
            for field in iceberg.spec().fields:
                update.remove_field(field.name)
            for name in partition_by:
                update.add_field(name, IdentityTransform(), name)


def _link(source: Path, target: Path) -> None:
    # A hard link: the two bindings expire independently (removing one name keeps the other's file), and
    # neither ever rewrites a published file in place. Across file systems, a copy.
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def local_path(location: str) -> Path | None:
    """The local path of an Iceberg file or folder location, or None when it is not on a local disk."""
    if location.startswith("file:") or location.startswith("/"):
        return Path(location.removeprefix("file://").removeprefix("file:"))
    return None


@dataclass(frozen=True)
class IcebergSnapshot:
    """A publish's snapshot of the table: its id and what its summary records."""

    snapshot_id: int
    publish_id: str
    rows: int
    checksum: str


def publishes(where: IcebergPlace) -> list[IcebergSnapshot]:
    """Every publish's snapshot still kept, oldest first; empty before the first publish."""
    from pyiceberg.exceptions import NoSuchTableError

    try:
        iceberg = _catalog(where).load_table(where.identifier)
    except NoSuchTableError:
        return []
    found = []
    for snapshot in iceberg.snapshots():
        summary = snapshot.summary
        publish_id = summary.get(PUBLISH_ID) if summary is not None else None
        # The overwrite's delete snapshot carries the same properties; the append holds the rows.
        if publish_id and summary.operation.value == "append":
            found.append(
                IcebergSnapshot(
                    snapshot.snapshot_id,
                    publish_id,
                    int(summary.get("mesh.rows") or -1),
                    summary.get("mesh.checksum") or "",
                )
            )
    return found


def read(where: IcebergPlace, publish_id: str | None = None) -> pa.Table:
    """The table's rows now, or as publish `publish_id` left them (time travel)."""
    iceberg = _catalog(where).load_table(where.identifier)
    if publish_id is None:
        return iceberg.scan().to_arrow()
    for snapshot in publishes(where):
        if snapshot.publish_id == publish_id:
            return iceberg.scan(snapshot_id=snapshot.snapshot_id).to_arrow()
    raise LookupError(f"{where.identifier} keeps no snapshot of publish {publish_id}")


def data_files(where: IcebergPlace) -> list[Path] | None:
    """The data files of the table's current snapshot, if all are local files (else None).

    Every publish overwrites the whole table, so no delete file applies to them.
    """
    found = layout(where)
    return None if found is None else found.files


@dataclass(frozen=True)
class Layout:
    """The current snapshot's data files, the table's partition columns, and any file whose partition
    record (what readers take a partition column from) differs from its Hive path (what was written)."""

    files: list[Path]
    columns: list[str]
    """The table's column names, in its schema's order (what its readers get)."""
    partition_by: list[str]
    mismatches: list[str]
    rows: int
    """The rows the manifests count (what engines answer `count(*)` from)."""


def layout(where: IcebergPlace) -> Layout | None:
    """The table's current files and partitioning, if all its files are local (else None)."""
    iceberg = _catalog(where).load_table(where.identifier)
    schema, spec = iceberg.schema(), iceberg.spec()
    names = [schema.find_field(f.source_id).name for f in spec.fields]
    files, mismatches, rows = [], [], 0
    data = iceberg.location().rstrip("/") + "/data/"
    for task in iceberg.scan().plan_files():
        path = local_path(task.file.file_path)
        if path is None:
            return None
        files.append(path)
        rows += task.file.record_count
        if names:
            written = partition_values(task.file.file_path.removeprefix(data), schema, names)
            expected = _partition_record(spec, schema, written)
            recorded = [task.file.partition[i] for i in range(len(names))]
            if recorded != expected:
                where_ = f"{path.parent.name}/{path.name}"
                mismatches.append(f"partition {recorded} of {where_} (its path: {expected})")
    return Layout(files, [f.name for f in schema.fields], names, mismatches, rows)


def expire(where: IcebergPlace, keep: int) -> int:
    """Expire every snapshot but those of the `keep` newest publishes (and the current); how many went.

    pyiceberg's expiry drops snapshots from the metadata only; the data files that no kept snapshot
    references are then deleted here when they are local files (an object store's are left to its own
    lifecycle rules), so a port does not keep one full copy per publish forever.
    """
    iceberg = _catalog(where).load_table(where.identifier)
    kept = {s.snapshot_id for s in publishes(where)[-keep:]}
    current = iceberg.current_snapshot()
    if current is not None:
        kept.add(current.snapshot_id)
    snapshots = iceberg.snapshots()
    old = [s.snapshot_id for s in snapshots if s.snapshot_id not in kept]
    if not old:
        return 0
    referenced = set().union(*(_data_files(iceberg, s) for s in snapshots if s.snapshot_id in kept))
    unreferenced = set().union(*(_data_files(iceberg, s) for s in snapshots if s.snapshot_id in old))
    iceberg.maintenance.expire_snapshots().by_ids(old).commit()
    data = local_path(iceberg.location().rstrip("/") + "/data")
    for location in unreferenced - referenced:
        path = local_path(location)
        if path is not None:
            path.unlink(missing_ok=True)
            _remove_empty_folders(path.parent, data)
    return len(old)


def _remove_empty_folders(folder: Path, root: Path | None) -> None:
    """Remove `folder` and its parents up to (not including) `root` while they are empty: a publish's
    shared files sit in `data/<publish>-<id>/col=value/`, which would otherwise pile up empty."""
    while root is not None and folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:  # not empty (or already gone): the parents are not empty either
            return
        folder = folder.parent


def _data_files(iceberg: Any, snapshot: Any) -> set[str]:
    return {
        entry.data_file.file_path
        for manifest in snapshot.manifests(iceberg.io)
        for entry in manifest.fetch_manifest_entry(iceberg.io, discard_deleted=True)
    }
