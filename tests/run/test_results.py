"""`mesh run`'s one result type: written to the summary file and read back unchanged; the format CI reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mesh_assets.run.results import ProductResult, RunStatus, SummaryError, read_summary, write_summary

RESULTS = [
    ProductResult(
        "sales.sales", RunStatus.OK, {"v1": 120, "v2": None}, checks_passed=7, warnings=1, seconds=3.25
    ),
    ProductResult(
        "customers.customer_master",
        RunStatus.FAILED,
        {"v1": 40},
        checks_passed=2,
        blocking_failed=1,
        seconds=1.5,
        error="blocking checks failed",
    ),
    ProductResult("diagnostics.instrument_runs", RunStatus.SKIPPED, error="upstream failed: customers.x"),
    ProductResult("commercial_analytics.customer_360", RunStatus.INTERRUPTED, error="not built"),
]


def test_a_summary_written_is_read_back_as_the_same_results(tmp_path: Path) -> None:
    path = tmp_path / "out" / "build.json"
    write_summary(path, RESULTS)
    assert read_summary(path) == RESULTS


def test_the_summary_file_keeps_the_format_mesh_ci_and_scripts_read(tmp_path: Path) -> None:
    path = tmp_path / "build.json"
    write_summary(path, RESULTS[:2])
    assert json.loads(path.read_text())[1] == {
        "product": "customers.customer_master",
        "status": "failed",
        "rows": {"v1": 40},
        "checks_passed": 2,
        "warnings": 0,
        "blocking_failed": 1,
        "seconds": 1.5,
        "error": "blocking checks failed",
    }


def test_a_summary_written_before_the_result_type_existed_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "build.json"
    path.write_text(
        '[{"product": "sales.orders", "status": "ok", "rows": {"v1": 2000}, "checks_passed": 5, '
        '"warnings": 0, "blocking_failed": 0, "seconds": 2.13, "error": ""}]'
    )
    (result,) = read_summary(path)
    assert result == ProductResult("sales.orders", RunStatus.OK, {"v1": 2000}, 5, 0, 0, 2.13, "")
    assert result.status == "ok" and result.domain == "sales" and result.name == "orders"


def test_a_result_fails_a_gate_when_not_built_or_a_blocking_check_failed() -> None:
    ok, failed, skipped, _ = RESULTS
    assert ok.failure is None
    assert failed.failure == "failed: blocking checks failed"
    assert skipped.failure == "skipped: upstream failed: customers.x"
    assert ProductResult("a.b", RunStatus.OK, blocking_failed=2).failure == "2 blocking check(s) failed"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("not json", "not JSON"),
        ('{"product": "a.b"}', "expected a list"),
        ('[{"status": "ok"}]', "record 0 has no field 'product'"),
        ('[{"product": "a.b", "status": "done"}]', "record 0 is not a product result"),
    ],
)
def test_a_file_that_is_not_a_summary_is_refused_naming_the_file_and_record(
    tmp_path: Path, text: str, says: str
) -> None:
    path = tmp_path / "build.json"
    path.write_text(text)
    with pytest.raises(SummaryError, match=says) as raised:
        read_summary(path)
    assert str(path) in str(raised.value) and "mesh run --summary-json" in str(raised.value)
