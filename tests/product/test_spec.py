"""The spec models of dataproduct.yaml, their shipped JSON Schema, durations and version ranges."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from packaging.version import Version
from pydantic import BaseModel, ValidationError

from mesh_assets.govern.validate import SCHEMA_PATH, schema_text
from mesh_assets.product import spec as spec_module
from mesh_assets.product.spec import (
    Column,
    DataProductSpec,
    FreshnessSlo,
    OutputPort,
    SpecModel,
    parse_duration,
)
from mesh_assets.product.versions import VersionRangeError, parse_range, satisfies

REPO = Path(__file__).resolve().parents[2]
SHIPPED_SPECS = sorted((REPO / "domains").glob("*/products/*/dataproduct.yaml"))

MINIMAL_SPEC: dict = {
    "name": "widgets",
    "domain": "sales",
    "title": "Widgets",
    "description": {
        "purpose": "Every widget we sell.",
        "usage": "Join on widget_id.",
        "limitations": "None known.",
    },
    "owner": {"team": "sales_data", "steward": "ana.lopez@example.com"},
    "product_type": "source-aligned",
    "status": "active",
    "business_capability": "Order management",
    "classification": "internal",
    "access": {"mode": "open"},
    "access_policy": {},
    "distribution_rights": {"redistribute_unmodified": False, "redistribute_modified": True},
    "data_sharing_agreement": {"reference": "DSA-1", "terms": "Internal use."},
    "support": {"channel": "#sales-data"},
    "slos": {"freshness": {"max_age": "24h"}},
    "transformation": {"kind": "sql"},
    "output_ports": [
        {
            "version": "1.0.0",
            "columns": [
                {"name": "widget_id", "type": "string", "nullable": False, "description": "Widget id."},
                {"name": "price", "type": "decimal", "precision": 12, "scale": 2, "description": "Price."},
            ],
            "primary_key": ["widget_id"],
        }
    ],
}


def spec_with(**changes: object) -> dict:
    """A deep copy of the minimal valid spec with top-level fields replaced."""
    data = copy.deepcopy(MINIMAL_SPEC)
    data.update(copy.deepcopy(changes))
    return data


def port_with(**changes: object) -> dict:
    port = copy.deepcopy(MINIMAL_SPEC["output_ports"][0])
    port.update(copy.deepcopy(changes))
    return port


def column(name: str, type_: str = "string", **extra: object) -> dict:
    return {"name": name, "type": type_, "description": f"The {name}.", **extra}


def refused(model: type[BaseModel], data: dict) -> list[dict]:
    """The pydantic errors of validating `data` (fails the test if it validates)."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return caught.value.errors()


def messages(errors: list[dict]) -> str:
    return " | ".join(e["msg"] for e in errors)


def as_editor_sees_it(path: Path) -> dict:
    """A spec as JSON: YAML dates (e.g. `sunset: 2027-03-31`) are strings, as an editor's validator sees."""
    return json.loads(json.dumps(yaml.safe_load(path.read_text()), default=str))


def spec_models() -> list[type[BaseModel]]:
    """Every model of the spec, wherever in the product wing it is defined (`spec` re-exports them all)."""
    return [
        value
        for value in vars(spec_module).values()
        if isinstance(value, type)
        and issubclass(value, BaseModel)
        and value.__module__.startswith("mesh_assets.product.")
    ]


# --- the JSON Schema ----------------------------------------------------------------------------------


def test_the_shipped_json_schema_is_what_the_models_generate() -> None:
    assert SCHEMA_PATH.read_text() == schema_text()


@pytest.fixture(scope="module")
def schema_validator():
    import jsonschema  # a declared dependency: never skipped

    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_there_are_shipped_specs_to_check() -> None:
    assert len(SHIPPED_SPECS) >= 6


@pytest.mark.parametrize("path", SHIPPED_SPECS, ids=lambda p: f"{p.parents[2].name}.{p.parent.name}")
def test_every_shipped_spec_validates_against_the_json_schema(schema_validator, path: Path) -> None:
    found = schema_validator.iter_errors(as_editor_sees_it(path))
    problems = [f"{list(e.absolute_path)}: {e.message}" for e in found]
    assert problems == []


def test_the_minimal_spec_is_valid_for_both_the_models_and_the_json_schema(schema_validator) -> None:
    assert DataProductSpec.model_validate(MINIMAL_SPEC).key == "sales.widgets"
    assert list(schema_validator.iter_errors(MINIMAL_SPEC)) == []


def test_the_json_schema_refuses_an_unknown_top_level_field(schema_validator) -> None:
    data = spec_with(ownr={"team": "sales_data"})

    problems = list(schema_validator.iter_errors(data))

    assert any("ownr" in e.message and e.validator == "additionalProperties" for e in problems)


def test_the_json_schema_refuses_an_unknown_column_field(schema_validator) -> None:
    data = spec_with(output_ports=[port_with(columns=[column("widget_id", nulable=False)])])

    problems = list(schema_validator.iter_errors(data))

    assert any("nulable" in e.message for e in problems)


def test_the_json_schema_refuses_a_bad_column_type(schema_validator) -> None:
    data = spec_with(output_ports=[port_with(columns=[column("widget_id", "strng")])])

    assert any("strng" in e.message for e in schema_validator.iter_errors(data))


def test_every_pattern_in_the_json_schema_is_portable_to_editors() -> None:
    # JSON Schema patterns are ECMA-262 regexes (what yaml-language-server and VS Code compile);
    # Python's `(?P<name>...)` is a syntax error there.
    patterns = [line for line in SCHEMA_PATH.read_text().splitlines() if '"pattern"' in line]
    assert patterns
    assert [p for p in patterns if "(?P<" in p] == []


# --- the models ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", spec_models(), ids=lambda m: m.__name__)
def test_every_spec_model_forbids_unknown_keys(model: type[BaseModel]) -> None:
    assert model.model_config.get("extra") == "forbid"


@pytest.mark.parametrize("model", [m for m in spec_models() if m.model_fields], ids=lambda m: m.__name__)
def test_every_spec_field_has_a_description(model: type[BaseModel]) -> None:
    undocumented = [name for name, info in model.model_fields.items() if not (info.description or "").strip()]
    assert undocumented == []


def test_every_spec_model_derives_from_spec_model() -> None:
    assert all(issubclass(m, SpecModel) for m in spec_models())


def test_a_spec_with_an_unknown_field_is_refused_by_the_models() -> None:
    errors = refused(DataProductSpec, spec_with(ownr="x"))

    assert [(e["type"], e["loc"]) for e in errors] == [("extra_forbidden", ("ownr",))]


# --- freshness ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "freshness",
    [
        {"max_age": "24h"},
        {"max_age": "24h", "warn_after": "12h"},
        {"cron": "0 6 * * *", "lower_bound": "24h"},
    ],
)
def test_a_freshness_slo_with_max_age_or_cron_is_valid(freshness: dict) -> None:
    assert FreshnessSlo.model_validate(freshness)


@pytest.mark.parametrize(
    "freshness", [{}, {"max_age": "24h", "cron": "0 6 * * *", "lower_bound": "1h"}], ids=["neither", "both"]
)
def test_a_freshness_slo_needs_exactly_one_of_max_age_or_cron(freshness: dict) -> None:
    assert "set exactly one of 'max_age'" in messages(refused(FreshnessSlo, freshness))


def test_a_cron_freshness_slo_needs_a_lower_bound() -> None:
    assert "'cron' needs 'lower_bound'" in messages(refused(FreshnessSlo, {"cron": "0 6 * * *"}))


@pytest.mark.parametrize("warn_after", ["24h", "2d"])
def test_warn_after_must_be_shorter_than_max_age(warn_after: str) -> None:
    errors = refused(FreshnessSlo, {"max_age": "24h", "warn_after": warn_after})

    assert "'warn_after' must be shorter than 'max_age'" in messages(errors)


def test_a_freshness_duration_in_words_is_refused_by_its_pattern() -> None:
    errors = refused(FreshnessSlo, {"max_age": "1 week"})

    assert [(e["type"], e["loc"]) for e in errors] == [("string_pattern_mismatch", ("max_age",))]


# --- columns and ports --------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["precision", "scale"])
def test_a_decimal_column_needs_precision_and_scale(missing: str) -> None:
    data = column("price", "decimal", precision=12, scale=2)
    del data[missing]

    assert "needs 'precision' and 'scale'" in messages(refused(Column, data))


def test_precision_and_scale_apply_only_to_decimals() -> None:
    errors = refused(Column, column("price", "double", precision=12, scale=2))

    assert "apply only to type 'decimal'" in messages(errors)


def test_primary_key_columns_must_be_declared() -> None:
    errors = refused(OutputPort, port_with(primary_key=["widget_id", "sku"]))

    assert "primary_key column 'sku' is not in 'columns'" in messages(errors)


def test_the_event_time_column_must_be_declared() -> None:
    errors = refused(OutputPort, port_with(event_time="updated_at"))

    assert "event_time column 'updated_at' is not in 'columns'" in messages(errors)


def test_a_column_may_appear_only_once() -> None:
    errors = refused(OutputPort, port_with(columns=[column("widget_id"), column("widget_id")]))

    assert "duplicate column names ['widget_id']" in messages(errors)


def test_a_deprecated_port_needs_a_deprecation_block() -> None:
    errors = refused(OutputPort, port_with(status="deprecated"))

    assert "a deprecated port needs 'deprecation'" in messages(errors)


def test_a_deprecated_port_with_a_deprecation_block_is_valid() -> None:
    deprecation = {"sunset": "2027-03-31", "replacement": "2", "reason": "v2 is exact."}

    port = OutputPort.model_validate(port_with(status="deprecated", deprecation=deprecation))

    assert port.deprecation is not None and port.deprecation.sunset.isoformat() == "2027-03-31"


def test_a_product_has_one_output_port_per_major_version() -> None:
    ports = [port_with(version="1.0.0"), port_with(version="1.2.0")]

    errors = refused(DataProductSpec, spec_with(output_ports=ports))

    assert "more than one output port for major version(s) [1]" in messages(errors)


def test_two_major_versions_may_be_published_side_by_side() -> None:
    spec = DataProductSpec.model_validate(spec_with(output_ports=[port_with(version="2.0.0"), port_with()]))

    assert sorted(p.major for p in spec.output_ports) == [1, 2]


def test_a_port_version_must_be_full_semver() -> None:
    errors = refused(OutputPort, port_with(version="1.0"))

    assert [(e["type"], e["loc"]) for e in errors] == [("string_pattern_mismatch", ("version",))]


def test_tags_must_be_lowercase_slugs() -> None:
    errors = refused(DataProductSpec, spec_with(tags=["Sales Data"]))

    assert "tag 'Sales Data' must be lowercase" in messages(errors)


def test_an_input_port_is_a_source_or_a_product_by_the_key_it_has() -> None:
    spec = DataProductSpec.model_validate(
        spec_with(
            input_ports=[
                {"source": "erp.orders"},
                {"product": "customers.customer_master", "version": "^1"},
            ]
        )
    )

    assert [s.source for s in spec.source_inputs] == ["erp.orders"]
    assert [(p.product, p.version, p.preview) for p in spec.product_inputs] == [
        ("customers.customer_master", "^1", False)
    ]


def test_a_port_model_defaults_to_the_product_name_and_major() -> None:
    spec = DataProductSpec.model_validate(spec_with(output_ports=[port_with(version="3.1.0")]))

    assert spec.port_model(spec.output_ports[0]) == "widgets_v3"
    assert spec.port_status(spec.output_ports[0]) == "active"


# --- durations ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("6h", timedelta(hours=6)),
        ("2d", timedelta(days=2)),
        (" 24h ", timedelta(hours=24)),
    ],
)
def test_parse_duration_reads_minutes_hours_and_days(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["1 week", "1w", "h6", "", "1.5h"])
def test_parse_duration_refuses_other_forms_showing_the_accepted_one(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(text)

    assert f"'{text}' is not a duration" in str(caught.value)
    assert "a number and a unit m, h or d, e.g. '24h'" in str(caught.value)


# --- version ranges -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version_range", "inside", "outside"),
    [
        ("^2", ["2.0.0", "2.9.13"], ["1.4.0", "3.0.0"]),
        ("^1.4", ["1.4.0", "1.9.0"], ["1.3.9", "2.0.0"]),
        (">=1.0.0,<2.0.0", ["1.0.0", "1.4.0"], ["0.9.0", "2.0.0"]),
        ("==2.*", ["2.0.0", "2.5.1"], ["1.9.9", "3.0.0"]),
        (">=1.0.0", ["1.0.0", "7.0.0"], ["0.3.0"]),
    ],
)
def test_a_version_range_accepts_exactly_its_versions(
    version_range: str, inside: list[str], outside: list[str]
) -> None:
    assert [v for v in inside + outside if satisfies(v, version_range)] == inside


def test_a_caret_range_is_the_same_as_its_explicit_bounds() -> None:
    assert parse_range("^2") == parse_range(">=2.0.0,<3.0.0")
    assert parse_range(" ^1.4.2 ").contains(Version("1.4.2"))


@pytest.mark.parametrize("text", ["version one", "^x", "2.0.0", ">>1"])
def test_an_invalid_version_range_is_refused_with_examples(text: str) -> None:
    with pytest.raises(VersionRangeError) as caught:
        parse_range(text)

    assert "is not a version range" in str(caught.value)
    assert "'>=1.0.0,<2.0.0', '^2' or '==2.*'" in str(caught.value)
