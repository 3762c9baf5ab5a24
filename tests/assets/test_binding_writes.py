"""How bindings are written cheaply without weakening parity: the warehouse hashes its own rows, Iceberg
registers a file instead of rewriting the rows, shares an unpartitioned Parquet binding's file, and a
binding whose files were tampered with still fails its parity check."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from binding_specs import MINIMAL_SPEC

from mesh_assets.assets import binding_files, binding_iceberg, bindings
from mesh_assets.infra import environment
from mesh_assets.infra.warehouse.duckdb import DuckDBWarehouse
from mesh_assets.product.spec import DataProductSpec

EVERY_TYPE = (
    "SELECT 'w' || i AS widget_id, (i / 4)::DECIMAL(12,2) AS price, i::INTEGER AS small, i::BIGINT AS big, "
    "i / 3.0 AS ratio, i % 2 = 0 AS even, DATE '2026-01-01' + i::INTEGER AS day, "
    "TIMESTAMP '2026-01-01 08:00:00' + to_seconds(i) AS at, "
    "CASE WHEN i % 5 = 0 THEN NULL ELSE ['a', 'b', 'c'][1 + i % 3] END AS line FROM range({rows}) t(i)"
)


def spec_with(bindings_: list[dict]) -> DataProductSpec:
    data = {**MINIMAL_SPEC, "output_ports": [dict(MINIMAL_SPEC["output_ports"][0])]}
    data["output_ports"][0]["bindings"] = bindings_
    line = {"name": "line", "type": "string", "description": "Product line."}
    data["output_ports"][0]["columns"] = [*MINIMAL_SPEC["output_ports"][0]["columns"], line]
    return DataProductSpec.model_validate(data)


class Publisher:
    """What write-audit-publish leaves before the bindings (the published table, here by hand), then them."""

    def __init__(self, repo_root: Path, tmp_path: Path, spec: DataProductSpec) -> None:
        self.spec, self.port = spec, spec.output_ports[0]
        self.env = environment.resolve(
            environ={"MESH_ROOT": str(repo_root), "MESH_DATA_DIR": str(tmp_path / "data")}
        )
        self.warehouse = DuckDBWarehouse(path=str(tmp_path / "mesh.duckdb"))
        self.where = bindings.places(self.env, spec, self.port)

    def publish(self, rows: int, publish_id: str, select: str = EVERY_TYPE) -> list[bindings.BindingOutcome]:
        with self.warehouse.isolated_session() as session:
            session.execute("CREATE SCHEMA IF NOT EXISTS sales")
            session.execute(f"CREATE OR REPLACE TABLE sales.widgets_v1 AS {select.format(rows=rows)}")
            return bindings.write_bindings(session, self.spec, self.port, self.env, publish_id)

    def table(self) -> pa.Table:
        with self.warehouse.session() as session:
            return session.connection.sql("SELECT * FROM sales.widgets_v1").to_arrow_table()


def test_the_warehouse_hashes_its_rows_as_the_parity_read_back_hashes_them_for_every_contract_type(
    tmp_path: Path,
) -> None:
    warehouse = DuckDBWarehouse(path=str(tmp_path / "mesh.duckdb"))
    sql = f"SELECT * FROM ({EVERY_TYPE.format(rows=200)})"
    with warehouse.isolated_session() as session:
        table = session.connection.sql(sql).to_arrow_table()
        in_warehouse = bindings.source_fingerprint(session, sql, table)
    assert in_warehouse == bindings.fingerprint(table)
    assert in_warehouse.rows == 200 and len(in_warehouse.schema) == 9


def test_iceberg_registers_one_file_per_publish_and_evolves_when_a_minor_version_adds_a_column(
    repo_root: Path, tmp_path: Path
) -> None:
    bench = Publisher(repo_root, tmp_path, spec_with([{"kind": "iceberg"}]))
    narrow = "SELECT 'w' || i AS widget_id, i::BIGINT AS big FROM range({rows}) t(i)"
    [first] = bench.publish(30, "p1", narrow)
    assert first.written and not first.parity, first.error
    [second] = bench.publish(40, "p2")
    assert second.written and not second.parity, second.error
    assert bindings.fingerprint(bindings.read_binding(bench.where, "iceberg")) == bindings.fingerprint(
        bench.table()
    )
    assert [len(f) for f in [binding_iceberg.data_files(bench.where.iceberg)]] == [1]
    # Time travel still finds the first publish, in the schema it was written with.
    assert binding_iceberg.read(bench.where.iceberg, "p1").num_rows == 30


def test_an_unpartitioned_parquet_binding_and_iceberg_share_one_written_file_and_expire_independently(
    repo_root: Path, tmp_path: Path
) -> None:
    spec = spec_with([{"kind": "iceberg", "keep_snapshots": 3}, {"kind": "parquet", "keep_snapshots": 1}])
    bench = Publisher(repo_root, tmp_path, spec)
    for n, publish_id in enumerate(["p1", "p2", "p3"], start=1):
        iceberg, parquet = bench.publish(10 * n, publish_id)
        assert iceberg.written and parquet.written and not iceberg.parity and not parquet.parity
    assert iceberg.facts["shares_file_of"] == "parquet"
    [shared] = binding_iceberg.data_files(bench.where.iceberg)
    latest = binding_files.latest(bench.where.parquet)
    assert os.path.samefile(shared, latest.folder / binding_files.SINGLE_FILE)  # one write, two names
    # The Parquet binding kept one snapshot; Iceberg still reads its older publishes' files.
    assert binding_files.snapshots(bench.where.parquet) == ["p3"]
    assert binding_iceberg.read(bench.where.iceberg, "p1").num_rows == 10


@pytest.mark.parametrize("partition_by", [[], ["line"]])
def test_iceberg_on_a_catalog_whose_files_are_not_local_is_written_by_pyiceberg(
    repo_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, partition_by: list[str]
) -> None:
    monkeypatch.setattr(binding_iceberg, "local_path", lambda location: None)
    parquet = {"kind": "parquet", "partition_by": partition_by}
    bench = Publisher(repo_root, tmp_path, spec_with([{"kind": "iceberg"}, parquet]))
    iceberg, _ = bench.publish(25, "p1")
    assert iceberg.written and not iceberg.parity and "shares_file_of" not in iceberg.facts
    assert bindings.read_binding(bench.where, "iceberg").num_rows == 25


def _tamper(path: Path) -> None:
    """Rewrite a Parquet file with the same rows, schema and row count but one value changed."""
    table = pq.read_table(path)
    index = table.schema.get_field_index("widget_id")
    changed = pa.array(["tampered", *table.column(index).to_pylist()[1:]], table.schema.field(index).type)
    pq.write_table(table.set_column(index, table.schema.field(index), changed), path)


@pytest.mark.parametrize(
    ("declared", "tampered"),
    [
        ([{"kind": "iceberg"}, {"kind": "parquet", "partition_by": ["line"]}], "parquet"),
        ([{"kind": "iceberg"}, {"kind": "parquet", "partition_by": ["line"]}], "iceberg"),
        # Sharing one file: tampering with it is seen by both.
        ([{"kind": "iceberg"}, {"kind": "parquet"}], "parquet"),
    ],
)
def test_a_binding_whose_files_were_tampered_with_fails_parity_on_its_checksum(
    repo_root: Path, tmp_path: Path, declared: list[dict], tampered: str
) -> None:
    bench = Publisher(repo_root, tmp_path, spec_with(declared))
    outcomes = bench.publish(60, "p1")
    assert all(o.written and not o.parity for o in outcomes), [(o.kind, o.error, o.parity) for o in outcomes]
    expected = bindings.fingerprint(bench.table())
    if tampered == "parquet":
        _tamper(sorted(binding_files.latest(bench.where.parquet).folder.rglob("*.parquet"))[0])
    else:
        _tamper(binding_iceberg.data_files(bench.where.iceberg)[0])
    # Iceberg registers the Parquet binding's files (hard links): tampering with one is seen by both.
    shared = "shares_file_of" in next(o for o in outcomes if o.kind == "iceberg").facts
    for binding in bench.port.bindings:
        differences = bindings.parity(expected, bindings.binding_fingerprint(bench.where, binding, expected))
        if binding.kind == tampered or shared:
            assert [d.split()[0] for d in differences] == ["checksum"], binding.kind
        else:
            assert differences == [], binding.kind


def test_an_iceberg_table_whose_schema_no_longer_matches_the_port_fails_parity_on_its_schema(
    repo_root: Path, tmp_path: Path
) -> None:
    bench = Publisher(repo_root, tmp_path, spec_with([{"kind": "iceberg"}]))
    [outcome] = bench.publish(20, "p1")
    assert outcome.written and not outcome.parity
    table = binding_iceberg._catalog(bench.where.iceberg).load_table(bench.where.iceberg.identifier)
    with table.update_schema() as update:
        update.move_first("price")
    expected = bindings.fingerprint(bench.table())
    differences = bindings.parity(
        expected, bindings.binding_fingerprint(bench.where, bench.port.bindings[0], expected)
    )
    assert [d.split()[0] for d in differences] == ["schema", "checksum"]


EVERY_COLUMN = [
    {"name": "small", "type": "integer"},
    {"name": "big", "type": "bigint"},
    {"name": "ratio", "type": "double"},
    {"name": "even", "type": "boolean"},
    {"name": "day", "type": "date"},
    {"name": "at", "type": "timestamp"},
    {"name": "line", "type": "string"},
]


@pytest.mark.parametrize("column", ["price", "small", "big", "ratio", "even", "day", "at", "line"])
def test_parquet_and_iceberg_partitioned_by_a_column_of_any_contract_type_read_back_the_tables_rows(
    repo_root: Path, tmp_path: Path, column: str
) -> None:
    data = {**MINIMAL_SPEC, "output_ports": [dict(MINIMAL_SPEC["output_ports"][0])]}
    described = [{**c, "description": f"The {c['name']}."} for c in EVERY_COLUMN]
    data["output_ports"][0]["columns"] = [*MINIMAL_SPEC["output_ports"][0]["columns"], *described]
    data["output_ports"][0]["bindings"] = [{"kind": "iceberg"}, {"kind": "parquet", "partition_by": [column]}]
    bench = Publisher(repo_root, tmp_path, DataProductSpec.model_validate(data))
    # Values that need escaping in a path, and a NULL partition.
    odd = EVERY_TYPE.replace("['a', 'b', 'c']", "['a b', 'x/y=1', '50%,é']")
    iceberg, parquet = bench.publish(12, "p1", odd)
    assert parquet.written and not parquet.parity, (parquet.error, parquet.parity)
    read = binding_files.read(bench.where.parquet)
    assert read.schema == bench.table().schema
    assert bindings.fingerprint(read) == bindings.fingerprint(bench.table())
    # Iceberg shares the files when the path gives the value back exactly, and reads the same rows.
    assert iceberg.written and not iceberg.parity, (iceberg.error, iceberg.parity)
    assert ("shares_file_of" in iceberg.facts) == (column in {"small", "big", "even", "day", "line"})
    assert bindings.fingerprint(binding_iceberg.read(bench.where.iceberg)) == bindings.fingerprint(
        bench.table()
    )


def test_an_empty_publish_writes_every_binding_in_parity(repo_root: Path, tmp_path: Path) -> None:
    spec = spec_with([{"kind": "iceberg"}, {"kind": "parquet", "partition_by": ["line"]}])
    bench = Publisher(repo_root, tmp_path, spec)
    outcomes = bench.publish(0, "p1")
    assert [(o.written, o.error, o.parity) for o in outcomes] == [(True, None, [])] * 2
    assert bindings.read_binding(bench.where, "iceberg").num_rows == 0


def test_iceberg_registers_a_partitioned_parquet_bindings_files_and_reads_the_partition_from_its_metadata(
    repo_root: Path, tmp_path: Path
) -> None:
    spec = spec_with(
        [{"kind": "iceberg"}, {"kind": "parquet", "partition_by": ["line"], "keep_snapshots": 1}]
    )
    bench = Publisher(repo_root, tmp_path, spec)
    for rows, publish_id in ((30, "p1"), (45, "p2")):
        iceberg, parquet = bench.publish(rows, publish_id)  # every fifth line is NULL: a default partition
        assert iceberg.written and parquet.written and not iceberg.parity and not parquet.parity
    assert iceberg.facts["shares_file_of"] == "parquet"
    files = binding_iceberg.data_files(bench.where.iceberg)
    latest = sorted(binding_files.latest(bench.where.parquet).folder.rglob("*.parquet"))
    assert len(files) == len(latest) == 4  # a, b, c and NULL
    assert sorted(os.stat(f).st_ino for f in files) == sorted(os.stat(f).st_ino for f in latest)
    assert all("line" not in pq.read_schema(f).names for f in files)  # the value is in the path only
    table = binding_iceberg._catalog(bench.where.iceberg).load_table(bench.where.iceberg.identifier)
    assert [(f.name, str(f.transform)) for f in table.spec().fields] == [("line", "identity")]
    # pyiceberg fills the column from each file's partition record, in the port's order and types.
    read = binding_iceberg.read(bench.where.iceberg)
    assert read.column_names == bench.table().column_names
    assert bindings.fingerprint(read) == bindings.fingerprint(bench.table())
    # The Parquet binding kept one snapshot; Iceberg still time-travels to the first publish's files.
    assert binding_files.snapshots(bench.where.parquet) == ["p2"]
    assert binding_iceberg.read(bench.where.iceberg, "p1").num_rows == 30


def test_an_expired_iceberg_publish_leaves_no_empty_partition_folders_behind(
    repo_root: Path, tmp_path: Path
) -> None:
    spec = spec_with(
        [{"kind": "iceberg", "keep_snapshots": 1}, {"kind": "parquet", "partition_by": ["line"]}]
    )
    bench = Publisher(repo_root, tmp_path, spec)
    for n in range(1, 4):
        assert all(o.written and not o.parity for o in bench.publish(10 * n, f"p{n}"))
    [current] = {f.parent.parent for f in binding_iceberg.data_files(bench.where.iceberg)}
    # Only the kept publish's folder is left under data/: the expired ones went with their files.
    assert [p.name for p in current.parent.iterdir()] == [current.name]


@pytest.mark.parametrize(
    ("column", "iceberg"),
    [
        ("price", {"kind": "iceberg"}),
        ("ratio", {"kind": "iceberg"}),
        ("at", {"kind": "iceberg"}),
        # Declared: every column in the table's own files, as the Iceberg spec asks new writers to.
        ("line", {"kind": "iceberg", "share_partitioned_files": False}),
    ],
)
def test_iceberg_writes_its_own_file_beside_a_parquet_binding_partitioned_by_a_value_a_path_may_not_keep(
    repo_root: Path, tmp_path: Path, column: str, iceberg: dict
) -> None:
    data = {**MINIMAL_SPEC, "output_ports": [dict(MINIMAL_SPEC["output_ports"][0])]}
    described = [{**c, "description": f"The {c['name']}."} for c in EVERY_COLUMN]
    data["output_ports"][0]["columns"] = [*MINIMAL_SPEC["output_ports"][0]["columns"], *described]
    data["output_ports"][0]["bindings"] = [iceberg, {"kind": "parquet", "partition_by": [column]}]
    bench = Publisher(repo_root, tmp_path, DataProductSpec.model_validate(data))
    written, parquet = bench.publish(20, "p1")
    assert written.written and parquet.written and not written.parity and not parquet.parity
    assert "shares_file_of" not in written.facts
    [own] = binding_iceberg.data_files(bench.where.iceberg)
    assert column in pq.read_schema(own).names
    assert bindings.fingerprint(binding_iceberg.read(bench.where.iceberg)) == bindings.fingerprint(
        bench.table()
    )


def test_the_iceberg_partitioning_follows_the_parquet_binding_it_shares_and_stops_when_sharing_stops(
    repo_root: Path, tmp_path: Path
) -> None:
    def partitioning(bench: Publisher) -> list[str]:
        table = binding_iceberg._catalog(bench.where.iceberg).load_table(bench.where.iceberg.identifier)
        return [table.schema().find_field(f.source_id).name for f in table.spec().fields]

    declared = [
        [{"kind": "iceberg"}, {"kind": "parquet", "partition_by": ["line"]}],
        [{"kind": "iceberg"}, {"kind": "parquet", "partition_by": ["line", "widget_id"]}],
        [{"kind": "iceberg"}],
    ]
    for n, bindings_ in enumerate(declared, start=1):
        bench = Publisher(repo_root, tmp_path, spec_with(bindings_))
        outcomes = bench.publish(10 * n, f"p{n}")
        assert all(o.written and not o.parity for o in outcomes), [
            (o.kind, o.error, o.parity) for o in outcomes
        ]
        read = binding_iceberg.read(bench.where.iceberg)
        assert bindings.fingerprint(read) == bindings.fingerprint(bench.table())
        assert partitioning(bench) == (bindings_[1]["partition_by"] if len(bindings_) == 2 else [])
    assert binding_iceberg.read(bench.where.iceberg, "p2").num_rows == 20


def test_an_iceberg_partition_record_that_differs_from_its_files_path_fails_parity(
    repo_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench = Publisher(
        repo_root, tmp_path, spec_with([{"kind": "iceberg"}, {"kind": "parquet", "partition_by": ["line"]}])
    )
    honest, add = binding_iceberg.partition_values, binding_iceberg._add_partitioned

    def add_with_a_wrong_line(*args: object) -> None:
        # Only the write records a wrong value; the parity check reads the paths honestly.
        monkeypatch.setattr(binding_iceberg, "partition_values", lambda *a: {**honest(*a), "line": "b"})
        try:
            add(*args)
        finally:
            monkeypatch.setattr(binding_iceberg, "partition_values", honest)

    monkeypatch.setattr(binding_iceberg, "_add_partitioned", add_with_a_wrong_line)
    iceberg, parquet = bench.publish(30, "p1")
    assert parquet.written and not parquet.parity
    # The files are the table's rows; what an Iceberg reader fills the column with is not.
    assert iceberg.written and [d.split()[0] for d in iceberg.parity] == ["partition"] * 3
