"""The catalog's freshness status of a deadline cron that Dagster's cron arithmetic cannot evaluate.

The spec model does not check a cron or its timezone, so a bad one reaches the catalog: it shows
`unknown` and logs why (naming the product, the cron and the fix). Anything else is a bug, and fails.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mesh_assets.catalog import runtime
from mesh_assets.catalog.runtime import freshness_status
from mesh_assets.product.registry import load_registry
from mesh_assets.product.spec import DataProductSpec, FreshnessSlo

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2027, 1, 15, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def orders() -> DataProductSpec:
    return load_registry(REPO).products["sales.orders"].spec


def with_deadline(spec: DataProductSpec, cron: str, timezone: str = "UTC") -> DataProductSpec:
    freshness = FreshnessSlo(cron=cron, cron_timezone=timezone, lower_bound="24h")
    return spec.model_copy(update={"slos": spec.slos.model_copy(update={"freshness": freshness})})


@pytest.mark.parametrize(
    ("cron", "timezone", "said"),
    [
        ("61 6 * * *", "UTC", "'61 6 * * *' (UTC)"),
        ("every morning", "UTC", "'every morning' (UTC)"),
        ("0 6 * * *", "Mars/Olympus_Mons", "'0 6 * * *' (Mars/Olympus_Mons)"),
    ],
)
def test_a_deadline_cron_that_cannot_be_evaluated_is_unknown_and_says_why(
    orders: DataProductSpec, cron: str, timezone: str, said: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        status = freshness_status(with_deadline(orders, cron, timezone), NOW - timedelta(hours=1), NOW)

    assert status.status == "unknown"
    assert status.measured == "last publish 1h 0m ago"
    [record] = [r for r in caplog.records if "freshness of" in r.getMessage()]
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert "freshness of sales.orders is unknown" in message
    assert f"deadline cron {said} cannot be evaluated" in message
    assert "fix slos.freshness in its dataproduct.yaml" in message


def test_a_deadline_cron_that_evaluates_logs_nothing(
    orders: DataProductSpec, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        status = freshness_status(with_deadline(orders, "0 6 * * *"), NOW - timedelta(hours=1), NOW)

    assert status.status == "met"
    assert not [r for r in caplog.records if "freshness of" in r.getMessage()]


def test_an_unexpected_error_is_not_turned_into_unknown(
    orders: DataProductSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> str:
        raise RuntimeError("a bug in the freshness arithmetic")

    monkeypatch.setattr(runtime, "freshness_state", broken)
    with pytest.raises(RuntimeError, match="a bug in the freshness arithmetic"):
        freshness_status(with_deadline(orders, "0 6 * * *"), NOW - timedelta(hours=1), NOW)
