"""The audit's one scan, shared with the monitors' profile: when what rides on it fails, the rules still
judge the batch, on a scan of their own, and the operator is told why the batch was scanned twice."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mesh_assets.infra.warehouse.duckdb import DuckDBSession, DuckDBWarehouse
from mesh_assets.product.addressing import Relation
from mesh_assets.product.spec import OutputPort
from mesh_assets.quality.checks import audit

BATCH = Relation("lab_internal", "samples_v1__candidate")
PORT = OutputPort.model_validate(
    {
        "version": "1.0.0",
        "primary_key": ["sample_id"],
        "columns": [
            {"name": "sample_id", "type": "integer", "nullable": False, "description": "Sample number."},
            {"name": "result", "type": "double", "description": "Measured value."},
        ],
        "quality": {"rules": [{"type": "range", "column": "result", "min": 0, "max": 100}]},
    }
)


@pytest.fixture
def session(tmp_path: Path) -> Iterator[DuckDBSession]:
    with DuckDBWarehouse(path=str(tmp_path / "audit.duckdb")).session() as session:
        session.ensure_schema(BATCH.schema)
        session.execute(f"CREATE TABLE {BATCH.sql} (sample_id INTEGER, result DOUBLE)")
        session.execute(f"INSERT INTO {BATCH.sql} VALUES (1, 5.0), (2, -3.0), (2, 7.0)")
        yield session


def broken_profile(expressions: dict[str, str]) -> dict[str, Any]:
    raise RuntimeError("profile query: column day_bucket not found")


def test_a_failed_shared_scan_is_logged_with_its_exception_and_the_rules_still_judge_the_batch(
    session: DuckDBSession, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        results = {o.rule: o for o in audit(session, BATCH, PORT, scan=broken_profile)}

    # The rules' answers come from their own scan: the same as with no shared scan at all.
    alone = {o.rule: o for o in audit(session, BATCH, PORT)}
    assert {rule: o.passed for rule, o in results.items()} == {rule: o.passed for rule, o in alone.items()}
    assert not results["range__result"].passed and results["range__result"].failing_count == 1
    [record] = [r for r in caplog.records if "shared scan" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert BATCH.sql in record.getMessage()
    assert "RuntimeError: profile query: column day_bucket not found" in record.getMessage()
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)


def test_a_shared_scan_that_works_logs_nothing(
    session: DuckDBSession, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[dict[str, str]] = []

    def profile(expressions: dict[str, str]) -> dict[str, Any]:
        seen.append(expressions)
        select = ", ".join(f'{sql} AS "{alias}"' for alias, sql in expressions.items())
        return dict(zip(expressions, session.query(f"SELECT {select} FROM {BATCH.sql}")[0], strict=True))

    with caplog.at_level(logging.WARNING):
        audit(session, BATCH, PORT, scan=profile)

    assert seen, "the audit did not use the shared scan"
    assert not [r for r in caplog.records if "shared scan" in r.getMessage()]
