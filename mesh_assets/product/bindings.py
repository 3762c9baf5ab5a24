"""Bindings: the formats an output port is served in besides its warehouse table.

The warehouse table is always the port's first binding and its source of truth. A port may declare more
under `bindings:`: an `iceberg` table, `parquet` files, or (on Snowflake) a `share`. Every binding of a
publish holds the same audited rows as the table (checked by a parity check per binding), written after
the audit passed, in the same publish step (see `mesh_assets/assets/bindings.py` and docs/bindings.md).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from mesh_assets.product.spec_base import Identifier, SpecModel


class BindingPii(StrEnum):
    """How a binding carries the port's PII columns."""

    PROTECTED = "protected"
    CLEAR = "clear"


class BindingBase(SpecModel):
    """What every binding shares: how many publishes it keeps, and how it carries PII."""

    keep_snapshots: int = Field(
        default=10,
        ge=1,
        le=1000,
        description="How many publishes the binding keeps readable (time travel); older ones are expired.",
    )
    pii: BindingPii = Field(
        default=BindingPii.PROTECTED,
        description="`protected` (default): PII columns are written as a reader without the PII privilege "
        "sees them (the product's `pii_handling`); `clear`: written as is, for consumers entitled to it.",
    )


class IcebergBinding(BindingBase):
    """An Iceberg table per port version, one commit per publish, readable by any Iceberg engine."""

    kind: Literal["iceberg"] = Field(description="An Iceberg table (through pyiceberg).")
    share_partitioned_files: bool = Field(
        default=True,
        description="Beside a partitioned Parquet binding of the same rows, register its Hive files (one "
        "Parquet encode serves both) with the partition values in the manifests, not in the files, as "
        "Iceberg's own migration of a Hive table does; every Iceberg reader must read them (spec: Column "
        "Projection). `false`: the table writes its own file holding every column, as the spec asks new "
        "writers to. An unpartitioned Parquet binding's file holds every column and is shared either way.",
    )


class ParquetBinding(BindingBase):
    """A folder of Parquet files per publish, with a stable `latest` entry point."""

    kind: Literal["parquet"] = Field(description="Parquet files: `snapshots/<publish>/` and `latest`.")
    partition_by: list[Identifier] = Field(
        default_factory=list,
        description="Columns the files are partitioned by (Hive layout `col=value/`), in order.",
        examples=[["sales_month"]],
    )


class ShareBinding(BindingBase):
    """A Snowflake secure share (or a listing) of the port's table; planned as SQL, applied in prod only."""

    kind: Literal["share"] = Field(description="A Snowflake secure share of the published table.")
    name: Identifier | None = Field(
        default=None, description="The share's name; defaults to `<domain>_<product>_v<major>`."
    )
    accounts: list[str] = Field(
        default_factory=list,
        description="Consumer accounts (`<org>.<account>`) the share is granted to.",
        examples=[["ACME.PARTNER1"]],
    )
    listing: bool = Field(
        default=False, description="Publish the share as a private listing instead of adding accounts."
    )


Binding = Annotated[IcebergBinding | ParquetBinding | ShareBinding, Field(discriminator="kind")]
"""One binding of an output port, told apart by `kind`."""

FILE_KINDS = ("iceberg", "parquet")
"""Bindings the platform writes itself (files and an Iceberg catalog), as opposed to a share it plans."""


def binding_problems(
    bindings: list[IcebergBinding | ParquetBinding | ShareBinding], columns: list[str]
) -> list[str]:
    """What is wrong with a port's `bindings`, each with its fix; empty when nothing is."""
    problems = []
    kinds = [b.kind for b in bindings]
    twice = sorted({k for k in kinds if kinds.count(k) > 1})
    if twice:
        problems.append(f"bindings of kind {twice} repeat; declare each kind once")
    for index, binding in enumerate(bindings):
        if isinstance(binding, ParquetBinding):
            unknown = [c for c in binding.partition_by if c not in columns]
            if unknown:
                problems.append(
                    f"bindings[{index}].partition_by names {unknown}, not in 'columns'; "
                    f"use some of {', '.join(columns)}"
                )
            if binding.partition_by and len(binding.partition_by) == len(columns):
                problems.append(f"bindings[{index}].partition_by names every column; keep at least one out")
    return problems
