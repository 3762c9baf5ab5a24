"""A contract of several tables (the shape of the ODCS standard's AdventureWorks example) imported by table:
its first by default, the one `--table` names, or one product per table with `--all-tables`."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from mesh_assets.cli import contract_io
from mesh_assets.contracts import odcs_import
from mesh_assets.contracts.odcs_standard import ContractError, schema_errors
from mesh_assets.product.registry import load_registry

FIXTURE = Path(__file__).parents[1] / "fixtures" / "odcs" / "adventureworks.odcs.yaml"
TABLES = ["department", "employee", "product", "salesorderheader"]


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    contract_io.register(app)
    return app


def _import(cli: typer.Typer, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["contract", "import", str(FIXTURE), *args])
    return result.exit_code, result.output


def test_the_fixture_is_a_valid_odcs_contract_of_several_tables() -> None:
    document = yaml.safe_load(FIXTURE.read_text())
    assert schema_errors(document) == []
    assert [t["name"] for t in odcs_import.tables_of(document)] == TABLES


def test_a_contract_of_several_tables_drafts_its_first_and_says_how_to_draft_the_others() -> None:
    result = odcs_import.import_contract(yaml.safe_load(FIXTURE.read_text()))
    assert result.name == "department"  # named after its table, not the contract's `dataProduct`
    assert result.draft["title"] == "Department"
    assert result.draft["description"]["purpose"].startswith("Lookup table containing the departments")
    (note,) = [n for n in result.notes if "4 tables" in n]
    assert "not employee, product, salesorderheader" in note
    assert "--table <name>" in note and "--all-tables" in note


def test_table_drafts_the_named_table(cli: typer.Typer, tmp_path: Path) -> None:
    code, output = _import(cli, "--table", "employee", "--out", str(tmp_path / "draft"))
    assert code == 0, output
    draft = yaml.safe_load((tmp_path / "draft" / "dataproduct.yaml").read_text())
    assert (draft["name"], draft["domain"], draft["classification"]) == ("employee", "seller", "restricted")
    port = draft["output_ports"][0]
    assert [c["name"] for c in port["columns"]] == [
        "businessentityid",
        "nationalidnumber",
        "jobtitle",
        "birthdate",
        "hiredate",
    ]
    assert port["primary_key"] == ["businessentityid"]
    assert "4 tables" not in output  # the table was chosen: nothing to say about the others


def test_table_also_takes_the_physical_name_in_any_case() -> None:
    document = yaml.safe_load(FIXTURE.read_text())
    assert odcs_import.import_contract(document, table="Production_Product").name == "product"


def test_an_unknown_table_is_refused_naming_the_tables_close_matches_first(
    cli: typer.Typer, tmp_path: Path
) -> None:
    code, output = _import(cli, "--table", "employe", "--out", str(tmp_path / "draft"))
    assert code == 1
    assert "no table 'employe'; did you mean 'employee'?" in output
    assert "its 4 tables: employee, department, product, salesorderheader" in output
    assert not (tmp_path / "draft").exists()
    with pytest.raises(ContractError, match="no table 'invoices'; pass --table with one of its 4 tables"):
        odcs_import.import_contract(yaml.safe_load(FIXTURE.read_text()), table="invoices")


def test_all_tables_drafts_one_product_per_table_each_in_its_own_folder(
    cli: typer.Typer, tmp_path: Path
) -> None:
    code, output = _import(cli, "--all-tables", "--out", str(tmp_path))
    assert code == 0, output
    assert sorted(p.name for p in tmp_path.iterdir()) == TABLES
    for table in TABLES:
        draft = yaml.safe_load((tmp_path / table / "dataproduct.yaml").read_text())
        assert draft["name"] == table
    sales = yaml.safe_load((tmp_path / "salesorderheader" / "dataproduct.yaml").read_text())
    assert sales["output_ports"][0]["event_time"] == "orderdate"  # the SLA element of its own table
    assert "drafted 4 product(s), one per table" in output
    assert output.count("mandatory field(s) the contract does not provide") == 4


def test_all_tables_drafts_into_the_domain_where_validation_names_only_what_is_left_to_fill(
    cli: typer.Typer, mesh_copy: Path
) -> None:
    code, output = _import(cli, "--all-tables", "--domain", "hr")
    assert code == 0, output
    folders = [mesh_copy / "domains" / "hr" / "products" / table for table in TABLES]
    assert all((folder / "dataproduct.yaml").is_file() for folder in folders)
    issues = [i for i in load_registry(mesh_copy).errors if i.file.parent in folders]
    assert issues and {i.message for i in issues} == {"required field is missing"}


def test_all_tables_refuses_before_writing_anything_when_one_draft_exists(
    cli: typer.Typer, tmp_path: Path
) -> None:
    (tmp_path / "product").mkdir()
    (tmp_path / "product" / "dataproduct.yaml").write_text("name: product\n")
    code, output = _import(cli, "--all-tables", "--out", str(tmp_path))
    assert code == 1 and "exists; pass --force to overwrite it" in output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["product"]
    code, output = _import(cli, "--all-tables", "--out", str(tmp_path), "--force")
    assert code == 0, output
    assert sorted(p.name for p in tmp_path.iterdir()) == TABLES


def test_table_and_all_tables_together_are_refused_as_bad_usage(cli: typer.Typer, tmp_path: Path) -> None:
    code, output = _import(cli, "--table", "employee", "--all-tables", "--out", str(tmp_path))
    assert code == 2 and "either --table <name> or --all-tables" in output
    assert list(tmp_path.iterdir()) == []
