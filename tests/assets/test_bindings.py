"""Bindings written from a batch: Parquet snapshots switched atomically, Iceberg commits, parity, shares."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest
from binding_specs import MINIMAL_SPEC

from mesh_assets.assets import binding_files, binding_iceberg
from mesh_assets.assets.binding_share import share_sql
from mesh_assets.assets.bindings import fingerprint, new_publish_id, parity
from mesh_assets.product.bindings import ShareBinding
from mesh_assets.product.spec import DataProductSpec


def batch(rows: int, offset: int = 0) -> pa.Table:
    return pa.table(
        {
            "widget_id": [f"w{i + offset}" for i in range(rows)],
            "line": [("a", "b", "c")[i % 3] for i in range(rows)],
            "price": pa.array([Decimal(i) / 4 for i in range(rows)], pa.decimal128(12, 2)),
            "day": [dt.date(2026, 1, 1 + i % 28) for i in range(rows)],
        }
    )


def test_publish_ids_sort_by_time() -> None:
    earlier = new_publish_id("zzzzzzzz-run", dt.datetime(2026, 1, 1, 9, 0, 0, 1, tzinfo=dt.UTC))
    later = new_publish_id("aaaaaaaa-run", dt.datetime(2026, 1, 1, 9, 0, 0, 2, tzinfo=dt.UTC))
    assert earlier < later and earlier.endswith("-zzzzzzzz")


def test_the_checksum_ignores_row_order_and_sees_one_changed_value() -> None:
    table = batch(50)
    assert fingerprint(table) == fingerprint(table.take(list(reversed(range(50)))))
    changed = table.set_column(2, "price", pa.array([Decimal(1)] * 50, pa.decimal128(12, 2)))
    assert [d.split()[0] for d in parity(fingerprint(table), fingerprint(changed))] == ["checksum"]
    assert parity(fingerprint(table), fingerprint(table.slice(0, 49)))[0].startswith("rows 49")


def test_parquet_latest_moves_only_when_a_snapshot_is_whole_and_keeps_the_last_n(tmp_path: Path) -> None:
    folder = tmp_path / "parquet"
    for n, publish in enumerate(["p1", "p2", "p3"], start=1):
        snapshot = binding_files.write_snapshot(folder, publish, batch(10 * n), ["line"], {"checksum": "x"})
        # Written aside: until the switch, readers still see the previous publish.
        previous = binding_files.latest(folder)
        assert previous is None or previous.publish_id != publish
        binding_files.switch_latest(folder, snapshot)
        binding_files.expire(folder, keep=2)
    assert binding_files.latest(folder).publish_id == "p3"
    assert binding_files.snapshots(folder) == ["p2", "p3"]
    assert binding_files.read(folder).num_rows == 30
    # Time travel by publish, with the port's column order and types (the partition column included).
    older = binding_files.read(folder, publish_id="p2")
    assert older.num_rows == 20 and older.schema == batch(1).schema
    assert fingerprint(older) == fingerprint(batch(20))


def test_a_parquet_write_killed_before_its_switch_leaves_latest_and_is_cleaned_next_time(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "parquet"
    binding_files.switch_latest(folder, binding_files.write_snapshot(folder, "p1", batch(5), [], {}))
    leftover = folder / "snapshots" / ".tmp-p2"
    leftover.mkdir()
    (leftover / "part-0.parquet").write_bytes(b"half a file")
    assert binding_files.latest(folder).publish_id == "p1"
    assert binding_files.snapshots(folder) == ["p1"]  # a hidden leftover is not a snapshot
    binding_files.expire(folder, keep=5)
    assert not leftover.exists()


def test_iceberg_one_commit_per_publish_time_travel_by_publish_and_expiry(tmp_path: Path) -> None:
    where = binding_iceberg.place(tmp_path, "dev", False, "sales", "widgets", 1, None)
    assert where.identifier == "dev__sales.widgets_v1"  # a branch never writes prod's namespace
    for n, publish in enumerate(["p1", "p2", "p3"], start=1):
        table = batch(10 * n)
        facts = {"rows": table.num_rows, "checksum": fingerprint(table).checksum}
        binding_iceberg.write(where, table, publish, facts)
        binding_iceberg.expire(where, keep=2)
    assert [s.publish_id for s in binding_iceberg.publishes(where)] == ["p2", "p3"]
    # Expired publishes' data files are deleted, not kept as one full copy per publish forever.
    data = list((tmp_path / "bindings" / "iceberg" / "warehouse").rglob("data/*.parquet"))
    assert len(data) == 2
    assert binding_iceberg.read(where).num_rows == 30
    assert (
        fingerprint(binding_iceberg.read(where, publish_id="p2")).checksum == fingerprint(batch(20)).checksum
    )
    with pytest.raises(LookupError, match="p1"):
        binding_iceberg.read(where, publish_id="p1")
    assert binding_iceberg.place(tmp_path, "prod", True, "sales", "widgets", 1, None).namespace == "sales"


def test_a_share_is_planned_as_idempotent_sql_on_the_published_table() -> None:
    spec = DataProductSpec.model_validate(MINIMAL_SPEC)
    port = spec.output_ports[0]
    plan = share_sql(spec, port, ShareBinding(kind="share", accounts=["ACME.PARTNER1"]), "MESH")
    assert plan == [
        "CREATE SHARE IF NOT EXISTS SALES_WIDGETS_V1 COMMENT = 'mesh://sales/widgets/v1'",
        'GRANT USAGE ON DATABASE "MESH" TO SHARE SALES_WIDGETS_V1',
        'GRANT USAGE ON SCHEMA "MESH"."sales" TO SHARE SALES_WIDGETS_V1',
        'GRANT SELECT ON TABLE "MESH"."sales"."widgets_v1" TO SHARE SALES_WIDGETS_V1',
        "ALTER SHARE SALES_WIDGETS_V1 ADD ACCOUNTS = ACME.PARTNER1",
    ]


def test_a_share_of_a_port_with_pii_shares_its_masked_view_unless_declared_clear() -> None:
    data = {**MINIMAL_SPEC, "output_ports": [dict(MINIMAL_SPEC["output_ports"][0])]}
    data["output_ports"][0]["columns"] = [
        *MINIMAL_SPEC["output_ports"][0]["columns"],
        {"name": "email", "type": "string", "pii": True, "description": "Buyer email."},
    ]
    spec = DataProductSpec.model_validate(data)
    port = spec.output_ports[0]
    masked = share_sql(spec, port, ShareBinding(kind="share", listing=True), "MESH")
    assert 'GRANT SELECT ON VIEW "MESH"."sales"."widgets_v1__protected"' in masked[3]
    assert masked[4].startswith("CREATE LISTING IF NOT EXISTS SALES_WIDGETS_V1_LISTING FOR SHARE")
    clear = share_sql(spec, port, ShareBinding(kind="share", pii="clear"), "MESH")
    assert 'ON TABLE "MESH"."sales"."widgets_v1"' in clear[3] and len(clear) == 4


def test_loading_a_location_whose_port_has_bindings_imports_neither_pyiceberg_nor_pyarrow(
    repo_root: Path, tmp_path: Path
) -> None:
    import os
    import subprocess
    import sys

    probe = (
        "import sys; from mesh_assets.assets.location import build_domain; build_domain('sales'); "
        "print(sorted(m for m in ('pyiceberg', 'pyarrow') if m in sys.modules))"
    )
    env = {**os.environ, "MESH_DATA_DIR": str(tmp_path / "data"), "MESH_ROOT": str(repo_root)}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_a_failed_binding_keeps_its_last_good_snapshot_says_so_and_is_written_at_the_next_publish(
    repo_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mesh_assets.assets import bindings
    from mesh_assets.infra import environment
    from mesh_assets.infra.warehouse.duckdb import DuckDBWarehouse

    data = {**MINIMAL_SPEC, "output_ports": [dict(MINIMAL_SPEC["output_ports"][0])]}
    data["output_ports"][0]["bindings"] = [{"kind": "iceberg"}, {"kind": "parquet"}]
    spec = DataProductSpec.model_validate(data)
    port = spec.output_ports[0]
    env = environment.resolve(environ={"MESH_ROOT": str(repo_root), "MESH_DATA_DIR": str(tmp_path / "data")})
    warehouse = DuckDBWarehouse(path=str(tmp_path / "mesh.duckdb"))
    key = dg.AssetKey(["sales", "widgets", "v1"])

    def publish(rows: int, publish_id: str) -> list[bindings.BindingOutcome]:
        # What write-audit-publish leaves before the bindings: the published table (here, by hand).
        with warehouse.isolated_session() as session:
            session.execute("CREATE SCHEMA IF NOT EXISTS sales")
            session.execute(
                "CREATE OR REPLACE TABLE sales.widgets_v1 AS SELECT 'w' || i AS widget_id, "
                f"(i / 4)::DECIMAL(12,2) AS price FROM range({rows}) t(i)"
            )
            return bindings.write_bindings(session, spec, port, env, publish_id)

    publish(10, "p1")

    def broken(*args: object, **kwargs: object) -> int:
        raise OSError("catalog unreachable")

    monkeypatch.setattr(binding_iceberg, "write", broken)
    outcomes = publish(20, "p2")
    results = {r.check_name: r for r in bindings.check_results(outcomes, key)}
    assert not results["iceberg_binding_parity"].passed
    assert "iceberg binding failed to write: OSError: catalog unreachable" in str(
        results["iceberg_binding_parity"].description
    )
    assert results["parquet_binding_parity"].passed  # one binding's failure is not the others'
    where = bindings.places(env, spec, port)
    assert bindings.read_binding(where, "iceberg").num_rows == 10  # its last good snapshot
    assert bindings.read_binding(where, "parquet").num_rows == 20
    assert bindings.metadata(outcomes)[bindings.BINDINGS_KEY].data["iceberg"]["status"] == "failed"

    monkeypatch.undo()
    outcomes = publish(30, "p3")
    assert all(r.passed for r in bindings.check_results(outcomes, key))
    assert bindings.read_binding(where, "iceberg").num_rows == 30


def test_a_branch_environment_writes_its_own_bindings_and_only_prod_writes_where_consumers_read(
    repo_root: Path, tmp_path: Path
) -> None:
    from mesh_assets.assets.bindings import places
    from mesh_assets.infra import environment

    spec = DataProductSpec.model_validate({**MINIMAL_SPEC})
    port = spec.output_ports[0]
    base = {"MESH_ROOT": str(repo_root), "MESH_DATA_DIR": str(tmp_path / "data")}
    prod = places(environment.resolve(environ=base | {"MESH_ENV": "prod"}), spec, port)
    branch = places(environment.resolve(environ=base | {"MESH_ENV": "feature_x"}), spec, port)
    assert (
        prod.parquet
        == tmp_path / "data" / "envs" / "prod" / "bindings" / "sales" / "widgets" / "v1" / "parquet"
    )
    assert (
        branch.parquet
        == tmp_path / "data" / "envs" / "feature_x" / "bindings" / "sales" / "widgets" / "v1" / "parquet"
    )
    assert (prod.iceberg.identifier, branch.iceberg.identifier) == (
        "sales.widgets_v1",
        "feature_x__sales.widgets_v1",
    )
    assert prod.iceberg.properties["uri"] != branch.iceberg.properties["uri"]
    # A shared REST catalog, configured the pyiceberg way: still a namespace of the branch's own.
    shared = places(
        environment.resolve(environ=base | {"MESH_ENV": "feature_x", "MESH_ICEBERG_CATALOG": "lake"}),
        spec,
        port,
    )
    assert (shared.iceberg.catalog_name, shared.iceberg.properties) == ("lake", {})
    assert shared.iceberg.namespace == "feature_x__sales"


@pytest.mark.parametrize(("pii", "emails"), [("protected", {"***"}), ("clear", {"a@x.io", "b@x.io"})])
def test_a_binding_carries_pii_masked_as_readers_see_it_unless_declared_clear(
    repo_root: Path, tmp_path: Path, pii: str, emails: set[str]
) -> None:
    from mesh_assets.assets import bindings
    from mesh_assets.infra import environment
    from mesh_assets.infra.warehouse.duckdb import DuckDBWarehouse

    data = {**MINIMAL_SPEC, "output_ports": [dict(MINIMAL_SPEC["output_ports"][0])]}
    data["output_ports"][0]["columns"] = [
        *MINIMAL_SPEC["output_ports"][0]["columns"],
        {"name": "email", "type": "string", "pii": True, "description": "Buyer email."},
    ]
    data["output_ports"][0]["bindings"] = [{"kind": "parquet", "pii": pii}]
    spec = DataProductSpec.model_validate(data)
    port = spec.output_ports[0]
    env = environment.resolve(environ={"MESH_ROOT": str(repo_root), "MESH_DATA_DIR": str(tmp_path / "data")})
    with DuckDBWarehouse(path=str(tmp_path / "mesh.duckdb")).isolated_session() as session:
        session.execute("CREATE SCHEMA sales")
        session.execute(
            "CREATE TABLE sales.widgets_v1 AS SELECT * FROM (VALUES ('w1', 1.5::DECIMAL(12,2), 'a@x.io'), "
            "('w2', 2.5::DECIMAL(12,2), 'b@x.io')) t(widget_id, price, email)"
        )
        [outcome] = bindings.write_bindings(session, spec, port, env, "p1")
    assert outcome.written and not outcome.parity  # parity: with the table as the binding serves it
    written = bindings.read_binding(bindings.places(env, spec, port), "parquet")
    assert set(written.column("email").to_pylist()) == emails


def test_on_snowflake_the_bindings_are_written_from_the_published_table_and_the_share_only_planned(
    repo_root: Path, tmp_path: Path
) -> None:
    import fakesnow

    from mesh_assets.assets import bindings
    from mesh_assets.infra import environment
    from mesh_assets.infra.warehouse.snowflake import SnowflakeWarehouse

    data = {**MINIMAL_SPEC, "output_ports": [dict(MINIMAL_SPEC["output_ports"][0])]}
    data["output_ports"][0]["bindings"] = [{"kind": "parquet"}, {"kind": "share", "accounts": ["A.B"]}]
    spec = DataProductSpec.model_validate(data)
    port = spec.output_ports[0]
    base = {"MESH_ROOT": str(repo_root), "MESH_DATA_DIR": str(tmp_path / "data"), "MESH_TARGET": "snowflake"}
    env = environment.resolve(environ=base | {"MESH_ENV": "feature_x"})
    warehouse = SnowflakeWarehouse(account="acct", user="u", password="p", database="MESH_FEATURE_X")
    with fakesnow.patch(), warehouse.session() as session:
        session.execute('CREATE SCHEMA IF NOT EXISTS "sales"')
        session.execute(
            "CREATE TABLE \"sales\".\"widgets_v1\" AS SELECT * FROM (VALUES ('w1', 1.5), ('w2', 2.5)) "
            "t(widget_id, price)"
        )
        parquet, share = bindings.write_bindings(session, spec, port, env, "p1")
    assert parquet.written and not parquet.parity, parquet.error
    assert bindings.read_binding(bindings.places(env, spec, port), "parquet").num_rows == 2
    # A branch never grants other accounts anything: the share is planned, not applied.
    assert (share.written, share.facts["applied"]) == (False, False)
    assert share.facts["plan"][-1] == "ALTER SHARE SALES_WIDGETS_V1 ADD ACCOUNTS = A.B"
