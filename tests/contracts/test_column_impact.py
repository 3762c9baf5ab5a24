"""Impact by column and consumer-aware breaking changes, on the example mesh and private copies of it.

customer_master.country_code is read by customer_360 and instrument_runs (and, through customer_360, by
sales_forecast); customer_master.city by no product, but by two people's unscoped access agreements.
customer_360.runs_last_90d is read by nobody: sales_forecast reads only customer_id and country_code.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
import typer
import yaml
from conftest import REPO
from spec_edits import edit_spec, spec_path, write_later
from typer.testing import CliRunner

from mesh_assets.cli.impact import register
from mesh_assets.contracts.column_impact import NO_READER, ColumnIndex, judge_by_readers
from mesh_assets.contracts.contract_diff import diff_specs
from mesh_assets.contracts.impact import ImpactError, impact
from mesh_assets.product.registry import load_registry
from mesh_assets.product.spec import DataProductSpec

TODAY = date(2026, 12, 10)
MASTER, C360, FORECAST = (
    "customers.customer_master",
    "commercial_analytics.customer_360",
    ("commercial_analytics.sales_forecast"),
)


def routes(report, port: str, column: str) -> list[str]:
    return [r.route for r in report.columns[port][column]]


def test_impact_by_column_names_no_consumer_for_a_column_nobody_reads() -> None:
    report = impact(load_registry(REPO, TODAY), MASTER, column="city")
    assert report.columns == {"v1": {"city": []}}


def test_impact_by_column_names_each_reader_with_its_column_path_across_domains() -> None:
    found = routes(impact(load_registry(REPO, TODAY), MASTER, column="country_code"), "v1", "country_code")
    assert f"{MASTER}.country_code → {C360}.country_code" in found
    assert f"{MASTER}.country_code → diagnostics.instrument_runs.country_code" in found
    # Transitively: sales_forecast's country_code comes from customer_360's, which comes from here.
    assert f"{MASTER}.country_code → {C360}.country_code → {FORECAST}.country_code" in found


def test_a_column_read_only_to_join_is_named_as_a_join_or_filter_reader() -> None:
    readers = ColumnIndex(load_registry(REPO, TODAY)).readers(C360, 1, "customer_id")
    assert [(r.product, r.column) for r in readers] == [(FORECAST, None)]
    assert readers[0].route.endswith("(join/filter)")


def test_impact_of_an_unknown_column_says_which_columns_exist() -> None:
    with pytest.raises(ImpactError, match=r"no column 'cty'.*did you mean 'city'"):
        impact(load_registry(REPO, TODAY), MASTER, column="cty")


def _removal(root: Path, key: str, column: str) -> list:
    """The contract changes of removing `column` from `key`'s first port, judged by readers."""
    before = DataProductSpec.model_validate(yaml.safe_load(spec_path(root, key).read_text()))

    def drop(spec: dict) -> None:
        port = spec["output_ports"][0]
        port["columns"] = [c for c in port["columns"] if c["name"] != column]

    edit_spec(root, key, drop)
    registry = load_registry(root, TODAY)
    changes = diff_specs(
        before, registry.products[key].spec, consumers=[p.spec for p in registry.products.values()]
    )
    return [c for c in judge_by_readers(changes, registry, TODAY) if c.column == column]


def test_removing_a_column_no_consumer_reads_passes_as_no_reader(mesh_copy: Path) -> None:
    [change] = _removal(mesh_copy, C360, "runs_last_90d")
    assert change.breaking and not change.blocking
    assert change.allowed == NO_READER
    assert change.consumers == ()
    assert "no consumer product reads it" in change.reason


def test_removing_a_column_a_consumer_reads_breaks_naming_it_and_the_column_path(mesh_copy: Path) -> None:
    [change] = _removal(mesh_copy, C360, "country_code")
    assert change.blocking
    assert [c.product for c in change.consumers] == [FORECAST]
    assert change.consumers[0].steward == "lea.dubois@example.com"
    assert f"{C360}.country_code → {FORECAST}.country_code" in change.reason
    assert "new major" in change.fix


def test_removing_a_column_only_people_read_breaks_naming_their_agreements(mesh_copy: Path) -> None:
    [change] = _removal(mesh_copy, MASTER, "city")
    assert change.blocking
    assert change.consumers == ()
    assert "person nora.berg@example.com (every column" in change.reason


def test_an_agreement_scoped_to_other_columns_does_not_read_the_removed_one(mesh_copy: Path) -> None:
    for agreement in (mesh_copy / "domains/customers/products/customer_master/access").glob("*.yaml"):
        data = yaml.safe_load(agreement.read_text())
        write_later(agreement, yaml.safe_dump({**data, "columns": ["customer_id", "contact_email"]}))
    [change] = _removal(mesh_copy, MASTER, "city")
    assert change.allowed == NO_READER


def test_a_consumer_selecting_every_column_reads_the_removed_one_too(mesh_copy: Path) -> None:
    # customer_360 reads instrument_runs with `select *`: every column, so any removal breaks it.
    [change] = _removal(mesh_copy, "diagnostics.instrument_runs", "assay")
    assert change.blocking
    assert [c.product for c in change.consumers] == [C360]


def _mesh_impact(*args: str) -> tuple[int, str]:
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # two commands, so `impact` stays a subcommand
    result = CliRunner().invoke(app, ["impact", *args], terminal_width=200)
    return result.exit_code, result.output


def test_mesh_impact_column_prints_each_reader_with_its_column_path(mesh_copy: Path) -> None:
    code, output = _mesh_impact(MASTER, "--column", "country_code")
    assert code == 0, output
    assert f"{MASTER}.country_code → {C360}.country_code" in output


def test_mesh_impact_column_json_lists_the_readers_of_the_column(mesh_copy: Path) -> None:
    code, output = _mesh_impact(MASTER, "--column", "city", "--json")
    assert code == 0 and json.loads(output)["columns"] == {"v1": {"city": []}}
