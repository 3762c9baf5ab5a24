"""The alert sensors' cursors: what older code stored still loads, and what cannot be read starts afresh."""

from __future__ import annotations

import logging

import pytest

from mesh_assets.observe.anomaly_alerts import AnomalyCursor
from mesh_assets.observe.cursor import CursorError
from mesh_assets.observe.sensors import MonitorCursor
from mesh_assets.observe.step_alerts import StepCursor

LOG = logging.getLogger("test_cursor")

# Exactly as the sensors stored them before the cursors shared a base (same keys, order and spacing).
STORED_MONITOR = (
    '{"v":1,"t":"abc","h":{"mat":41,"obs":7},"open":{"sales/orders/v1":{"freshness":[1.0,2.0]}},"out":[]}'
)
STORED_STEP = '{"out":[{"id":"n1"}],"sent":{"sales/orders/v1|finance":"notice"},"v":1}'
STORED_ANOMALY = '{"open":{"sales/orders/v1|rows":"run-1"},"out":[],"v":1}'


def test_a_monitor_cursor_stored_by_older_code_loads_and_is_written_back_byte_for_byte() -> None:
    cursor = MonitorCursor.load(STORED_MONITOR, LOG, "SLO monitor")
    assert cursor.token == "abc"
    assert cursor.hwm == {"mat": 41, "obs": 7}
    assert cursor.open == {"sales/orders/v1": {"freshness": [1.0, 2.0]}}
    assert cursor.dumps() == STORED_MONITOR


def test_a_step_alert_cursor_stored_by_older_code_loads_and_is_written_back_byte_for_byte() -> None:
    cursor = StepCursor.load(STORED_STEP, LOG, "sunset alert")
    assert cursor.sent == {"sales/orders/v1|finance": "notice"}
    assert cursor.outbox == [{"id": "n1"}]
    assert cursor.dumps() == STORED_STEP


def test_an_anomaly_cursor_stored_by_older_code_loads_and_is_written_back_byte_for_byte() -> None:
    cursor = AnomalyCursor.load(STORED_ANOMALY, LOG, "anomaly alert")
    assert cursor.open == {"sales/orders/v1|rows": "run-1"}
    assert cursor.dumps() == STORED_ANOMALY


def test_no_cursor_yet_is_a_fresh_one_and_nothing_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger=LOG.name):
        assert StepCursor.load(None, LOG, "sunset alert") == StepCursor()
        assert MonitorCursor.load("", LOG, "SLO monitor") == MonitorCursor()
    assert caplog.records == []


def test_a_cursor_of_another_format_version_starts_afresh_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG, logger=LOG.name):
        cursor = AnomalyCursor.load('{"open":{"a|b":"r"},"out":[],"v":2}', LOG, "anomaly alert")
    assert cursor == AnomalyCursor()
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "the anomaly alert cursor has format version 2; this code reads version 1" in record.message
    assert "starting afresh (alerts may repeat)" in record.message


@pytest.mark.parametrize(
    ("stored", "why"),
    [
        ('{"v":1,"t":"abc","h":{"mat":', "is not JSON"),
        ("[1, 2]", "is a JSON list, not an object"),
        ('{"v":1,"h":{"mat":"forty-one"}}', "has a field this code cannot read (ValueError"),
        ('{"v":1,"h":[1]}', "has a field this code cannot read (AttributeError"),
    ],
)
def test_a_garbled_cursor_starts_afresh_and_the_log_says_why(
    stored: str, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger=LOG.name):
        cursor = MonitorCursor.load(stored, LOG, "SLO monitor")
    assert cursor == MonitorCursor()
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert f"the SLO monitor cursor {why}" in record.message
    assert "starting afresh (open breaches may alert again)" in record.message


def test_parse_raises_for_what_load_would_log() -> None:
    with pytest.raises(CursorError, match="format version None"):
        StepCursor.parse('{"sent":{}}')
