"""The `monitors:` section of an output port: defaults need no config, and bad config is refused naming
the file, the field and the fix (through the same spec-issue machinery as every other field)."""

from __future__ import annotations

from pathlib import Path

import pytest
from spec_edits import edit_spec

from mesh_assets.product.errors import SpecIssue
from mesh_assets.product.registry import load_registry
from mesh_assets.product.spec import Direction, Monitors, Seasonality, Severity

ORDERS = "sales.orders"


def issue_at(root: Path, file: Path, field: str) -> SpecIssue:
    issues = [i for i in load_registry(root).errors if i.file.resolve() == file.resolve()]
    found = [i for i in issues if i.field == field]
    assert len(found) == 1, [(i.field, i.message, i.fix) for i in issues]
    return found[0]


def set_monitors(**config: object):
    return lambda data: data["output_ports"][0].update(monitors=config)


def test_monitors_are_on_by_default_warn_and_learn_weekly_seasonality_when_present() -> None:
    config = Monitors()
    assert config.enabled and config.severity == Severity.WARN
    assert config.seasonality == Seasonality.AUTO and config.direction == Direction.BOTH
    assert config.min_training <= config.window


def test_the_shipped_specs_validate_with_a_monitors_section(mesh_copy: Path) -> None:
    edit_spec(mesh_copy, ORDERS, set_monitors(columns=["status"], severity="error", sensitivity=3))
    port = load_registry(mesh_copy).products[ORDERS].spec.output_ports[0]
    assert port.monitors.columns == ["status"] and port.monitors.severity == Severity.ERROR


def test_a_typo_in_monitors_is_refused_with_did_you_mean(mesh_copy: Path) -> None:
    path = edit_spec(mesh_copy, ORDERS, set_monitors(sensitivty=3))
    issue = issue_at(mesh_copy, path, "output_ports[0].monitors.sensitivty")
    assert "did you mean 'sensitivity'?" in issue.fix


def test_a_bad_monitor_value_names_the_field_and_the_allowed_values(mesh_copy: Path) -> None:
    path = edit_spec(mesh_copy, ORDERS, set_monitors(seasonality="monthly"))
    issue = issue_at(mesh_copy, path, "output_ports[0].monitors.seasonality")
    assert "'auto', 'weekly' or 'none'" in issue.message
    assert "allowed values" in issue.fix

    path = edit_spec(mesh_copy, ORDERS, set_monitors(sensitivity=-1))
    assert "greater than 0" in issue_at(mesh_copy, path, "output_ports[0].monitors.sensitivity").message


@pytest.mark.parametrize(
    ("config", "said"),
    [
        ({"columns": ["no_such_column"]}, "monitors.columns names ['no_such_column'], not in 'columns'"),
        ({"min_training": 30, "window": 14}, "lower min_training or widen the window"),
        ({"time_column": "status"}, "monitors.time_column 'status' is not a date or timestamp column"),
    ],
)
def test_monitor_config_that_cannot_work_is_refused_saying_how_to_fix_it(
    mesh_copy: Path, config: dict, said: str
) -> None:
    path = edit_spec(mesh_copy, ORDERS, set_monitors(**config))
    issues = [i for i in load_registry(mesh_copy).errors if i.file.resolve() == path.resolve()]
    assert any(said in i.message and i.field.startswith("output_ports[0]") for i in issues), issues
