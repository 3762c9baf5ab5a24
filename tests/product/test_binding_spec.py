"""Bindings in the spec: what a port may declare beyond its warehouse table, and what is refused."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from binding_specs import MINIMAL_SPEC
from pydantic import ValidationError

from mesh_assets.product.bindings import BindingPii, IcebergBinding, ParquetBinding, ShareBinding
from mesh_assets.product.spec import DataProductSpec
from mesh_assets.product.spec_issues import issue_from_pydantic


def with_bindings(*bindings: dict) -> dict:
    data = copy.deepcopy(MINIMAL_SPEC)
    data["output_ports"][0]["bindings"] = list(bindings)
    return data


def issues(data: dict) -> list[tuple[str, str, str]]:
    with pytest.raises(ValidationError) as raised:
        DataProductSpec.model_validate(data)
    found = [issue_from_pydantic(Path("dataproduct.yaml"), e) for e in raised.value.errors()]
    return [(i.field, i.message, i.fix) for i in found]


def test_a_port_without_bindings_is_served_as_its_warehouse_table_only() -> None:
    assert DataProductSpec.model_validate(MINIMAL_SPEC).output_ports[0].bindings == []


def test_iceberg_parquet_and_share_bindings_parse_with_their_defaults() -> None:
    spec = DataProductSpec.model_validate(
        with_bindings(
            {"kind": "iceberg"},
            {"kind": "parquet", "partition_by": ["widget_id"], "keep_snapshots": 3},
            {"kind": "share", "accounts": ["ACME.PARTNER1"]},
        )
    )
    iceberg, parquet, share = spec.output_ports[0].bindings
    assert isinstance(iceberg, IcebergBinding) and iceberg.keep_snapshots == 10
    assert iceberg.pii == BindingPii.PROTECTED  # PII leaves the warehouse protected unless declared clear
    assert isinstance(parquet, ParquetBinding) and parquet.partition_by == ["widget_id"]
    assert isinstance(share, ShareBinding) and share.accounts == ["ACME.PARTNER1"]


def test_an_unknown_binding_kind_is_refused_naming_the_field() -> None:
    found = issues(with_bindings({"kind": "csv"}))
    assert found and found[0][0] == "output_ports[0].bindings[0]"
    assert "iceberg" in found[0][1] and "parquet" in found[0][1]


def test_a_typo_in_a_binding_names_the_field_without_the_union_tag_and_suggests_the_key() -> None:
    field, _, fix = issues(with_bindings({"kind": "parquet", "partition_bi": ["widget_id"]}))[0]
    assert field == "output_ports[0].bindings[0].partition_bi"
    assert "partition_by" in fix


def test_partitioning_by_a_column_the_port_does_not_have_is_refused_with_the_columns_to_use() -> None:
    field, message, _ = issues(with_bindings({"kind": "parquet", "partition_by": ["colour"]}))[0]
    assert field == "output_ports[0]"
    assert "bindings[0].partition_by names ['colour']" in message and "widget_id, price" in message


def test_a_binding_kind_declared_twice_is_refused() -> None:
    _, message, _ = issues(with_bindings({"kind": "iceberg"}, {"kind": "iceberg"}))[0]
    assert "['iceberg'] repeat" in message
