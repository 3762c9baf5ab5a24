"""`mesh validate`: every spec error names its file, its field path, what is wrong and how to fix it.

Each test breaks one thing in a private copy of the shipped mesh (`mesh_copy`) and asserts on the issues the
registry (or the full `validate` report) returns: the spec file, the field path, and key words of the
message and of the fix.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from spec_edits import edit_spec, spec_path, write_later
from typer.testing import CliRunner

from mesh_assets.cli.app import app
from mesh_assets.govern.validate import validate
from mesh_assets.product.errors import SpecIssue
from mesh_assets.product.registry import load_registry

Spec = dict


# --- helpers ------------------------------------------------------------------------------------------


def replace_in(path: Path, old: str, new: str) -> None:
    """Text-replace exactly one occurrence in a file."""
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {path}"
    write_later(path, text.replace(old, new))


def same_file(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve()


def issues_at(issues: Iterable[SpecIssue], file: Path, field: str | None = None) -> list[SpecIssue]:
    """The issues reported on one file (and field, if given)."""
    return [i for i in issues if same_file(i.file, file) and (field is None or i.field == field)]


def the_issue(issues: Iterable[SpecIssue], file: Path, field: str, *, severity: str = "error") -> SpecIssue:
    """The single issue on `file` at `field`; fails listing every issue otherwise."""
    issues = list(issues)
    found = [i for i in issues_at(issues, file, field) if i.severity == severity]
    listing = "\n".join(f"  {i.severity} {i.file} | {i.field} | {i.message} | {i.fix}" for i in issues)
    assert len(found) == 1, f"expected one {severity} on {file} at {field!r}, got {len(found)}:\n{listing}"
    return found[0]


def errors(root: Path) -> list[SpecIssue]:
    return load_registry(root).errors


def add_input(key: str, version: str = "^1", **extra: object) -> Callable[[Spec], None]:
    """A spec change that appends an input port on product `key`."""
    port = {"product": key, "version": version, **extra}
    return lambda data: data.setdefault("input_ports", []).append(port)


def set_input(index: int, **fields: object) -> Callable[[Spec], None]:
    return lambda data: data["input_ports"][index].update(fields)


def set_column(index: int, **fields: object) -> Callable[[Spec], None]:
    """A spec change on one column of the first output port."""
    return lambda data: data["output_ports"][0]["columns"][index].update(fields)


def set_field(**fields: object) -> Callable[[Spec], None]:
    return lambda data: data.update(fields)


CUSTOMER_360 = "commercial_analytics.customer_360"
SALES_FORECAST = "commercial_analytics.sales_forecast"
CUSTOMER_MASTER = "customers.customer_master"
INSTRUMENT_RUNS = "diagnostics.instrument_runs"
ORDERS = "sales.orders"
SALES = "sales.sales"


# --- the shipped mesh ---------------------------------------------------------------------------------


def test_the_shipped_mesh_has_no_errors_and_only_the_sales_v1_deprecation_warning(mesh_copy: Path) -> None:
    report = validate(mesh_copy)

    assert report.errors == []
    assert len(report.registry.products) == 6
    [warning] = report.warnings
    assert same_file(warning.file, spec_path(mesh_copy, CUSTOMER_360))
    assert warning.field == "input_ports[1].version"
    assert "sales.sales v1 (1.4.0) is deprecated" in warning.message
    assert "2027-03-31" in warning.message
    assert "move to version 2" in warning.fix
    assert "product: sales.sales, version: '^2'" in warning.fix


def test_load_registry_rereads_a_spec_whose_modification_time_changed(mesh_copy: Path) -> None:
    first = load_registry(mesh_copy)
    assert load_registry(mesh_copy) is first

    edit_spec(mesh_copy, ORDERS, set_field(classification="secret"))

    assert load_registry(mesh_copy) is not first
    assert the_issue(errors(mesh_copy), spec_path(mesh_copy, ORDERS), "classification")


# --- field-level errors (pydantic) --------------------------------------------------------------------


def test_an_unknown_field_is_refused_and_a_close_typo_gets_did_you_mean(mesh_copy: Path) -> None:
    path = edit_spec(mesh_copy, CUSTOMER_MASTER, lambda d: d.update(ownr=d.pop("owner")))

    issue = the_issue(errors(mesh_copy), path, "ownr")
    assert issue.message == "unknown field 'ownr'"
    assert "did you mean 'owner'?" in issue.fix


def test_an_unknown_field_with_no_close_match_is_told_to_remove_it(mesh_copy: Path) -> None:
    path = edit_spec(mesh_copy, ORDERS, set_field(zzz_qqq=1))

    issue = the_issue(errors(mesh_copy), path, "zzz_qqq")
    assert issue.message == "unknown field 'zzz_qqq'"
    assert issue.fix == "remove it"


def test_an_unknown_field_in_a_nested_model_names_its_full_path(mesh_copy: Path) -> None:
    path = edit_spec(mesh_copy, ORDERS, set_column(3, nulable=False))

    issue = the_issue(errors(mesh_copy), path, "output_ports[0].columns[3].nulable")
    assert "did you mean 'nullable'?" in issue.fix


def test_a_missing_mandatory_field_is_named_and_the_fix_says_what_to_add(mesh_copy: Path) -> None:
    path = edit_spec(mesh_copy, CUSTOMER_MASTER, lambda d: d.pop("owner"))

    issue = the_issue(errors(mesh_copy), path, "owner")
    assert issue.message == "required field is missing"
    assert issue.fix.startswith("add 'owner'")
    assert "Owner team and steward" in issue.fix


def test_a_missing_nested_field_is_named_by_its_path(mesh_copy: Path) -> None:
    path = edit_spec(mesh_copy, ORDERS, lambda d: d["output_ports"][0].pop("primary_key"))

    issue = the_issue(errors(mesh_copy), path, "output_ports[0].primary_key")
    assert issue.message == "required field is missing"
    assert "add 'primary_key'" in issue.fix


def test_a_bad_column_type_names_the_column_path_and_the_allowed_types(mesh_copy: Path) -> None:
    path = edit_spec(mesh_copy, CUSTOMER_MASTER, set_column(2, type="strng"))

    issue = the_issue(errors(mesh_copy), path, "output_ports[0].columns[2].type")
    assert "(got 'strng')" in issue.message
    assert "'string'" in issue.message and "'timestamp'" in issue.message
    assert "allowed values" in issue.fix


def test_a_bad_classification_names_the_field_and_the_allowed_values(mesh_copy: Path) -> None:
    path = edit_spec(mesh_copy, CUSTOMER_MASTER, set_field(classification="secret"))

    issue = the_issue(errors(mesh_copy), path, "classification")
    assert "(got 'secret')" in issue.message
    assert "'confidential'" in issue.message and "'restricted'" in issue.message
    assert "allowed values" in issue.fix


def test_a_value_not_matching_its_pattern_shows_the_pattern_in_the_fix(mesh_copy: Path) -> None:
    path = edit_spec(mesh_copy, ORDERS, lambda d: d["owner"].update(steward="ana lopez"))

    issue = the_issue(errors(mesh_copy), path, "owner.steward")
    assert "(got 'ana lopez')" in issue.message
    assert "match the pattern" in issue.fix


def test_a_model_rule_is_reported_on_the_enclosing_field(mesh_copy: Path) -> None:
    path = edit_spec(mesh_copy, ORDERS, lambda d: d["slos"]["freshness"].update(warn_after="48h"))

    issue = the_issue(errors(mesh_copy), path, "slos.freshness")
    assert "'warn_after' must be shorter than 'max_age'" in issue.message


def test_a_bad_transformation_kind_lists_the_known_kinds(mesh_copy: Path) -> None:
    path = edit_spec(mesh_copy, SALES, lambda d: d["transformation"].update(kind="spark"))

    issue = the_issue(errors(mesh_copy), path, "transformation")
    assert "'spark'" in issue.message
    assert all(f"'{kind}'" in issue.message for kind in ("sql", "python", "dbt"))


# --- file-level errors --------------------------------------------------------------------------------


def test_invalid_yaml_names_the_line_and_column(mesh_copy: Path) -> None:
    path = spec_path(mesh_copy, ORDERS)
    replace_in(path, "title: Orders\n", "title: Orders: more\n")
    line = path.read_text().splitlines().index("title: Orders: more") + 1

    issue = the_issue(errors(mesh_copy), path, f"line {line}, column {len('title: Orders') + 1}")
    assert issue.message.startswith("not valid YAML")
    assert "mapping values" in issue.message
    assert "fix the YAML syntax" in issue.fix


def test_a_spec_that_is_not_a_mapping_is_refused(mesh_copy: Path) -> None:
    path = spec_path(mesh_copy, SALES_FORECAST)
    write_later(path, "- name: sales_forecast\n- domain: commercial_analytics\n")

    issue = the_issue(errors(mesh_copy), path, "")
    assert "not a mapping" in issue.message
    assert "dataproduct.yaml" in issue.fix


def test_a_missing_transformation_file_is_named_with_the_folder_to_create_it_in(mesh_copy: Path) -> None:
    sql = spec_path(mesh_copy, CUSTOMER_360).parent / "customer_360_v1.sql"
    sql.unlink()

    issue = the_issue(errors(mesh_copy), spec_path(mesh_copy, CUSTOMER_360), "transformation")
    assert "customer_360_v1.sql not found" in issue.message
    assert str(sql) in issue.fix


# --- identity: names, domains, folders ----------------------------------------------------------------


def test_a_duplicate_product_name_is_refused_along_with_its_folder_mismatch(mesh_copy: Path) -> None:
    original = spec_path(mesh_copy, ORDERS)
    shutil.copytree(original.parent, original.parent.with_name("orders_copy"))
    copy = original.parent.with_name("orders_copy") / "dataproduct.yaml"

    name_issues = issues_at(errors(mesh_copy), copy, "name")
    duplicate = [i for i in name_issues if "duplicate product 'sales.orders'" in i.message]
    mismatch = [i for i in name_issues if "does not match its folder 'orders_copy'" in i.message]
    assert len(duplicate) == 1 and len(mismatch) == 1, name_issues
    assert str(original) in duplicate[0].message
    assert "unique name" in duplicate[0].fix
    assert "set name: orders_copy" in mismatch[0].fix
    assert issues_at(errors(mesh_copy), original) == []


def test_a_domain_field_that_does_not_match_its_folder_is_refused(mesh_copy: Path) -> None:
    path = edit_spec(mesh_copy, CUSTOMER_MASTER, set_field(domain="sales"))

    issue = the_issue(errors(mesh_copy), path, "domain")
    assert "domain 'sales' does not match its folder 'domains/customers'" in issue.message
    assert "set domain: customers" in issue.fix
    assert "domains/sales/products/" in issue.fix


# --- input ports --------------------------------------------------------------------------------------


def test_an_input_port_naming_no_product_gets_a_did_you_mean(mesh_copy: Path) -> None:
    path = edit_spec(mesh_copy, INSTRUMENT_RUNS, set_input(1, product="customers.customer_mastr"))

    issue = the_issue(errors(mesh_copy), path, "input_ports[1].product")
    assert issue.message == "no product 'customers.customer_mastr' in the mesh"
    assert issue.fix == "did you mean 'customers.customer_master'?"


def test_an_input_port_naming_a_far_off_product_lists_the_known_products(mesh_copy: Path) -> None:
    path = edit_spec(mesh_copy, INSTRUMENT_RUNS, set_input(1, product="zzz.qqq"))

    issue = the_issue(errors(mesh_copy), path, "input_ports[1].product")
    assert "no product 'zzz.qqq'" in issue.message
    assert "known:" in issue.fix
    assert all(key in issue.fix for key in (CUSTOMER_MASTER, ORDERS, SALES))


def test_a_version_range_no_port_satisfies_lists_the_published_versions(mesh_copy: Path) -> None:
    path = edit_spec(mesh_copy, CUSTOMER_360, set_input(1, version=">=3.0.0"))

    issue = the_issue(errors(mesh_copy), path, "input_ports[1].version")
    assert "no port of sales.sales satisfies '>=3.0.0'" in issue.message
    assert "2.0.0 (active)" in issue.message and "1.4.0 (deprecated)" in issue.message
    assert "product: sales.sales, version: '^2'" in issue.fix


def test_an_unparseable_version_range_is_refused_with_examples(mesh_copy: Path) -> None:
    path = edit_spec(mesh_copy, INSTRUMENT_RUNS, set_input(1, version="version one"))

    issue = the_issue(errors(mesh_copy), path, "input_ports[1].version")
    assert "'version one' is not a version range" in issue.message
    assert "'^2'" in issue.message


def test_an_input_port_on_another_products_internal_asset_is_a_back_door(mesh_copy: Path) -> None:
    path = edit_spec(mesh_copy, SALES, set_input(0, product="sales.orders.stg_orders"))

    issue = the_issue(errors(mesh_copy), path, "input_ports[0].product")
    assert "'sales.orders.stg_orders' is an internal asset of sales.orders: a back door" in issue.message
    assert "output port" in issue.message
    assert issue.fix == "depend on the port instead: product: sales.orders, version: '^1'"


def test_an_input_port_with_the_version_in_the_name_is_told_to_write_the_range_apart(mesh_copy: Path) -> None:
    path = edit_spec(mesh_copy, CUSTOMER_360, set_input(1, product="sales.sales.v2"))

    issue = the_issue(errors(mesh_copy), path, "input_ports[1].product")
    assert "puts the port version in the name" in issue.message
    assert "product: sales.sales" in issue.fix and "version: '^2'" in issue.fix


def test_a_product_cannot_consume_its_own_port(mesh_copy: Path) -> None:
    path = edit_spec(mesh_copy, ORDERS, add_input(ORDERS))

    issue = the_issue(errors(mesh_copy), path, "input_ports[1].product")
    assert "cannot consume its own port" in issue.message
    assert "remove this input" in issue.fix


def test_a_dependency_cycle_across_domains_names_the_cycle(mesh_copy: Path) -> None:
    path = edit_spec(mesh_copy, CUSTOMER_MASTER, add_input(CUSTOMER_360))

    cycles = [e for e in errors(mesh_copy) if "dependency cycle" in e.message]
    assert len(cycles) == 1, cycles
    [issue] = cycles
    assert same_file(issue.file, path)
    assert issue.field == "input_ports"
    assert issue.message == (
        "dependency cycle across products: "
        "commercial_analytics.customer_360 -> customers.customer_master -> commercial_analytics.customer_360"
    )
    assert "remove one of these inputs" in issue.fix


# --- port lifecycle -----------------------------------------------------------------------------------


def retire_sales_v1(data: Spec) -> None:
    [v1] = [p for p in data["output_ports"] if p["version"].startswith("1.")]
    assert v1["deprecation"]  # kept: a retired port still says what replaced it
    v1["status"] = "retired"


def test_consuming_a_retired_port_fails_naming_the_version_to_move_to(mesh_copy: Path) -> None:
    edit_spec(mesh_copy, SALES, retire_sales_v1)
    registry = load_registry(mesh_copy)

    issue = the_issue(registry.errors, spec_path(mesh_copy, CUSTOMER_360), "input_ports[1].version")
    assert issue.message == (
        "sales.sales v1 (1.4.0) is retired and no longer served, but commercial_analytics.customer_360 "
        "(team commercial_analytics, steward lea.dubois@example.com) still reads it"
    )
    assert issue.fix == "move to a served version: product: sales.sales, version: '^2'"
    assert registry.warnings == []


def test_a_draft_port_cannot_be_consumed_from_another_domain(mesh_copy: Path) -> None:
    edit_spec(mesh_copy, CUSTOMER_MASTER, set_field(status="draft"))
    found = errors(mesh_copy)

    for consumer, index in ((INSTRUMENT_RUNS, 1), (CUSTOMER_360, 0)):
        issue = the_issue(found, spec_path(mesh_copy, consumer), f"input_ports[{index}].product")
        assert "customers.customer_master v1 (1.0.0) is a draft" in issue.message
        assert "readable only inside domain 'customers'" in issue.message
        assert "maria.keller@example.com" in issue.fix
    assert len(found) == 2


def test_a_draft_port_can_be_consumed_inside_its_own_domain(mesh_copy: Path) -> None:
    edit_spec(mesh_copy, ORDERS, set_field(status="draft"))

    assert errors(mesh_copy) == []


def test_a_beta_port_needs_preview_true_from_another_domain(mesh_copy: Path) -> None:
    edit_spec(mesh_copy, CUSTOMER_MASTER, set_field(status="beta"))

    issue = the_issue(errors(mesh_copy), spec_path(mesh_copy, INSTRUMENT_RUNS), "input_ports[1].preview")
    assert "customers.customer_master v1 (1.0.0) is in beta" in issue.message
    assert "set preview: true" in issue.fix


def test_a_beta_port_is_readable_from_another_domain_with_preview_true(mesh_copy: Path) -> None:
    edit_spec(mesh_copy, CUSTOMER_MASTER, set_field(status="beta"))
    edit_spec(mesh_copy, INSTRUMENT_RUNS, set_input(1, preview=True))

    found = errors(mesh_copy)
    assert issues_at(found, spec_path(mesh_copy, INSTRUMENT_RUNS)) == []
    assert the_issue(found, spec_path(mesh_copy, CUSTOMER_360), "input_ports[0].preview")


def test_a_beta_port_is_readable_inside_its_own_domain_without_preview(mesh_copy: Path) -> None:
    # customer_360 is read by sales_forecast, of the same domain, which does not set preview.
    edit_spec(mesh_copy, CUSTOMER_360, set_field(status="beta"))

    assert issues_at(errors(mesh_copy), spec_path(mesh_copy, SALES_FORECAST)) == []


# --- all at once --------------------------------------------------------------------------------------


def test_every_error_is_reported_at_once(mesh_copy: Path) -> None:
    forecast = edit_spec(mesh_copy, SALES_FORECAST, set_column(1, type="strng"))
    runs = edit_spec(mesh_copy, INSTRUMENT_RUNS, set_input(1, product="customers.customer_mastr"))
    sales = edit_spec(mesh_copy, SALES, set_input(0, version=">=5.0.0"))

    found = errors(mesh_copy)

    assert len(found) >= 3
    assert the_issue(found, forecast, "output_ports[0].columns[1].type")
    assert the_issue(found, runs, "input_ports[1].product")
    assert the_issue(found, sales, "input_ports[0].version")


# --- validate(): SQL back doors and generated files ---------------------------------------------------


def test_a_sql_model_reading_an_undeclared_port_is_a_back_door(mesh_copy: Path) -> None:
    sql = spec_path(mesh_copy, INSTRUMENT_RUNS).parent / "instrument_runs_v1.sql"
    back_door = "join {{ input('sales.orders') }} as o on o.customer_id = r.customer_id\n"
    replace_in(sql, "from {{ ref('stg_runs') }} as r\n", "from {{ ref('stg_runs') }} as r\n" + back_door)
    assert load_registry(mesh_copy).errors == []  # the spec itself is fine: only the SQL reveals it

    report = validate(mesh_copy)

    issue = the_issue(report.errors, sql, "input('sales.orders')")
    assert issue.message == "reads a port the spec does not declare"
    assert issue.fix == "declare it in input_ports: - product: sales.orders"


def test_a_sql_model_reading_another_products_internal_model_is_refused(mesh_copy: Path) -> None:
    sql = spec_path(mesh_copy, INSTRUMENT_RUNS).parent / "instrument_runs_v1.sql"
    replace_in(sql, "{{ ref('stg_runs') }}", "{{ ref('stg_orders') }}")

    issue = the_issue(validate(mesh_copy).errors, sql, "ref('stg_orders')")
    assert "'stg_orders' is not an internal model of diagnostics.instrument_runs" in issue.message
    assert "use input()" in issue.fix


def test_a_sql_model_reading_an_undeclared_source_is_refused(mesh_copy: Path) -> None:
    sql = spec_path(mesh_copy, INSTRUMENT_RUNS).parent / "stg_runs.sql"
    replace_in(sql, "{{ source('lims.instrument_runs') }}", "{{ source('erp.orders') }}")

    issue = the_issue(validate(mesh_copy).errors, sql, "source('erp.orders')")
    assert issue.message == "reads a source the spec does not declare"
    assert issue.fix == "add '- source: erp.orders' to input_ports"


def test_editing_a_dbt_ports_columns_without_prepare_reports_the_generated_file_out_of_date(
    mesh_copy: Path,
) -> None:
    new_column = {"name": "channel", "type": "string", "description": "Sales channel of the order."}
    edit_spec(mesh_copy, ORDERS, lambda d: d["output_ports"][0]["columns"].append(new_column))
    generated = mesh_copy / "dbt_projects" / "sales" / "models" / "_mesh_generated.yml"

    report = validate(mesh_copy)

    assert load_registry(mesh_copy).errors == []
    issue = the_issue(report.errors, generated, "")
    assert "out of date" in issue.message
    assert "mesh prepare" in issue.fix


# --- the CLI ------------------------------------------------------------------------------------------


def run_cli(*args: str) -> tuple[int, str]:
    """`mesh validate` in process; MESH_ROOT is set by the `mesh_copy` fixture."""
    result = CliRunner().invoke(app, ["validate", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout


def test_mesh_validate_exits_0_on_the_shipped_mesh_with_a_one_line_summary(mesh_copy: Path) -> None:
    code, out = run_cli()

    assert code == 0, out
    lines = out.strip().splitlines()
    assert lines[-1] == "valid: 6 products, 7 output ports in 4 domains: 0 error(s), 1 warning(s)"
    assert [line for line in lines if "valid" in line] == [lines[-1]]
    assert lines[0].startswith("warning domains/commercial_analytics/products/customer_360/dataproduct.yaml")


def test_mesh_validate_exits_1_on_a_broken_mesh_printing_file_field_and_fix(mesh_copy: Path) -> None:
    edit_spec(mesh_copy, CUSTOMER_MASTER, set_column(2, type="strng"))

    code, out = run_cli()

    assert code == 1, out
    assert (
        "error domains/customers/products/customer_master/dataproduct.yaml: output_ports[0].columns[2].type: "
    ) in out
    assert "Fix: use one of the allowed values" in out
    assert out.strip().splitlines()[-1].startswith("invalid: ")


def test_mesh_validate_json_has_valid_false_and_every_issue(mesh_copy: Path) -> None:
    path = edit_spec(mesh_copy, CUSTOMER_MASTER, set_field(classification="secret"))

    code, out = run_cli("--json")

    assert code == 1
    result = json.loads(out)
    assert result["valid"] is False
    assert "error(s)" in result["summary"]
    [issue] = [i for i in result["issues"] if i["field"] == "classification"]
    assert (issue["severity"], Path(issue["file"]).resolve()) == ("error", path.resolve())
    assert issue["fix"] == "use one of the allowed values above"


def test_mesh_validate_json_has_valid_true_on_the_shipped_mesh(mesh_copy: Path) -> None:
    code, out = run_cli("--json")

    assert code == 0
    result = json.loads(out)
    assert result["valid"] is True
    assert [i["severity"] for i in result["issues"]] == ["warning"]


def test_the_mesh_validate_module_entry_point_runs_in_a_fresh_process(mesh_copy: Path) -> None:
    edit_spec(mesh_copy, CUSTOMER_MASTER, lambda d: d.pop("owner"))

    result = subprocess.run(
        [sys.executable, "-m", "mesh_assets.cli.app", "validate"],
        env={**os.environ, "MESH_ROOT": str(mesh_copy)},
        cwd=mesh_copy,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 1, result.stderr
    assert (
        "domains/customers/products/customer_master/dataproduct.yaml: owner: required field is missing"
        in result.stdout
    )
    assert "Fix: add 'owner'" in result.stdout


# --- regressions: bugs found and fixed in the registry's error reporting ----------------------------------


def test_a_missing_product_in_an_input_port_names_the_product_field(mesh_copy: Path) -> None:
    path = edit_spec(mesh_copy, INSTRUMENT_RUNS, lambda d: d["input_ports"][1].pop("product"))

    the_issue(errors(mesh_copy), path, "input_ports[1].product")


def test_an_unknown_field_in_the_transformation_names_the_path_the_user_wrote(mesh_copy: Path) -> None:
    path = edit_spec(mesh_copy, CUSTOMER_MASTER, lambda d: d["transformation"].update(modle="x.py"))

    the_issue(errors(mesh_copy), path, "transformation.modle")


def test_the_fix_for_a_missing_product_name_describes_the_product_name(mesh_copy: Path) -> None:
    path = edit_spec(mesh_copy, ORDERS, lambda d: d.pop("name"))

    issue = the_issue(errors(mesh_copy), path, "name")
    assert issue.fix == "add 'name': Product name, unique in its domain."


def test_an_invalid_producer_spec_does_not_send_its_consumers_to_another_product(mesh_copy: Path) -> None:
    edit_spec(mesh_copy, ORDERS, set_field(classification="secret"))

    consumer_issues = issues_at(errors(mesh_copy), spec_path(mesh_copy, SALES))
    assert not any("no product 'sales.orders'" in i.message for i in consumer_issues)
    assert not any("did you mean" in i.fix for i in consumer_issues)
