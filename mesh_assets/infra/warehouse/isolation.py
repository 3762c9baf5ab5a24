"""What product code may read at run time, as the engine binds it: the engine's half of "ports only".

Product transformations run in the warehouse's isolated session (`Warehouse.isolated_session`: on DuckDB
no file, URL, other database or extension can be reached, and the settings are locked). DuckDB has no
grants, so every table of the file stays visible to a session; what SQL reads is therefore checked on the
engine's own binding of it before it runs: DuckDB resolves views, `query_table('…')` and `query('…')` and
names every table its plan scans. A table outside what the product declared (its inputs' ports, its
sources, its own internals and ports) fails the step before anything is written, so nothing is published
and the port keeps its last good data. `mesh validate` (`govern/code_access.py`) refuses the same reads
earlier, from the code; this is what holds when the lint is bypassed.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import dagster as dg

from mesh_assets.infra.warehouse.base import NotAQueryError, WarehouseSession
from mesh_assets.product.addressing import Relation

FIX = (
    "declare an input port (`input_ports: - product: <domain>.<product>`) or a source, and read it with "
    "{{ input() }} / {{ source() }}"
)


def undeclared_reads(session: WarehouseSession, sql: str, allowed: Iterable[Relation]) -> list[str] | None:
    """`schema.table` of each table the engine binds `sql` to that is not in `allowed`; None if the
    backend cannot tell. Raises `NotAQueryError` when `sql` is not exactly one query."""
    read = session.relations_read(sql)
    if read is None:
        return None
    permitted = {(r.schema, r.name) for r in allowed}
    return sorted(f"{schema}.{name}" for schema, name in read if (schema, name) not in permitted)


def refuse_undeclared_reads(
    session: WarehouseSession, sql: str, allowed: Iterable[Relation], product: str, file: Path | None
) -> None:
    """Fail the step, writing nothing, if `sql` is not one query or reads what `product` did not declare."""
    where = f"{file}" if file is not None else product
    try:
        extra = undeclared_reads(session, sql, allowed)
    except NotAQueryError as exc:
        raise dg.Failure(
            description=f"{where}: refused at run time: {exc}. A model is one SELECT; the platform writes "
            "its result. Nothing was written or published.",
            allow_retries=False,
        ) from exc
    if extra:
        raise dg.Failure(
            description=f"{where}: refused at run time: {product} reads {', '.join(extra)}, which it does "
            f"not declare (as the warehouse binds its SQL). Fix: {FIX}. Nothing was written or published.",
            metadata={"undeclared_reads": extra},
            allow_retries=False,
        )
