"""`mesh validate` asks great-expectations about each declared expectation once per installed version.

Importing great-expectations costs about 4 s; its verdicts are cached (`verdict_cache_dir`), so these
tests point the cache at a temp dir and stand in for GX with a recording fake.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mesh_assets.govern import validate as validate_module

SPEC = "domains/customers/products/customer_master/dataproduct.yaml"


@pytest.fixture
def asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The expectations great-expectations was asked about; it refuses any named `*_to_equal`."""
    calls: list[str] = []

    def fake_verdict(expectation: str, kwargs: dict) -> dict[str, str] | None:
        calls.append(expectation)
        if expectation.endswith("_to_equal"):
            return {"field": "expectation", "message": f"no expectation '{expectation}'", "fix": "fix it"}
        return None

    monkeypatch.setattr(validate_module, "verdict_cache_dir", lambda: tmp_path / "gx-cache")
    monkeypatch.setattr(validate_module, "_gx_verdict", fake_verdict)
    return calls


def test_a_second_validate_takes_the_expectation_verdicts_from_the_cache(
    mesh_copy: Path, asked: list[str]
) -> None:
    first = validate_module.validate(mesh_copy)
    asked_first = list(asked)
    second = validate_module.validate(mesh_copy)

    assert "expect_column_value_lengths_to_equal" in asked_first
    assert asked == asked_first, "the second validate asked great-expectations again"
    assert [i.message for i in second.issues] == [i.message for i in first.issues]


def test_a_refused_expectation_is_still_an_error_when_its_verdict_comes_from_the_cache(
    mesh_copy: Path, asked: list[str]
) -> None:
    validate_module.validate(mesh_copy)
    asked_first = list(asked)
    report = validate_module.validate(mesh_copy)

    assert asked == asked_first
    refused = [e for e in report.errors if "no expectation" in e.message]
    assert [(e.file.relative_to(mesh_copy).as_posix(), e.field) for e in refused] == [
        (SPEC, "output_ports[0].quality.rules[3].expectation")
    ]


def test_changed_arguments_ask_great_expectations_again(mesh_copy: Path, asked: list[str]) -> None:
    validate_module.validate(mesh_copy)
    asked_first = list(asked)
    spec = mesh_copy / SPEC
    spec.write_text(spec.read_text().replace("value: 2", "value: 3"))
    validate_module.validate(mesh_copy)

    assert asked == [*asked_first, "expect_column_value_lengths_to_equal"]
